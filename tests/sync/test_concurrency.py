"""Optimistic concurrency: a record is written only in the version the job read. A change
made in the app between the read and the write is not overwritten; the record is logged as a
conflict. Only a person who chose a direction ("Synchronize") overwrites whatever is there."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.signals import request_started

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import Category, SyncError
from sync import engine
from sync.connectors import ConnectorError, connector_for
from sync.models import SyncJob, TableMapping
from sync.services import create_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(demo_apps, monkeypatch):
    """CUSTOMER synchronized both ways; each side writes one record per request."""
    monkeypatch.setattr(engine, "WATERMARK_OVERLAP", timedelta(0))
    ErpCustomer.objects.update(currency_code="EUR")
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    return demo_apps


@contextmanager
def changed_by_someone_just_before(method: str, path_part: str, change):
    """A person's change that lands in the app after the job read the record and before its
    write arrives: made when the app receives the write."""
    done: list[str] = []

    def meanwhile(sender, environ, **kwargs):
        if environ["REQUEST_METHOD"] == method and path_part in environ["PATH_INFO"] and not done:
            done.append(environ["PATH_INFO"])
            change()

    request_started.connect(meanwhile)
    try:
        yield done
    finally:
        request_started.disconnect(meanwhile)


def coupling_of(number: str) -> Coupling:
    customer = ErpCustomer.objects.get(number=number)
    return Coupling.objects.get(source_record_id=str(customer.pk))


def test_a_record_read_keeps_its_version_and_an_update_sends_it(synced):
    account = CrmAccount.objects.get(account_number="C00030")
    connector = connector_for(synced.connection, "destination")
    record = connector.get("accounts", str(account.pk))
    assert record.etag and record.etag.startswith('W/"')
    [listed] = connector.find("accounts", "accountnumber", "C00030")
    assert listed.etag == record.etag

    updated = connector.update("accounts", record.id, {"address1_city": "Ribe"}, etag=record.etag)
    assert updated.etag and updated.etag != record.etag
    with pytest.raises(ConnectorError) as stale:
        connector.update("accounts", record.id, {"address1_city": "Vejle"}, etag=record.etag)
    assert stale.value.status == 412 and stale.value.changed_since_read
    assert "changed in Dynamics 365 Sales after it was read" in stale.value.message
    assert CrmAccount.objects.get(pk=account.pk).city == "Ribe"
    # Without a version, whatever is there is overwritten.
    connector.update("accounts", record.id, {"address1_city": "Vejle"})
    assert CrmAccount.objects.get(pk=account.pk).city == "Vejle"


def test_a_stale_delete_is_refused_in_business_central_too(synced):
    customer = ErpCustomer.objects.get(number="C00030")
    connector = connector_for(synced.connection, "source")
    record = connector.get("customers", str(customer.pk))
    customer.city = "Changed meanwhile"
    customer.save()
    with pytest.raises(ConnectorError) as stale:
        connector.delete("customers", record.id, etag=record.etag)
    assert (stale.value.status, stale.value.code) == (412, "Request_EntityChanged")
    assert stale.value.changed_since_read
    assert ErpCustomer.objects.filter(pk=customer.pk).exists()


@pytest.mark.parametrize(
    ("changed_in", "batch_size"),
    [("crm", 1), ("crm", 500), ("erp", 500)],
    ids=[
        "dataverse, one request per record",
        "dataverse, a batch at a time",
        "business central, a batch at a time",
    ],
)
def test_a_change_made_between_the_read_and_the_write_is_not_overwritten(
    synced, changed_in, batch_size
):
    connection = synced.connection
    connection.destination_settings["batch_size"] = batch_size
    connection.save()
    coupling = coupling_of("C00030")
    customer = ErpCustomer.objects.get(pk=coupling.source_record_id)
    account = CrmAccount.objects.get(pk=coupling.destination_record_id)
    if changed_in == "crm":
        customer.city = "Aalborg"  # to be written to the CRM...
        customer.save()
        target, path = account, f"accounts({account.pk})"
    else:
        account.city = "Bergen"  # ...or to the ERP
        account.save()
        target, path = customer, f"customers({customer.pk})"
    # Dataverse's UpdateMultiple takes no version: an update that has one is a PATCH of its
    # own. Business Central's $batch carries each update's version in its own If-Match.
    method = "PATCH"
    if changed_in == "erp" and batch_size > 1:
        method, path = "POST", "$batch"

    def someone_edits():
        type(target).objects.filter(pk=target.pk).update(email="someone@edited.example")
        fresh = type(target).objects.get(pk=target.pk)
        fresh.save()  # moves its modified time, and so its version, on

    with changed_by_someone_just_before(method, path, someone_edits) as seen:
        job = synced.run("CUSTOMER")

    assert seen, "the job never wrote the record"
    target.refresh_from_db()
    assert target.email == "someone@edited.example"  # the person's change stands
    assert target.city not in ("Aalborg", "Bergen")  # and the job's values were not written
    entry = SyncError.objects.get(job=job)
    assert entry.category == Category.CONFLICT
    assert "after it was read" in entry.message and "Nothing was overwritten" in entry.message
    assert (job.status, job.failed) == (SyncJob.Status.SUCCEEDED, 1)


@pytest.mark.parametrize(
    ("batch_size", "write"),
    [(1, "PATCH accounts({})"), (500, "POST accounts/Microsoft.Dynamics.CRM.UpdateMultiple")],
    ids=["one request per record", "an overwrite goes in UpdateMultiple"],
)
def test_a_person_who_chose_the_direction_overwrites_whatever_is_there(synced, batch_size, write):
    coupling = coupling_of("C00030")
    account = CrmAccount.objects.get(pk=coupling.destination_record_id)
    synced.connection.destination_settings["batch_size"] = batch_size
    synced.connection.save()
    method, path = write.format(account.pk).split(" ")

    def someone_edits():
        fresh = CrmAccount.objects.get(pk=account.pk)
        fresh.city = "Bergen"
        fresh.save()

    job = create_job(
        synced.mapping("CUSTOMER"),
        kind=SyncJob.Kind.COUPLED,
        trigger=SyncJob.Trigger.USER,
        coupling_ids=[coupling.pk],
        direction=TableMapping.Direction.TO_DESTINATION,
        overwrite=True,
    )
    CrmAccount.objects.filter(pk=account.pk).update(city="Odense")
    with changed_by_someone_just_before(method, path, someone_edits) as seen:
        job = engine.run_job(job.pk)

    assert seen, "the job never wrote the record that way"
    assert (job.status, job.modified, job.failed) == (SyncJob.Status.SUCCEEDED, 1, 0)
    customer = ErpCustomer.objects.get(pk=coupling.source_record_id)
    assert CrmAccount.objects.get(pk=account.pk).city == customer.city
