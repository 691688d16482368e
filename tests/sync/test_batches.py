"""The engine a batch at a time, against the demo apps: what a job asks of the apps and of the
database does not grow with the number of records, a modified-records run reads and touches
only what changed, and a record refused in a batch is logged on its own."""

import math
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from couplings.models import Coupling
from demo.models import CrmAccount, CrmTransactionCurrency, ErpCustomer
from errors.models import SyncError
from sync import engine
from sync.connectors import connector_for
from sync.connectors.signin import TOKENS
from sync.models import SyncJob, TableMapping
from sync.services import create_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]


@pytest.fixture
def no_overlap(monkeypatch):
    monkeypatch.setattr(engine, "WATERMARK_OVERLAP", timedelta(0))


def run(demo_apps, kind=SyncJob.Kind.MODIFIED, **tuning):
    """Run a CUSTOMER job; returns it with the requests each app was sent ("METHOD path")."""
    sent: dict[str, list[str]] = {"source": [], "destination": []}
    connectors = {}
    for side in sent:
        connectors[side] = connector_for(demo_apps.connection, side, **tuning)
        connectors[side].client.event_hooks["request"] = [
            lambda request, side=side: sent[side].append(
                f"{request.method} {request.url.path.split('v9.2/')[-1].split(')/')[-1]}"
            )
        ]
    job = create_job(demo_apps.mapping("CUSTOMER"), kind=kind, trigger=SyncJob.Trigger.USER)
    job = engine.run_job(job.pk, **connectors)
    for connector in connectors.values():
        connector.close()
    return job, sent


def to_accounts(requests: list[str]) -> list[str]:
    return [r for r in requests if "accounts" in r]


def test_a_full_sync_creates_in_bulk_and_logs_the_refused_record_on_its_own(demo_apps):
    # The CRM has SEK now, without an exchange rate: it refuses the customer in SEK.
    CrmTransactionCurrency.objects.create(iso_currency_code="SEK", exchange_rate=None)
    job, sent = run(demo_apps, SyncJob.Kind.FULL)

    assert (job.inserted, job.failed) == (10, 1)
    # The matches for all twelve in one read; the eleven to create in one request, which the
    # CRM refuses whole for one record; then halves of it, down to that record; then the
    # accounts read back in one page.
    requests = to_accounts(sent["destination"])
    creates = [r for r in requests if r.endswith("CreateMultiple")]
    assert requests == ["GET accounts", *creates, "GET accounts"]
    assert 2 <= len(creates) <= 1 + 2 * math.ceil(math.log2(11))
    entry = SyncError.objects.get(job=job)
    assert entry.message == "The currency SEK does not have an exchange rate."
    assert entry.source_record_id == str(ErpCustomer.objects.get(number="C00010").pk)
    assert "CreateMultiple" in entry.detail and "0x80040203" in entry.detail
    assert entry.sent_values is not None
    assert Coupling.objects.filter(last_job_to_destination=job).count() == 11


def test_one_request_per_record_when_the_batch_size_is_one(demo_apps):
    job, sent = run(demo_apps, SyncJob.Kind.FULL, batch_size=1)

    assert (job.inserted, job.failed) == (10, 1)
    creates = [r for r in sent["destination"] if r.startswith("POST accounts")]
    assert creates == ["POST accounts"] * 10  # the customer in SEK is not sent: no SEK there
    assert CrmAccount.objects.count() == 11


def test_a_modified_run_reads_and_touches_only_the_changed_records(demo_apps, no_overlap):
    run(demo_apps, SyncJob.Kind.FULL)
    changed = list(ErpCustomer.objects.exclude(currency_code="SEK").order_by("number")[:3])
    for customer in changed:
        customer.city = "Aalborg"
        customer.save()
    before = {c.pk: c.last_synced_to_destination_at for c in Coupling.objects.all()}

    job, sent = run(demo_apps)

    # The three customers, and their three accounts read back in the other direction.
    assert (job.records_read, job.modified, job.unchanged) == (6, 3, 3)
    # The coupled accounts read in one request, read back in one; written one PATCH each,
    # with the version each was read with (UpdateMultiple takes no version per record).
    requests = to_accounts(sent["destination"])
    assert requests[0] == requests[-1] == "GET accounts" and len(requests) == 5
    assert all(r.startswith("PATCH accounts(") for r in requests[1:-1])
    touched = {
        c.pk for c in Coupling.objects.all() if c.last_synced_to_destination_at != before[c.pk]
    }
    assert touched == set(
        Coupling.objects.filter(source_record_id__in=[str(c.pk) for c in changed]).values_list(
            "pk", flat=True
        )
    )
    assert set(
        CrmAccount.objects.filter(city="Aalborg").values_list("account_number", flat=True)
    ) == {c.number for c in changed}


def test_a_modified_run_asks_only_for_what_changed_since_the_last_one(demo_apps, no_overlap):
    run(demo_apps, SyncJob.Kind.FULL)
    mapping = TableMapping.objects.get(name="CUSTOMER")
    customer = ErpCustomer.objects.exclude(currency_code="SEK").first()
    customer.city = "Aalborg"
    customer.save()
    queries = []
    erp = connector_for(demo_apps.connection, "source")
    erp.client.event_hooks["request"] = [lambda request: queries.append(request.url)]
    job = create_job(mapping, kind=SyncJob.Kind.MODIFIED, trigger=SyncJob.Trigger.USER)
    engine.run_job(job.pk, source=erp)

    # The customers listed (the currencies their codes stand for are looked up by code).
    listed = [
        url.params["$filter"]
        for url in queries
        if "$filter" in url.params and url.path.endswith("/customers")
    ]
    assert listed and all(f.startswith("lastModifiedDateTime gt ") for f in listed)
    assert SyncJob.objects.get(pk=job.pk).records_read == 2


def _fresh_crm(demo_apps) -> None:
    Coupling.objects.all().delete()
    SyncError.objects.all().delete()
    CrmAccount.objects.all().delete()
    TableMapping.objects.filter(name="CUSTOMER").update(
        source_synced_until=None, destination_synced_until=None
    )


def _queries_of_a_full_sync(demo_apps) -> tuple[int, int]:
    _fresh_crm(demo_apps)
    TOKENS.clear()  # each run signs in, as the first one does
    job = create_job(
        demo_apps.mapping("CUSTOMER"), kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER
    )
    with CaptureQueriesContext(connection) as queries:
        job = engine.run_job(job.pk)
    assert job.failed == 0
    return len(queries), job.inserted


def test_a_page_costs_the_same_queries_whatever_its_size(demo_apps):
    """The couplings of a page are written with one statement, the entries once per page, the
    job's progress once per page: the queries do not grow with the records."""
    ErpCustomer.objects.update(currency_code="EUR", last_modified=timezone.now())
    small, small_inserted = _queries_of_a_full_sync(demo_apps)
    ErpCustomer.objects.bulk_create(
        ErpCustomer(number=f"D{i:05d}", display_name=f"Customer {i}", currency_code="EUR")
        for i in range(40)
    )
    large, large_inserted = _queries_of_a_full_sync(demo_apps)
    assert (small_inserted, large_inserted) == (12, 52)
    assert large == small


def test_a_record_coupled_meanwhile_keeps_its_coupling_and_is_logged(demo_apps):
    """A person couples a customer while the job creates its account: the job does not stop,
    the person's coupling stays, and the record is logged as a conflict."""
    ErpCustomer.objects.update(currency_code="EUR")
    customer = ErpCustomer.objects.order_by("number").first()
    crm = connector_for(demo_apps.connection, "destination")

    def couple_by_hand(request):
        if request.url.path.endswith("CreateMultiple"):
            Coupling.objects.get_or_create(
                mapping=demo_apps.mapping("CUSTOMER"),
                source_record_id=str(customer.pk),
                defaults={"destination_record_id": "coupled-by-hand"},
            )

    crm.client.event_hooks["request"] = [couple_by_hand]
    job = create_job(
        demo_apps.mapping("CUSTOMER"),
        kind=SyncJob.Kind.FULL,
        trigger=SyncJob.Trigger.USER,
        direction=TableMapping.Direction.TO_DESTINATION,
    )
    job = engine.run_job(job.pk, destination=crm)
    crm.close()

    assert job.status == SyncJob.Status.SUCCEEDED
    assert job.failed == 1
    coupling = Coupling.objects.get(source_record_id=str(customer.pk))
    assert coupling.destination_record_id == "coupled-by-hand"
    entry = SyncError.objects.get(job=job)
    assert entry.category == "conflict"
    assert "was coupled meanwhile" in entry.message
    coupled = Coupling.objects.filter(last_job_to_destination=job)
    assert coupled.count() == job.inserted + job.modified + job.unchanged > 0
    assert not coupled.filter(source_record_id=str(customer.pk)).exists()


def test_a_job_reads_only_the_fields_it_maps(demo_apps):
    """Pages, matches and coupled records are read with a $select of the mapped fields."""
    reads: dict[str, list[str]] = {"source": [], "destination": []}
    connectors = {}
    for side in reads:
        connectors[side] = connector_for(demo_apps.connection, side)
        connectors[side].client.event_hooks["request"] = [
            lambda request, side=side: (
                reads[side].append(request.url.params.get("$select", "*"))
                if request.method == "GET"
                and request.url.path.endswith(("/customers", "/accounts"))
                else None
            )
        ]
    mapping = demo_apps.mapping("CUSTOMER")
    job = create_job(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)
    engine.run_job(job.pk, **connectors)

    forward = engine.Pass(
        job, mapping, connectors["source"], connectors["destination"], "to_destination"
    )
    erp_fields = {*forward.read_fields, "id", "lastModifiedDateTime"}
    crm_fields = {*forward.write_fields, "accountid", "modifiedon"}
    assert reads["source"] and reads["destination"]
    assert all(set(s.split(",")) == erp_fields for s in reads["source"])
    assert all(set(s.split(",")) == crm_fields for s in reads["destination"])
    assert "city" in erp_fields and "address1_city" in crm_fields
    assert "salespersonCode" not in erp_fields
