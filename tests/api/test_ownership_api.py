"""The API's problems by severity, their owners and their discussion: the same rules as the
pages, through the same service."""

from datetime import timedelta

import pytest
import yaml
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from errors import ownership
from errors.models import Category, ErrorGroup, ProblemComment
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.conftest import user_in_role
from tests.factories import make_error, make_mapping

pytestmark = pytest.mark.django_db
PROBLEMS = reverse("api:problems")
ERRORS = reverse("api:errors")


def assignment(pk: int) -> str:
    return reverse("api:problem_assignment", args=[pk])


def comments(pk: int) -> str:
    return reverse("api:problem_comments", args=[pk])


def post(client: Client, url: str, body) -> object:
    return client.post(url, body, content_type="application/json")


@pytest.fixture
def problems(db):
    """A setup failure of whole jobs on CURRENCY, a problem of two records seen a day ago, and
    one of one record seen now."""
    blocking = make_error(
        mapping=make_mapping(name="CURRENCY"),
        category=Category.PERMISSION,
        message="The integration user is missing prvReadTransactionCurrency.",
        source_record_id="",
        destination_record_id="",
    )
    mapping = make_mapping(name="CUSTOMER")
    for record in ("C1", "C2"):
        wide = make_error(
            mapping=mapping,
            category=Category.VALIDATION,
            message="The phone number is too long.",
            source_record_id=record,
            age=timedelta(days=1),
        )
    recent = make_error(mapping=mapping, category=Category.CONFLICT, age=timedelta(0))
    return [ErrorGroup.objects.get(pk=e.group_id) for e in (blocking, wide, recent)]


def ids(answer) -> list[int]:
    return [row["id"] for row in answer.json()["results"]]


def test_problems_come_by_severity_with_its_reason_or_by_recency(admin_api, problems):
    blocking, wide, recent = problems
    answer = admin_api.get(PROBLEMS)
    assert ids(answer) == [blocking.pk, wide.pk, recent.pk]
    first, second, _ = answer.json()["results"]
    assert (first["severity"], first["severity_reason"]) == (
        "blocking",
        "blocks the CURRENCY mapping",
    )
    assert (second["severity"], second["severity_reason"]) == ("records", "2 records")
    assert first["severity_rank"] > second["severity_rank"]
    assert first["assigned_to"] is None
    assert ids(admin_api.get(PROBLEMS, {"sort": "recent"})) == [recent.pk, blocking.pk, wide.pk]
    assert admin_api.get(PROBLEMS, {"sort": "records"}).status_code == 400
    assert admin_api.get(PROBLEMS, {"sort": ""}).status_code == 400

    paged = admin_api.get(PROBLEMS, {"page_size": 2}).json()
    assert [row["id"] for row in paged["results"]] == [blocking.pk, wide.pk]
    rest = admin_api.get(paged["next"]).json()
    assert [row["id"] for row in rest["results"]] == [recent.pk]


def test_take_assign_and_give_back_through_the_api(user_api, admin_api, sync_user, problems):
    _, wide, recent = problems
    answer = post(user_api, assignment(wide.pk), {"assignee": "me"})
    assert answer.status_code == 200
    assert (answer.json()["assigned_to"], answer.json()["assigned_user"]) == (
        "fixer",
        sync_user.pk,
    )
    assert ids(user_api.get(PROBLEMS, {"assigned": "me"})) == [wide.pk]
    assert ids(user_api.get(PROBLEMS, {"assigned": "nobody"})) == [recent.pk]
    mine = {row["id"] for row in user_api.get(ERRORS, {"assigned": "me"}).json()["results"]}
    assert mine == set(wide.errors.values_list("pk", flat=True))

    colleague = user_in_role("colleague", SYNC_USERS)
    assert post(user_api, assignment(recent.pk), {"user": colleague.pk}).status_code == 403
    answer = post(admin_api, assignment(recent.pk), {"user": colleague.pk})
    assert answer.json()["assigned_to"] == "colleague"
    users = Group.objects.get(name=SYNC_USERS)
    answer = post(admin_api, assignment(recent.pk), {"group": users.pk})
    assert (answer.json()["assigned_to"], answer.json()["assigned_group"]) == (
        SYNC_USERS,
        users.pk,
    )
    # A Sync user is in that role: the problem is theirs too.
    assert set(ids(user_api.get(PROBLEMS, {"assigned": "me"}))) == {wide.pk, recent.pk}

    assert post(user_api, assignment(recent.pk), {"assignee": "nobody"}).status_code == 403
    answer = post(user_api, assignment(wide.pk), {"assignee": "nobody"})
    assert answer.json()["assigned_to"] is None
    actions = list(
        AuditEvent.objects.filter(action__startswith="problem_")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["problem_assigned"] * 3 + ["problem_unassigned"]


def test_an_assignment_the_present_state_refuses(admin_api, sync_user, problems):
    blocking = problems[0]
    answer = post(admin_api, assignment(blocking.pk), {"user": sync_user.pk})
    assert answer.status_code == 409
    assert "Sync administrator" in answer.json()["detail"]
    assert post(admin_api, assignment(blocking.pk), {"user": 987654}).status_code == 404
    assert post(admin_api, assignment(blocking.pk), {"group": 987654}).status_code == 404
    sales = Group.objects.create(name="Sales")
    assert post(admin_api, assignment(blocking.pk), {"group": sales.pk}).status_code == 409
    for body in ({}, {"assignee": "you"}, {"user": "7"}, {"user": 7, "group": 1}, {"me": True}):
        assert post(admin_api, assignment(blocking.pk), body).status_code == 400, body
    assert not ErrorGroup.objects.filter(pk=blocking.pk, assigned_user__isnull=False).exists()


def test_a_sync_user_never_reaches_a_setup_problem_s_owner_or_discussion(user_api, problems):
    blocking = problems[0]
    assert post(user_api, assignment(blocking.pk), {"assignee": "me"}).status_code == 403
    assert user_api.get(comments(blocking.pk)).status_code == 403
    assert post(user_api, comments(blocking.pk), {"text": "Me too"}).status_code == 403


def test_the_discussion_through_the_api(user_api, admin_api, problems):
    wide = problems[1]
    hostile = '<script>alert(1)</script> "quoted"'
    answer = post(user_api, comments(wide.pk), {"text": f"  {hostile}  "})
    assert answer.status_code == 201
    assert (answer.json()["author"], answer.json()["text"], answer.json()["problem"]) == (
        "fixer",
        hostile,
        wide.pk,
    )
    post(admin_api, comments(wide.pk), {"text": "Thanks."})
    listed = admin_api.get(comments(wide.pk)).json()
    assert [c["text"] for c in listed] == [hostile, "Thanks."]
    for body in ({"text": "   "}, {"text": "x" * 4001}, {"text": 5}, {"body": "x"}, {}):
        assert post(user_api, comments(wide.pk), body).status_code == 400, body
    assert ProblemComment.objects.count() == 2
    assert AuditEvent.objects.filter(action="problem_commented").count() == 2


def test_the_description_gives_the_order_the_owner_filter_and_the_new_endpoints():
    description = yaml.safe_load(Client().get(reverse("api:schema")).content)
    listing = description["paths"]["/api/v1/problems/"]["get"]
    parameters = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert parameters["sort"]["enum"] == ["severity", "recent"]
    assert parameters["assigned"]["enum"] == ["me", "nobody"]
    errors = description["paths"]["/api/v1/errors/"]["get"]
    assert "assigned" in {p["name"] for p in errors["parameters"]}
    assert "post" in description["paths"]["/api/v1/problems/{id}/assignment/"]
    assert {"get", "post"} <= set(description["paths"]["/api/v1/problems/{id}/comments/"])
    schemas = description["components"]["schemas"]
    problem = schemas["ErrorGroup"]["properties"]
    assert problem["severity"]["allOf"] == [{"$ref": "#/components/schemas/SeverityEnum"}]
    assert schemas["SeverityEnum"]["enum"] == ["set_aside", "records", "blocking", "root_cause"]
    assert {
        "severity_reason",
        "severity_rank",
        "assigned_to",
        "blocked_by",
        "blocks_records",
    } <= set(problem)


def test_an_administrator_may_also_give_a_problem_to_a_role_member(admin_api, problems):
    lead = user_in_role("lead", SYNC_ADMINISTRATORS)
    answer = post(admin_api, assignment(problems[0].pk), {"user": lead.pk})
    assert answer.status_code == 200 and answer.json()["assigned_to"] == "lead"


def test_a_bulk_action_on_the_entries_of_a_person_s_problems(
    admin_api, staff_user, sync_user, problems
):
    ownership.assign(problems[1], staff_user, to_user=sync_user)
    answer = post(
        admin_api,
        reverse("api:error_actions"),
        {"action": "resolve", "filters": {"assignee": str(sync_user.pk)}, "dry_run": True},
    )
    assert answer.status_code == 200 and answer.json()["count"] == 2
