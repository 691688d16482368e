"""Partition the entries table by day of created_at, copying its rows and keeping every index
and constraint (the primary key becomes (id, created_at); ids stay unique through their
sequence). Days from 31 days ago to a week ahead get a partition; anything else goes to the
default partition."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import migrations
from django.utils import timezone

TABLE = "errors_syncerror"
OLD = f"{TABLE}_unpartitioned"
DAYS_BACK, DAYS_AHEAD = 31, 7


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(settings.TIME_ZONE)
    return (
        datetime.combine(day, time.min, tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone),
    )


def _definitions(cursor, table: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The table's indexes (but its primary key) and constraints (but its primary key)."""
    cursor.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p')",
        [table, table],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('f', 'c') ORDER BY conname",
        [table],
    )
    return indexes, cursor.fetchall()


def _rebuild(schema_editor, *, partitioned: bool) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint "
            "WHERE confrelid = %s::regclass AND contype = 'f'",
            [TABLE],
        )
        referring = [row[0] for row in cursor.fetchall()]
        if referring:
            raise RuntimeError(f"Foreign keys to {TABLE} from {referring} must go first.")
        indexes, constraints = _definitions(cursor, TABLE)
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        cursor.execute(f"ALTER INDEX {TABLE}_pkey RENAME TO {OLD}_pkey")
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE {OLD} RENAME CONSTRAINT "{name}" TO "old_{name}"')
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [OLD])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
        last_value, is_called = cursor.fetchone()
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY "
            "INCLUDING STORAGE INCLUDING COMPRESSION)"
            + (" PARTITION BY RANGE (created_at)" if partitioned else "")
        )
        if partitioned:
            cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
            today = timezone.localtime(timezone.now(), ZoneInfo(settings.TIME_ZONE)).date()
            for offset in range(-DAYS_BACK, DAYS_AHEAD + 1):
                day = today + timedelta(days=offset)
                cursor.execute(
                    f"CREATE TABLE {TABLE}_p{day:%Y%m%d} PARTITION OF {TABLE} "
                    "FOR VALUES FROM (%s) TO (%s)",
                    list(_day_bounds(day)),
                )
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608
        cursor.execute(f"DROP TABLE {OLD}")
        key = "(id, created_at)" if partitioned else "(id)"
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY {key}")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)",
            [TABLE, last_value, is_called],
        )


def partition(apps, schema_editor):
    _rebuild(schema_editor, partitioned=True)


def unpartition(apps, schema_editor):
    _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0009_bulk_actions"),
        ("sync", "0009_paused_error_without_constraint"),
    ]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
