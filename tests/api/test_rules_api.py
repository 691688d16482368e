"""Rules through the API: the dry run, applying a kept rule, a mapping's rules, switching one
off and reverting it, with their refusals; the same service as the problem page."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import Status, SyncError
from sync.models import SyncJob
from tests.journeys.closing import run_queued_jobs

pytestmark = pytest.mark.django_db
LONG = "+45 3333 4444 ext. 5555 (reception)"


@pytest.fixture
def failing(demo_apps, celery_queue):
    """A coupled account whose phone is too long for the ERP: one entry, its problem."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    account = CrmAccount.objects.get(account_number="C00030")
    account.telephone = LONG
    account.save()
    demo_apps.run("CUSTOMER")
    coupling = Coupling.objects.get(destination_record_id=account.pk)
    return coupling, SyncError.objects.get(coupling=coupling, status=Status.OPEN)


def post(client, name: str, args: list, body: dict | None = None):
    return client.post(reverse(name, args=args), body or {}, content_type="application/json")


def test_preview_then_apply_a_kept_rule(admin_api, staff_user, failing):
    coupling, entry = failing
    body = {"field": "phoneNumber", "kind": "truncate", "params": {}}

    preview = post(admin_api, "api:problem_rule_preview", [entry.group_id], body)

    assert preview.status_code == 200, preview.content
    assert preview.json()["records"] == 1 and preview.json()["params"] == {"length": 30}
    (row,) = preview.json()["rows"]
    assert (row["entry"], row["before"], row["after"], row["changes"]) == (
        entry.pk,
        LONG,
        LONG[:30],
        True,
    )

    applied = post(admin_api, "api:problem_rules", [entry.group_id], {**body, "keep": True})

    assert applied.status_code == 201, applied.content
    rule = applied.json()["rule"]
    assert (rule["kept"], rule["is_active"], rule["current"]["number"]) == (True, True, 1)
    (job,) = run_queued_jobs()
    assert applied.json()["job"] == job.pk and job.failed == 0
    entry.refresh_from_db()
    assert entry.status == Status.RESOLVED
    assert ErpCustomer.objects.get(pk=coupling.source_record_id).phone_number == LONG[:30]

    listed = admin_api.get(reverse("api:mapping_rules", args=[coupling.mapping_id])).json()
    assert [r["id"] for r in listed] == [rule["id"]]
    assert listed[0]["current"]["description"] == "cut to 30 characters"

    assert post(admin_api, "api:mapping_rule_revert", [coupling.mapping_id, rule["id"]]).json() == {
        "detail": "The rule has no earlier version: switch it off instead."
    }
    off = post(admin_api, "api:mapping_rule_switch_off", [coupling.mapping_id, rule["id"]])
    assert off.status_code == 200 and off.json()["is_active"] is False
    again = post(admin_api, "api:mapping_rule_switch_off", [coupling.mapping_id, rule["id"]])
    assert again.status_code == 409
    actions = set(AuditEvent.objects.filter(actor=staff_user).values_list("action", flat=True))
    assert {AuditEvent.Action.RULE_APPLIED, AuditEvent.Action.RULE_SWITCHED_OFF} <= actions


@pytest.mark.parametrize(
    "body, code, field, message",
    [
        (
            {"field": "telephone1", "kind": "truncate"},
            409,
            "field",
            "The field must be one of displayName, number, email, phoneNumber, city, country.",
        ),
        (
            {"field": "phoneNumber", "kind": "clear", "params": {"value": "x"}},
            409,
            "params",
            "A rule that does clear takes no value.",
        ),
        (
            {"field": "phoneNumber", "kind": "map", "params": {"length": 3}},
            409,
            "params",
            "A rule that does map takes no length.",
        ),
        (
            {"field": "phoneNumber", "kind": "shorten"},
            400,
            "kind",
            '"shorten" is not a valid choice.',
        ),
        (
            {"field": "phoneNumber", "kind": "truncate", "params": {"length": 0}},
            400,
            "params",
            {"length": ["Ensure this value is greater than or equal to 1."]},
        ),
        (
            {"field": "phoneNumber", "kind": "replace", "params": {"find": "", "replace": "x"}},
            400,
            "params",
            {"find": ["This field may not be blank."]},
        ),
        (
            {"field": "phoneNumber", "kind": "map", "params": {"map": {}}},
            409,
            "params",
            "Give at least one value to map, from value to value (NOK to EUR).",
        ),
    ],
)
def test_a_rule_that_is_not_valid_is_refused_with_its_reason(
    admin_api, failing, body, code, field, message
):
    _, entry = failing
    for name, extra in (("api:problem_rule_preview", {}), ("api:problem_rules", {"keep": True})):
        response = post(admin_api, name, [entry.group_id], {**body, **extra})
        assert response.status_code == code
        assert response.json()[field] == (message if isinstance(message, dict) else [message])
    assert not SyncJob.objects.filter(status=SyncJob.Status.QUEUED).exists()
