"""A job's counts add up to what it read: each record read is counted once, as inserted,
modified, deleted, unchanged, skipped, failed or retrying, whatever path it took."""

from datetime import timedelta

import pytest

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import Category, SyncError
from sync import engine
from sync.models import SyncJob, TableMapping

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]
FULL = SyncJob.Kind.FULL


def counted(job: SyncJob) -> int:
    return job.records_counted


@pytest.fixture
def no_overlap(monkeypatch):
    monkeypatch.setattr(engine, "WATERMARK_OVERLAP", timedelta(0))


def coupling_of(number: str) -> Coupling:
    customer = ErpCustomer.objects.get(number=number)
    return Coupling.objects.get(source_record_id=str(customer.pk))


def test_records_not_coupled_in_a_modified_run_are_skipped_and_the_job_says_why(
    demo_apps, no_overlap
):
    demo_apps.run("CUSTOMER", FULL)
    ErpCustomer.objects.create(number="C90000", display_name="Newcomer ApS", currency_code="EUR")
    ErpCustomer.objects.create(number="C90001", display_name="Second ApS", currency_code="EUR")

    job = demo_apps.run("CUSTOMER")

    assert (job.records_read, job.skipped, job.inserted) == (2, 2, 0)
    assert counted(job) == job.records_read
    assert (
        "2 records are not coupled and were skipped: CUSTOMER synchronizes only coupled "
        "records in a modified-records run; a full synchronization couples or creates them."
    ) in job.message


@pytest.mark.parametrize("batch_size", [500, 1])
def test_a_conflict_skips_the_other_sides_record_in_the_same_job(demo_apps, no_overlap, batch_size):
    demo_apps.run("CUSTOMER", FULL)
    demo_apps.connection.destination_settings["batch_size"] = batch_size
    demo_apps.connection.save()
    coupling = coupling_of("C00030")
    ErpCustomer.objects.filter(pk=coupling.source_record_id).get().save()  # changed here
    account = CrmAccount.objects.get(pk=coupling.destination_record_id)
    account.city = "Vejle"
    account.save()  # and there

    job = demo_apps.run("CUSTOMER")

    # The ERP customer fails as a conflict; the account, read by the other direction of the
    # same job, is left alone: its coupling failed already.
    assert (job.records_read, job.failed, job.skipped) == (2, 1, 1)
    assert SyncError.objects.get(job=job).category == Category.CONFLICT
    assert counted(job) == job.records_read


def test_each_record_read_of_a_skipped_coupling_counts(demo_apps, no_overlap):
    demo_apps.run("CUSTOMER", FULL)
    coupling = coupling_of("C00030")
    Coupling.objects.filter(pk=coupling.pk).update(is_skipped=True)
    ErpCustomer.objects.filter(pk=coupling.source_record_id).get().save()
    CrmAccount.objects.filter(pk=coupling.destination_record_id).get().save()

    job = demo_apps.run("CUSTOMER")

    assert (job.records_read, job.skipped, job.modified) == (2, 2, 0)
    coupling.refresh_from_db()
    assert coupling.last_result_to_destination == Coupling.Result.SKIPPED
    assert coupling.last_result_from_destination == Coupling.Result.SKIPPED


def test_a_job_stopped_by_an_app_that_went_away_counts_what_it_left_out(demo_apps, no_overlap):
    demo_apps.run("CUSTOMER", FULL)
    options = demo_apps.connection.destination_settings
    options.update({"max_retries": 0, "batch_size": 1})
    demo_apps.connection.save()
    for number in ("C00020", "C00030", "C00040", "C00050", "C00060"):
        ErpCustomer.objects.get(number=number).save()
    demo_apps.fault("crm", "server_error", entity="accounts")

    job = demo_apps.run("CUSTOMER")

    # All five are read in one page; two fail transiently, the third stops the job and is
    # left out with the two not tried yet.
    assert job.status == SyncJob.Status.FAILED
    assert (job.records_read, job.retrying, job.skipped) == (5, 2, 3)
    assert counted(job) == job.records_read


def test_a_reconciliation_counts_every_record_it_read(demo_apps):
    demo_apps.run("CUSTOMER", FULL)
    mapping = demo_apps.mapping("CUSTOMER")
    ErpCustomer.objects.create(number="C00001", display_name="Only in ERP")
    CrmAccount.objects.filter(pk=coupling_of("C00020").destination_record_id).delete()
    # A coupling whose customer is outside the filter, and whose account is gone: the
    # customer is read by id.
    outside = coupling_of("C00120")
    TableMapping.objects.filter(pk=mapping.pk).update(source_filter="number lt 'C00120'")
    CrmAccount.objects.filter(pk=outside.destination_record_id).delete()

    job = demo_apps.run("CUSTOMER", SyncJob.Kind.RECONCILE)

    # 12 customers listed (the new one in, C00120 out), 9 accounts, and C00120 by id. Failed:
    # the new customer and the two couplings to a deleted account; skipped: the customer in
    # SEK, which was never created and has its entry already; the rest is in step.
    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    assert job.records_read == 12 + 9 + 1
    assert (job.failed, job.skipped, job.unchanged) == (3, 1, 18)
    assert counted(job) == job.records_read
    assert "and 1 more by id" in job.message
    assert SyncError.objects.filter(job=job).count() == job.failed

    again = demo_apps.run("CUSTOMER", SyncJob.Kind.RECONCILE)
    assert (again.failed, again.skipped) == (0, 4)  # reported already
    assert counted(again) == again.records_read
