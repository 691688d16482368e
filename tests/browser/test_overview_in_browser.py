"""A person signs in on the overview, sees which mapping fails, and follows it to its
problems."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from errors.models import Category
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import ARTIFACTS, PASSWORD, user_in_role
from tests.factories import make_connection, make_error, make_job, make_mapping

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_overview_leads_from_a_failing_mapping_to_its_problems(page, live_server):
    user_in_role("triager", SYNC_ADMINISTRATORS, is_staff=True)
    connection = make_connection(name="Production")
    healthy = make_mapping(connection, name="CURRENCY")
    make_job(healthy)
    failing = make_mapping(connection, name="CUSTOMER")
    make_job(failing, status="failed")
    make_error(
        mapping=failing,
        category=Category.VALIDATION,
        message="The field telephone1 of record C00010 cannot be longer than 30.",
        age=timedelta(days=2),
    )
    make_error(mapping=healthy, category=Category.CONFLICT, message="Someone else's problem.")

    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "triager")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Overview')")
    assert page.get_attribute("nav.mainnav a:first-child", "aria-current") == "page"
    assert "1 of 2 table mappings needs attention" in page.inner_text("#verdict")
    row = page.locator(f"tr[data-mapping='{failing.pk}']")
    assert row.get_attribute("data-state") == "failing"
    assert "Its last job failed." in row.inner_text()
    # The chart is there for the eye and its figures for a screen reader.
    chart = page.get_by_role("img", name=re.compile("^New and resolved entries per day"))
    assert chart.get_attribute("class") == "overview-chart"
    assert "2 entries came and 0 were resolved" in (page.text_content("#chart-desc") or "")
    two_days_ago = (timezone.localdate() - timedelta(days=2)).isoformat()
    page.click("#figures-table summary")
    day = page.locator(f"#figures-table tr[data-day='{two_days_ago}'] td[data-figure='new']")
    assert day.inner_text() == "1"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    row.get_by_role("link", name="1 problem").click()
    page.wait_for_selector("h1:has-text('Problems')")
    assert f"mapping={failing.pk}" in page.url
    problems = page.locator("table.groups tbody tr")
    assert problems.count() == 1
    assert "cannot be longer than 30" in problems.first.inner_text()
