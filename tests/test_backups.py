"""A backup of a small seeded database restores, passes migrate --check and has the same
figures; a figure that differs fails loudly."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.services import record
from syncconsole import backups
from syncconsole.backups import BackupFailed, figures, pg_tool
from tests.factories import make_coupling, make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seeded():
    mapping = make_mapping()
    make_job(mapping)
    make_coupling(mapping)
    for n in range(6):
        make_error(mapping=mapping, message=f"Record {n % 2} failed", age=None)
    record("demo.seeded", "A small database to back up")


def test_the_backup_restores_with_the_same_figures(seeded, tmp_path, capsys):
    dump = tmp_path / "console.dump"
    call_command("backup_database", str(dump))
    said = capsys.readouterr().out
    assert "migrations complete" in said
    assert "(6 entries)" in said
    assert dump.stat().st_size > 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", ["%restore_check"])
        assert cursor.fetchall() == []
        mine = figures(cursor)
    assert mine["sum of errors_errorgroup.count"] == 6
    assert mine["rows in couplings_coupling"] == 1
    assert mine["rows in audit_auditevent"] >= 1


def test_a_restore_that_differs_fails_loudly(seeded, tmp_path, monkeypatch):
    """A problem's figure and a coupling changed in the restore, between pg_restore and the
    comparison (in place of migrate --check, which the test above runs): the command fails
    naming both."""

    def tamper(target):
        restored = target.connect()
        try:
            restored.autocommit = True
            with restored.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")
                cursor.execute("UPDATE errors_groupday SET entries = entries + 1")
                cursor.execute("DELETE FROM couplings_coupling")
        finally:
            restored.close()

    monkeypatch.setattr(backups, "migrate_check", tamper)
    with pytest.raises(CommandError) as failed:
        call_command("backup_database", str(tmp_path / "console.dump"))
    said = str(failed.value)
    assert "the restore differs from the source" in said
    assert "sum of errors_groupday.entries: 6 in the source, " in said
    assert "rows in couplings_coupling: 1 in the source, 0 restored" in said


def test_an_existing_database_is_never_restored_into(tmp_path):
    name = f"{connection.settings_dict['NAME']}_taken"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        with pytest.raises(CommandError, match="exists already"):
            call_command("backup_database", str(tmp_path / "x.dump"), restore_into=name)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{name}"')
    assert not (tmp_path / "x.dump").exists()


def test_the_tools_match_the_server():
    with pytest.raises(BackupFailed, match="no pg_dump of PostgreSQL 99"):
        pg_tool("pg_dump", 99)
