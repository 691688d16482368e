"""The problems page by severity, with owners; "Assign to me", the owner filters of the
problems and the entries, a problem's discussion, and the ownership rules page and admin."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from errors import ownership
from errors.models import BulkAction, Category, ErrorGroup, OwnershipRule, ProblemComment
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.conftest import user_in_role
from tests.factories import make_error, make_mapping
from triage.bulk import run_bulk_action

pytestmark = pytest.mark.django_db
PROBLEMS = reverse("errors:groups")
ENTRIES = reverse("errors:list")
RULES = reverse("errors:ownership_rules")
SCRIPT = "<script>alert(1)</script>"


def listed(html: str) -> list[int]:
    """The problems of a page, in its order."""
    return [int(pk) for pk in re.findall(r'data-group="(\d+)"', html)]


def entries_listed(html: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'name="ids" value="(\d+)"', html)}


@pytest.fixture
def three(db):
    """A whole job's setup failure (blocking CURRENCY) seen an hour ago, a problem of 3 records
    seen a day ago, and a problem of 1 record seen now."""
    currency = make_mapping(name="CURRENCY")
    blocking = make_error(
        mapping=currency,
        category=Category.PERMISSION,
        message="The integration user is missing prvReadTransactionCurrency.",
        source_record_id="",
        destination_record_id="",
        age=timedelta(hours=1),  # between the two others, however many entries came before
    )
    customers = make_mapping(name="CUSTOMER")
    for i in range(3):
        wide = make_error(
            mapping=customers,
            category=Category.VALIDATION,
            message="The phone number is too long.",
            source_record_id=f"C{i}",
            age=timedelta(days=1),
        )
    recent = make_error(mapping=customers, category=Category.CONFLICT, age=timedelta(0))
    return [ErrorGroup.objects.get(pk=e.group_id) for e in (blocking, wide, recent)]


def test_problems_are_listed_by_severity_with_its_reason_and_by_recency_on_demand(
    staff_client, three
):
    blocking, wide, recent = three
    html = staff_client.get(PROBLEMS).content.decode()
    assert listed(html) == [blocking.pk, wide.pk, recent.pk]
    assert "blocks the CURRENCY mapping" in html and "3 records" in html
    assert "by severity" in html
    assert 'id="id_sort"' in html and "Clear" not in html  # the order is not a filter
    by_recency = staff_client.get(PROBLEMS, {"sort": "recent"}).content.decode()
    assert listed(by_recency) == [recent.pk, blocking.pk, wide.pk]
    assert "most recent first" in by_recency
    assert staff_client.get(PROBLEMS, {"sort": "size"}).status_code == 400


def test_pages_of_the_severity_order_follow_each_other(staff_client, settings, three):
    settings.SYNC_ERRORS_PER_PAGE = 2
    first = staff_client.get(PROBLEMS).content.decode()
    assert listed(first) == [three[0].pk, three[1].pk]
    older = re.search(r'href="\?before=([^"]+)"', first).group(1)
    second = staff_client.get(PROBLEMS, {"before": older}).content.decode()
    assert listed(second) == [three[2].pk]
    # A cursor of the other order names no page of this one: the first page, with a word.
    recent_cursor = staff_client.get(PROBLEMS, {"sort": "recent"}).content.decode()
    wrong = re.search(r"before=([A-Za-z0-9_-]+)", recent_cursor).group(1)
    response = staff_client.get(PROBLEMS, {"before": wrong})
    assert response.status_code == 200 and "not valid" in response.content.decode()


def test_assign_to_me_from_the_problems_page_then_the_owner_filters(sync_user_client, three):
    _, wide, recent = three  # the setup problem is not shown to a Sync user
    page = sync_user_client.get(PROBLEMS).content.decode()
    assert listed(page) == [wide.pk, recent.pk]
    assert page.count("Assign to me") == 2
    response = sync_user_client.post(
        reverse("errors:group_assignment", args=[wide.pk]),
        {"action": "take", "next": f"{PROBLEMS}?sort=severity"},
    )
    assert response.status_code == 302 and response["Location"] == f"{PROBLEMS}?sort=severity"
    wide.refresh_from_db()
    assert wide.assignee_label == "fixer"

    page = sync_user_client.get(PROBLEMS).content.decode()
    assert "fixer (you)" in page and page.count("Assign to me") == 1
    mine = sync_user_client.get(PROBLEMS, {"assigned": "me"}).content.decode()
    assert listed(mine) == [wide.pk]
    assert listed(sync_user_client.get(PROBLEMS, {"assigned": "nobody"}).content.decode()) == [
        recent.pk
    ]
    # The entries of my problems, and of nobody's.
    mine = entries_listed(sync_user_client.get(ENTRIES, {"assigned": "me"}).content.decode())
    assert mine == set(wide.errors.values_list("pk", flat=True))
    nobodys = entries_listed(sync_user_client.get(ENTRIES, {"assigned": "nobody"}).content.decode())
    assert nobodys == set(recent.errors.values_list("pk", flat=True))


def test_assigned_to_me_counts_my_role_s_problems(staff_client, staff_user, sync_user, three):
    blocking, wide, _ = three
    ownership.assign(blocking, staff_user, to_group=Group.objects.get(name=SYNC_ADMINISTRATORS))
    ownership.assign(wide, staff_user, to_user=sync_user)
    assert listed(staff_client.get(PROBLEMS, {"assigned": "me"}).content.decode()) == [blocking.pk]


def test_a_redirect_after_assigning_stays_on_the_site(sync_user_client, three):
    url = reverse("errors:group_assignment", args=[three[2].pk])
    for away in ("https://evil.example.com/", "//evil.example.com/", "/x\r\nSet-Cookie: a=b"):
        response = sync_user_client.post(url, {"action": "take", "next": away})
        assert response["Location"] == three[2].get_absolute_url() + "#owner"


def test_the_problem_page_shows_severity_owner_and_discussion(staff_client, staff_user, three):
    blocking = three[0]
    page = staff_client.get(blocking.get_absolute_url()).content.decode()
    assert "blocks the CURRENCY mapping" in page
    assert "Unassigned" in page and "No comment yet." in page
    assert 'value="group:' in page and 'value="user:' in page  # an administrator's choice

    response = staff_client.post(
        reverse("errors:group_comment", args=[blocking.pk]),
        {"text": f"Asked the CRM team for the privilege. {SCRIPT}\nSecond line"},
        follow=True,
    )
    html = response.content.decode()
    assert "Your comment is added." in html
    assert SCRIPT not in html
    assert "Asked the CRM team for the privilege. &lt;script&gt;alert(1)&lt;/script&gt;<br>" in html
    comment = ProblemComment.objects.get()
    assert comment.author == staff_user and comment.text.endswith("Second line")

    staff_client.post(
        reverse("errors:group_assignment", args=[blocking.pk]),
        {"action": "assign", "assignee": f"group:{Group.objects.get(name=SYNC_ADMINISTRATORS).pk}"},
    )
    page = staff_client.get(blocking.get_absolute_url()).content.decode()
    assert "Sync administrators</strong> (role)" in page and "assigned by triager" in page


def test_a_comment_that_cannot_be_kept_is_refused_with_its_reason(staff_client, three):
    url = reverse("errors:group_comment", args=[three[1].pk])
    for text, reason in [("  ", "This field is required."), ("x" * 4001, "at most 4000")]:
        html = staff_client.post(url, {"text": text}, follow=True).content.decode()
        assert reason in html
    assert not ProblemComment.objects.exists()


def test_a_sync_user_may_not_assign_others_nor_touch_a_setup_problem(sync_user_client, three):
    blocking, wide, _ = three
    other = user_in_role("colleague", SYNC_USERS)
    answer = sync_user_client.post(
        reverse("errors:group_assignment", args=[wide.pk]),
        {"action": "assign", "assignee": f"user:{other.pk}"},
    )
    assert answer.status_code == 403
    for name, data in (("errors:group_assignment", {"action": "take"}),
                       ("errors:group_comment", {"text": "Me too"})):  # fmt: skip
        assert sync_user_client.post(reverse(name, args=[blocking.pk]), data).status_code == 403
    page = sync_user_client.get(wide.get_absolute_url()).content.decode()
    assert 'name="assignee"' not in page  # no choice of people for a Sync user
    assert not AuditEvent.objects.filter(action__startswith="problem_").exists()


def test_bulk_actions_on_my_entries_keep_who_i_am(sync_user_client, sync_user, three, celery_queue):
    wide = three[1]
    ownership.take(wide, sync_user)
    response = sync_user_client.post(
        reverse("errors:bulk"),
        {"scope": "filter", "action": "resolve", "filter_query": "assigned=me"},
    )
    assert response.status_code == 200  # the confirmation, with the exact count
    assert "3 entries" in response.content.decode()
    confirmation = response.context["preview"].token()
    sync_user_client.post(
        reverse("errors:bulk"),
        {"scope": "filter", "action": "resolve", "confirmation": confirmation},
    )
    bulk = BulkAction.objects.get()
    assert bulk.filter_query == f"assignee={sync_user.pk}"
    run_bulk_action(bulk.pk)  # as the worker runs it: nobody there is "me"
    assert set(wide.errors.values_list("status", flat=True)) == {"resolved"}
    assert set(three[2].errors.values_list("status", flat=True)) == {"open"}


def test_administrators_manage_ownership_rules_on_their_page(staff_client, sync_user):
    mapping = make_mapping(name="CONTACT")
    page = staff_client.get(RULES).content.decode()
    assert "No rule" in page
    response = staff_client.post(
        RULES,
        {
            "scope": f"mapping:{mapping.pk}",
            "category": "conflict",
            "assignee": f"user:{sync_user.pk}",
        },
    )
    assert response.status_code == 302
    rule = OwnershipRule.objects.get()
    assert (rule.mapping, rule.category, rule.user) == (mapping, "conflict", sync_user)
    page = staff_client.get(RULES).content.decode()
    shown = "Conflict problems of table mapping CONTACT (customers ↔ accounts) → <strong>fixer"
    assert shown in page

    refused = staff_client.post(
        RULES, {"scope": "", "category": "permission", "assignee": f"user:{sync_user.pk}"}
    )
    assert refused.status_code == 400
    assert "cannot see setup and connection problems" in refused.content.decode()

    staff_client.post(reverse("errors:ownership_rule_delete", args=[rule.pk]))
    assert not OwnershipRule.objects.exists()
    assert AuditEvent.objects.filter(action="ownership_rule_changed").count() == 2


def test_sync_users_neither_see_nor_change_the_rules(sync_user_client, staff_user, sync_user):
    rule = ownership.save_rule(OwnershipRule(user=sync_user), staff_user)
    assert sync_user_client.get(RULES).status_code == 403
    delete = reverse("errors:ownership_rule_delete", args=[rule.pk])
    assert sync_user_client.post(delete).status_code == 403
    assert 'id="ownership-rules"' not in sync_user_client.get(PROBLEMS).content.decode()


def test_the_django_admin_saves_and_deletes_rules_through_the_service(superuser, sync_user):
    admin = Client()
    admin.force_login(superuser)
    add = reverse("admin:errors_ownershiprule_add")
    response = admin.post(add, {"category": "permission", "user": sync_user.pk})
    assert response.status_code == 200  # the form again, with the reason
    assert "cannot see setup and connection problems" in response.content.decode()
    response = admin.post(add, {"category": "conflict", "user": sync_user.pk})
    assert response.status_code == 302
    rule = OwnershipRule.objects.get()
    assert rule.created_by == superuser
    admin.post(reverse("admin:errors_ownershiprule_delete", args=[rule.pk]), {"post": "yes"})
    assert not OwnershipRule.objects.exists()
    summaries = list(
        AuditEvent.objects.filter(action="ownership_rule_changed")
        .order_by("pk")
        .values_list("summary", flat=True)
    )
    assert [s.split(":")[0] for s in summaries] == [
        "Added ownership rule",
        "Deleted ownership rule",
    ]


def test_rows_cost_no_query_per_owner(staff_client, staff_user):
    from tests.test_query_counts import assert_rows_cost_nothing

    people = [user_in_role(f"person{i}", SYNC_ADMINISTRATORS) for i in range(30)]

    def owned(n):
        start = ErrorGroup.objects.count()
        for i in range(n):
            problem = ErrorGroup.objects.get(pk=make_error(mapping=make_mapping()).group_id)
            ownership.assign(problem, staff_user, to_user=people[start + i])

    assert_rows_cost_nothing(staff_client, PROBLEMS, owned, at_most=10)


def test_an_entry_s_page_names_its_problem_s_owner(sync_user_client, sync_user, three):
    entry = three[2].errors.get()
    assert (
        'id="problem-owner"' not in sync_user_client.get(entry.get_absolute_url()).content.decode()
    )
    ownership.take(three[2], sync_user)
    page = sync_user_client.get(entry.get_absolute_url()).content.decode()
    assert "· assigned to fixer" in page
