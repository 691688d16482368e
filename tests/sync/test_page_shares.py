"""A full job shared out to page passes by ranges of the read side's keys: the passes together
write what one pass writes (the same records, couplings and entries, no record twice), the
job adds their counts up, and a pass that fails fails the job with its message."""

import uuid
from collections import Counter

import pytest
from django.db import transaction
from django.db.models import Max

from couplings.models import Coupling
from demo.models import CrmAccount, DemoFault, ErpCustomer
from errors.models import SyncError
from sync import engine, keyranges, leases
from sync.models import PageShare, SyncJob
from sync.services import create_job

pytestmark = pytest.mark.django_db


def test_the_ranges_split_the_guid_space_in_key_order():
    ranges = keyranges.guid_ranges(4)
    assert ranges == [
        ("", "40000000-0000-0000-0000-000000000000"),
        ("40000000-0000-0000-0000-000000000000", "80000000-0000-0000-0000-000000000000"),
        ("80000000-0000-0000-0000-000000000000", "c0000000-0000-0000-0000-000000000000"),
        ("c0000000-0000-0000-0000-000000000000", ""),
    ]
    # Each key falls in exactly one range.
    for _ in range(200):
        key = str(uuid.uuid4())
        inside = [low <= key and (not high or key < high) for low, high in ranges]
        assert inside.count(True) == 1
    assert keyranges.guid_ranges(1) == [("", "")]


def test_a_range_reads_past_what_was_done_and_keeps_the_mappings_filter():
    low, high = "40000000-0000-0000-0000-000000000000", "80000000-0000-0000-0000-000000000000"
    assert keyranges.range_condition("id", low, high) == f"id ge {low} and id lt {high}"
    after = "5a000000-0000-0000-0000-000000000001"
    assert (
        keyranges.range_condition("id", low, high, after, "blocked eq false")
        == f"blocked eq false and id gt {after} and id lt {high}"
    )
    assert keyranges.range_condition("id", "", high, "", "a eq 1 or b eq 2") == (
        f"(a eq 1 or b eq 2) and id lt {high}"
    )
    with pytest.raises(ValueError, match="not a GUID"):
        keyranges.range_condition("id", "x' or 1 eq 1", high)


def share_out(demo_apps, passes: int) -> None:
    for side in ("source", "destination"):
        getattr(demo_apps.connection, f"{side}_settings")["page_passes"] = passes
    demo_apps.connection.save()


def outcome(job: SyncJob):
    """What a full CUSTOMER job did, in terms that do not depend on the new records' ids."""
    account_numbers = dict(CrmAccount.objects.values_list("pk", "account_number"))
    couplings = sorted(
        (c.source_record_id, account_numbers.get(uuid.UUID(c.destination_record_id)))
        for c in Coupling.objects.filter(mapping__name="CUSTOMER")
    )
    entries = sorted(
        SyncError.objects.filter(job=job).values_list("source_record_id", "category", "message")
    )
    counts = {name: getattr(job, name) for name in PageShare.COUNTS}
    mapping = job.mapping
    mapping.refresh_from_db()
    # The CRM's accounts are new each run: its watermark is the newest one read back.
    newest_account = CrmAccount.objects.aggregate(newest=Max("modified_on"))["newest"]
    watermarks = mapping.source_synced_until, mapping.destination_synced_until == newest_account
    return job.status, counts, couplings, entries, watermarks


def full_job(demo_apps) -> SyncJob:
    job = create_job(
        demo_apps.mapping("CUSTOMER"), kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER
    )
    return engine.run_job(job.pk)


def test_a_full_job_shared_out_writes_what_one_pass_writes(demo_apps, celery_queue):
    before = transaction.savepoint()
    one_pass = outcome(full_job(demo_apps))
    assert not PageShare.objects.exists()
    transaction.savepoint_rollback(before)

    share_out(demo_apps, 3)
    job = full_job(demo_apps)
    shared = outcome(job)

    assert shared == one_pass
    assert one_pass[1]["inserted"] > 0 and one_pass[1]["failed"] > 0
    shares = list(PageShare.objects.filter(job=job))
    # Three ranges each way; with no worker to take them, the job's worker ran them all.
    assert Counter(share.direction for share in shares) == {
        "to_destination": 3,
        "from_destination": 3,
    }
    assert {share.status for share in shares} == {PageShare.Status.SUCCEEDED}
    assert sum(s.records_read for s in shares) == job.records_read
    # No account twice: every record was read by one range only.
    numbers = Counter(CrmAccount.objects.values_list("account_number", flat=True))
    assert max(numbers.values()) == 1
    mapping = job.mapping
    mapping.refresh_from_db()
    assert mapping.source_synced_until is not None
    assert mapping.destination_synced_until is not None


def test_a_job_of_few_passes_is_not_shared_when_set_to_one(demo_apps):
    share_out(demo_apps, 1)
    job = full_job(demo_apps)
    assert job.status == SyncJob.Status.SUCCEEDED
    assert not PageShare.objects.exists()


def test_a_failing_pass_fails_the_job_with_its_message(demo_apps, celery_queue):
    # Every request to the CRM's accounts fails (after retries), two records a batch: the
    # third batch in a row that fails stops the pass, as it stops one pass of the whole job.
    demo_apps.connection.destination_settings["batch_size"] = 2
    demo_apps.connection.save()
    demo_apps.fault("crm", DemoFault.Mode.SERVER_ERROR, entity="accounts")
    before = transaction.savepoint()
    one_pass = full_job(demo_apps)
    transaction.savepoint_rollback(before)

    share_out(demo_apps, 2)
    job = full_job(demo_apps)

    failed = list(PageShare.objects.filter(job=job, status=PageShare.Status.FAILED))
    assert failed, list(PageShare.objects.values("status", "message"))
    assert (job.status, job.message, job.retry_in) == (
        one_pass.status,
        one_pass.message,
        one_pass.retry_in,
    )
    assert job.status == SyncJob.Status.FAILED
    assert job.message.startswith(failed[0].message)
    # The other direction never started: the job stopped with the first.
    assert {share.direction for share in PageShare.objects.filter(job=job)} == {"to_destination"}


def test_a_pass_resumed_after_its_worker_died_goes_on_after_its_last_page(demo_apps):
    """A share left running (its worker died after some pages) is sent again by the waiting
    job: it reads past the last key it finished, from the counts saved with it."""
    mapping = demo_apps.mapping("CUSTOMER")
    job = create_job(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)
    keys = sorted(str(pk) for pk in ErpCustomer.objects.values_list("pk", flat=True))
    done = keys[4]  # the first five were done before the worker died
    share = PageShare.objects.create(
        job=job,
        direction="to_destination",
        number=0,
        lease=leases.take(mapping.pk),
        status=PageShare.Status.RUNNING,
        done_until=done,
        records_read=5,
        unchanged=5,
    )

    engine.run_share(share.pk)

    share.refresh_from_db()
    assert share.status == PageShare.Status.SUCCEEDED, share.message
    assert share.records_read == len(keys)
    assert share.unchanged + share.inserted + share.failed == len(keys)
    coupled = set(Coupling.objects.values_list("source_record_id", flat=True))
    assert coupled and all(key > done for key in coupled)
    assert share.resumes == 0 and share.worker


def test_a_share_of_a_job_that_finished_writes_nothing(demo_apps):
    mapping = demo_apps.mapping("CUSTOMER")
    job = create_job(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)
    SyncJob.objects.filter(pk=job.pk).update(status=SyncJob.Status.SUCCEEDED)
    share = PageShare.objects.create(
        job=job, direction="to_destination", number=1, lease=leases.take(mapping.pk)
    )
    engine.run_share(share.pk)
    share.refresh_from_db()
    assert share.status == PageShare.Status.FAILED
    assert not Coupling.objects.exists()
