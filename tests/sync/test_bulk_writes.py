"""Bulk writes as the apps take them, against the demo apps: a batch a standard Dataverse table
refuses whole is halved down to the refused records, each of which fails with its own
reason; a table without the bulk messages is written one request a record from then on; the
number of records a request carries sizes itself; and Business Central's records are written
through $batch, each with its own outcome."""

import json
import math
from datetime import date, timedelta
from decimal import Decimal

import pytest

from couplings.models import Coupling
from demo.models import (
    CrmAccount,
    CrmSystemUser,
    CrmTransactionCurrency,
    DemoFault,
    ErpCurrency,
    ErpCurrencyExchangeRate,
    ErpCustomer,
)
from demo.security import role_named
from demo.seed import INTEGRATION_USER
from errors.models import Category, SyncError
from sync import engine
from sync.connectors import connector_for
from sync.models import SyncJob, TableMapping
from sync.services import create_job

pytestmark = pytest.mark.django_db
NO_EXCHANGE_RATE = "The currency {} does not have an exchange rate."


class Sent:
    """The write requests each app was sent: (method, path after the API root, records)."""

    def __init__(self) -> None:
        self.requests: dict[str, list[tuple[str, str, int]]] = {"source": [], "destination": []}

    def hook(self, side: str):
        def record(request) -> None:
            if request.method not in ("POST", "PATCH") or "json" not in request.headers.get(
                "Content-Type", ""
            ):
                return  # a read, or the sign-in
            path = request.url.path.split("v9.2/")[-1].split("v2.0/")[-1].split(")/")[-1]
            body = json.loads(request.content or b"{}")
            count = len(body.get("Targets") or body.get("requests") or [body])
            self.requests[side].append((request.method, path, count))

        return record

    def sizes(self, side: str, path: str) -> list[int]:
        return [count for _, sent_path, count in self.requests[side] if sent_path == path]


def run(demo_apps, name="CUSTOMER", direction=None, kind=SyncJob.Kind.FULL, **tuning):
    """Run a job of the mapping with the sides tuned; returns it with the writes sent."""
    sent = Sent()
    connectors = {}
    for side in ("source", "destination"):
        connectors[side] = connector_for(demo_apps.connection, side, **tuning.get(side, {}))
        connectors[side].client.event_hooks["request"] = [sent.hook(side)]
    options = {"direction": direction} if direction else {}
    job = create_job(demo_apps.mapping(name), kind=kind, trigger=SyncJob.Trigger.USER, **options)
    job = engine.run_job(job.pk, **connectors)
    for connector in connectors.values():
        connector.close()
    return job, sent


def customers(count: int, **values) -> list[ErpCustomer]:
    """`count` customers in the ERP in all, in EUR, and no account in the CRM yet."""
    CrmAccount.objects.all().delete()
    ErpCustomer.objects.update(currency_code="EUR")
    have = ErpCustomer.objects.count()
    ErpCustomer.objects.bulk_create(
        ErpCustomer(number=f"B{i:05d}", display_name=f"Bulk {i}", currency_code="EUR", **values)
        for i in range(count - have)
    )
    return list(ErpCustomer.objects.order_by("number"))


def without_match_fields(demo_apps, name="CUSTOMER") -> None:
    """Nothing to look up in the other app before writing: the first request to the table
    is the bulk write."""
    TableMapping.objects.filter(pk=demo_apps.mapping(name).pk).update(
        source_match_field="", destination_match_field=""
    )


def test_a_batch_refused_whole_is_halved_down_to_the_refused_records(demo_apps):
    rows = customers(100)
    # Two customers the CRM refuses, each for its own reason: their currencies are there,
    # without an exchange rate.
    ErpCurrency.objects.create(code="CHF", description="Swiss franc")
    for code in ("SEK", "CHF"):
        CrmTransactionCurrency.objects.create(iso_currency_code=code, exchange_rate=None)
    sek, chf = rows[37], rows[81]
    ErpCustomer.objects.filter(pk=sek.pk).update(currency_code="SEK")
    ErpCustomer.objects.filter(pk=chf.pk).update(currency_code="CHF")

    job, sent = run(demo_apps, direction=TableMapping.Direction.TO_DESTINATION)

    assert (job.inserted, job.failed) == (98, 2)
    entries = {e.source_record_id: e for e in SyncError.objects.filter(job=job)}
    assert entries[str(sek.pk)].message == NO_EXCHANGE_RATE.format("SEK")
    assert entries[str(chf.pk)].message == NO_EXCHANGE_RATE.format("CHF")
    assert {e.category for e in entries.values()} == {Category.CURRENCY}
    assert all("CreateMultiple" in e.detail for e in entries.values())
    # Every other record was created once and coupled.
    assert CrmAccount.objects.count() == 98
    assert Coupling.objects.filter(mapping=job.mapping).count() == 98
    assert not Coupling.objects.filter(source_record_id__in=[str(sek.pk), str(chf.pk)]).exists()
    # All hundred in the first request; then halves, down to the two: at most two requests
    # a halving for each refused record, far fewer than one a record.
    creates = sent.sizes("destination", "accounts/Microsoft.Dynamics.CRM.CreateMultiple")
    assert creates[0] == 100
    assert len(creates) <= 1 + 2 * 2 * math.ceil(math.log2(100))
    assert sum(creates) < 4 * 100


def test_one_refused_record_among_a_hundred_costs_a_handful_of_requests(demo_apps):
    rows = customers(100)
    refused = rows[63]
    ErpCustomer.objects.filter(pk=refused.pk).update(currency_code="SEK")
    CrmTransactionCurrency.objects.create(iso_currency_code="SEK", exchange_rate=None)

    job, sent = run(demo_apps, direction=TableMapping.Direction.TO_DESTINATION)

    assert (job.inserted, job.failed) == (99, 1)
    assert SyncError.objects.get(job=job).source_record_id == str(refused.pk)
    creates = sent.sizes("destination", "accounts/Microsoft.Dynamics.CRM.CreateMultiple")
    # The whole, then one half a halving (the other half known to hold the refused record,
    # or sent once and written): at most 1 + 2 * ceil(log2(100)) = 15.
    assert len(creates) <= 1 + 2 * math.ceil(math.log2(100))
    assert sent.sizes("destination", "accounts") == []  # never one request a record


def test_a_table_without_the_bulk_messages_is_written_one_request_a_record(demo_apps):
    user = CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    # May create currencies.
    user.roles.add(role_named("Integration Administrator", user.business_unit))
    for code in ("CHF", "GBP", "PLN", "CZK", "HUF"):
        ErpCurrency.objects.create(code=code, description=f"Currency {code}")
        ErpCurrencyExchangeRate.objects.create(
            currency_code=code, starting_date=date(2024, 1, 1), exchange_rate_amount=Decimal(2)
        )
    new = ErpCurrency.objects.exclude(
        code__in=CrmTransactionCurrency.objects.values_list("iso_currency_code", flat=True)
    ).count()

    # Two records a batch: the engine sends several batches.
    job, sent = run(demo_apps, "CURRENCY", destination={"batch_size": 2})

    # NOK, which the ERP has no exchange rate for, fails: its rate cannot be written.
    assert (job.inserted, job.failed) == (new, 1)
    assert set(ErpCurrency.objects.values_list("code", flat=True)) == set(
        CrmTransactionCurrency.objects.values_list("iso_currency_code", flat=True)
    )
    # Asked once; the answer (the table does not take it) is kept for the job.
    assert sent.sizes(
        "destination", "transactioncurrencies/Microsoft.Dynamics.CRM.CreateMultiple"
    ) == [2]
    assert sent.sizes("destination", "transactioncurrencies") == [1] * new


def test_the_records_a_request_carries_shrink_after_a_slow_call_and_grow_back(demo_apps):
    without_match_fields(demo_apps)
    customers(64)
    # The first bulk write takes longer than half the timeout, and is written.
    DemoFault.objects.create(
        app="crm", entity="accounts", mode=DemoFault.Mode.SLOW, remaining=1, delay_seconds=1.2
    )
    tuning = {"batch_size": 16, "timeout": 2.0}

    job, sent = run(demo_apps, direction=TableMapping.Direction.TO_DESTINATION, destination=tuning)

    assert (job.inserted, job.failed) == (64, 0)
    # The engine hands the connector 16 records at a time (the batch size). The first
    # request carries them all and is slow: the next carry 8; the first of those is fast,
    # so the next carry 16 again, never more.
    assert sent.sizes("destination", "accounts/Microsoft.Dynamics.CRM.CreateMultiple") == [
        16,
        8,
        8,
        16,
        16,
    ]


def test_a_bulk_write_starts_at_a_hundred_records_and_grows_within_the_maximum(demo_apps):
    without_match_fields(demo_apps)
    customers(400)

    job, sent = run(demo_apps, direction=TableMapping.Direction.TO_DESTINATION)

    assert job.inserted == 400
    creates = sent.sizes("destination", "accounts/Microsoft.Dynamics.CRM.CreateMultiple")
    # A hundred, then twice as many after a fast call, then the rest.
    assert creates == [100, 200, 100]


@pytest.mark.over_http
def test_a_bulk_write_that_times_out_is_not_sent_again_and_the_next_is_smaller(demo_apps):
    without_match_fields(demo_apps)
    rows = customers(40)
    # The first bulk write gets no answer in time (the demo app answers after the client
    # gave up, and writes nothing).
    DemoFault.objects.create(
        app="crm", entity="accounts", mode=DemoFault.Mode.TIMEOUT, remaining=1, delay_seconds=3
    )
    tuning = {"batch_size": 16, "timeout": 1.5}

    job, sent = run(demo_apps, direction=TableMapping.Direction.TO_DESTINATION, destination=tuning)

    creates = sent.sizes("destination", "accounts/Microsoft.Dynamics.CRM.CreateMultiple")
    # The records of the request that timed out are never sent again in this job.
    assert creates[:2] == [16, 8] and sum(creates) == 40 and max(creates[1:]) <= 16
    assert (job.inserted, job.failed) == (24, 16)
    # One failure of the app, counted once: the job went on.
    assert job.status == SyncJob.Status.SUCCEEDED
    entries = SyncError.objects.filter(job=job)
    assert {e.message for e in entries} == {
        "Dynamics 365 Sales did not answer in time: the operation has timed out."
    }
    assert {e.category for e in entries} == {Category.CONNECTION}
    assert CrmAccount.objects.count() == 24
    numbers = set(CrmAccount.objects.values_list("account_number", flat=True))
    failed = {row.number for row in rows} - numbers
    assert len(failed) == 16
    assert (
        set(
            ErpCustomer.objects.filter(pk__in=[e.source_record_id for e in entries]).values_list(
                "number", flat=True
            )
        )
        == failed
    )


def test_business_central_writes_creates_through_batch_each_with_its_own_outcome(demo_apps):
    before = ErpCustomer.objects.count()
    accounts = CrmAccount.objects.bulk_create(
        CrmAccount(name=f"From the CRM {i}", account_number=f"K{i:04d}", email=f"k{i}@crm.example")
        for i in range(30)
    )
    refused = accounts[17]
    CrmAccount.objects.filter(pk=refused.pk).update(email="k17@@crm.example")

    job, sent = run(demo_apps, direction=TableMapping.Direction.FROM_DESTINATION)

    # One $batch request for the thirty (Business Central takes up to 100 a request), and no
    # request a record.
    assert sent.sizes("source", "$batch") == [30]
    assert not [r for r in sent.requests["source"] if r[1].startswith("customers")]
    assert (job.inserted, job.failed) == (29, 1)
    entry = SyncError.objects.get(job=job)
    assert entry.source_record_id == str(refused.pk)
    assert entry.message == 'The email address "k17@@crm.example" is not valid.'
    assert entry.category == Category.VALIDATION
    assert "$batch" in entry.detail
    assert ErpCustomer.objects.count() == before + 29
    assert not ErpCustomer.objects.filter(number="K0017").exists()
    coupled = Coupling.objects.filter(mapping=job.mapping, last_job_from_destination=job)
    assert coupled.filter(destination_record_id__in=[str(a.pk) for a in accounts]).count() == 29


def test_business_central_writes_updates_through_batch(demo_apps, monkeypatch):
    monkeypatch.setattr(engine, "WATERMARK_OVERLAP", timedelta(0))
    run(demo_apps)  # couples the customers and accounts
    # Customers in NOK are refused by the ERP whatever changes (no exchange rate).
    writable = ErpCustomer.objects.exclude(currency_code="NOK").values_list("pk", flat=True)
    coupled = list(
        Coupling.objects.filter(
            mapping__name="CUSTOMER", source_record_id__in=[str(pk) for pk in writable]
        ).order_by("pk")[:6]
    )
    for i, coupling in enumerate(coupled):
        account = CrmAccount.objects.get(pk=coupling.destination_record_id)
        if i == 3:
            account.email = "bad@@crm.example"
        else:
            account.city = "Narvik"
        account.save()  # as a person changes it: its modified time moves on

    job, sent = run(
        demo_apps, direction=TableMapping.Direction.FROM_DESTINATION, kind=SyncJob.Kind.MODIFIED
    )

    assert sent.sizes("source", "$batch") == [6]
    assert (job.modified, job.failed) == (5, 1)
    assert SyncError.objects.get(job=job).destination_record_id == coupled[3].source_record_id
    cities = ErpCustomer.objects.filter(
        pk__in=[c.source_record_id for i, c in enumerate(coupled) if i != 3]
    ).values_list("city", flat=True)
    assert set(cities) == {"Narvik"}


def test_batch_writes_can_be_turned_off_for_a_side(demo_apps):
    demo_apps.connection.source_settings["batch_writes"] = False
    demo_apps.connection.save()
    CrmAccount.objects.bulk_create(
        CrmAccount(name=f"One by one {i}", account_number=f"L{i:04d}") for i in range(3)
    )

    job, sent = run(demo_apps, direction=TableMapping.Direction.FROM_DESTINATION)

    assert job.inserted == 3
    assert sent.sizes("source", "$batch") == []
    assert sent.sizes("source", "customers") == [1, 1, 1]


def test_an_app_that_asks_to_slow_down_in_a_bulk_write_pauses_the_job_and_fails_no_record(
    demo_apps,
):
    without_match_fields(demo_apps)
    customers(250)
    # The CRM asks for five minutes, longer than one job waits, at the first bulk write.
    demo_apps.fault("crm", DemoFault.Mode.THROTTLE, entity="accounts", retry_after=300)

    job, sent = run(demo_apps, direction=TableMapping.Direction.TO_DESTINATION)

    assert job.status == SyncJob.Status.INTERRUPTED and job.throttled
    assert job.message.startswith("Paused: ") and "No record failed." in job.message
    assert (job.inserted, job.failed) == (0, 0)
    assert not SyncError.objects.filter(job=job).exists()
    # The first request of a hundred; it is not sent again, nor are the other records.
    assert sent.sizes("destination", "accounts/Microsoft.Dynamics.CRM.CreateMultiple") == [100]
    assert sent.sizes("destination", "accounts") == []


def crm_accounts(demo_apps, count: int) -> list[CrmAccount]:
    """The only accounts in the CRM, new, written to the ERP with nothing looked up there
    first."""
    without_match_fields(demo_apps)
    CrmAccount.objects.all().delete()
    return CrmAccount.objects.bulk_create(
        CrmAccount(name=f"Busy {i}", account_number=f"T{i:04d}", email=f"t{i}@crm.example")
        for i in range(count)
    )


def test_an_operation_of_a_batch_asked_to_wait_briefly_is_sent_again_alone(demo_apps):
    before = ErpCustomer.objects.count()
    crm_accounts(demo_apps, 5)
    # Business Central limits each operation of a $batch like a request of its own: the
    # second operation is answered 429 without a Retry-After (a short back-off).
    demo_apps.fault("erp", DemoFault.Mode.THROTTLE, remaining=1, entity="customers")
    DemoFault.objects.update(retry_after=None)

    job, sent = run(demo_apps, direction=TableMapping.Direction.FROM_DESTINATION)

    assert job.status == SyncJob.Status.SUCCEEDED
    assert (job.inserted, job.failed) == (5, 0)
    # The four done are not sent again; the one asked to wait is, in a $batch of its own.
    assert sent.sizes("source", "$batch") == [5, 1]
    assert ErpCustomer.objects.count() == before + 5
    assert not SyncError.objects.filter(job=job).exists()


def test_an_operation_of_a_batch_asked_to_wait_long_pauses_the_job_and_fails_no_record(
    demo_apps,
):
    before = ErpCustomer.objects.count()
    accounts = crm_accounts(demo_apps, 5)
    # Five minutes: longer than a job waits (start_demo_apps: 0.2 s).
    demo_apps.fault(
        "erp", DemoFault.Mode.THROTTLE, remaining=1, entity="customers", retry_after=300
    )

    job, sent = run(demo_apps, direction=TableMapping.Direction.FROM_DESTINATION)

    assert job.status == SyncJob.Status.INTERRUPTED and job.throttled
    assert "No record failed." in job.message and "429 Too Many Requests" in job.message
    assert job.failed == 0 and not SyncError.objects.filter(job=job).exists()
    assert sent.sizes("source", "$batch") == [5]
    # What the batch did is kept and coupled; the job that goes on with it writes the last.
    assert ErpCustomer.objects.count() == before + 4
    coupled = Coupling.objects.filter(
        mapping=job.mapping, destination_record_id__in=[str(a.pk) for a in accounts]
    )
    assert coupled.count() == 4 and job.inserted == 4

    successor = SyncJob.objects.get(mapping=job.mapping, status=SyncJob.Status.QUEUED)
    assert successor.direction == TableMapping.Direction.FROM_DESTINATION
    again = engine.run_job(successor.pk)

    assert (again.status, again.inserted, again.failed) == (SyncJob.Status.SUCCEEDED, 1, 0)
    assert ErpCustomer.objects.count() == before + 5
    assert coupled.count() == 5
