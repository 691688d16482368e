"""The problems' figures kept on write (entries and open entries per day, records affected)
stay equal to what counting the entries gives, whatever changes the entries."""

import random
import re
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from errors import partitions, services
from errors.grouping import figures_for, record_attempts
from errors.models import BulkAction, ErrorGroup, GroupDay, GroupRecord, Status, SyncError
from tests.factories import make_error, new_error
from triage import bulk

pytestmark = pytest.mark.django_db

MESSAGES = ["Phone No. must not exceed 30 characters.", "Currency DKK has no exchange rate."]


def counted() -> dict:
    """The figures as the entries give them, the slow way."""
    days: dict[tuple[int, object], list[int]] = defaultdict(lambda: [0, 0])
    records: dict[int, Counter] = defaultdict(Counter)
    for entry in SyncError.objects.exclude(group=None):
        day = timezone.localtime(entry.created_at).date()
        days[(entry.group_id, day)][0] += 1
        days[(entry.group_id, day)][1] += entry.status == Status.OPEN
        if entry.source_record_id:
            records[entry.group_id][entry.source_record_id] += 1
    return {
        "days": {key: tuple(value) for key, value in days.items()},
        "records": {pk: set(counts) for pk, counts in records.items()},
        "record_counts": {pk: len(counts) for pk, counts in records.items()},
    }


def kept() -> dict:
    days = {
        (row.group_id, row.day): (row.entries, row.open)
        for row in GroupDay.objects.all()
        if row.entries or row.open
    }
    records: dict[int, set[str]] = defaultdict(set)
    rows = Counter((row.group_id, row.record_id) for row in GroupRecord.objects.all())
    # One row per record, though the partitioned table cannot enforce it.
    assert set(rows.values()) <= {1}
    for group_id, record_id in rows:
        records[group_id].add(record_id)
    return {
        "days": days,
        "records": dict(records),
        "record_counts": {g.pk: g.records for g in ErrorGroup.objects.filter(records__gt=0)},
    }


def assert_figures_right():
    assert kept() == counted()
    for group in ErrorGroup.objects.all():
        assert group.count == SyncError.objects.filter(group=group).count()


def write_entries():
    """Two problems, entries today, last week, years ago and in the future, some records
    hit more than once."""
    ages = [
        timedelta(0),
        timedelta(hours=30),
        timedelta(days=8),
        timedelta(days=900),
        -timedelta(days=40),
        timedelta(days=3),
    ]
    entries = []
    for i, age in enumerate(ages * 2):
        entries.append(
            make_error(
                age=age,
                message=MESSAGES[i % 2],
                source_record_id=f"C{i % 4}",
                status=Status.RESOLVED if i % 5 == 0 else Status.OPEN,
            )
        )
    return entries


def test_figures_are_kept_on_write():
    write_entries()
    assert GroupDay.objects.exists()
    assert_figures_right()


def test_figures_follow_status_changes(staff_user):
    entries = write_entries()
    services.set_status(
        SyncError.objects.filter(pk__in=[e.pk for e in entries[:5]]), Status.IGNORED, staff_user
    )
    assert_figures_right()
    group = ErrorGroup.objects.get(pk=entries[0].group_id)
    services.set_group_status(group, Status.SNOOZED, staff_user, snoozed_until=timezone.now())
    assert_figures_right()
    services.wake_snoozed(timezone.now() + timedelta(minutes=1))
    assert_figures_right()
    services.set_group_status(group, Status.RESOLVED, staff_user)
    assert_figures_right()


def test_figures_follow_bulk_actions(staff_user):
    entries = write_entries()
    bulk.request_bulk_action(
        action=BulkAction.Action.RESOLVE,
        user=staff_user,
        selected_ids=[e.pk for e in entries[2:9]],
        run_in_background=False,
    )
    assert SyncError.objects.filter(status=Status.RESOLVED).count() > 3
    assert_figures_right()


def test_figures_follow_deletes_and_new_dates():
    entries = write_entries()
    entries[1].delete()
    SyncError.objects.filter(pk=entries[3].pk).delete()
    assert_figures_right()
    SyncError.objects.filter(pk__in=[e.pk for e in entries[4:8]]).update(
        created_at=timezone.now() - timedelta(days=2), source_record_id="C9"
    )
    assert_figures_right()


def test_figures_follow_any_statement_on_the_entries():
    """Counts too, whoever writes: a DELETE typed in psql, entries moved to another problem
    or to none."""
    entries = write_entries()
    first, other = entries[0].group_id, entries[1].group_id
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM errors_syncerror WHERE id = ANY(%s)", [[e.pk for e in entries[:3]]]
        )
        cursor.execute(
            "UPDATE errors_syncerror SET group_id = %s WHERE id = ANY(%s)",
            [first, [e.pk for e in entries[3:8] if e.group_id == other]],
        )
        cursor.execute("UPDATE errors_syncerror SET group_id = NULL WHERE id = %s", [entries[9].pk])
    assert ErrorGroup.objects.get(pk=first).count == 7
    assert ErrorGroup.objects.get(pk=other).count == 1
    assert_figures_right()


@pytest.mark.parametrize("days", [7, 1, None])
def test_figures_stay_right_after_a_clean_up(days):
    write_entries()
    cleanup = services.request_cleanup(days=days, trigger="command", run_in_background=False)
    assert cleanup.deleted_count == cleanup.expected_count > 0
    assert_figures_right()
    assert not SyncError.objects.filter(created_at__lt=cleanup.cutoff).exists()


def record_rows_by_day() -> dict:
    """The record rows as each day's partition holds them."""
    found = {}
    for day in partitions.partition_days():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT record_id FROM {partitions.partition_name(day, partitions.RECORDS_PREFIX)}"  # noqa: S608
            )
            found[day] = {row[0] for row in cursor.fetchall()}
    return found


def test_a_dropped_day_takes_its_record_rows_with_it():
    write_entries()
    for n in range(5):
        make_error(age=timedelta(days=10), message=MESSAGES[n % 2], source_record_id=f"D{n}")
    old_day = partitions.day_of(timezone.now() - timedelta(days=10))
    assert record_rows_by_day()[old_day] == {f"D{n}" for n in range(5)}
    services.request_cleanup(days=7, trigger="command", run_in_background=False)
    assert old_day not in partitions.partition_days()
    # Nothing left behind to purge: every row is a record with entries still stored.
    assert not GroupRecord.objects.filter(record_id__startswith="D").exists()
    assert_figures_right()
    # Figures go on right afterwards, old entries too.
    write_entries()
    assert_figures_right()


def test_a_record_moves_to_the_partition_of_its_latest_day():
    make_error(age=timedelta(days=5), message=MESSAGES[0], source_record_id="C1")
    make_error(age=timedelta(days=3), message=MESSAGES[0], source_record_id="C1")
    by_day = record_rows_by_day()
    assert by_day[partitions.day_of(timezone.now() - timedelta(days=3))] == {"C1"}
    assert by_day[partitions.day_of(timezone.now() - timedelta(days=5))] == set()
    # An older entry leaves it where it is.
    make_error(age=timedelta(days=4), message=MESSAGES[0], source_record_id="C1")
    row = GroupRecord.objects.get(record_id="C1")
    assert row.entries == 3
    assert row.last_day == partitions.day_of(timezone.now() - timedelta(days=3))
    assert row.first_day == partitions.day_of(timezone.now() - timedelta(days=5))
    assert_figures_right()


def test_a_record_with_entries_on_both_sides_of_the_cut_off_stays_counted():
    both = [
        make_error(age=timedelta(days=n), message=MESSAGES[0], source_record_id="C1")
        for n in (12, 10, 2)
    ]
    make_error(age=timedelta(days=12), message=MESSAGES[0], source_record_id="C2")
    group = ErrorGroup.objects.get(pk=both[0].group_id)
    assert group.records == 2
    services.request_cleanup(days=7, trigger="command", run_in_background=False)
    group.refresh_from_db()
    assert group.records == 1
    assert_figures_right()
    # Its count on the row took in the dropped entries: deleting its last one counts again.
    SyncError.objects.filter(pk=both[2].pk).delete()
    group.refresh_from_db()
    assert group.records == 0
    assert_figures_right()


def test_a_record_seen_again_after_its_day_was_dropped_counts_again():
    make_error(age=timedelta(days=10), message=MESSAGES[0], source_record_id="C1")
    make_error(age=timedelta(days=1), message=MESSAGES[0], source_record_id="C2")
    services.request_cleanup(days=7, trigger="command", run_in_background=False)
    make_error(age=timedelta(hours=1), message=MESSAGES[0], source_record_id="C1")
    assert_figures_right()
    assert ErrorGroup.objects.get().records == 2


def test_an_entry_older_than_a_dropped_day_counts_until_the_next_clean_up():
    make_error(age=timedelta(days=10), message=MESSAGES[0], source_record_id="C1")
    services.request_cleanup(days=7, trigger="command", run_in_background=False)
    make_error(age=timedelta(days=12), message=MESSAGES[0], source_record_id="C2")
    assert ErrorGroup.objects.get().records == 1
    assert_figures_right()
    services.request_cleanup(days=7, trigger="command", run_in_background=False)
    assert ErrorGroup.objects.filter(records__gt=0).count() == 0
    assert_figures_right()


def test_a_clean_up_never_reads_the_dropped_days_entries_for_the_records():
    for n in range(20):
        make_error(age=timedelta(days=9, minutes=n), message=MESSAGES[n % 2])
    with CaptureQueriesContext(connection) as queries:
        services.request_cleanup(days=7, trigger="command", run_in_background=False)
    # The day's record rows go with its partition, never read or deleted row by row.
    assert not any(
        re.search(r"(FROM|UPDATE|INTO)\s+errors_grouprecord\b", q["sql"])
        for q in queries.captured_queries
    )
    assert_figures_right()


def test_the_page_shows_the_figures_the_entries_give():
    write_entries()
    groups = list(ErrorGroup.objects.all())
    figures = figures_for(groups)
    for group in groups:
        mine = SyncError.objects.filter(group=group)
        assert figures[group.pk].open == mine.filter(status=Status.OPEN).count()
        assert figures[group.pk].records == mine.values("source_record_id").distinct().count()
        per_day = Counter(timezone.localtime(e.created_at).date() for e in mine)
        assert {bar.day: bar.count for bar in figures[group.pk].trend} == {
            bar.day: per_day[bar.day] for bar in figures[group.pk].trend
        }
        assert sum(bar.count for bar in figures[group.pk].trend) > 0


def test_the_figures_of_a_page_take_two_queries_that_never_read_the_entries(staff_client):
    write_entries()
    groups = list(ErrorGroup.objects.all())
    with CaptureQueriesContext(connection) as queries:
        figures_for(groups)
    assert len(queries) == 2
    assert not any("errors_syncerror" in q["sql"] for q in queries)
    response = staff_client.get(reverse("errors:groups"))
    assert response.status_code == 200
    assert GroupDay.objects.aggregate(n=Sum("entries"))["n"] == SyncError.objects.count()


def _record_row_location(record_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text || ctid::text FROM errors_grouprecord"
            " WHERE record_id = %s",
            [record_id],
        )
        return cursor.fetchone()[0]


def test_deleting_older_entries_of_a_record_seen_since_leaves_its_row_alone():
    older = [
        make_error(age=timedelta(days=n), message=MESSAGES[0], source_record_id="C1")
        for n in (5, 3)
    ]
    latest = make_error(age=timedelta(hours=1), message=MESSAGES[0], source_record_id="C1")
    where = _record_row_location("C1")
    SyncError.objects.filter(pk__in=[e.pk for e in older]).delete()
    # Not counted again: the record keeps its latest entry, on the same day.
    assert _record_row_location("C1") == where
    assert_figures_right()
    SyncError.objects.filter(pk=latest.pk).delete()
    assert not GroupRecord.objects.filter(record_id="C1").exists()
    assert_figures_right()


def record_partition_lookups() -> Counter:
    """Index scans of each day partition of the record rows in this transaction so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, idx_scan FROM pg_stat_xact_user_tables WHERE starts_with(relname, %s)",
            [partitions.RECORDS_PREFIX],
        )
        return Counter(dict(cursor.fetchall()))


def test_deleted_entries_records_are_looked_up_on_their_own_day_alone():
    days = (5, 3, 1)
    for n, record in enumerate(["C1", "C2", "C3", "C4"]):
        # C1 and C2 seen again since, C3 and C4 on day 5 alone.
        for age in days if n < 2 else days[:1]:
            make_error(age=timedelta(days=age), message=MESSAGES[0], source_record_id=record)
    oldest = partitions.day_of(timezone.now() - timedelta(days=5))
    before = record_partition_lookups()
    SyncError.objects.filter(created_at__lt=timezone.now() - timedelta(days=4)).delete()
    looked = record_partition_lookups() - before
    # Only day 5's record rows were read, though C1 and C2 have theirs on day 1.
    assert set(looked) == {partitions.partition_name(oldest, partitions.RECORDS_PREFIX)}
    assert set(GroupRecord.objects.values_list("record_id", flat=True)) == {"C1", "C2"}
    assert_figures_right()


def test_figures_stay_right_through_many_row_deletes_in_any_order():
    chooser = random.Random(7)
    entries = [
        make_error(
            age=timedelta(days=chooser.choice([0, 1, 2, 4, 6]), minutes=n),
            message=MESSAGES[n % 2],
            source_record_id=f"R{chooser.randrange(6)}",
        )
        for n in range(40)
    ]
    chooser.shuffle(entries)
    while entries:
        size = chooser.randint(1, 6)
        taken, entries = entries[:size], entries[size:]
        SyncError.objects.filter(pk__in=[e.pk for e in taken]).delete()
        assert_figures_right()


def test_record_ids_of_any_spelling_are_counted_as_written():
    odd = ['A"B', "C\\D", "E,F", "{G}", "H I", "NULL", "ÅØ"]
    for record_id in odd:
        make_error(message=MESSAGES[0], source_record_id=record_id)
    assert set(GroupRecord.objects.values_list("record_id", flat=True)) == set(odd)
    assert_figures_right()


def test_figures_stay_right_through_the_engines_runs(demo_apps):
    """Entries written by real jobs: first failures, the same records failing again in later
    runs (counted on their entries), changed records, and a job that resolves some."""
    from demo.models import ErpCustomer
    from sync.models import SyncJob

    demo_apps.run("CURRENCY", SyncJob.Kind.FULL)
    for kind in (SyncJob.Kind.FULL, SyncJob.Kind.MODIFIED, SyncJob.Kind.FULL):
        ErpCustomer.objects.filter(currency_code="SEK").update(
            city="Malmö", last_modified=timezone.now()
        )
        demo_apps.run("CUSTOMER", kind)
    assert SyncError.objects.exists()
    assert_figures_right()
    ErpCustomer.objects.filter(currency_code="SEK").update(
        currency_code="", last_modified=timezone.now()
    )
    demo_apps.run("CUSTOMER", SyncJob.Kind.MODIFIED)
    assert SyncError.objects.filter(status=Status.RESOLVED).exists()
    assert_figures_right()


def test_a_day_s_bar_counts_the_attempts_counted_on_a_standing_entry_that_day():
    """A record logged once with a count of attempts (or a failed create tried again) fails
    on later days without a new entry: those days show its failures all the same."""
    today = timezone.localdate()

    def failure(days_ago: int) -> SyncError:
        return new_error(
            age=timedelta(days=days_ago),
            category="currency",
            message="Currency NOK does not exist in Dynamics 365 Sales.",
            source_record_id="C00150",
        )

    (entry,) = record_attempts([failure(3)])
    record_attempts([failure(2)])
    record_attempts([failure(2)])
    record_attempts([failure(0)])
    entry.refresh_from_db()
    problem = ErrorGroup.objects.get(pk=entry.group_id)
    assert (entry.attempts, problem.count, problem.seen_total) == (4, 1, 4)
    bars = {bar.day: bar.count for bar in figures_for([problem])[problem.pk].trend if bar.count}
    assert bars == {
        today - timedelta(days=3): 1,
        today - timedelta(days=2): 2,
        today: 1,
    }
