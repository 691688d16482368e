"""A currency missing in the CRM: a customer in SEK cannot be created there until an
administrator adds the currency in the CRM; then Retry on the entry or the next full job
creates it, couples it, and the entry closes by itself."""

import re

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo.models import ErpCustomer
from errors.models import Category, ErrorGroup, Status, SyncError
from sync import engine
from sync.models import SyncJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def refused(demo_apps):
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    entry = SyncError.objects.get(job=job, category=Category.CURRENCY)
    assert entry.message == (
        "Currency SEK does not exist in Dynamics 365 Sales (transactioncurrencies): add it, or "
        "synchronize CURRENCY first."
    )
    assert entry.coupling is None
    # Nothing was sent: the CRM's currencies were looked up first.
    assert entry.sent_values is None
    return entry


def add_sek_in_the_crm(demo_apps) -> None:
    """As the CRM's administrator does, through its API."""
    with demo_apps.crm() as crm:
        sek = {"isocurrencycode": "SEK", "currencyname": "Swedish krona", "exchangerate": 11.5}
        answer = crm.post("transactioncurrencies", json=sek)
    assert answer.status_code in (201, 204), answer.text


def assert_closed(entry: SyncError, job: SyncJob) -> None:
    entry.refresh_from_db()
    sek = ErpCustomer.objects.get(pk=entry.source_record_id)
    coupling = Coupling.objects.get(mapping=entry.mapping, source_record_id=str(sek.pk))
    assert (entry.status, entry.coupling) == (Status.RESOLVED, coupling)
    assert entry.status_note == f"Resolved by itself: the record synchronized in job #{job.pk}."
    assert ErrorGroup.objects.get(pk=entry.group_id).status == Status.RESOLVED


def test_retry_on_the_entry(refused, demo_apps, staff_client, celery_queue):
    add_sek_in_the_crm(demo_apps)
    staff_client.post(reverse("errors:fix", args=[refused.pk]), {"action": "retry"})
    (pk,) = SyncJob.objects.filter(status=SyncJob.Status.QUEUED).values_list("pk", flat=True)
    job = engine.run_job(pk)  # what the worker does
    assert (job.inserted, job.failed) == (1, 0)
    assert_closed(refused, job)


def test_the_next_full_job(refused, demo_apps):
    add_sek_in_the_crm(demo_apps)
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    assert job.failed == 0
    assert_closed(refused, job)


def overview_row(client, mapping) -> str:
    html = client.get(reverse("home")).content.decode()
    return re.search(rf'<tr data-mapping="{mapping.pk}".*?</tr>', html, re.S).group(0)


def test_the_overview_counts_the_record_as_failing_until_it_closes(
    refused, demo_apps, staff_client, celery_queue
):
    # The customer never got coupled: no coupling says it fails, its open entry does.
    row = overview_row(staff_client, refused.mapping)
    assert 'data-state="failing"' in row and "1 record failing." in row
    assert "1 failing, not coupled" in row and "In step" not in row
    health = staff_client.get(reverse("sync:mapping_health", args=[refused.mapping_id]))
    assert re.search(r'data-figure="failing_not_coupled"><a [^>]*>1</a>', health.content.decode())

    add_sek_in_the_crm(demo_apps)
    staff_client.post(reverse("errors:fix", args=[refused.pk]), {"action": "retry"})
    (pk,) = SyncJob.objects.filter(status=SyncJob.Status.QUEUED).values_list("pk", flat=True)
    assert_closed(refused, engine.run_job(pk))
    row = overview_row(staff_client, refused.mapping)
    assert 'data-state="healthy"' in row and "In step" in row, row
