"""The entries table is partitioned by day: each entry lands in its day's partition (or the
default one outside the window), and a clean-up drops whole days."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from errors import partitions, services
from errors.models import GroupDay, SyncError
from errors.partitions import day_of, partition_days, partition_name
from sync.models import TableMapping
from tests.factories import make_error, make_mapping

# Whole days and the straddling day are counted from "now": noon keeps them apart.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("midday")]


def partition_of(entry: SyncError) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM errors_syncerror WHERE id = %s", [entry.pk]
        )
        return cursor.fetchone()[0]


def test_the_table_is_partitioned_and_keeps_every_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'errors_syncerror'")
        assert cursor.fetchone()[0] == "p"
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'errors_syncerror'")
        names = {row[0] for row in cursor.fetchall()}
    assert {index.name for index in SyncError._meta.indexes} <= names
    assert "errors_syncerror_pkey" in names


def test_an_entry_lands_in_its_days_partition_created_on_demand():
    in_three_weeks = timezone.now() - timedelta(days=20)
    day = day_of(in_three_weeks)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
    entry = make_error(age=timedelta(days=20))
    assert partition_of(entry) == partition_name(day)
    assert partition_of(make_error(age=timedelta(0))) == partition_name(day_of(timezone.now()))


def test_entries_outside_the_window_land_in_the_default_partition():
    assert partition_of(make_error(age=timedelta(days=800))) == partitions.DEFAULT
    assert partition_of(make_error(age=-timedelta(days=400))) == partitions.DEFAULT


def test_a_new_partition_takes_over_its_rows_from_the_default_one():
    day = day_of(timezone.now() - timedelta(days=10))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
    # Moved into a day that has no partition: the row stays in the default one.
    entry = make_error(age=timedelta(days=12))
    moved = SyncError.objects.filter(pk=entry.pk)
    moved.update(created_at=timezone.now() - timedelta(days=10))
    assert partition_of(moved.get()) == partitions.DEFAULT
    before = list(GroupDay.objects.filter(group_id=entry.group_id).values_list("day", "entries"))
    assert partitions.ensure_partitions([day]) == [day]
    assert partition_of(moved.get()) == partition_name(day)
    after = list(GroupDay.objects.filter(group_id=entry.group_id).values_list("day", "entries"))
    assert sorted(after) == sorted(before)


def test_the_beat_task_creates_the_days_ahead(settings):
    today = day_of(timezone.now())
    ahead = [
        today + timedelta(days=i) for i in range(1, settings.SYNC_ERROR_PARTITION_DAYS_AHEAD + 1)
    ]
    with connection.cursor() as cursor:
        for day in ahead:
            cursor.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
    from errors.tasks import create_error_partitions

    assert create_error_partitions() == len(ahead) == 2
    assert set(ahead) <= set(partition_days())


def test_the_beat_task_drops_the_empty_days_past_the_window_and_keeps_one_with_an_entry(
    settings,
):
    """Days made while the window reached further ahead: each partition adds to the planning
    of every query of the entries."""
    from errors.tasks import create_error_partitions

    today = day_of(timezone.now())
    settings.SYNC_ERROR_PARTITION_DAYS_AHEAD = 6
    create_error_partitions()
    assert today + timedelta(days=6) in partition_days()
    # An entry dated in five days (a clock ahead): its day stays, with it.
    ahead = make_error(age=-timedelta(days=5))
    assert partition_of(ahead) == partition_name(today + timedelta(days=5))
    settings.SYNC_ERROR_PARTITION_DAYS_AHEAD = 2
    create_error_partitions()
    after = set(partition_days())
    assert {today + timedelta(days=n) for n in (0, 1, 2, 5)} <= after
    assert not {today + timedelta(days=n) for n in (3, 4, 6)} & after
    assert partition_of(SyncError.objects.get(pk=ahead.pk)) == partition_name(
        today + timedelta(days=5)
    )


def test_a_clean_up_drops_the_whole_days_and_deletes_the_straddling_rows():
    old_days = [day_of(timezone.now() - timedelta(days=n)) for n in (9, 10, 15)]
    for n in (9, 10, 15, 9, 800):
        make_error(age=timedelta(days=n))
    straddling = make_error(age=timedelta(days=7, minutes=5))
    stays = make_error(age=timedelta(days=7) - timedelta(minutes=5))
    cleanup = services.request_cleanup(days=7, trigger="command", run_in_background=False)
    assert cleanup.deleted_count == cleanup.expected_count == 6
    assert not set(old_days) & set(partition_days())
    assert list(SyncError.objects.values_list("pk", flat=True)) == [stays.pk]
    assert not SyncError.objects.filter(pk=straddling.pk).exists()


def test_a_dropped_day_is_counted_from_its_figures_with_entries_of_no_problem():
    make_error(age=timedelta(days=12))
    make_error(age=timedelta(days=12, hours=1))
    SyncError.objects.filter(pk=make_error(age=timedelta(days=12, hours=2)).pk).update(group=None)
    assert partitions.drop_day(day_of(timezone.now() - timedelta(days=12))) == 3
    assert not SyncError.objects.exists()


def test_the_preview_counts_whole_days_from_their_figures_and_the_straddling_day_exactly():
    for n in (9, 10, 15, 800):
        make_error(age=timedelta(days=n))
    SyncError.objects.filter(pk=make_error(age=timedelta(days=11)).pk).update(group=None)
    make_error(age=timedelta(days=7, minutes=5), status="resolved")
    make_error(age=timedelta(days=7) - timedelta(minutes=5))
    with CaptureQueriesContext(connection) as queries:
        preview = services.preview_cleanup(7)
    assert (preview.total, preview.open) == (6, 5)
    assert len(queries) == 2


def test_a_mapping_paused_by_a_deleted_entry_no_longer_points_at_it():
    mapping = make_mapping()
    entry = make_error(age=timedelta(days=20), mapping=mapping)
    TableMapping.objects.filter(pk=mapping.pk).update(paused_error=entry)
    services.request_cleanup(days=7, trigger="command", run_in_background=False)
    mapping.refresh_from_db()
    assert mapping.paused_error_id is None


def test_a_day_dropped_by_another_clean_up_meanwhile_counts_nothing():
    make_error(age=timedelta(days=12))
    day = day_of(timezone.now() - timedelta(days=12))
    assert partitions.drop_day(day) == 1
    assert partitions.drop_day(day) == 0
    assert day not in partition_days()


def relations_named(pattern: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", [pattern])
        return {row[0] for row in cursor.fetchall()}


def test_a_dropped_day_is_detached_first_and_its_files_go_after_the_commit():
    make_error(age=timedelta(days=12))
    day = day_of(timezone.now() - timedelta(days=12))
    name, records = partition_name(day), partition_name(day, partitions.RECORDS_PREFIX)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert partitions.drop_day(day) == 1
        # Taken out of the tables (nothing reads it), its files still there until the commit.
        assert day not in partition_days()
        assert partitions.detached_tables() == [
            f"{partitions.DETACHED_PREFIX}{records}",
            f"{partitions.DETACHED_PREFIX}{name}",
        ]
    assert not any("DROP" in query["sql"] for query in queries)
    assert partitions.drop_detached() == 2
    assert not relations_named(f"%{day:%Y%m%d}%")
    assert partitions.detached_tables() == []


def test_a_detached_table_another_clean_up_dropped_meanwhile_is_passed_over():
    gone = f"{partitions.DETACHED_PREFIX}errors_syncerror_p20000101"
    assert partitions._drops(gone) == [f"DROP TABLE IF EXISTS {gone}"]


@pytest.mark.django_db(transaction=True)
def test_a_day_table_a_stopped_clean_up_left_detached_goes_with_the_next_partition_task():
    make_error(age=timedelta(days=12))
    day = day_of(timezone.now() - timedelta(days=12))
    # A clean-up whose worker died between the detach and the drops.
    assert partitions._take_day(day, None) == 1
    assert len(partitions.detached_tables()) == 2
    from errors.tasks import create_error_partitions

    create_error_partitions()
    assert partitions.detached_tables() == []
    assert not relations_named(f"%{day:%Y%m%d}%")


def test_a_partition_another_writer_created_meanwhile_is_left_as_it_is():
    day = day_of(timezone.now() - timedelta(days=3))
    entry = make_error(age=timedelta(days=3))
    with transaction.atomic():
        assert partitions._create_partition(day) is False
    assert partition_of(entry) == partition_name(day)
    assert SyncError.objects.filter(pk=entry.pk).exists()


def test_the_straddling_day_goes_in_batches_that_go_on_where_the_last_one_stopped(settings):
    settings.SYNC_ERROR_CLEANUP_BATCH_SIZE = 2
    # Batches of 2 whatever the machine does meanwhile (its time and its WAL pace them).
    settings.SYNC_ERROR_CLEANUP_BATCH_MS = 60_000
    settings.SYNC_ERROR_CLEANUP_BATCH_WAL_KB = 1024 * 1024
    moment = timezone.now() - timedelta(days=7, minutes=30)
    # Entries that share a time are never split between a deleted and a kept side.
    same_time = [make_error(created_at=moment) for _ in range(3)]
    later = [make_error(created_at=moment + timedelta(minutes=n)) for n in range(1, 6)]
    stays = make_error(age=timedelta(days=7) - timedelta(minutes=1))
    with CaptureQueriesContext(connection) as queries:
        cleanup = services.request_cleanup(days=7, trigger="command", run_in_background=False)
    assert cleanup.deleted_count == len(same_time) + len(later)
    assert list(SyncError.objects.values_list("pk", flat=True)) == [stays.pk]
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE FROM errors_syncerror")]
    # 3 entries that share a time, then 2, 2 and the last one: each batch after the first
    # starts at the time the one before it stopped.
    assert sum("created_at >=" in sql for sql in deletes) == 3


def reltuples(day) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [partition_name(day)])
        return cursor.fetchone()[0]


def rows_of(day) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition_name(day)}")  # noqa: S608 - ours
        return cursor.fetchone()[0]


def test_a_writer_analyzes_a_day_it_grew_by_a_share_of_its_statistics(
    monkeypatch, django_capture_on_commit_callbacks
):
    """An error storm fills today's partition faster than autovacuum looks at it: the writer
    gives the planner the day's size itself, after its commit, so that a problem's list is
    not planned for the few rows the day held before the storm."""
    monkeypatch.setattr(partitions, "ANALYZE_MIN_ROWS", 30)
    monkeypatch.setattr(partitions, "_written", Counter())
    monkeypatch.setattr(partitions, "_look_at", {})
    today = day_of(timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(20):
            make_error()
    before = reltuples(today)
    assert before != rows_of(today)  # 20 rows written: not looked at yet
    with django_capture_on_commit_callbacks(execute=True) as looked:
        for _ in range(15):
            make_error()
    # Past 30 rows: looked at once (one commit), and analyzed.
    assert len(looked) == 1
    assert reltuples(today) == rows_of(today) >= 35
    # Grown by less than the share since: left as it is.
    counted = reltuples(today)
    monkeypatch.setattr(partitions, "ANALYZE_MIN_ROWS", 5)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            make_error()
    assert reltuples(today) == counted
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(int(counted * partitions.ANALYZE_GROWN_SHARE) + 1):
            make_error()
    assert reltuples(today) == rows_of(today) > counted


def test_a_writer_looks_again_after_a_transaction_whose_look_never_ran(
    monkeypatch, django_capture_on_commit_callbacks
):
    """A transaction rolled back drops the look it asked for after its commit: the writer asks
    again once it has written ANALYZE_MIN_ROWS more."""
    monkeypatch.setattr(partitions, "ANALYZE_MIN_ROWS", 10)
    monkeypatch.setattr(partitions, "_written", Counter())
    monkeypatch.setattr(partitions, "_look_at", {})
    today = day_of(timezone.now())
    with django_capture_on_commit_callbacks(execute=False) as never_run:
        for _ in range(12):
            make_error()
    assert len(never_run) == 1
    with django_capture_on_commit_callbacks(execute=True) as looked:
        for _ in range(10):
            make_error()
    assert looked
    assert reltuples(today) == rows_of(today)


def test_the_scheduled_partition_task_says_what_it_does():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="Create sync error partitions")
    assert task.task == "errors.create_error_partitions"
    assert "a week" not in task.description
    assert "SYNC_ERROR_PARTITION_DAYS_AHEAD" in task.description
    assert "detached" in task.description
