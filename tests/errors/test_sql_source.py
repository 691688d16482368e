"""The functions and triggers in the database have one source, errors/sql: after `migrate` the
database holds exactly what the files say, each file is installed by one migration that names
its current text, and the zone the entries' days are counted in is checked against
TIME_ZONE."""

from types import SimpleNamespace

import pytest
from django.core.checks import Tags, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from errors.sql import Install, digest, read_sql, refuse_other_time_zone, sql_names
from errors.sql.drift import sql_drift

pytestmark = pytest.mark.django_db


def execute(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


def test_the_database_holds_what_errors_sql_says():
    assert sql_drift() == []


def test_a_trigger_function_changed_by_hand_shows_as_drift():
    # Deletes no longer take open entries off, as a hand-made "fix" might do.
    text = read_sql("errors_entries_deleted.sql")
    changed = text.replace("-count(*) FILTER (WHERE status = 'open') AS o", "0 AS o")
    assert changed != text
    execute(changed)
    [drift] = sql_drift()
    heading, _, *lines = drift.splitlines()
    assert heading == "function errors_entries_deleted() differs from errors/sql:"
    assert [" ".join(line.split()) for line in lines] == [
        "- -count(*) FILTER (WHERE status = 'open') AS o",
        "+ 0 AS o",
    ]


def test_a_trigger_changed_missing_or_added_by_hand_shows_as_drift():
    execute(
        "CREATE OR REPLACE TRIGGER errors_entries_deleted AFTER DELETE ON errors_syncerror "
        "FOR EACH STATEMENT EXECUTE FUNCTION errors_entries_deleted()"
    )
    execute("DROP TRIGGER errors_forget_deleted_sync_syncjob ON sync_syncjob")
    execute("CREATE FUNCTION errors_by_hand() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$")
    assert sql_drift() == [
        "trigger errors_forget_deleted_sync_syncjob ON sync_syncjob is in errors/sql but not "
        "in the database",
        "function errors_by_hand() is in the database but in no file of errors/sql",
        "trigger errors_entries_deleted ON errors_syncerror differs from errors/sql:\n"
        "@@ -1 +1 @@\n"
        "-CREATE TRIGGER errors_entries_deleted AFTER DELETE ON public.errors_syncerror "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "
        "errors_entries_deleted()\n"
        "+CREATE TRIGGER errors_entries_deleted AFTER DELETE ON public.errors_syncerror "
        "FOR EACH STATEMENT EXECUTE FUNCTION errors_entries_deleted()",
    ]


def test_looking_leaves_the_database_as_it_was():
    def state():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT to_regnamespace('errors_sql_expected'), current_setting('search_path'),"
                " current_setting('check_function_bodies')"
            )
            return cursor.fetchone()

    before = state()
    sql_drift()
    assert state() == before
    assert before[0] is None


def installs() -> dict[str, list[tuple[str, str]]]:
    """Each file of errors/sql: the migrations that install it from there, with the digest
    each names."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    found: dict[str, list[tuple[str, str]]] = {}
    for (app, name), migration in loader.disk_migrations.items():
        for operation in migration.operations:
            if isinstance(operation, Install):
                found.setdefault(operation.file, []).append((f"{app}.{name}", operation.digest))
    return found


def test_each_file_is_installed_by_one_migration_that_names_its_current_text():
    found = installs()
    assert sorted(found) == sql_names()
    for name, migrations in found.items():
        assert len(migrations) == 1, (
            f"errors/sql/{name} is installed from the file by {len(migrations)} migrations: "
            "only the newest may read it, the older ones keep a frozen copy "
            "(see errors/sql/__init__.py)"
        )
        [(migration, named)] = migrations
        assert named == digest(name), (
            f"errors/sql/{name} changed since {migration} installed it: keep the text it "
            f"installed in {migration} and install the file from a new migration naming "
            f"{digest(name)!r} (see errors/sql/__init__.py)"
        )


def time_zone_errors() -> list[str]:
    return [
        message.msg
        for message in run_checks(tags=[Tags.database], databases=["default"])
        if message.id == "syncconsole.E005"
    ]


def test_the_database_check_accepts_the_zone_the_days_are_counted_in():
    assert time_zone_errors() == []


def test_the_database_check_refuses_another_time_zone(settings):
    migrated_with = settings.TIME_ZONE
    settings.TIME_ZONE = "Pacific/Chatham" if migrated_with != "Pacific/Chatham" else "UTC"
    assert time_zone_errors() == [
        f"TIME_ZONE is {settings.TIME_ZONE!r}, but the database counts the entries' days in "
        f"{migrated_with!r} (errors_entry_day): its day partitions and the problems' day "
        "figures were made with that zone."
    ]
    # migrate runs it before it starts, and the migration installing the day stops anyway.
    with pytest.raises(SystemCheckError, match="syncconsole.E005"):
        call_command("migrate", skip_checks=False, verbosity=0)
    with pytest.raises(RuntimeError, match="Set TIME_ZONE back to the zone the database uses"):
        refuse_other_time_zone(None, SimpleNamespace(connection=connection))
