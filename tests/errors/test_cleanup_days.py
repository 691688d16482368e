"""The scheduled clean-up cuts at the start of a day and only drops whole days; the one asked
for by a person keeps its exact cut-off, paced on the WAL its batches write; Delete All empties
the day partitions at once. The problems' figures stay those the entries give."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from errors import partitions, services
from errors.models import ErrorGroup, GroupDay, GroupRecord, SyncError, SyncErrorCleanup
from tests.errors.test_group_figures import assert_figures_right
from tests.factories import make_error

pytestmark = pytest.mark.django_db

ROW_DELETE = re.compile(r"^\s*DELETE\s+FROM\s+\"?errors_syncerror\b", re.I)


def row_deletes(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if ROW_DELETE.match(q["sql"])]


def day_start(moment):
    return partitions.day_bounds(partitions.day_of(moment))[0]


def test_the_scheduled_clean_up_cuts_at_the_start_of_a_day_and_only_drops_days(settings):
    settings.SYNC_ERROR_RETENTION_DAYS = 7
    now = timezone.now()
    cut = day_start(now - timedelta(days=7))
    # Same day as the cut-off but before the exact moment: kept, at most a day more.
    kept = make_error(age=None, created_at=max(cut, now - timedelta(days=7, hours=1)))
    kept_too = make_error(created_at=cut)
    gone = [
        make_error(created_at=cut - timedelta(seconds=1), source_record_id="OLD1"),
        make_error(created_at=cut - timedelta(days=2), source_record_id="OLD2"),
    ]
    young = make_error(age=timedelta(hours=1), source_record_id="NEW")
    with CaptureQueriesContext(connection) as queries:
        cleanup = services.delete_expired_sync_errors()
    assert row_deletes(queries) == []
    assert cleanup.state == SyncErrorCleanup.State.DONE
    assert cleanup.cutoff == cut
    assert cleanup.deleted_count == cleanup.expected_count == len(gone)
    assert set(SyncError.objects.values_list("pk", flat=True)) == {kept.pk, kept_too.pk, young.pk}
    assert partitions.day_of(gone[0].created_at) not in partitions.partition_days()
    # Its record says the cut-off it used.
    event = AuditEvent.objects.filter(object_label__startswith="Delete Entries Older").latest("pk")
    assert event.details["cutoff"] == cut.isoformat()
    assert event.details["whole_days"] is True
    assert "the start of a day" in event.summary
    assert not GroupRecord.objects.filter(record_id__startswith="OLD").exists()
    assert_figures_right()


def test_a_clean_up_asked_for_by_a_person_keeps_its_exact_cut_off():
    now = timezone.now()
    stays = make_error(age=timedelta(days=7) - timedelta(minutes=1), source_record_id="C1")
    goes = make_error(age=timedelta(days=7, minutes=1), source_record_id="C1")
    older = make_error(age=timedelta(days=9), source_record_id="C2")
    cleanup = services.request_cleanup(days=7, trigger="console", run_in_background=False)
    assert (
        now - timedelta(days=7)
        <= cleanup.cutoff
        < timezone.now() - timedelta(days=7) + (timedelta(seconds=1))
    )
    assert cleanup.cutoff != day_start(cleanup.cutoff)
    remaining = set(SyncError.objects.values_list("pk", flat=True))
    assert stays.pk in remaining and not {goes.pk, older.pk} & remaining
    assert_figures_right()
    event = AuditEvent.objects.filter(object_label__startswith="Delete Entries Older").latest("pk")
    assert event.details["whole_days"] is False


def test_the_straddling_day_is_deleted_in_batches_paced_on_their_wal(settings, monkeypatch):
    settings.SYNC_ERROR_CLEANUP_BATCH_SIZE = 3
    # A budget that one row's WAL already exceeds: every batch after the first is one row.
    settings.SYNC_ERROR_CLEANUP_BATCH_WAL_KB = 0.001
    cutoff_age = timedelta(days=7)
    for n in range(6):
        make_error(age=cutoff_age + timedelta(minutes=n + 1), source_record_id=f"R{n % 2}")
    sizes = []
    real = services._delete_batch

    def recording(before, size, since):
        sizes.append(size)
        return real(before, size, since)

    monkeypatch.setattr(services, "_delete_batch", recording)
    cleanup = services.request_cleanup(days=7, trigger="command", run_in_background=False)
    straddling = SyncError.objects.filter(created_at__lt=cleanup.cutoff).count()
    assert straddling == 0 and cleanup.deleted_count == 6
    # The same-day entries went row by row (none of them is in a whole day before it).
    if partitions.day_of(cleanup.cutoff - timedelta(minutes=7)) == partitions.day_of(
        cleanup.cutoff
    ):
        assert sizes[0] == 3 and set(sizes[1:]) == {1}
    assert_figures_right()


def test_delete_all_empties_today_at_once_and_leaves_every_figure_at_zero():
    for n in range(4):
        make_error(age=timedelta(minutes=n + 1), source_record_id=f"T{n}")
        make_error(age=timedelta(days=n + 2), source_record_id=f"T{n}")
    make_error(age=timedelta(days=400), source_record_id="ANCIENT")
    with CaptureQueriesContext(connection) as queries:
        cleanup = services.request_cleanup(days=None, trigger="command", run_in_background=False)
    assert cleanup.deleted_count == cleanup.expected_count == 9
    assert not SyncError.objects.exists()
    # Only the default partition's entry (dated before every day partition) goes row by row.
    assert len(row_deletes(queries)) == 1
    assert any(q["sql"].startswith("TRUNCATE") for q in queries.captured_queries)
    today = partitions.day_of(timezone.now())
    assert today in partitions.partition_days()
    assert not GroupDay.objects.exclude(entries=0).exists()
    assert not GroupRecord.objects.exists()
    assert set(ErrorGroup.objects.values_list("count", "records")) == {(0, 0)}
    assert_figures_right()
    # Entries written next count from zero.
    make_error(age=timedelta(seconds=1), source_record_id="T0")
    assert_figures_right()


def test_delete_all_keeps_entries_dated_after_its_cut_off_and_deletes_their_day_row_by_row():
    before = make_error(age=timedelta(minutes=5), source_record_id="B")
    cleanup = services.request_cleanup(days=None, trigger="command", run_in_background=True)
    # Arrives between the request and the run, dated after the cut-off.
    after = make_error(created_at=cleanup.cutoff + timedelta(microseconds=1), source_record_id="A")
    if partitions.day_of(after.created_at) != partitions.day_of(before.created_at):
        pytest.skip("the test ran across midnight")
    with CaptureQueriesContext(connection) as queries:
        services.run_cleanup(cleanup.pk)
    assert not any(q["sql"].startswith("TRUNCATE") for q in queries.captured_queries)
    assert list(SyncError.objects.values_list("pk", flat=True)) == [after.pk]
    assert_figures_right()
