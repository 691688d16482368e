"""The exchange rate field mapping: CURRENCY writes each currency with the rate in force today
in the ERP (its currencyExchangeRates), read for a page of currencies in one request; a
currency without a rate fails with Business Central's words and nothing is written. And a
scheduled run tries again the records whose create failed, backing off a transient failure."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone

from demo import security
from demo.models import (
    CrmSystemUser,
    CrmTransactionCurrency,
    DemoFault,
    ErpCurrency,
    ErpCurrencyExchangeRate,
)
from demo.seed import INTEGRATION_USER
from errors.models import Category, Status, SyncError
from sync import engine
from sync.connectors import connector_for
from sync.fields import field_mapping_problems
from sync.models import SyncJob
from sync.services import create_job
from tests.demo_apps import without_nok_in_the_crm

pytestmark = pytest.mark.django_db
NO_RATE = (
    "Currency Exchange Rate does not exist. Identification fields and values: Currency Code='{}'"
)


@pytest.fixture
def may_create_currencies(demo_apps):
    without_nok_in_the_crm()
    user = CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    user.roles.add(security.role_named("Integration Administrator", user.business_unit))
    # NOK was last changed before the others: a scheduled run reads it only to try it again
    # (it reads the last changed again, a little before its watermark).
    ErpCurrency.objects.update(last_modified=F("last_modified") - timedelta(hours=1))
    ErpCurrency.objects.filter(code="NOK").update(
        last_modified=F("last_modified") - timedelta(hours=1)
    )
    return demo_apps


def rate(code: str, since: date, amount: str) -> None:
    ErpCurrencyExchangeRate.objects.create(
        currency_code=code,
        starting_date=since,
        exchange_rate_amount=Decimal(amount),
        relational_exchange_rate_amount=Decimal(1),
    )


def run(demo_apps, kind=SyncJob.Kind.MODIFIED) -> tuple[SyncJob, list[str]]:
    """A CURRENCY job, with the requests the ERP was sent."""
    sent: list[str] = []
    source = connector_for(demo_apps.connection, "source")
    source.client.event_hooks["request"] = [
        lambda request: sent.append(request.url.path.rsplit("/", 1)[-1])
    ]
    job = create_job(demo_apps.mapping("CURRENCY"), kind=kind, trigger=SyncJob.Trigger.USER)
    job = engine.run_job(job.pk, source=source)
    source.close()
    return job, sent


def test_a_currency_is_created_with_the_rate_in_force_today(may_create_currencies):
    today = timezone.localdate()
    for code in ("GBP", "CHF"):
        ErpCurrency.objects.create(code=code, description=f"Currency {code}")
    rate("GBP", today - timedelta(days=30), "0.81")
    rate("GBP", today - timedelta(days=2), "0.86")  # the one in force
    rate("GBP", today + timedelta(days=5), "0.99")  # not yet
    rate("CHF", today, "0.94")

    job, sent = run(may_create_currencies, SyncJob.Kind.FULL)

    # SEK has a rate: created; NOK has none: failed, and not written.
    assert (job.inserted, job.failed) == (3, 1)
    rates = dict(CrmTransactionCurrency.objects.values_list("iso_currency_code", "exchange_rate"))
    assert (rates["GBP"], rates["CHF"], rates["SEK"]) == (
        Decimal("0.86"),
        Decimal("0.94"),
        Decimal("11.5"),
    )
    assert "NOK" not in rates
    entry = SyncError.objects.get(job=job)
    assert (entry.message, entry.category) == (NO_RATE.format("NOK"), Category.CURRENCY)
    assert entry.source_record_id == str(ErpCurrency.objects.get(code="NOK").pk)
    assert "currencyExchangeRates" in entry.detail
    # The rates of the page's currencies in one request.
    assert sent.count("currencyExchangeRates") == 1


def test_the_crm_requires_the_rate_so_a_mapping_without_it_fails_every_new_currency(
    may_create_currencies,
):
    mapping = may_create_currencies.mapping("CURRENCY")
    mapping.field_mappings = [f for f in mapping.field_mappings if f.get("type") is None]
    mapping.save()
    job, _ = run(may_create_currencies, SyncJob.Kind.FULL)
    assert job.inserted == 0
    assert SyncError.objects.filter(job=job, message__contains="'exchangerate'").count() == 2


def test_exchange_rate_field_mappings_are_checked():
    good = {"source": "code", "destination": "exchangerate", "type": "exchange rate",
            "direction": "to_destination"}  # fmt: skip
    assert field_mapping_problems([good]) == []
    problems = field_mapping_problems(
        [{**good, "direction": "bidirectional"}, {**good, "constant": 1, "transform": "upper"}]
    )
    assert problems == [
        "Field mapping 1: an exchange rate is written to the destination only (direction "
        "to_destination): the source app computes it from its own table of rates.",
        "Field mapping 2: an exchange rate takes no constant.",
        "Field mapping 2: an exchange rate takes no transform.",
    ]


def test_a_scheduled_run_creates_a_record_whose_create_failed_once_the_cause_is_gone(
    may_create_currencies,
):
    run(may_create_currencies, SyncJob.Kind.FULL)
    # Nothing changed: the scheduled run reads NOK by id, and it fails again.
    job, _ = run(may_create_currencies)
    assert (job.inserted, job.failed) == (0, 1)
    # Tried again and failing the same way, it is one more attempt of its open entry.
    entry = SyncError.objects.get(last_attempt_job_id=job.pk)
    assert (entry.message, entry.attempts) == (NO_RATE.format("NOK"), 2)
    assert not SyncError.objects.filter(job=job).exists()
    rate("NOK", timezone.localdate(), "11.6")
    job, _ = run(may_create_currencies)
    assert (job.inserted, job.failed) == (1, 0)
    assert not SyncError.objects.filter(status=Status.OPEN).exists()


def test_a_record_that_failed_transiently_waits_out_its_back_off(may_create_currencies):
    run(may_create_currencies, SyncJob.Kind.FULL)
    rate("NOK", timezone.localdate(), "11.6")
    fault = DemoFault.objects.create(
        app="crm", entity="transactioncurrencies", mode=DemoFault.Mode.SERVER_ERROR
    )
    job, _ = run(may_create_currencies)
    assert SyncError.objects.filter(job=job, category=Category.CONNECTION).exists()
    fault.delete()

    job, _ = run(may_create_currencies)
    assert (job.inserted, job.failed) == (0, 0)  # backing off: not tried
    assert not CrmTransactionCurrency.objects.filter(iso_currency_code="NOK").exists()
    # Its back-off has passed.
    SyncError.objects.update(created_at=F("created_at") - timedelta(hours=7))
    job, _ = run(may_create_currencies)
    assert (job.inserted, job.failed) == (1, 0)
    assert CrmTransactionCurrency.objects.filter(iso_currency_code="NOK").exists()
