"""Reconciliation against the demo apps: records on one side only, and couplings to deleted
records, found page by page, reported once, and fixed with the entry's one-click fixes."""

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import Category, SyncError
from sync.models import SyncJob, TableMapping
from tests.conftest import wait_until, worker_is_idle

pytestmark = pytest.mark.django_db
RECONCILE = SyncJob.Kind.RECONCILE


def coupled_pair(mapping, number: str):
    customer = ErpCustomer.objects.get(number=number)
    coupling = Coupling.objects.get(mapping=mapping, source_record_id=str(customer.pk))
    return customer, CrmAccount.objects.get(pk=coupling.destination_record_id), coupling


@pytest.fixture
def synced(demo_apps):
    """CUSTOMER synchronized both ways, read in pages of four records."""
    connection = demo_apps.connection
    for side in ("source", "destination"):
        getattr(connection, f"{side}_settings")["page_size"] = 4
    connection.save()
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    return demo_apps


def test_finds_each_kind_of_orphan_once(synced):
    mapping = synced.mapping("CUSTOMER")
    lonely_customer = ErpCustomer.objects.create(number="C09001", display_name="Only in ERP")
    lonely_account = CrmAccount.objects.create(name="Only in CRM", account_number="X1")
    _, gone_account, coupling_to_gone_account = coupled_pair(mapping, "C00020")
    gone_customer, _, coupling_to_gone_customer = coupled_pair(mapping, "C00030")
    gone_account.delete()
    gone_customer.delete()
    sek_failure = SyncError.objects.get(mapping=mapping, category=Category.CURRENCY)

    job = synced.run("CUSTOMER", RECONCILE)
    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    entries = SyncError.objects.filter(job=job)
    not_coupled = {
        (e.source_app, e.source_record_id) for e in entries if e.category == Category.NOT_COUPLED
    }
    assert not_coupled == {
        ("Business Central", str(lonely_customer.pk)),
        ("Dynamics 365 Sales", str(lonely_account.pk)),
    }
    gone = {e.coupling_id: e for e in entries if e.category == Category.COUPLED_RECORD_DELETED}
    assert set(gone) == {coupling_to_gone_account.pk, coupling_to_gone_customer.pk}
    # The SEK customer failed to be created: it has its entry already.
    assert str(sek_failure.source_record_id) not in {r for _, r in not_coupled}
    assert job.failed == 4 and job.records_read == 12 + 11  # both apps, every page
    assert "2 couplings" not in job.message and "records are not coupled" in job.message

    entry = gone[coupling_to_gone_account.pk]
    assert entry.source_record_id == coupling_to_gone_account.source_record_id
    assert entry.destination_app == "Dynamics 365 Sales"
    coupling_to_gone_account.refresh_from_db()
    assert (
        coupling_to_gone_account.source_exists,
        coupling_to_gone_account.destination_exists,
    ) == (True, False)

    again = synced.run("CUSTOMER", RECONCILE)
    assert SyncError.objects.filter(job=again).count() == 0
    assert "Read " in again.message


def test_a_scheduled_run_leaves_a_record_on_one_side_only_to_a_person(synced):
    lonely_account = CrmAccount.objects.create(name="Only in CRM", account_number="X1")
    synced.run("CUSTOMER", RECONCILE)
    assert SyncError.objects.filter(source_record_id=str(lonely_account.pk)).exists()
    # Its entry is open, but it is no create that failed: it is not tried again.
    job = synced.run("CUSTOMER")
    assert job.inserted == 0
    assert not ErpCustomer.objects.filter(display_name="Only in CRM").exists()


def test_a_record_outside_the_filter_is_not_taken_for_deleted(synced):
    mapping = synced.mapping("CUSTOMER")
    customer, _, _ = coupled_pair(mapping, "C00040")
    # The demo apps' $filter has no "ne": every customer from C00040 on is outside it.
    TableMapping.objects.filter(pk=mapping.pk).update(source_filter="number lt 'C00040'")
    job = synced.run("CUSTOMER", RECONCILE)
    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    assert not SyncError.objects.filter(job=job, category=Category.COUPLED_RECORD_DELETED).exists()
    assert not SyncError.objects.filter(job=job, source_record_id=str(customer.pk)).exists()


def test_one_direction_reports_the_side_it_reads_only(synced):
    TableMapping.objects.filter(name="CUSTOMER").update(direction="to_destination")
    CrmAccount.objects.create(name="Only in CRM", account_number="X2")
    lonely = ErpCustomer.objects.create(number="C09002", display_name="Only in ERP")
    job = synced.run("CUSTOMER", RECONCILE)
    assert list(SyncError.objects.filter(job=job).values_list("source_record_id", flat=True)) == [
        str(lonely.pk)
    ]


def test_the_fixes_of_its_entries(synced, staff_client, celery_worker):
    mapping = synced.mapping("CUSTOMER")
    lonely_customer = ErpCustomer.objects.create(number="C09003", display_name="Create me")
    doomed = ErpCustomer.objects.create(number="C09005", display_name="Delete me")
    lonely_account = CrmAccount.objects.create(name="Not mine to delete", account_number="X3")
    _, gone_account, coupling = coupled_pair(mapping, "C00020")
    gone_account.delete()
    job = synced.run("CUSTOMER", RECONCILE)
    entry = {e.source_record_id: e for e in SyncError.objects.filter(job=job)}

    page = staff_client.get(entry[str(doomed.pk)].get_absolute_url()).content.decode()
    assert "Delete it in Business Central" in page and "Couple…" in page
    assert "exists in Business Central only" in page  # the cause, in plain words

    # Delete the record that should not exist.
    staff_client.post(
        reverse("errors:fix", args=[entry[str(doomed.pk)].pk]), {"action": "delete_record"}
    )
    assert not ErpCustomer.objects.filter(pk=doomed.pk).exists()
    assert SyncError.objects.get(pk=entry[str(doomed.pk)].pk).status == "resolved"
    # The CRM refuses the integration user a delete: said as the app said it, nothing changes.
    refused = staff_client.post(
        reverse("errors:fix", args=[entry[str(lonely_account.pk)].pk]),
        {"action": "delete_record"},
        follow=True,
    )
    assert "missing prvDeleteAccount privilege" in refused.content.decode()
    assert CrmAccount.objects.filter(pk=lonely_account.pk).exists()
    assert SyncError.objects.get(pk=entry[str(lonely_account.pk)].pk).status == "open"

    # Create the ERP-only customer in the CRM (Retry), then restore the deleted account: each
    # a job of the mapping (one waits at a time).
    for record_id, action in (
        (str(lonely_customer.pk), "retry"),
        (coupling.source_record_id, "restore"),
    ):
        staff_client.post(reverse("errors:fix", args=[entry[record_id].pk]), {"action": action})
        wait_until(
            lambda pk=entry[record_id].pk: SyncError.objects.get(pk=pk).status == "resolved",
            timeout=60,
            message=celery_worker.log_path.read_text(),
        )
        # The entry resolves inside the job, which then writes the mapping's health and
        # lets the mapping go: the next job waits for the worker to be done with it.
        wait_until(lambda: worker_is_idle(celery_worker.node), timeout=60)
    created = Coupling.objects.get(mapping=mapping, source_record_id=str(lonely_customer.pk))
    assert CrmAccount.objects.get(pk=created.destination_record_id).name == "Create me"
    coupling.refresh_from_db()
    assert CrmAccount.objects.filter(pk=coupling.destination_record_id).exists()
    after = SyncError.objects.filter(job=synced.run("CUSTOMER", RECONCILE))
    assert after.count() == 0  # the CRM-only account is still open from the first run


def test_couple_by_match_resolves_both_sides(synced, staff_client):
    mapping = synced.mapping("CUSTOMER")
    customer = ErpCustomer.objects.create(number="C09004", display_name="Twin")
    account = CrmAccount.objects.create(name="Twin", account_number="C09004")
    TableMapping.objects.filter(pk=mapping.pk).update(direction="to_destination")
    synced.run("CUSTOMER", RECONCILE)
    TableMapping.objects.filter(pk=mapping.pk).update(direction="bidirectional")
    job = synced.run("CUSTOMER", RECONCILE)
    assert SyncError.objects.filter(category=Category.NOT_COUPLED, status="open").count() == 2
    staff_client.post(
        reverse("couplings:couple"),
        {
            "mapping": mapping.pk,
            "action": "match",
            "side": "source",
            "record_ids": str(customer.pk),
            "match_1": "on",
            "priority_1": "1",
            "case_1": "on",
        },
    )
    assert Coupling.objects.get(
        mapping=mapping, source_record_id=str(customer.pk)
    ).destination_record_id == str(account.pk)
    assert not SyncError.objects.filter(category=Category.NOT_COUPLED, status="open").exists()
    assert job.status == SyncJob.Status.SUCCEEDED


@pytest.mark.django_db
def test_a_migration_schedules_it_every_night():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="Find records on one side only")
    assert (task.task, task.enabled, task.crontab.hour) == ("sync.reconcile_mappings", True, "2")


def test_the_schedule_reconciles_every_enabled_mapping(synced):
    from sync.tasks import reconcile_mappings

    TableMapping.objects.filter(name="CONTACT").update(is_enabled=False)
    ran = reconcile_mappings()
    jobs = SyncJob.objects.filter(kind=RECONCILE, trigger=SyncJob.Trigger.SCHEDULE)
    enabled = TableMapping.objects.filter(is_enabled=True, paused_at__isnull=True)
    assert ran == jobs.count() == enabled.count()
    assert not jobs.filter(mapping__name="CONTACT").exists()
    outcome = {job.mapping.name: (job.status, job.message) for job in jobs}
    assert outcome["CUSTOMER"][0] == SyncJob.Status.SUCCEEDED, outcome


def test_administrators_start_it_from_the_mappings_page_and_the_api(
    synced, staff_client, celery_worker
):
    mapping = synced.mapping("CUSTOMER")
    assert (
        "Find Records on One Side Only"
        in staff_client.get(reverse("sync:mappings")).content.decode()
    )
    response = staff_client.post(
        reverse("sync:mapping_start", args=[mapping.pk]), {"kind": "reconcile"}
    )
    job = SyncJob.objects.get(kind=RECONCILE)
    assert response["Location"] == job.get_absolute_url()
    job = wait_until(
        lambda: SyncJob.objects.filter(pk=job.pk, status="succeeded").first(),
        timeout=60,
        message=celery_worker.log_path.read_text(),
    )
    assert job.message.startswith("Read 12 Business Central and 11 Dynamics 365 Sales records.")
