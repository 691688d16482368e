"""A conflict settled in Chromium: a Sync user opens the problem, chooses which side wins
with Synchronize, and the entry and its problem resolve by themselves in the worker's job."""

import pytest

from demo.models import ErpCustomer
from errors.models import ErrorGroup, Status
from syncconsole.permissions import SYNC_USERS
from tests.conftest import user_in_role
from tests.errors.test_fixes import conflict

from .test_resolve_in_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_sync_user_lets_the_crm_win_a_conflict(page, demo_apps, celery_worker):
    entry = conflict(demo_apps)
    user_in_role("fixer", SYNC_USERS)
    base = demo_apps.base_url

    sign_in(page, f"{base}/", "fixer")
    # Signed in on the overview; the problems are one click away.
    page.click("nav[aria-label=Main] a:has-text('Problems')")
    page.wait_for_selector("h1:has-text('Problems')")
    page.click(f"a.group-title[href='/errors/?group={entry.group_id}']")
    page.locator("table.errors tbody tr td.message a").first.click()
    page.wait_for_selector("#fixes")
    page.click("button:has-text('Synchronize Dynamics 365 Sales → Business Central')")
    page.wait_for_selector("[data-job-status=succeeded]", timeout=60000)
    assert page.inner_text("[data-count=modified]") == "1"

    page.goto(f"{base}{entry.get_absolute_url()}")
    facts = page.inner_text("dl.facts")
    assert "Resolved" in facts
    entry.refresh_from_db()
    assert entry.status == Status.RESOLVED and "synchronized in job" in entry.status_note
    assert ErrorGroup.objects.get(pk=entry.group_id).status == Status.RESOLVED
    assert ErpCustomer.objects.get(number="C00030").city == "Bergen"
