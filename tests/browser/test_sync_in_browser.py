"""A person starts a sync from the console, watches the job finish in the worker, and opens
the errors it logged."""

import re

import pytest

from sync.models import SyncJob
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import ARTIFACTS, PASSWORD, user_in_role

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_start_a_full_sync_and_open_its_errors(page, demo_apps, celery_worker):
    user_in_role("triager", SYNC_ADMINISTRATORS, is_staff=True)
    base = demo_apps.base_url

    page.goto(f"{base}/sync/mappings/")
    page.fill("#id_username", "triager")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    row = page.locator("tr", has_text="CUSTOMER")
    row.get_by_role("button", name="Run Full Synchronization").click()

    page.wait_for_selector("text=is queued as #")
    job = SyncJob.objects.get()
    assert page.url == f"{base}{job.get_absolute_url()}"
    # The job page follows the job live until it finishes.
    page.wait_for_selector("[data-job-status=succeeded]", timeout=60000)
    assert page.inner_text("[data-count=inserted]") == "10"
    assert page.inner_text("[data-count=failed]") == "1"
    assert page.inner_text("#job-status") == "Completed with 1 failure"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sync-job-finished.png"), full_page=True)

    page.goto(f"{base}/sync/jobs/")
    job_row = page.locator("table.jobs tbody tr").first
    assert "CUSTOMER" in job_row.inner_text()
    assert "Completed with 1 failure" in job_row.inner_text()
    assert "Succeeded" not in job_row.inner_text()
    job_row.locator("a.failed").click()
    page.wait_for_url(f"**/errors/?job={job.pk}")
    rows = page.locator("table.errors tbody tr")
    assert rows.count() == 1
    assert "Currency SEK does not exist in Dynamics 365 Sales" in rows.first.inner_text()

    with page.context.expect_page() as opened:
        rows.first.get_by_role("link", name=re.compile("^Business Central · ")).click()
    record = opened.value
    record.wait_for_load_state()
    assert "/demo/erp/customers/" in record.url
    assert "SEK" in record.content()
