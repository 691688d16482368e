"""The migration checker: it refuses the statements that would rewrite or lock a large table,
or break the running version, and lets their safe forms through."""

import shutil
import sys
import textwrap
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings

from syncconsole.migration_safety import (
    RULES,
    _dropped_defaults,
    check_migration,
    check_project,
    checked_migrations,
    migration_lock_timeout,
    partitioned_tables,
    statement_rules,
)
from syncconsole.migrations_reviewed import REVIEWED

# Reading the SQL of a migration that builds an index CONCURRENTLY needs a connection outside
# a transaction, as migrate does.
on_committed_data = pytest.mark.django_db(transaction=True)

PARTITIONED = {"errors_syncerror"}


def rules_of(*sql: str, new_tables=()) -> list[str]:
    tables = set(new_tables)
    judged = [" ".join(s.split()) for s in sql]
    dropped = _dropped_defaults(judged)
    found = []
    for statement in judged:
        found += statement_rules(statement, tables, PARTITIONED, dropped)
    return found


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ('CREATE INDEX "i" ON "errors_errorgroup" ("status")', "index-not-concurrent"),
        (
            'CREATE INDEX CONCURRENTLY "i" ON "errors_syncerror" ("status")',
            "index-on-partitioned-table",
        ),
        ('DROP INDEX IF EXISTS "i"', "index-not-concurrent"),
        ('ALTER TABLE "t" ADD COLUMN "u" uuid DEFAULT gen_random_uuid() NULL', "volatile-default"),
        ('ALTER TABLE "t" ADD COLUMN "n" bigserial', "column-rewrite"),
        ('ALTER TABLE "t" ADD COLUMN "n" integer NOT NULL', "not-null-without-db-default"),
        ('ALTER TABLE "t" ALTER COLUMN "n" TYPE bigint', "alter-column-type"),
        ('ALTER TABLE "t" ALTER COLUMN "n" SET NOT NULL', "set-not-null"),
        ('ALTER TABLE "t" ADD CONSTRAINT "c" CHECK ("n" > 0)', "constraint-not-valid"),
        (
            'ALTER TABLE "t" ADD CONSTRAINT "f" FOREIGN KEY ("g") REFERENCES "g" ("id")',
            "constraint-not-valid",
        ),
        (
            'ALTER TABLE "t" ADD COLUMN "g" bigint NULL REFERENCES "g" ("id")',
            "constraint-not-valid",
        ),
        ('ALTER TABLE "t" ADD COLUMN "n" smallint NULL CHECK ("n" >= 0)', "constraint-not-valid"),
        ('ALTER TABLE "t" ADD CONSTRAINT "u" UNIQUE ("n")', "unique-without-index"),
        ('ALTER TABLE "t" DROP COLUMN "n" CASCADE', "drop-or-rename"),
        ('ALTER TABLE "t" RENAME COLUMN "n" TO "m"', "drop-or-rename"),
        ('DROP TABLE "t" CASCADE', "drop-or-rename"),
        ('VACUUM FULL "t"', "table-rewrite"),
        ('ALTER TABLE "t" SET TABLESPACE "slow"', "table-rewrite"),
        ("UPDATE errors_syncerror SET status = 'open'", "data-sql"),
        ("DO $$ BEGIN PERFORM 1; END $$", "data-sql"),
    ],
)
def test_unsafe_statements_are_refused(sql, rule):
    assert rule in RULES
    assert rules_of(sql) == [rule]


@pytest.mark.parametrize(
    "sql",
    [
        'CREATE INDEX CONCURRENTLY "i" ON "errors_errorgroup" ("status")',
        'CREATE INDEX IF NOT EXISTS "i" ON ONLY "errors_syncerror" ("status")',
        'ALTER INDEX "i" ATTACH PARTITION "i_p20261206"',
        'DROP INDEX CONCURRENTLY IF EXISTS "i"',
        'ALTER TABLE "t" ADD COLUMN "n" integer NULL',
        'ALTER TABLE "t" ADD COLUMN "n" integer DEFAULT 0 NOT NULL',
        'ALTER TABLE "t" ADD COLUMN "s" varchar(10) DEFAULT \'open\' NOT NULL',
        'ALTER TABLE "t" ADD COLUMN "at" timestamptz DEFAULT (STATEMENT_TIMESTAMP()) NULL',
        'ALTER TABLE "t" ADD CONSTRAINT "c" CHECK ("n" > 0) NOT VALID',
        'ALTER TABLE "t" VALIDATE CONSTRAINT "c"',
        'ALTER TABLE "t" ADD CONSTRAINT "u" UNIQUE USING INDEX "u_idx"',
        'ALTER TABLE "t" ALTER COLUMN "n" DROP NOT NULL',
        'ALTER TABLE "t" DROP CONSTRAINT "c"',
        "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " UPDATE t SET n = 1; RETURN NULL; END $$",
        "COMMENT ON COLUMN t.n IS 'UPDATE t SET n = 1; DROP TABLE t'",
    ],
)
def test_safe_forms_pass(sql):
    assert rules_of(sql) == []


def test_a_table_created_by_the_same_migration_may_be_built_at_will():
    assert (
        rules_of(
            'CREATE TABLE "fresh" ("id" bigint NOT NULL PRIMARY KEY)',
            'CREATE INDEX "fresh_i" ON "fresh" ("id")',
            'ALTER TABLE "fresh" ADD CONSTRAINT "f" FOREIGN KEY ("id") REFERENCES "g" ("id")',
        )
        == []
    )


def test_a_python_default_dropped_after_the_column_is_added_is_refused():
    """Django fills a NOT NULL column from its Python default and drops it at once: the
    running version's inserts, which do not name the column, would then fail."""
    assert rules_of(
        'ALTER TABLE "t" ADD COLUMN "n" integer DEFAULT 0 NOT NULL',
        'ALTER TABLE "t" ALTER COLUMN "n" DROP DEFAULT',
    ) == ["not-null-without-db-default"]


@on_committed_data
def test_the_project_s_migrations_are_safe():
    """Fails as soon as a migration added to any app breaks a rule (how to write the safe
    form: docs/operations/upgrades.md)."""
    findings = check_project(connection)
    assert not findings, "\n".join(map(str, findings))


@on_committed_data
def test_the_reviewed_migrations_exist():
    """A name mistyped in migrations_reviewed.py would leave its app's history unreviewed."""
    loader = MigrationLoader(connection)
    assert all((app, name) in loader.graph.nodes for app, name in REVIEWED.items())
    for app, name in checked_migrations(loader):
        assert app not in REVIEWED or name > REVIEWED[app]


PLANTED_NAME = "0999_planted"
PLANTED = """
from django.db import migrations, models

from syncconsole.migration_ops import AddIndexToPartitions


class Migration(migrations.Migration):
    atomic = {atomic}
    dependencies = [("errors", "{parent}")]
    operations = {operations}
"""

UNSAFE = """[
        migrations.AddField("syncerror", "planted_flag", models.BooleanField(default=False)),
        migrations.AddIndex(
            "errorgroup", models.Index(fields=["status", "id"], name="planted_group_status")
        ),
    ]"""

SAFE = """[
        migrations.AddField("syncerror", "planted_note", models.TextField(null=True)),
        migrations.AddField("syncerror", "planted_flag", models.BooleanField(db_default=False)),
        AddIndexToPartitions(
            "syncerror", models.Index(fields=["planted_flag", "id"], name="planted_flag_idx")
        ),
    ]"""


@pytest.fixture
def planted(tmp_path):
    """Writes a migration after the last of errors into a copy of errors' migrations module,
    which the migration loader then reads in place of the real one."""
    sys.path.insert(0, str(tmp_path))
    with ExitStack() as stack:

        def plant(operations: str, atomic: bool = True) -> str:
            package = f"planted_{uuid.uuid4().hex[:8]}"
            folder = tmp_path / package
            shutil.copytree(Path(settings.BASE_DIR) / "errors" / "migrations", folder)
            (folder / f"{PLANTED_NAME}.py").write_text(
                textwrap.dedent(PLANTED).format(
                    atomic=atomic, parent=REVIEWED["errors"], operations=operations
                )
            )
            stack.enter_context(override_settings(MIGRATION_MODULES={"errors": package}))
            return PLANTED_NAME

        yield plant
    sys.path.remove(str(tmp_path))


@on_committed_data
def test_a_planted_unsafe_migration_fails_the_check_naming_it_and_the_safe_way(planted, capsys):
    name = planted(UNSAFE)
    findings = check_project(connection)
    assert {(f.migration, f.rule) for f in findings} == {
        (f"errors.{name}", "not-null-without-db-default"),
        (f"errors.{name}", "index-not-concurrent"),
    }
    with pytest.raises(CommandError, match="2 unsafe statement"):
        call_command("check_migrations")
    printed = capsys.readouterr().err
    assert f"errors.{name}: Add field planted_flag to syncerror" in printed
    assert 'ADD COLUMN "planted_flag" boolean DEFAULT false NOT NULL' in printed
    assert "db_default" in printed
    assert 'CREATE INDEX "planted_group_status" ON "errors_errorgroup"' in printed
    assert "AddIndexConcurrently" in printed


@on_committed_data
def test_a_planted_safe_migration_passes(planted):
    planted(SAFE, atomic=False)
    assert check_project(connection) == []


@on_committed_data
def test_a_waiver_must_say_why(planted):
    planted(UNSAFE)
    loader = MigrationLoader(connection)
    migration = loader.graph.nodes[("errors", PLANTED_NAME)]
    migration.reviewed_unsafe = {"index-not-concurrent": "errorgroup holds a few thousand rows"}
    state = loader.project_state(("errors", PLANTED_NAME), at_end=False)
    found = check_migration(migration, state, connection, partitioned_tables(connection))
    assert [f.rule for f in found] == ["not-null-without-db-default"]
    migration.reviewed_unsafe = {"index-not-concurrent": " "}
    with pytest.raises(ValueError, match="must say why"):
        check_migration(migration, state, connection, partitioned_tables(connection))


@on_committed_data
@override_settings(MIGRATION_LOCK_TIMEOUT=1234)
def test_migrate_waits_for_locks_only_as_long_as_the_setting_says(monkeypatch):
    from django.core.management.commands import migrate

    seen = []

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            seen.append(cursor.fetchone()[0])

    monkeypatch.setattr(migrate.Command, "handle", handle)
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        after = cursor.fetchone()[0]
    assert seen == ["1234ms"]
    assert after == "0"


@on_committed_data
def test_the_lock_timeout_is_a_no_op_at_zero():
    with migration_lock_timeout(connection, 0), connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"
