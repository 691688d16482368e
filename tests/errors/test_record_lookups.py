"""New entries' record rows (errors_records_added) are looked up only in the day partitions of
errors_grouprecord that may hold them, and each record is still counted once, whichever day
its entries come on."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from errors import partitions
from errors.grouping import record_errors
from errors.models import ErrorGroup, GroupDay, GroupRecord, SyncError
from tests.errors.test_group_figures import MESSAGES, assert_figures_right
from tests.factories import make_error, new_error

pytestmark = pytest.mark.django_db

OTHER = "Customer is blocked for sales."
NEW = "VAT Bus. Posting Group must have a value."


def ago(days: int) -> timedelta:
    return timedelta(days=days, minutes=1)


def day(days: int):
    return partitions.day_of(timezone.now() - ago(days))


def scans() -> dict[str, int]:
    """How often this transaction has read each partition of the record rows so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0)"
            " FROM pg_stat_xact_user_tables WHERE relname LIKE %s",
            [f"{partitions.RECORDS}\\_%"],
        )
        return dict(cursor.fetchall())


def partitions_read(errors) -> set[str]:
    """The record rows' partitions that writing the entries read."""
    before = scans()
    record_errors(errors)
    return {name for name, n in scans().items() if n > before.get(name, 0)}


def names(*days_ago: int) -> set[str]:
    return {partitions.partition_name(day(n), partitions.RECORDS_PREFIX) for n in days_ago}


def entry(days_ago: int, record: str, message: str = MESSAGES[0]) -> SyncError:
    """An entry of the problem make_error gives the message, not stored yet."""
    return new_error(age=ago(days_ago), message=message, source_record_id=record)


@pytest.fixture
def history():
    """A problem with records whose latest entries are 5, 3 and 1 days ago (one of 3 days
    ago moved on to yesterday), another problem with records 4 and 2 days ago."""
    for days_ago, record in [(5, "C1"), (3, "C2"), (3, "C3"), (1, "C3")]:
        make_error(age=ago(days_ago), message=MESSAGES[0], source_record_id=record)
    for days_ago, record in [(4, "D1"), (2, "D2")]:
        make_error(age=ago(days_ago), message=OTHER, source_record_id=record)
    problem = ErrorGroup.objects.get(title=MESSAGES[0])
    assert set(
        GroupDay.objects.filter(group=problem, latest_records__gt=0).values_list("day", flat=True)
    ) == {day(5), day(3), day(1)}
    return problem


def test_a_record_first_seen_on_an_earlier_day_and_seen_again_today_counts_once():
    make_error(age=ago(3), message=MESSAGES[0], source_record_id="C1")
    make_error(age=ago(3), message=MESSAGES[0], source_record_id="C2")
    make_error(age=ago(0), message=MESSAGES[0], source_record_id="C1")
    problem = ErrorGroup.objects.get()
    assert problem.records == 2
    row = GroupRecord.objects.get(record_id="C1")
    assert (row.entries, row.first_day, row.last_day) == (2, day(3), day(0))
    latest = dict(GroupDay.objects.values_list("day", "latest_records"))
    assert (latest[day(3)], latest[day(0)]) == (1, 1)
    assert_figures_right()


def test_a_batch_with_a_record_on_several_days_counts_it_once(history):
    # C1 (last seen 5 days ago) yesterday and today in one batch, C2 on an older day than
    # its own, a new record twice.
    record_errors([entry(1, "C1"), entry(0, "C1"), entry(4, "C2"), entry(0, "N1"), entry(0, "N1")])
    history.refresh_from_db()
    assert history.records == 4
    assert GroupRecord.objects.get(record_id="C1").last_day == day(0)
    assert GroupRecord.objects.get(record_id="C2").last_day == day(3)
    assert GroupRecord.objects.get(record_id="N1").entries == 2
    assert_figures_right()


def test_only_the_problems_days_with_latest_records_are_read(history):
    # A new record of the problem: each of its days with latest records, none of the other
    # problem's days, none older.
    assert partitions_read([entry(0, "N1")]) == names(5, 3, 1)
    assert_figures_right()


def test_a_records_days_are_read_latest_first_until_its_row_is_found(history):
    # C3's row is yesterday's: only that partition, to find it and then move it.
    assert partitions_read([entry(0, "C3")]) == names(1)
    # C2's row is 3 days ago: today's partition first (where C3 is now; yesterday has no
    # latest record left), then that one.
    assert partitions_read([entry(0, "C2")]) == names(0, 3)
    # Seen today now: today's partition alone, where it grows.
    assert partitions_read([entry(0, "C2")]) == names(0)
    assert GroupRecord.objects.get(record_id="C2").entries == 3
    assert_figures_right()


def test_a_day_whose_records_all_moved_on_is_not_read(history):
    make_error(age=ago(0), message=MESSAGES[0], source_record_id="C1")  # 5 days ago: none left
    assert partitions_read([entry(0, "N2")]) == names(0, 3, 1)
    assert_figures_right()


def test_a_new_problems_records_read_no_partition(history):
    assert partitions_read([entry(0, "N1", NEW), entry(0, "N2", NEW)]) == set()
    assert ErrorGroup.objects.get(title=NEW).records == 2
    assert_figures_right()


def test_a_record_seen_on_an_older_day_than_its_row_grows_in_place(history):
    assert partitions_read([entry(2, "C3")]) == names(1)
    row = GroupRecord.objects.get(record_id="C3")
    assert (row.entries, row.first_day, row.last_day) == (3, day(3), day(1))
    assert_figures_right()
