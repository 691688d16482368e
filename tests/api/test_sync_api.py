"""Mappings, connections and couplings through the API, against the demo apps over HTTP."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from couplings.models import Coupling, CouplingRun
from demo.models import CrmAccount, ErpCustomer
from errors.grouping import record_errors
from errors.models import Category, SyncError
from sync.models import SyncJob, TableMapping

pytestmark = pytest.mark.django_db


def post(client, name, body, *args):
    return client.post(reverse(name, args=args), json.dumps(body), content_type="application/json")


def test_mappings_with_health_and_resume(demo_apps, admin_api, user_api):
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    mapping = demo_apps.mapping("CUSTOMER")
    rows = {row["name"]: row for row in user_api.get(reverse("api:mappings")).json()}
    assert rows["CUSTOMER"]["health"]["coupled"] == Coupling.objects.filter(mapping=mapping).count()
    assert rows["CUSTOMER"]["health"]["open_errors"] == 1  # the SEK customer
    # ... which fails, never coupled: its create was refused.
    assert rows["CUSTOMER"]["health"]["failing_not_coupled"] == 1
    assert rows["CUSTOMER"]["last_job"] is not None

    TableMapping.objects.filter(pk=mapping.pk).update(
        paused_at=timezone.now(), paused_reason="setup"
    )
    assert post(user_api, "api:mapping_resume", {}, mapping.pk).status_code == 403
    resumed = post(admin_api, "api:mapping_resume", {}, mapping.pk)
    assert resumed.status_code == 200 and resumed.json()["paused_at"] is None


def test_connections_never_show_secrets_and_are_checked(demo_apps, admin_api):
    connection = demo_apps.connection
    listed = admin_api.get(reverse("api:connections"))
    assert (
        connection.destination_secret
        and connection.destination_secret not in listed.content.decode()
    )
    assert listed.json()[0]["name"] == connection.name
    check = post(admin_api, "api:connection_check", {}, connection.pk)
    assert check.status_code == 201
    findings = check.json()["findings"]
    assert findings and {"code", "severity", "message"} <= set(findings[0])
    assert connection.destination_secret not in check.content.decode()


def test_couple_by_hand_list_and_remove(demo_apps, user_api):
    mapping = demo_apps.mapping("CUSTOMER")
    customer = ErpCustomer.objects.get(number="C00030")
    account = CrmAccount.objects.create(name="By hand", account_number="")
    pair = {"mapping": mapping.pk, "source_record_id": str(customer.pk)}
    missing = post(user_api, "api:couplings", {**pair, "destination_record_id": "nope"})
    assert missing.status_code == 409 and "There is no" in missing.json()["detail"]
    bad = post(
        user_api,
        "api:couplings",
        {"mapping": mapping.pk, "source_record_id": "a\nb", "destination_record_id": ""},
    )
    assert bad.status_code == 400 and {"source_record_id", "destination_record_id"} <= set(
        bad.json()
    )

    made = post(user_api, "api:couplings", {**pair, "destination_record_id": str(account.pk)})
    assert made.status_code == 201, made.content
    coupling = Coupling.objects.get(pk=made.json()["id"])
    listed = user_api.get(reverse("api:couplings"), {"record": str(account.pk)}).json()
    assert [row["id"] for row in listed["results"]] == [coupling.pk]
    [entry] = record_errors(
        [
            SyncError(
                created_at=timezone.now(),
                mapping=mapping,
                coupling=coupling,
                category=Category.CONFLICT,
                message="x",
            )
        ]
    )
    removed = user_api.delete(reverse("api:coupling", args=[coupling.pk]))
    assert removed.json() == {"removed": True, "resolved_entries": 1}
    assert not Coupling.objects.filter(pk=coupling.pk).exists()
    entry.refresh_from_db()
    assert entry.status == "resolved"


def test_records_coupled_but_not_synchronized_are_still_coupled(demo_apps, user_api):
    mapping = demo_apps.mapping("CUSTOMER")
    TableMapping.objects.filter(pk=mapping.pk).update(
        paused_at=timezone.now(), paused_reason="setup"
    )
    customer = ErpCustomer.objects.get(number="C00020")
    account = CrmAccount.objects.create(name="Paused", account_number="")
    made = post(
        user_api,
        "api:couplings",
        {
            "mapping": mapping.pk,
            "source_record_id": str(customer.pk),
            "destination_record_id": str(account.pk),
            "synchronize_after": True,
        },
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["sync_job"] is None and "not synchronized" in body["detail"]
    assert Coupling.objects.get(pk=body["id"]).destination_record_id == str(account.pk)
    nowhere = {"mapping": 999999, "source_record_id": "1", "destination_record_id": "2"}
    gone = post(user_api, "api:couplings", nowhere)
    assert gone.status_code == 404 and "mapping" in gone.json()


def test_couple_by_match_with_criteria(demo_apps, user_api):
    mapping = demo_apps.mapping("CUSTOMER")
    customer = ErpCustomer.objects.get(number="C00040")
    account = CrmAccount.objects.create(name="Twin", account_number="C00040")
    wrong = post(
        user_api,
        "api:couple_by_match",
        {
            "mapping": mapping.pk,
            "side": "source",
            "record_ids": [str(customer.pk)],
            "criteria": [{"source": "number", "destination": "telephone1"}],
        },
    )
    assert wrong.status_code == 409 and "not a field pair" in str(wrong.json())
    run = post(
        user_api,
        "api:couple_by_match",
        {
            "mapping": mapping.pk,
            "side": "source",
            "record_ids": [str(customer.pk), "missing-id"],
            "criteria": [{"source": "number", "destination": "accountnumber", "priority": 1}],
        },
    )
    assert run.status_code == 201, run.content
    outcomes = {r["record_id"]: r["outcome"] for r in run.json()["results"]}
    assert outcomes == {str(customer.pk): "coupled", "missing-id": "not_found"}
    assert Coupling.objects.get(source_record_id=str(customer.pk)).destination_record_id == str(
        account.pk
    )
    detail = user_api.get(reverse("api:coupling_run", args=[run.json()["id"]])).json()
    assert detail["state"] == CouplingRun.State.DONE


def test_retry_skipped_and_find_deleted(demo_apps, user_api, celery_queue):
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    mapping = demo_apps.mapping("CUSTOMER")
    coupling = Coupling.objects.filter(mapping=mapping).first()
    Coupling.objects.filter(pk=coupling.pk).update(is_skipped=True, failure_count=2)
    CrmAccount.objects.filter(pk=coupling.destination_record_id).delete()

    checked = post(user_api, "api:couplings_find_deleted", {"ids": [coupling.pk]}).json()
    assert checked == {"checked": 1, "gone": {"source": 0, "destination": 1}}
    retried = post(user_api, "api:couplings_retry", {"all_skipped": True, "mapping": mapping.pk})
    assert retried.status_code == 202
    (job_id,) = retried.json()["jobs"]
    assert SyncJob.objects.get(pk=job_id).coupling_ids == [coupling.pk]
    coupling.refresh_from_db()
    assert not coupling.is_skipped
    assert post(user_api, "api:couplings_retry", {}).status_code == 400
    for both in ({"ids": [coupling.pk], "all_skipped": True}, {"ids": [coupling.pk], "mapping": 1}):
        assert post(user_api, "api:couplings_retry", both).status_code == 400, both
    assert post(user_api, "api:couplings_retry", {"ids": [999999]}).status_code == 404
    assert post(user_api, "api:couplings_find_deleted", {"all_skipped": True}).status_code == 400
