"""The migrations the checker lets through, run against a large partitioned entries table while
another connection writes and reads it: no table is rewritten (its file, pg_class.relfilenode,
stays the same) and no statement on either side waits for a lock longer than its lock_timeout.

The plan is the project's migrations after the reviewed ones (syncconsole.migrations_reviewed:
each new migration joins it by itself), then a planted one of every safe form the upgrade notes
teach, on the entries."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import OperationalError, connection, connections, migrations, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.db.models.functions import Now, Random
from django.utils import timezone

from errors import partitions
from syncconsole.migration_ops import AddIndexToPartitions
from syncconsole.migration_safety import (
    check_migration,
    checked_migrations,
    migration_lock_timeout,
    partitioned_tables,
)
from syncconsole.migrations_reviewed import REVIEWED

pytestmark = pytest.mark.django_db(transaction=True)

DAYS = 5
ROWS = 200_000
# The traffic's statements give up when a lock holds them longer than this: a migration that
# holds the table (a rewrite, a scan under an exclusive lock) fails the test.
TRAFFIC_LOCK_TIMEOUT_MS = 1000

FILL = """
INSERT INTO {table} (id, created_at, source_app, source_entity, source_record_id,
    source_url, destination_app, destination_entity, destination_record_id, destination_url,
    message, detail, category, status, status_note, integration, attempts)
SELECT nextval(pg_get_serial_sequence('errors_syncerror', 'id')),
    %(start)s::timestamptz + (n %% 80000) * interval '1 second',
    'Business Central', 'customers', 'C' || (n %% 50), '', 'Dynamics 365 Sales', 'accounts',
    'A' || (n %% 50), '', 'Phone No. too long', '', 'validation', 'open', '', '', 1
FROM generate_series(1, %(rows)s) AS n
"""
TRAFFIC_INSERT = """
INSERT INTO errors_syncerror (id, created_at, source_app, source_entity, source_record_id,
    source_url, destination_app, destination_entity, destination_record_id, destination_url,
    message, detail, category, status, status_note, integration, attempts)
VALUES (nextval(pg_get_serial_sequence('errors_syncerror', 'id')), now(), 'Business Central',
    'customers', 'C1', '', 'Dynamics 365 Sales', 'accounts', 'A1', '', 'traffic', '',
    'validation', 'open', '', '', 1)
"""


def table_files() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relfilenode FROM pg_class WHERE relkind = 'r'"
            " AND relnamespace = current_schema()::regnamespace"
        )
        return dict(cursor.fetchall())


@pytest.fixture
def large_entries():
    """ROWS entries over DAYS day partitions of a year ago, beside the days of the window.
    Each day is filled as a table of its own and attached, which builds its indexes in one go
    (ten times quicker than filling them row by row) and fires none of the figures' triggers:
    the test is about the table's size, not its figures."""
    today = timezone.localdate()
    partitions.ensure_partitions([today])  # the traffic's entries
    days = [today - timedelta(days=400 + n) for n in range(DAYS)]
    with connection.cursor() as cursor:
        for day in days:
            name = partitions.partition_name(day)
            low, high = partitions.day_bounds(day)
            cursor.execute(f"CREATE TABLE {name} (LIKE errors_syncerror INCLUDING DEFAULTS)")
            cursor.execute(FILL.format(table=name), {"start": low, "rows": ROWS // DAYS})
            cursor.execute(
                f"ALTER TABLE errors_syncerror ATTACH PARTITION {name}"
                " FOR VALUES FROM (%s) TO (%s)",
                [low, high],
            )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE " + ", ".join(partitions.partition_name(d) for d in days))


class Traffic(threading.Thread):
    """Another connection writing an entry and reading the newest ones, in short
    transactions, over and over, as the workers and the pages do."""

    def __init__(self):
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.migrating = threading.Event()
        self.rounds_while_migrating = 0
        self.errors: list[BaseException] = []

    def run(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = {TRAFFIC_LOCK_TIMEOUT_MS}")
            while not self.done.is_set():
                with connection.cursor() as cursor:
                    cursor.execute("BEGIN")
                    cursor.execute(TRAFFIC_INSERT)
                    cursor.execute(
                        "SELECT id FROM errors_syncerror ORDER BY created_at DESC, id DESC LIMIT 50"
                    )
                    cursor.execute("COMMIT")
                if self.migrating.is_set():
                    self.rounds_while_migrating += 1
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.errors.append(error)
        finally:
            connections.close_all()


def planted(parent: tuple[str, str], operations, atomic: bool) -> migrations.Migration:
    migration = migrations.Migration("0999_planted", "errors")
    migration.dependencies = [parent]
    migration.operations = operations
    migration.atomic = atomic
    return migration


def errors_leaf(executor) -> tuple[str, str]:
    return max(node for node in executor.loader.graph.leaf_nodes() if node[0] == "errors")


def run_plan(extra: migrations.Migration) -> tuple[Traffic, set[str]]:
    """Takes the checked migrations back, then runs them and `extra` forward again under
    traffic and the migration lock timeout; returns the traffic and the tables rewritten."""
    executor = MigrationExecutor(connection)
    checked = checked_migrations(executor.loader)
    executor.migrate([(app, REVIEWED.get(app)) for app in {app for app, _ in checked}])
    executor = MigrationExecutor(connection)
    executor.loader.graph.add_node(("errors", extra.name), extra)
    executor.loader.graph.add_dependency(extra, ("errors", extra.name), extra.dependencies[0])
    state = executor.loader.project_state(extra.dependencies[0], at_end=True)
    assert check_migration(extra, state, connection, partitioned_tables(connection)) == []
    before = table_files()
    traffic = Traffic()
    traffic.start()
    try:
        traffic.migrating.set()
        with migration_lock_timeout(connection, settings.MIGRATION_LOCK_TIMEOUT):
            executor.migrate(executor.loader.graph.leaf_nodes())
        traffic.migrating.clear()
    finally:
        traffic.done.set()
        traffic.join()
    after = table_files()
    rewritten = {table for table, node in before.items() if after.get(table, node) != node}
    return traffic, rewritten


def take_back(extra: migrations.Migration) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.graph.add_node(("errors", extra.name), extra)
    executor.loader.graph.add_dependency(extra, ("errors", extra.name), extra.dependencies[0])
    executor.migrate([extra.dependencies[0]])


SAFE_FORMS = [
    migrations.AddField("syncerror", "planted_note", models.TextField(null=True)),
    migrations.AddField("syncerror", "planted_flag", models.BooleanField(db_default=False)),
    migrations.AddField("syncerror", "planted_seen_at", models.DateTimeField(db_default=Now())),
    AddIndexToPartitions(
        "syncerror", models.Index(fields=["planted_flag", "id"], name="planted_flag_idx")
    ),
    migrations.RunSQL(
        'ALTER TABLE "errors_syncerror" ADD CONSTRAINT "planted_note_short"'
        ' CHECK (length("planted_note") < 1000) NOT VALID',
        'ALTER TABLE "errors_syncerror" DROP CONSTRAINT "planted_note_short"',
    ),
    migrations.RunSQL(
        'ALTER TABLE "errors_syncerror" VALIDATE CONSTRAINT "planted_note_short"',
        migrations.RunSQL.noop,
    ),
]


def test_the_checked_migrations_run_under_traffic_without_a_rewrite_or_a_long_lock(
    large_entries,
):
    executor = MigrationExecutor(connection)
    extra = planted(errors_leaf(executor), SAFE_FORMS, atomic=False)
    try:
        traffic, rewritten = run_plan(extra)
    finally:
        take_back(extra)
    assert not traffic.errors, traffic.errors
    assert traffic.rounds_while_migrating > 0
    assert rewritten == set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM errors_syncerror")
        assert cursor.fetchone()[0] > ROWS


def test_a_rewrite_is_seen_by_the_test_and_refused_by_the_checker():
    """The other side of the test above: a column with a volatile default rewrites each day
    partition, which the comparison of their files sees, and which the checker refuses."""
    partitions.ensure_partitions([timezone.localdate()])
    executor = MigrationExecutor(connection)
    unsafe = planted(
        errors_leaf(executor),
        [migrations.AddField("syncerror", "planted_rank", models.FloatField(db_default=Random()))],
        atomic=True,
    )
    state = executor.loader.project_state(unsafe.dependencies[0], at_end=True)
    found = check_migration(unsafe, state, connection, partitioned_tables(connection))
    assert [finding.rule for finding in found] == ["volatile-default"]
    before = table_files()
    executor.loader.graph.add_node(("errors", unsafe.name), unsafe)
    executor.loader.graph.add_dependency(unsafe, ("errors", unsafe.name), unsafe.dependencies[0])
    try:
        executor.migrate([("errors", unsafe.name)])
        after = table_files()
    finally:
        take_back(unsafe)
    day = partitions.partition_name(timezone.localdate())
    assert after[day] != before[day]


def test_a_migration_behind_a_long_transaction_gives_up_at_the_lock_timeout():
    """A reader that keeps its transaction open holds a lock the migration needs: migrate's
    statement gives up after MIGRATION_LOCK_TIMEOUT instead of queueing every later query of
    the table behind it, and nothing of the migration stays."""
    holding, release = threading.Event(), threading.Event()

    def long_reader():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM errors_errorgroup")
                holding.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    reader = threading.Thread(target=long_reader, daemon=True)
    reader.start()
    assert holding.wait(timeout=60)
    executor = MigrationExecutor(connection)
    blocked = planted(
        errors_leaf(executor),
        [migrations.AddField("errorgroup", "planted_note", models.TextField(null=True))],
        atomic=True,
    )
    executor.loader.graph.add_node(("errors", blocked.name), blocked)
    executor.loader.graph.add_dependency(blocked, ("errors", blocked.name), blocked.dependencies[0])
    try:
        with (
            pytest.raises(OperationalError, match="lock timeout"),
            migration_lock_timeout(connection, 50),
        ):
            executor.migrate([("errors", blocked.name)])
    finally:
        release.set()
        reader.join()
    assert MigrationRecorder(connection).applied_migrations().get(("errors", blocked.name)) is None
    with connection.cursor() as cursor:
        columns = [
            c.name
            for c in connection.introspection.get_table_description(cursor, "errors_errorgroup")
        ]
    assert "planted_note" not in columns
