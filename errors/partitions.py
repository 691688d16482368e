"""The entries table is partitioned by day of created_at (days in TIME_ZONE), so that a
clean-up drops whole days instead of deleting rows one by one.

Day partitions exist from SYNC_ERROR_PARTITION_DAYS_BACK days ago to
SYNC_ERROR_PARTITION_DAYS_AHEAD days ahead: a beat task creates them ahead, and a write that
needs one creates it first. Entries dated outside that window (years ago, far in the future)
land in the default partition, which the clean-up empties row by row like before.
"""

import logging
import time as clock
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from .pacing import Pace

logger = logging.getLogger(__name__)

TABLE = "errors_syncerror"
DEFAULT = f"{TABLE}_default"
PREFIX = f"{TABLE}_p"
# A dropped day waits under this name until its figures are taken off the problems.
GONE_PREFIX = f"{TABLE}_gone_p"
# DDL on the entries table waits at most this long for a lock, so that readers queued behind
# it are never held up longer; it is tried again almost at once, for up to LOCK_PATIENCE_S, so
# that a wait is in the queue when a long reader finishes (new readers queue behind it).
LOCK_TIMEOUT_MS = 100
LOCK_RETRY_PAUSE_S = 0.02
LOCK_PATIENCE_S = 600
# Each purge transaction aims at this many milliseconds (see pacing.Pace).
PURGE_TARGET_MS = 100


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first moment of the day and of the next one, in TIME_ZONE."""
    zone = ZoneInfo(settings.TIME_ZONE)
    return (
        datetime.combine(day, time.min, tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone),
    )


def day_of(moment: datetime) -> date:
    return timezone.localtime(moment, ZoneInfo(settings.TIME_ZONE)).date()


def partition_name(day: date, prefix: str = PREFIX) -> str:
    return f"{prefix}{day:%Y%m%d}"


def _day_from_name(name: str, prefix: str) -> date | None:
    digits = name.removeprefix(prefix)
    if len(digits) != 8 or not (digits.isascii() and digits.isdecimal()):
        return None
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def partition_days() -> list[date]:
    """The days that have a partition, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    return sorted(day for day in (_day_from_name(n, PREFIX) for n in names) if day is not None)


def window(today: date | None = None) -> tuple[date, date]:
    today = today or day_of(timezone.now())
    return (
        today - timedelta(days=settings.SYNC_ERROR_PARTITION_DAYS_BACK),
        today + timedelta(days=settings.SYNC_ERROR_PARTITION_DAYS_AHEAD),
    )


def ensure_partitions(days: Iterable[date], today: date | None = None) -> list[date]:
    """Create the missing partitions of these days (those inside the window); returns the days
    created. A partition that cannot get its lock in time is left for later: its entries go
    to the default partition meanwhile, so a write never fails for want of one."""
    first, last = window(today)
    wanted = {day for day in days if first <= day <= last}
    if not wanted:
        return []
    created = []
    for day in sorted(wanted - set(partition_days())):
        try:
            with transaction.atomic():
                if _create_partition(day):
                    created.append(day)
        except OperationalError as exc:
            logger.warning("Could not create the entries partition of %s yet: %s", day, exc)
    return created


def ensure_partitions_for(moments: Iterable[datetime]) -> list[date]:
    """Before a write: the partitions of the days these entries fall on."""
    return ensure_partitions({day_of(moment) for moment in moments})


def create_partitions_ahead(today: date | None = None) -> list[date]:
    """The scheduled step: every day from yesterday to the end of the window has its
    partition before anything is written to it."""
    today = today or day_of(timezone.now())
    _, last = window(today)
    days = [today - timedelta(days=1) + timedelta(days=i) for i in range((last - today).days + 2)]
    return ensure_partitions(days, today)


def _lock_partitions(cursor) -> None:
    """Creating and dropping partitions take turns (within the lock timeout): two writers
    that need the same new day, or two clean-ups that drop the same day, each see what the
    other did instead of failing on a table that appeared or went meanwhile."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s::regclass::oid::bigint)", [TABLE])


def _exists(cursor, name: str) -> bool:
    # Read from pg_class with this statement's snapshot, not through the name cache
    # (to_regclass): a table another clean-up dropped while this one waited for the advisory
    # lock may still be in this session's cache, as waiting for that lock reads no news.
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = %s"
        " AND relnamespace = current_schema()::regnamespace)",
        [name],
    )
    return cursor.fetchone()[0]


def _create_partition(day: date) -> bool:
    """Create the day's partition unless another connection just did; says whether it did."""
    low, high = day_bounds(day)
    name = partition_name(day)
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
        _lock_partitions(cursor)
        if _exists(cursor, name):
            return False
        # Rows of this day already in the default partition move into the new one: a
        # partition cannot be created while the default holds rows of its range. They move
        # partition to partition, so the figures kept by the parent's triggers stay as they are.
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE created_at >= %s AND created_at < %s)",  # noqa: S608 - our names
            [low, high],
        )
        moving = cursor.fetchone()[0]
        if moving:
            cursor.execute(
                f"CREATE TEMP TABLE moving_{name} AS WITH moved AS ("  # noqa: S608 - our names
                f" DELETE FROM {DEFAULT} WHERE created_at >= %s AND created_at < %s RETURNING *)"
                " SELECT * FROM moved",
                [low, high],
            )
        cursor.execute(
            f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
            [low, high],
        )
        if moving:
            cursor.execute(f"INSERT INTO {name} SELECT * FROM moving_{name}")  # noqa: S608
            cursor.execute(f"DROP TABLE moving_{name}")
    return True


def whole_days_before(cutoff: datetime) -> list[date]:
    """The partitioned days that end at or before the cut-off: dropped whole."""
    return [day for day in partition_days() if day_bounds(day)[1] <= cutoff]


def drop_day(day: date) -> int:
    """Drop a day's partition and take its entries off their problems' figures in one short
    transaction, from the day figures (never reading the entries): errors_day_dropped
    (errors/sql) takes off the entry count, the day, and the records whose latest entry was
    that day. Returns how many entries went.

    Their GroupRecord rows stay behind, stale, until purge_stale_records: the clean-up
    removes every entry before its cut-off, so those records have no entry left.

    The day's problems are locked first, in the order writers lock them: a writer holding
    one of them never waits for the entries table this holds. A day that another clean-up
    dropped meanwhile counts 0."""
    name = partition_name(day)
    give_up = clock.monotonic() + LOCK_PATIENCE_S
    while True:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
                cursor.execute(
                    "SELECT id FROM errors_errorgroup WHERE id IN "
                    "(SELECT group_id FROM errors_groupday WHERE day = %s) "
                    "ORDER BY fingerprint FOR UPDATE",
                    [day],
                )
                _lock_partitions(cursor)
                if not _exists(cursor, name):
                    return 0
                cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
                cursor.execute(
                    f"SELECT count(*) FROM {name} WHERE group_id IS NULL"  # noqa: S608 - our names
                )
                ungrouped = cursor.fetchone()[0]
                # A DROP fires no trigger: the figures' own function takes the day off.
                cursor.execute("SELECT errors_day_dropped(%s)", [day])
                grouped = cursor.fetchone()[0]
                # Checks of its foreign keys still pending (rows written in this same
                # transaction) would keep it from being dropped: run them now.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f"DROP TABLE {name}")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            return int(grouped) + ungrouped
        except OperationalError:
            if clock.monotonic() > give_up:
                raise
            logger.debug("Entries table busy; dropping %s again", name)
            clock.sleep(LOCK_RETRY_PAUSE_S)


def records_horizon() -> date | None:
    """The latest dropped day whose stale GroupRecord rows may still be there."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT day FROM errors_recordhorizon")
        row = cursor.fetchone()
        return row[0] if row else None


def purge_stale_records(batch_size: int = 20_000) -> int:
    """Delete the GroupRecord rows left behind by dropped days, walking the table in key
    order in short transactions (no index on last_day needed, nothing to count: their
    records were taken off when their day went). Each batch locks its stale rows in key
    order, as the triggers do, and reads at most `batch_size` rows, fewer when batches run
    slow. Clears the horizon when done; returns how many rows went."""
    horizon = records_horizon()
    if horizon is None:
        return 0
    pace = Pace(batch_size, PURGE_TARGET_MS, size=min(batch_size, 2_000))
    purged, after = 0, (0, "")
    while True:
        with pace.batch() as size, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT group_id, record_id FROM errors_grouprecord "
                "WHERE (group_id, record_id) > (%s, %s) "
                "ORDER BY group_id, record_id OFFSET %s LIMIT 1",
                [*after, size - 1],
            )
            last = cursor.fetchone()
            upto = "AND (group_id, record_id) <= (%s, %s)" if last else ""
            cursor.execute(
                f"""
                DELETE FROM errors_grouprecord WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM errors_grouprecord
                    WHERE (group_id, record_id) > (%s, %s) {upto} AND last_day <= %s
                    ORDER BY group_id, record_id LIMIT %s FOR UPDATE
                ))
                """,  # noqa: S608 - a fixed condition; the values are parameters
                # A limit the range never reaches (it holds `size` rows, and those written
                # meanwhile are not stale) keeps the walk on the primary key.
                [*after, *(last or ()), horizon, 2 * size],
            )
            purged += cursor.rowcount
        if last is None:
            break
        after = last
    with transaction.atomic(), connection.cursor() as cursor:
        # A clean-up that dropped a later day meanwhile moved the horizon: its rows are
        # still to go, so the horizon stays for the next purge.
        cursor.execute("UPDATE errors_recordhorizon SET day = NULL WHERE day = %s", [horizon])
    return purged
