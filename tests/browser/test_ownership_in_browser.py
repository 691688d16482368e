"""A Sync user opens the problems, takes the most severe one with "Assign to me", says what
they are doing about it in its discussion, and finds it under "Assigned to me"."""

from datetime import timedelta

import pytest

from errors.models import Category, ErrorGroup, ProblemComment
from syncconsole.permissions import SYNC_USERS
from tests.conftest import ARTIFACTS, PASSWORD, user_in_role
from tests.factories import make_error, make_mapping

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_take_the_top_problem_comment_and_find_it_under_assigned_to_me(page, live_server):
    user_in_role("fixer", SYNC_USERS)
    mapping = make_mapping(name="CUSTOMER")
    for record in ("C1", "C2", "C3"):  # three records: it ranks first
        top = make_error(
            mapping=mapping,
            category=Category.VALIDATION,
            message="The phone number is too long.",
            source_record_id=record,
            age=timedelta(days=1),
        )
    other = make_error(mapping=mapping, category=Category.CONFLICT, age=timedelta(0))
    problem = ErrorGroup.objects.get(pk=top.group_id)

    page.goto(f"{live_server.url}/errors/groups/")
    page.fill("#id_username", "fixer")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Problems')")
    first = page.locator("table.groups tbody tr.group-row").first
    assert first.get_attribute("data-group") == str(problem.pk)
    assert "3 records" in first.inner_text()

    first.locator("button:has-text('Assign to me')").click()
    page.wait_for_selector(f"tr[data-group='{problem.pk}'] .assignee:has-text('fixer (you)')")
    assert "is assigned to fixer" in page.inner_text(".messages")

    page.click(f"tr[data-group='{problem.pk}'] a.group-title")
    page.wait_for_url(f"**/errors/?group={problem.pk}")
    assert "fixer" in page.inner_text("#assignee")
    page.fill("#comment-text", "Shortening the numbers in the ERP <today>.")
    page.click("#discussion button:has-text('Comment')")
    page.wait_for_selector(".comment-text:has-text('Shortening the numbers in the ERP <today>.')")
    assert page.inner_text("#discussion .comment-author") == "fixer"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "problem-discussion.png"), full_page=True)

    page.goto(f"{live_server.url}/errors/groups/")
    page.select_option("#id_assigned", "me")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**assigned=me**")
    rows = page.locator("table.groups tbody tr.group-row")
    assert rows.count() == 1 and rows.first.get_attribute("data-group") == str(problem.pk)
    page.screenshot(path=str(ARTIFACTS / "assigned-to-me.png"), full_page=True)

    problem.refresh_from_db()
    assert problem.assignee_label == "fixer"
    assert ProblemComment.objects.get().group_id == problem.pk
    assert ErrorGroup.objects.get(pk=other.group_id).assigned_user is None
