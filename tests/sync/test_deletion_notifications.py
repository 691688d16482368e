"""A record deleted in one app reaches its coupling as soon as the app says so: the deletion
announced by a change notification (Business Central's `deleted`, Dataverse's Delete
message) queues a job that synchronizes the record coupled to it on the other side, so that
the mapping's deletion rule applies: the coupling removed, the record restored, or an entry
"coupled to a deleted record". The notifications are the demo apps' own, received by a
subscriber and handed on to the console's receiver."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo import business_central
from demo.models import CrmAccount, ErpCustomer
from demo.seed import allow_webhook_registration, subscribe_to_changes
from demo.webhooks import remote_execution_context
from errors.models import Category, SyncError
from sync import engine
from sync.models import SyncJob, TableMapping
from sync.services import create_job
from sync.subscriptions import keep_subscribed
from tests.conftest import wait_until
from tests.factories import make_coupling
from tests.webhook_recorder import Delivery, Recorder

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]
Rule = TableMapping.DeletionConflictResolution


@pytest.fixture
def recorder():
    hook = Recorder()
    yield hook
    hook.close()


@pytest.fixture
def quick_notifications(monkeypatch):
    monkeypatch.setattr(business_central, "NOTIFICATION_DELAY_SECONDS", 0.05)


def coupled_customer(demo_apps, rule: str) -> Coupling:
    """A customer coupled to its account by a full synchronization, under the deletion rule."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    TableMapping.objects.filter(name="CUSTOMER").update(deletion_conflict_resolution=rule)
    return (
        Coupling.objects.filter(
            mapping__name="CUSTOMER", last_result_to_destination=Coupling.Result.SUCCESS
        )
        .order_by("pk")
        .first()
    )


def notified_to(demo_apps, side: str, recorder) -> None:
    """The app of `side` notifies the recorder, as the console subscribed or registered."""
    options = getattr(demo_apps.connection, f"{side}_settings")
    options["notification_url"] = recorder.url
    demo_apps.connection.save()
    allow_webhook_registration()
    keep_subscribed(demo_apps.connection, console_url=demo_apps.base_url)


def forward(client, demo_apps, side: str, delivery: Delivery):
    """Hand a notification the recorder received on to the console's receiver."""
    url = reverse("sync:notification", args=[demo_apps.connection.pk, side])
    if delivery.query:
        url += f"?{delivery.query}"
    return client.post(url, data=json.dumps(delivery.body), content_type="application/json")


def the_job(answer) -> SyncJob:
    assert answer.status_code == 202, answer.content
    (job,) = SyncJob.objects.filter(pk__in=answer.json()["queued"])
    return job


def applied(job: SyncJob, coupling: Coupling, rule: str, deleted_side: str) -> None:
    """The deletion rule of the mapping was applied to the coupling by the job."""
    gone = getattr(coupling, f"{deleted_side}_record_id")
    job = engine.run_job(job.pk)
    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    if rule == Rule.REMOVE_COUPLING:
        assert not Coupling.objects.filter(pk=coupling.pk).exists()
        assert job.deleted == 1
        return
    coupling.refresh_from_db()
    if rule == Rule.RESTORE_RECORDS:
        assert job.inserted == 1
        assert getattr(coupling, f"{deleted_side}_record_id") != gone
        return
    entry = SyncError.objects.get(job=job)
    assert entry.category == Category.COUPLED_RECORD_DELETED
    assert "coupled to a deleted record" in entry.message
    assert getattr(coupling, f"{deleted_side}_exists") is False


@pytest.mark.parametrize("rule", [Rule.REMOVE_COUPLING, Rule.NONE, Rule.RESTORE_RECORDS])
def test_an_account_deleted_in_the_crm_reaches_its_coupling(
    demo_apps, client, recorder, celery_queue, django_capture_on_commit_callbacks, rule
):
    coupling = coupled_customer(demo_apps, rule)
    notified_to(demo_apps, "destination", recorder)
    with demo_apps.crm() as crm, django_capture_on_commit_callbacks(execute=True):
        deleted = crm.delete(f"accounts({coupling.destination_record_id})")
    assert deleted.status_code == 204
    wait_until(lambda: recorder.deliveries, timeout=10)
    (delivery,) = recorder.deliveries
    assert delivery.body["MessageName"] == "Delete"
    job = the_job(forward(client, demo_apps, "destination", delivery))
    assert (job.kind, job.trigger) == (SyncJob.Kind.MODIFIED, SyncJob.Trigger.WEBHOOK)
    assert job.record_ids == {"to_destination": [coupling.source_record_id]}
    applied(job, coupling, rule, "destination")
    if rule == Rule.RESTORE_RECORDS:
        account = CrmAccount.objects.get(
            pk=Coupling.objects.get(pk=coupling.pk).destination_record_id
        )
        assert (
            account.account_number == ErpCustomer.objects.get(pk=coupling.source_record_id).number
        )


@pytest.mark.parametrize("rule", [Rule.REMOVE_COUPLING, Rule.NONE])
def test_a_customer_deleted_in_the_erp_reaches_its_coupling(
    demo_apps,
    client,
    recorder,
    quick_notifications,
    celery_queue,
    django_capture_on_commit_callbacks,
    rule,
):
    coupling = coupled_customer(demo_apps, rule)
    notified_to(demo_apps, "source", recorder)
    with demo_apps.erp() as erp, django_capture_on_commit_callbacks(execute=True):
        deleted = erp.delete(f"customers({coupling.source_record_id})", headers={"If-Match": "*"})
    assert deleted.status_code == 204
    wait_until(lambda: recorder.deliveries, timeout=10)
    (delivery,) = recorder.deliveries
    assert [item["changeType"] for item in delivery.body["value"]] == ["deleted"]
    job = the_job(forward(client, demo_apps, "source", delivery))
    assert job.record_ids == {"from_destination": [coupling.destination_record_id]}
    applied(job, coupling, rule, "source")


def dataverse_delete(demo_apps, client, logical_name: str, record_id):
    context = remote_execution_context(logical_name, record_id, "deleted", datetime.now(UTC))
    url = reverse("sync:notification", args=[demo_apps.connection.pk, "destination"])
    return client.post(
        f"{url}?code={demo_apps.connection.notification_token()}",
        data=json.dumps(context),
        content_type="application/json",
    )


def business_central_delete(demo_apps, client, entity: str, record_id):
    company = demo_apps.connection.source_base_url.rsplit("companies(", 1)[1].split(")")[0]
    item = {
        "subscriptionId": uuid.uuid4().hex,
        "clientState": demo_apps.connection.notification_token(),
        "expirationDateTime": "2030-01-01T00:00:00Z",
        "resource": f"api/v2.0/companies({company})/{entity}({record_id})",
        "changeType": "deleted",
        "lastModifiedDateTime": "2029-12-29T12:54:20.467Z",
    }
    url = reverse("sync:notification", args=[demo_apps.connection.pk, "source"])
    return client.post(url, data=json.dumps({"value": [item]}), content_type="application/json")


def test_an_unknown_record_deleted_is_ignored_quietly(demo_apps, client, celery_queue):
    for answer in (
        dataverse_delete(demo_apps, client, "account", uuid.uuid4()),
        business_central_delete(demo_apps, client, "customers", uuid.uuid4()),
    ):
        assert (answer.status_code, answer.json()) == (202, {"queued": []})
    assert not SyncJob.objects.exists()


def test_a_deletion_on_the_side_a_mapping_does_not_write_is_left_to_the_reconciliation(
    demo_apps, client, celery_queue
):
    """CURRENCY only writes to the CRM: a currency deleted in the ERP has nothing to write
    it to the CRM's currency, and the nightly reconciliation finds the coupling."""
    currency = demo_apps.mapping("CURRENCY")
    coupling = make_coupling(
        currency, source_record_id=str(uuid.uuid4()), destination_record_id=str(uuid.uuid4())
    )
    answer = business_central_delete(demo_apps, client, "currencies", coupling.source_record_id)
    assert (answer.status_code, answer.json()) == (202, {"queued": []})


def test_deletions_join_the_job_queued_already(demo_apps, client, celery_queue):
    coupling = coupled_customer(demo_apps, Rule.REMOVE_COUPLING)
    second = Coupling.objects.filter(mapping=coupling.mapping).exclude(pk=coupling.pk).first()
    waiting = create_job(
        coupling.mapping, kind=SyncJob.Kind.MODIFIED, trigger=SyncJob.Trigger.SCHEDULE
    )
    for one in (coupling, second, coupling):
        assert the_job(dataverse_delete(demo_apps, client, "account", one.destination_record_id))
    waiting.refresh_from_db()
    assert waiting.record_ids == {
        "to_destination": [coupling.source_record_id, second.source_record_id]
    }
    assert SyncJob.objects.count() == 2  # the full synchronization's, and the one waiting
    # Once a worker took it, the next deletion queues a job of its own behind it.
    SyncJob.objects.filter(pk=waiting.pk).update(status=SyncJob.Status.RUNNING)
    job = the_job(dataverse_delete(demo_apps, client, "account", second.destination_record_id))
    assert job.pk != waiting.pk and job.record_ids == {"to_destination": [second.source_record_id]}


def test_a_deletion_announced_of_a_record_still_there_writes_nothing_over_it(
    demo_apps, client, celery_queue
):
    """The account was changed in the CRM since the last sync, not deleted: the customer
    coupled to it, read because of the announcement, is not written over it; the account's
    change goes to the ERP as any change does."""
    coupling = coupled_customer(demo_apps, Rule.RESTORE_RECORDS)
    account = CrmAccount.objects.get(pk=coupling.destination_record_id)
    account.city = "Tromsø"
    account.save()
    job = the_job(dataverse_delete(demo_apps, client, "account", account.pk))
    job = engine.run_job(job.pk)
    assert job.status == SyncJob.Status.SUCCEEDED
    assert (job.inserted, job.modified, job.deleted, job.failed) == (0, 1, 0, 0)
    coupling.refresh_from_db()
    assert coupling.destination_record_id == str(account.pk)
    assert CrmAccount.objects.get(pk=account.pk).city == "Tromsø"
    assert ErpCustomer.objects.get(pk=coupling.source_record_id).city == "Tromsø"


@pytest.mark.worker
def test_an_account_deleted_in_the_crm_is_uncoupled_within_seconds(demo_apps, celery_worker):
    """The whole way, over HTTP: the CRM's webhook, the console's receiver, the worker."""
    coupling = coupled_customer(demo_apps, Rule.REMOVE_COUPLING)
    subscribe_to_changes(demo_apps.connection, demo_apps.base_url)
    CrmAccount.objects.get(pk=coupling.destination_record_id).delete()
    wait_until(
        lambda: not Coupling.objects.filter(pk=coupling.pk).exists(),
        timeout=30,
        message=celery_worker.log_path.read_text(),
    )
    job = SyncJob.objects.get(trigger=SyncJob.Trigger.WEBHOOK)
    # The coupling goes before the job has finished writing what it did.
    wait_until(lambda: SyncJob.objects.get(pk=job.pk).is_finished, timeout=30)
    job.refresh_from_db()
    assert job.record_ids == {"to_destination": [coupling.source_record_id]}
    assert (job.status, job.deleted) == (SyncJob.Status.SUCCEEDED, 1)
