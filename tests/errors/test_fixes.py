"""One-click fixes of a coupled-record entry: Retry, Synchronize in a chosen direction, Remove
coupling, each through the sync engine and a real worker."""

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import Category, SyncError
from sync.models import SyncJob, TableMapping
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db


def conflict(demo_apps) -> SyncError:
    """An entry for C00030, changed in both apps since the last sync."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    coupling = Coupling.objects.get(source_record_id=str(customer.pk))
    demo_apps.crm().patch(
        f"accounts({coupling.destination_record_id})", json={"address1_city": "Bergen"}
    )
    customer.city = "Malmö"
    customer.save()
    job = demo_apps.run("CUSTOMER")
    return SyncError.objects.get(job=job, category=Category.CONFLICT)


def run_in_worker(response, worker) -> SyncJob:
    job = SyncJob.objects.get(kind=SyncJob.Kind.COUPLED)
    assert response["Location"] == job.get_absolute_url()

    def finished():
        job.refresh_from_db()
        return job.is_finished

    wait_until(finished, timeout=60, message=worker.log_path.read_text())
    return job


def test_synchronize_in_a_chosen_direction_settles_a_conflict(
    demo_apps, staff_client, celery_worker
):
    entry = conflict(demo_apps)
    page = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "Synchronize Dynamics 365 Sales → Business Central" in page

    response = staff_client.post(
        reverse("errors:fix", args=[entry.pk]), {"action": "from_destination"}
    )
    job = run_in_worker(response, celery_worker)

    assert (job.status, job.direction, job.overwrite) == ("succeeded", "from_destination", True)
    assert (job.modified, job.failed) == (1, 0)
    assert ErpCustomer.objects.get(number="C00030").city == "Bergen"
    entry.refresh_from_db()
    assert entry.status == "resolved" and "synchronized in job" in entry.status_note


def test_retry_follows_the_mapping_rules(demo_apps, staff_client, celery_worker):
    entry = conflict(demo_apps)
    response = staff_client.post(reverse("errors:fix", args=[entry.pk]), {"action": "retry"})
    job = run_in_worker(response, celery_worker)
    assert (job.trigger, job.failed) == ("retry", 1)  # still changed on both sides
    assert ErpCustomer.objects.get(number="C00030").city == "Malmö"


def test_remove_coupling_unlinks_the_records_and_resolves_the_entries(demo_apps, staff_client):
    entry = conflict(demo_apps)
    coupling = entry.coupling
    response = staff_client.post(
        reverse("errors:fix", args=[entry.pk]), {"action": "remove_coupling"}, follow=True
    )
    assert "The coupling is removed; 1 open entry resolved." in response.content.decode()
    assert not Coupling.objects.filter(pk=coupling.pk).exists()
    entry.refresh_from_db()
    assert (entry.status, entry.coupling) == ("resolved", None)
    assert entry.status_note == f"The coupling {coupling} was removed by triager."
    assert CrmAccount.objects.filter(account_number="C00030").exists()  # records stay


def test_a_direction_the_mapping_does_not_sync_is_refused(demo_apps, staff_client):
    entry = conflict(demo_apps)
    TableMapping.objects.filter(pk=entry.mapping_id).update(direction="to_destination")
    response = staff_client.post(
        reverse("errors:fix", args=[entry.pk]), {"action": "from_destination"}, follow=True
    )
    assert "does not synchronize in that direction" in response.content.decode()
    assert not SyncJob.objects.filter(kind=SyncJob.Kind.COUPLED).exists()
    bad = staff_client.post(reverse("errors:fix", args=[entry.pk]), {"action": "x"}, follow=True)
    assert "Choose Retry, Synchronize, Restore, Delete or Remove coupling." in (
        bad.content.decode()
    )


def deleted_in_crm(demo_apps) -> SyncError:
    """An entry for C00030, whose account was deleted in the CRM."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    coupling = Coupling.objects.get(source_record_id=str(customer.pk))
    CrmAccount.objects.filter(pk=coupling.destination_record_id).delete()
    customer.city = "Aarhus"
    customer.save()
    job = demo_apps.run("CUSTOMER")
    return SyncError.objects.get(job=job, category=Category.COUPLED_RECORD_DELETED)


def test_restore_recreates_the_deleted_record_and_couples_it(
    demo_apps, staff_client, celery_worker
):
    entry = deleted_in_crm(demo_apps)
    coupling = entry.coupling
    assert (coupling.source_exists, coupling.destination_exists) == (True, False)
    page = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "Restore the deleted record" in page and "destination record <strong>is gone" in page

    response = staff_client.post(reverse("errors:fix", args=[entry.pk]), {"action": "restore"})
    job = run_in_worker(response, celery_worker)

    assert (job.status, job.inserted, job.failed) == ("succeeded", 1, 0)
    coupling.refresh_from_db()
    restored = CrmAccount.objects.get(pk=coupling.destination_record_id)
    assert (restored.account_number, restored.city) == ("C00030", "Aarhus")
    assert coupling.destination_exists is True
    entry.refresh_from_db()
    assert entry.status == "resolved"


def test_delete_removes_the_remaining_record_and_the_coupling(demo_apps, staff_client):
    entry = deleted_in_crm(demo_apps)
    response = staff_client.post(
        reverse("errors:fix", args=[entry.pk]), {"action": "delete_record"}, follow=True
    )
    assert "The remaining record is deleted and the coupling removed" in (response.content.decode())
    assert not ErpCustomer.objects.filter(number="C00030").exists()
    entry.refresh_from_db()
    assert (entry.status, entry.coupling) == ("resolved", None)


def test_restore_and_delete_need_exactly_one_side_gone(demo_apps, staff_client):
    entry = conflict(demo_apps)
    page = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "Restore the deleted record" not in page
    checked = staff_client.post(
        reverse("errors:fix", args=[entry.pk]), {"action": "check_records"}, follow=True
    ).content.decode()
    assert "Both records exist." in checked
    refused = staff_client.post(
        reverse("errors:fix", args=[entry.pk]), {"action": "delete_record"}, follow=True
    ).content.decode()
    assert "need exactly one of the two records gone" in refused
    assert ErpCustomer.objects.filter(number="C00030").exists()


def missing_exchange_rate(demo_apps) -> list[SyncError]:
    """DKK has no exchange rate in the CRM: the DKK customers cannot be created there."""
    from demo.models import CrmTransactionCurrency

    CrmTransactionCurrency.objects.filter(iso_currency_code="DKK").update(exchange_rate=None)
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    entries = list(SyncError.objects.filter(job=job, message__contains="DKK"))
    assert entries and all(e.coupling_id is None for e in entries)
    assert len({e.group_id for e in entries}) == 1
    return entries


def test_retry_writes_a_record_that_could_not_be_created_and_its_problem_resolves(
    demo_apps, staff_client, celery_worker
):
    from demo.models import CrmTransactionCurrency
    from errors.models import ErrorGroup

    first, *others = missing_exchange_rate(demo_apps)
    CrmTransactionCurrency.objects.filter(iso_currency_code="DKK").update(exchange_rate="7.46")
    page = staff_client.get(first.get_absolute_url()).content.decode()
    assert "Retry or couple the record" in page

    response = staff_client.post(reverse("errors:fix", args=[first.pk]), {"action": "retry"})
    job = SyncJob.objects.get(kind=SyncJob.Kind.COUPLED)
    assert response["Location"] == job.get_absolute_url()
    assert job.record_ids == {"to_destination": [first.source_record_id]}
    wait_until(
        lambda: SyncJob.objects.get(pk=job.pk).is_finished,
        timeout=60,
        message=celery_worker.log_path.read_text(),
    )
    job.refresh_from_db()
    assert (job.status, job.inserted, job.failed) == ("succeeded", 1, 0)
    first.refresh_from_db()
    assert first.status == "resolved" and first.coupling is not None
    assert f"synchronized in job #{job.pk}" in first.status_note
    group = ErrorGroup.objects.get(pk=first.group_id)
    assert group.status == ("open" if others else "resolved")
