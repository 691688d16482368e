"""A person signs in, filters the errors, opens a source record and deletes older entries."""

import re
from datetime import timedelta

import pytest

from demo.entities import record_url
from demo.models import ErpCustomer
from errors.models import Category, SyncError
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import ARTIFACTS, PASSWORD, user_in_role
from tests.factories import make_error

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_filter_open_source_and_delete_older(page, live_server, settings):
    settings.DEMO_BASE_URL = live_server.url
    user_in_role("triager", SYNC_ADMINISTRATORS, is_staff=True)
    customer = ErpCustomer.objects.create(number="C00042", display_name="Fabrikam Inc.")
    wanted = make_error(
        category=Category.CURRENCY,
        message="The currency NOK does not have an exchange rate in Dynamics 365 Sales.",
        source_record_id=str(customer.pk),
        source_url=record_url("erp", "customers", customer.pk),
        age=timedelta(hours=2),
    )
    old_ones = [make_error(category=Category.CONFLICT, age=timedelta(days=9 + i)) for i in range(3)]
    recent = make_error(category=Category.VALIDATION, age=timedelta(days=6, hours=23))

    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "triager")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    # The console opens on the overview; the problems are next, each leading to its entries.
    page.wait_for_selector("h1:has-text('Overview')")
    page.click("nav.mainnav >> text=Problems")
    page.wait_for_selector("h1:has-text('Problems')")
    assert page.locator("table.groups tbody tr").count() == 3  # the 3 conflicts are one
    page.click("text=All entries")
    page.wait_for_selector("h1:has-text('Sync errors')")
    assert page.locator("table.errors tbody tr").count() == 5

    page.select_option("#id_category", "currency")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**category=currency**")
    rows = page.locator("table.errors tbody tr")
    assert rows.count() == 1
    assert "does not have an exchange rate" in rows.first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "errors-filtered.png"), full_page=True)

    with page.context.expect_page() as opened:
        rows.first.get_by_role("link", name=re.compile("^Business Central · ")).click()
    record_page = opened.value
    record_page.wait_for_load_state()
    assert record_page.url == wanted.source_url
    assert "Fabrikam Inc." in record_page.content()
    record_page.close()

    page.click("text=Delete Entries Older than 7 Days")
    page.wait_for_selector("#delete-count")
    assert page.inner_text("#delete-count") == "3"
    assert "still open" in page.inner_text("#open-count")
    page.click("button.danger")
    page.wait_for_selector("text=Deleted 3 entries older than 7 days.")
    page.screenshot(path=str(ARTIFACTS / "errors-after-cleanup.png"), full_page=True)
    assert page.locator("table.errors tbody tr").count() == 2
    remaining = set(SyncError.objects.values_list("pk", flat=True))
    assert remaining == {wanted.pk, recent.pk}
    assert not remaining & {e.pk for e in old_ones}
