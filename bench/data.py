"""Sync error entries at scale, written with COPY: what the list, group and clean-up
benchmarks measure against.

The entries look like the sync engine's: a few mappings, messages from a set of templates
with record ids and values in them (so each template is one group, as grouping would make
it), links to both records, most entries open and the others resolved or ignored within two
days of coming. The problems' figures (counts, days, records, resolutions per day) are added
after the load as record_errors would have written them (figures_filled_after); first and last
seen are set from what was written.
"""

import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from errors import figures
from errors.grouping import fingerprint
from errors.models import Category, ErrorGroup, Status, SyncError
from errors.partitions import day_of, ensure_partitions
from sync.models import Connection, TableMapping

from .common import copy_rows

MAPPINGS = ["CUSTOMER", "CONTACT", "ITEM-PRODUCT", "SALESORDER", "CURRENCY", "VENDOR"]
TEMPLATES = [
    (
        Category.COUPLED_RECORD_DELETED,
        "The coupled record {id} was deleted in Dynamics 365 Sales. "
        "The record will be skipped for further synchronization.",
    ),
    (
        Category.CONFLICT,
        "Record {id} was modified in both apps since the last synchronization: field {field}.",
    ),
    (
        Category.VALIDATION,
        "The field {field} of record {id} cannot be '{value}': it must not be longer than 50.",
    ),
    (Category.VALIDATION, "Customer {id}: the Country/Region Code '{value}' does not exist."),
    (Category.PERMISSION, "The integration user has no privilege to create {field} (record {id})."),
    (Category.CURRENCY, "There is no exchange rate for currency {value} on {date} (record {id})."),
    (
        Category.AUTHENTICATION,
        "The integration user must change the password at next sign-in (request {id}).",
    ),
    (Category.CONNECTION, "Timeout after 30 s while writing record {id}."),
    (Category.OTHER, "Unexpected answer 500 for record {id}: {value}."),
]
FIELDS = ["name", "address1_line1", "telephone1", "emailaddress1", "creditlimit", "accountnumber"]
VALUES = ["DKK", "USD", "ZZ", "Contoso Ltd.", "Fabrikam, Inc.", "A Datum Corporation"]
# Most entries are open: they are what people work through.
STATUS_WEIGHTS = [(Status.OPEN, 80), (Status.RESOLVED, 12), (Status.IGNORED, 8)]

COLUMNS = [
    "id",
    "created_at",
    "mapping_id",
    "group_id",
    "source_app",
    "source_entity",
    "source_record_id",
    "source_url",
    "destination_app",
    "destination_entity",
    "destination_record_id",
    "destination_url",
    "message",
    "detail",
    "category",
    "status",
    "status_note",
    "status_changed_at",
    "integration",
]


# From this many rows, dropping the indexes and building them after the load is faster than
# keeping them up to date row by row (the GIN trigram index above all).
REBUILD_INDEXES_FROM = 500_000


@contextmanager
def indexes_built_after(table: str, *, enabled: bool = True):
    """Drop the table's indexes (not its primary key) for a bulk load, and build them again
    afterwards from their own definitions."""
    if not enabled:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [table],
        )
        definitions = cursor.fetchall()
        for name, _ in definitions:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for _, definition in definitions:
                # pg_indexes describes a partitioned table's index as "ON ONLY": built so,
                # it would be invalid and missing from every partition.
                cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))


FILL_FIGURES = """
CREATE TEMP TABLE added AS
SELECT group_id, errors_entry_day(created_at) AS day, count(*) AS entries,
       count(*) FILTER (WHERE status = 'open') AS open
FROM errors_syncerror WHERE id >= %(first)s AND group_id IS NOT NULL GROUP BY 1, 2;

INSERT INTO errors_groupday AS d (group_id, day, entries, open)
SELECT group_id, day, entries, open FROM added ORDER BY 1, 2
ON CONFLICT (group_id, day) DO UPDATE
    SET entries = d.entries + EXCLUDED.entries, open = d.open + EXCLUDED.open;

UPDATE errors_errorgroup AS g SET count = g.count + a.n
FROM (SELECT group_id, sum(entries) AS n FROM added GROUP BY 1) AS a
WHERE g.id = a.group_id;

DROP TABLE added;

INSERT INTO errors_groupday AS d (group_id, day, entries, open, resolved)
SELECT group_id, errors_entry_day(status_changed_at), 0, 0, count(*)
FROM errors_syncerror
WHERE id >= %(first)s AND group_id IS NOT NULL AND status = 'resolved'
  AND status_changed_at IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (group_id, day) DO UPDATE SET resolved = d.resolved + EXCLUDED.resolved;

-- The record rows are partitioned by their latest day (no upsert can move a row between
-- partitions): a record seen before leaves its row for one that takes in the new entries.
CREATE TEMP TABLE added AS
SELECT group_id, source_record_id AS record_id, count(*) AS entries,
       min(errors_entry_day(created_at)) AS first_day, max(errors_entry_day(created_at)) AS last_day
FROM errors_syncerror
WHERE id >= %(first)s AND group_id IS NOT NULL AND source_record_id <> ''
GROUP BY 1, 2;

CREATE TEMP TABLE moved AS
WITH gone AS (
    DELETE FROM errors_grouprecord AS r USING added AS a
    WHERE r.group_id = a.group_id AND r.record_id = a.record_id
    RETURNING r.group_id, r.record_id, r.entries, r.first_day, r.last_day
)
SELECT * FROM gone;

INSERT INTO errors_grouprecord (group_id, record_id, entries, first_day, last_day)
SELECT a.group_id, a.record_id, a.entries + coalesce(m.entries, 0),
       LEAST(a.first_day, coalesce(m.first_day, a.first_day)),
       GREATEST(a.last_day, coalesce(m.last_day, a.last_day))
FROM added AS a LEFT JOIN moved AS m USING (group_id, record_id);

INSERT INTO errors_groupday AS d (group_id, day, entries, open, latest_records)
SELECT group_id, day, 0, 0, sum(n) FROM (
    SELECT a.group_id, GREATEST(a.last_day, coalesce(m.last_day, a.last_day)) AS day, 1 AS n
    FROM added AS a LEFT JOIN moved AS m USING (group_id, record_id)
    UNION ALL
    SELECT group_id, last_day, -1 FROM moved
) AS m GROUP BY 1, 2 HAVING sum(n) <> 0
ON CONFLICT (group_id, day) DO UPDATE
    SET latest_records = d.latest_records + EXCLUDED.latest_records;

UPDATE errors_errorgroup AS g SET records = g.records + n.n
FROM (
    SELECT a.group_id, count(*) AS n FROM added AS a
    WHERE NOT EXISTS (SELECT 1 FROM moved AS m
                      WHERE m.group_id = a.group_id AND m.record_id = a.record_id)
    GROUP BY 1
) AS n
WHERE g.id = n.group_id;

DROP TABLE added;
DROP TABLE moved;
"""


@contextmanager
def figures_filled_after(first_id: int):
    """For a bulk load that goes round record_errors: the figures of the rows written (ids
    from `first_id`) are added by SQL afterwards, as record_errors would have. Like
    record_errors, the load says that it counts its rows itself, so that the insert trigger
    kept for the previous release's writers skips its COPY (for the session: the load
    commits as it goes)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', false)", [figures.BY_WRITER])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, '', false)", [figures.BY_WRITER])
            cursor.execute("SET work_mem = '256MB'")
            cursor.execute(FILL_FIGURES, {"first": first_id})


def settled_after(rng: random.Random) -> timedelta:
    """How long after it came an entry was resolved or ignored: an hour to two days."""
    return timedelta(minutes=rng.randrange(60, 48 * 60))


@dataclass(frozen=True)
class Generated:
    count: int
    first: datetime
    last: datetime
    mapping_ids: list[int]
    group_ids: list[int]


def bench_mappings() -> list[TableMapping]:
    """A connection and its mappings, created once per database."""
    source, _ = Connection.objects.get_or_create(
        name="Benchmark",
        defaults={
            "source_base_url": "https://erp.example.com/api/v2.0",
            "destination_base_url": "https://crm.example.com/api/data/v9.2",
        },
    )
    return [
        TableMapping.objects.get_or_create(
            connection=source,
            name=name,
            defaults={"source_entity": name.lower(), "destination_entity": name.lower()},
        )[0]
        for name in MAPPINGS
    ]


def clear_errors() -> None:
    """Empty the entries, their groups and the groups' figures (TRUNCATE: instant at any
    size)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {SyncError._meta.db_table}, {ErrorGroup._meta.db_table}, "
            "errors_groupday, errors_grouprecord RESTART IDENTITY CASCADE"
        )


def generate_errors(
    count: int,
    *,
    days: int = 30,
    now: datetime | None = None,
    seed: int = 42,
) -> Generated:
    """Append `count` entries spread evenly over the last `days` days (oldest first, ids
    rising with time as the engine writes them), with their groups."""
    rng = random.Random(seed)
    now = now or timezone.now()
    start = now - timedelta(days=days)
    step = (now - start) / max(count, 1)
    mappings = bench_mappings()
    groups: dict[tuple[int, int], ErrorGroup] = {}
    for mapping in mappings:
        for t, (category, message) in enumerate(TEMPLATES):
            key = fingerprint(mapping.pk, category, message)
            group, _ = ErrorGroup.objects.get_or_create(
                fingerprint=key,
                defaults={
                    "mapping": mapping,
                    "category": category,
                    "title": message,
                    "first_seen": start,
                    "last_seen": start,
                },
            )
            groups[(mapping.pk, t)] = group
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {SyncError._meta.db_table}")
        next_id = cursor.fetchone()[0] + 1
    statuses = [s for s, w in STATUS_WEIGHTS for _ in range(w)]
    counts: dict[int, list] = {}

    def rows():
        for i in range(count):
            mapping = mappings[i % len(mappings)]
            t = rng.randrange(len(TEMPLATES))
            category, template = TEMPLATES[t]
            group = groups[(mapping.pk, t)]
            created = start + step * i
            record = f"C{rng.randrange(10_000_000):08d}"
            destination = f"{rng.getrandbits(128):032x}"
            message = template.format(
                id=record,
                field=rng.choice(FIELDS),
                value=rng.choice(VALUES),
                date=created.date().isoformat(),
            )
            status = rng.choice(statuses)
            # A settled entry was settled a few hours to two days after it came.
            settled = None if status == Status.OPEN else min(created + settled_after(rng), now)
            figures = counts.setdefault(group.pk, [0, created, created])
            figures[0] += 1
            figures[2] = created
            yield (
                next_id + i,
                created.isoformat(),
                mapping.pk,
                group.pk,
                "Business Central",
                mapping.source_entity,
                record,
                f"https://erp.example.com/customers/{record}",
                "Dynamics 365 Sales",
                mapping.destination_entity,
                destination,
                f"https://crm.example.com/main.aspx?id={destination}",
                message[: SyncError.MESSAGE_MAX_LENGTH],
                "",
                category,
                status,
                "" if status == Status.OPEN else "Set by the benchmark data.",
                settled.isoformat() if settled else None,
                "",
            )

    ensure_partitions(day_of(start) + timedelta(days=i) for i in range(days + 2))
    big = count >= REBUILD_INDEXES_FROM
    with (
        indexes_built_after(SyncError._meta.db_table, enabled=big),
        figures_filled_after(next_id),
    ):
        written = copy_rows(SyncError._meta.db_table, COLUMNS, rows())
    # The counts came with the rows (the figures filled in after them).
    for pk, (n, first, last) in counts.items():
        group = ErrorGroup.objects.get(pk=pk)
        group.first_seen = min(group.first_seen, first) if group.count > n else first
        group.last_seen = max(group.last_seen, last)
        group.save(update_fields=["first_seen", "last_seen"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
            [SyncError._meta.db_table, next_id + count],
        )
    return Generated(written, start, now, [m.pk for m in mappings], [g.pk for g in groups.values()])
