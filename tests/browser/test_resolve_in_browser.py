"""The two triage stories end to end in Chromium: a Sync user resolves a deleted-record error
in one click and it stays resolved; an administrator sees a missing exchange rate as one
finding before any sync, fixes it in the app, retries, and watches the problem resolve."""

import pytest
from playwright.sync_api import expect

from demo.models import CrmTransactionCurrency
from errors.models import Category, ErrorGroup, Status, SyncError
from sync.models import SyncJob
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.conftest import ARTIFACTS, PASSWORD, user_in_role
from tests.errors.test_fixes import deleted_in_crm

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def sign_in(page, url: str, username: str) -> None:
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_a_sync_user_restores_a_deleted_record_in_one_click(page, demo_apps, celery_worker):
    entry = deleted_in_crm(demo_apps)
    user_in_role("fixer", SYNC_USERS)
    base = demo_apps.base_url

    sign_in(page, f"{base}/errors/groups/", "fixer")
    page.wait_for_selector("h1:has-text('Problems')")
    page.click(f"a.group-title[href='/errors/?group={entry.group_id}']")
    page.wait_for_url(f"**/errors/?group={entry.group_id}")
    page.locator("table.errors tbody tr td.message a").first.click()
    page.wait_for_selector("#fixes")
    assert "destination record is gone" in page.inner_text("#fixes")

    page.click("button:has-text('Restore the deleted record')")  # the one click
    page.wait_for_selector("[data-job-status=succeeded]", timeout=60000)
    assert page.inner_text("[data-count=inserted]") == "1"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "restore-job.png"), full_page=True)

    page.goto(f"{base}{entry.get_absolute_url()}")
    assert "Resolved" in page.inner_text("dl.facts")
    # It stays resolved: the next scheduled run finds both records in step (it fails only
    # the customer in SEK, which the demo CRM lacks, tried again).
    job = demo_apps.run("CUSTOMER")
    assert not SyncError.objects.filter(job=job).exclude(category=Category.CURRENCY).exists()
    entry.refresh_from_db()
    assert entry.status == Status.RESOLVED
    entry.refresh_from_db()
    assert entry.status == "resolved"
    assert not SyncError.objects.filter(job=job, category=Category.COUPLED_RECORD_DELETED).exists()
    assert ErrorGroup.objects.get(pk=entry.group_id).status == "resolved"


def test_an_administrator_fixes_a_missing_exchange_rate_and_the_problem_resolves(
    page, demo_apps, celery_worker
):
    CrmTransactionCurrency.objects.filter(iso_currency_code="DKK").update(exchange_rate=None)
    user_in_role("admin1", SYNC_ADMINISTRATORS, is_staff=True)
    base = demo_apps.base_url
    connection = demo_apps.connection

    # Before any sync runs, the setup check shows the missing rate as one finding.
    sign_in(page, f"{base}/sync/connections/{connection.pk}/health/", "admin1")
    page.click("button:has-text('Check now')")
    # The click posts and the page comes back with the findings: wait for them to show.
    finding = page.locator(".finding", has_text="no exchange rate for DKK")
    expect(finding).to_have_count(1, timeout=15000)
    assert "enter its exchange rate" in finding.inner_text()

    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)  # the scheduled sync runs anyway
    group = (
        ErrorGroup.objects.filter(errors__job=job, title__contains="currency DKK").distinct().get()
    )
    assert group.count > 1

    page.goto(f"{base}/errors/groups/")
    page.click(f"a.group-title[href='/errors/?group={group.pk}']")
    page.wait_for_url(f"**/errors/?group={group.pk}")
    assert page.locator("table.errors tbody tr").count() == group.count

    # The administrator fixes it in the CRM, on the currency's page.
    page.goto(f"{base}/sync/connections/{connection.pk}/health/")
    with page.context.expect_page() as opened:
        page.locator(".finding", has_text="no exchange rate for DKK").get_by_role(
            "link"
        ).first.click()
    crm = opened.value
    crm.wait_for_load_state()
    crm.fill("input[name=exchange_rate]", "7.46")
    crm.click("button:has-text('Save')")
    crm.wait_for_selector("text=is saved")
    crm.close()

    # Retry all the problem's entries: the exact count first, then the worker.
    page.goto(f"{base}/errors/?group={group.pk}")
    page.select_option("#bulk-action", "retry")
    page.click("#bulk-all")
    assert page.inner_text("#bulk-count") == str(group.count)
    page.click("#bulk-confirm-button")
    page.wait_for_selector("#bulk-jobs a", timeout=60000)
    # The progress page follows the job it queued until it finishes, and says what it did.
    page.wait_for_selector("#bulk[data-following=false]", timeout=60000)
    assert "Succeeded" in page.inner_text("#bulk-job-rows")
    assert page.inner_text("#bulk-resolved-count") == str(group.count)
    page.locator("#bulk-jobs a").first.click()
    page.wait_for_selector("[data-job-status=succeeded]", timeout=60000)
    assert page.inner_text("[data-count=inserted]") == str(group.count)

    page.goto(f"{base}/errors/groups/?q=DKK")
    row = page.locator("table.groups tbody tr", has_text="DKK")
    assert "Resolved" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "problem-resolved.png"), full_page=True)
    group.refresh_from_db()
    assert group.status == "resolved"
    assert not SyncError.objects.filter(group=group, status="open").exists()
