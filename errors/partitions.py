"""The entries table is partitioned by day of created_at (days in TIME_ZONE), so that a
clean-up drops whole days instead of deleting rows one by one. The problems' record rows
(errors_grouprecord) are partitioned the same way by the day of their record's latest entry,
and each day's two partitions are created, dropped and emptied together: the records whose
latest entry was on a dropped day go with it, with nothing left to purge.

Day partitions exist from SYNC_ERROR_PARTITION_DAYS_BACK days ago to
SYNC_ERROR_PARTITION_DAYS_AHEAD days ahead: a beat task creates them ahead, and a write that
needs one creates it first. Entries dated outside that window (years ago, far in the future)
land in the default partition, which the clean-up empties row by row like before.
"""

import logging
import time as clock
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLE = "errors_syncerror"
DEFAULT = f"{TABLE}_default"
PREFIX = f"{TABLE}_p"
RECORDS = "errors_grouprecord"
RECORDS_DEFAULT = f"{RECORDS}_default"
RECORDS_PREFIX = f"{RECORDS}_p"
# A day's tables detached by a clean-up are renamed with this prefix until they are dropped.
DETACHED_PREFIX = "detached_"
# DDL on the entries table waits at most this long for a lock, so that readers queued behind
# it are never held up longer; it is tried again almost at once, for up to LOCK_PATIENCE_S, so
# that a wait is in the queue when a long reader finishes (new readers queue behind it).
LOCK_TIMEOUT_MS = 100
LOCK_RETRY_PAUSE_S = 0.02
LOCK_PATIENCE_S = 600


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
    partition before anything is written to it, and the empty days past the window go."""
    today = today or day_of(timezone.now())
    _, last = window(today)
    days = [today - timedelta(days=1) + timedelta(days=i) for i in range((last - today).days + 2)]
    created = ensure_partitions(days, today)
    drop_empty_days_after(last)
    drop_detached()
    return created


def drop_empty_days_after(last: date) -> list[date]:
    """Drop the day partitions after `last` that hold nothing (made while the window reached
    further ahead): every partition, empty or not, costs the planning of each query of the
    entries a little. A day that holds an entry, or a record row, stays. Returns the days
    dropped; a day whose lock is not had in time is left for the next run."""
    dropped = []
    for day in [day for day in partition_days() if day > last]:
        name = partition_name(day)
        records = partition_name(day, RECORDS_PREFIX)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
                _lock_partitions(cursor)
                if not _exists(cursor, name):
                    continue
                gone = [name, records] if _exists(cursor, records) else [name]
                # No writer adds to the day while this looks (the lock DROP takes anyway).
                cursor.execute(f"LOCK TABLE {TABLE}, {RECORDS} IN ACCESS EXCLUSIVE MODE")
                holds = " OR ".join(f"EXISTS (SELECT 1 FROM {table})" for table in gone)  # noqa: S608
                cursor.execute(f"SELECT {holds}")
                if cursor.fetchone()[0]:
                    continue
                cursor.execute(f"DROP TABLE {', '.join(gone)}")
            dropped.append(day)
        except OperationalError as exc:
            logger.warning("Could not drop the empty entries partition of %s yet: %s", day, exc)
    return dropped


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
        # The lock CREATE ... PARTITION OF takes anyway, taken before the default partition is
        # looked at: a writer that put a row of the day into the default partition after the
        # look would make the CREATE fail (and the write that needed the day with it).
        cursor.execute(f"LOCK TABLE ONLY {TABLE}, ONLY {RECORDS} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE created_at >= %s AND created_at < %s)",  # noqa: S608 - our names
            [low, high],
        )
        moving = cursor.fetchone()[0]
        _create_with_rows(cursor, TABLE, DEFAULT, name, "created_at", (low, high), moving)
        # The record rows of the day: those whose latest entry is on it.
        records = partition_name(day, RECORDS_PREFIX)
        if not _exists(cursor, records):
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {RECORDS_DEFAULT} WHERE last_day = %s)",  # noqa: S608 - our names
                [day],
            )
            bounds = (day, day + timedelta(days=1))
            _create_with_rows(
                cursor, RECORDS, RECORDS_DEFAULT, records, "last_day", bounds, cursor.fetchone()[0]
            )
    return True


def _create_with_rows(cursor, parent: str, default: str, name: str, key: str, bounds, moving):
    """Create a partition of `parent` for the range `bounds` of `key`. Rows of that range
    already in the default partition move into it (a partition cannot be created while the
    default holds rows of its range): partition to partition, so no trigger of the parent
    sees them and the figures stay as they are."""
    if moving:
        cursor.execute(
            f"CREATE TEMP TABLE moving_{name} AS WITH moved AS ("  # noqa: S608 - our names
            f" DELETE FROM {default} WHERE {key} >= %s AND {key} < %s RETURNING *)"
            " SELECT * FROM moved",
            list(bounds),
        )
    cursor.execute(
        f"CREATE TABLE {name} PARTITION OF {parent} FOR VALUES FROM (%s) TO (%s)", list(bounds)
    )
    if moving:
        cursor.execute(f"INSERT INTO {name} SELECT * FROM moving_{name}")  # noqa: S608
        cursor.execute(f"DROP TABLE moving_{name}")


def whole_days_before(cutoff: datetime) -> list[date]:
    """The partitioned days that end at or before the cut-off: dropped whole."""
    return [day for day in partition_days() if day_bounds(day)[1] <= cutoff]


def drop_day(day: date) -> int:
    """Drop a day's partitions (its entries and the rows of the records whose latest entry
    was on it) and take its entries off their problems' figures, from the day figures (never
    reading the entries): errors_day_dropped (errors/sql) takes off the entry count, the day,
    and the day's records. Returns how many entries went; a day that another clean-up dropped
    meanwhile counts 0.

    The day leaves the tables in one short transaction: its partitions are detached and
    renamed (DETACHED_PREFIX) with its figures taken off. Their files go afterwards, in
    transactions of their own (drop_detached): a file is freed as the transaction that drops
    it commits, which took 150 ms for a day of 700,000 entries, the entries table locked all
    along. Called in a transaction, the drop waits for its commit (on_commit runs it at once
    outside one).

    A clean-up drops days oldest first after the older entries went, so a record whose latest
    entry is on the day has no entry left."""
    gone = _take_day(day, None) or 0
    transaction.on_commit(drop_detached)
    return gone


def detached_tables() -> list[str]:
    """The day tables detached by a clean-up and not dropped yet."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND starts_with(relname, %s)"
            " AND relnamespace = current_schema()::regnamespace ORDER BY relname",
            [DETACHED_PREFIX],
        )
        return [row[0] for row in cursor.fetchall()]


def drop_detached() -> int:
    """Drop the day tables that clean-ups detached (also those a stopped clean-up left),
    each object in a short transaction of its own: the foreign keys, each index, then the
    table, whose file is the largest. Nothing reads these tables any more, so nothing waits
    for them. One whose lock is not had in time is left for the next clean-up or the
    scheduled partition task. Returns how many tables went."""
    dropped = 0
    for table in detached_tables():
        try:
            for statement in _drops(table):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
                    cursor.execute(statement)
            dropped += 1
        except OperationalError as exc:
            logger.warning("Could not drop the detached day table %s yet: %s", table, exc)
    return dropped


def _drops(table: str) -> list[str]:
    with connection.cursor() as cursor:
        # By name, not ::regclass: another clean-up may have dropped the table meanwhile.
        cursor.execute(
            "SELECT k.conname FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid"
            " WHERE t.relname = %s AND t.relnamespace = current_schema()::regnamespace"
            " AND k.contype = 'f'",
            [table],
        )
        keys = [row[0] for row in cursor.fetchall()]
        # The indexes that no constraint owns (the primary key's goes with the table).
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE t.relname = %s AND t.relnamespace = current_schema()::regnamespace"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
            [table],
        )
        indexes = [row[0] for row in cursor.fetchall()]
    return [
        *(f'ALTER TABLE IF EXISTS {table} DROP CONSTRAINT IF EXISTS "{key}"' for key in keys),
        *(f'DROP INDEX IF EXISTS "{index}"' for index in indexes),
        f"DROP TABLE IF EXISTS {table}",
    ]


def empty_day(day: date, cutoff: datetime) -> int | None:
    """Delete All: empty the partitions of the day that holds the cut-off (today's, as a rule)
    at once (TRUNCATE) when none of its entries is at or after the cut-off, keeping the
    tables for the entries that come next. Returns how many entries went, None when some
    entry is at or after the cut-off (then it goes row by row)."""
    return _take_day(day, cutoff)


def _take_day(day: date, cutoff: datetime | None) -> int | None:
    """The day's problems are locked first, in the order writers lock them: a writer holding
    one of them never waits for the entries table this holds."""
    name = partition_name(day)
    records = partition_name(day, RECORDS_PREFIX)
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
                has_records = _exists(cursor, records)
                if cutoff is None:
                    # Checks of its foreign keys still pending (rows written in this same
                    # transaction) would keep it from being detached: run them now.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
                    if has_records:
                        cursor.execute(f"ALTER TABLE {RECORDS} DETACH PARTITION {records}")
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
                else:
                    # No writer adds to the day from here until this commits.
                    cursor.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
                    cursor.execute(
                        f"SELECT EXISTS (SELECT 1 FROM {name} WHERE created_at >= %s)",  # noqa: S608 - our names
                        [cutoff],
                    )
                    if cursor.fetchone()[0]:
                        return None
                cursor.execute(
                    f"SELECT count(*) FROM {name} WHERE group_id IS NULL"  # noqa: S608 - our names
                )
                ungrouped = cursor.fetchone()[0]
                # DROP and TRUNCATE fire no trigger: the figures' own function takes the day off.
                cursor.execute("SELECT errors_day_dropped(%s)", [day])
                grouped = cursor.fetchone()[0]
                gone = [name, records] if has_records else [name]
                if cutoff is None:
                    for table in gone:
                        cursor.execute(f"ALTER TABLE {table} RENAME TO {DETACHED_PREFIX}{table}")
                else:
                    cursor.execute(f"TRUNCATE {', '.join(gone)}")
            return int(grouped) + ungrouped
        except OperationalError:
            if clock.monotonic() > give_up:
                raise
            logger.debug("Entries table busy; taking %s again", name)
            clock.sleep(LOCK_RETRY_PAUSE_S)


# A day partition filled faster than autovacuum looks at it (a minute apart at best, never where
# it is off) keeps the statistics of when it was small: during an error storm the planner
# expected a few dozen entries of a problem that had a million, and sorted them all for a page
# of its list. Each writing process counts what it adds to each day, and once that passes
# ANALYZE_MIN_ROWS and ANALYZE_GROWN_SHARE of the rows the day's statistics count, it analyzes
# the day's partition after its transaction commits.
ANALYZE_MIN_ROWS = 50_000
ANALYZE_GROWN_SHARE = 0.2
_written: Counter[date] = Counter()
_look_at: dict[date, int] = {}


def note_written(days: Iterable[date]) -> None:
    """In a writer's transaction: these entries' days grew (one day per entry)."""
    for day, count in Counter(days).items():
        _written[day] += count
        if _written[day] >= _look_at.get(day, ANALYZE_MIN_ROWS):
            # Looked at after the commit, and again after ANALYZE_MIN_ROWS more if this
            # transaction holds more batches or is rolled back (its look never runs then).
            _look_at[day] = _written[day] + ANALYZE_MIN_ROWS
            transaction.on_commit(partial(analyze_if_grown, day))


def analyze_if_grown(day: date) -> bool:
    """Analyze the day's partition if this process added ANALYZE_GROWN_SHARE of its counted
    rows since; says whether it did. A lock not had at once (another ANALYZE, a clean-up) or
    any error of the database leaves it for the next look: a writer never fails for it."""
    name = partition_name(day)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE relname = %s"
                " AND relnamespace = current_schema()::regnamespace",
                [name],
            )
            row = cursor.fetchone()
            if row is None:
                _written.pop(day, None)
                _look_at.pop(day, None)
                return False
            due = max(ANALYZE_MIN_ROWS, int(ANALYZE_GROWN_SHARE * max(row[0], 0)))
            if _written[day] < due:
                _look_at[day] = due
                return False
            cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
            cursor.execute(f"ANALYZE {name}")
    except DatabaseError as exc:
        _look_at[day] = _written[day] + ANALYZE_MIN_ROWS
        logger.info("The entries partition of %s was not analyzed: %s", day, exc)
        return False
    _written[day] = 0
    _look_at.pop(day, None)
    return True
