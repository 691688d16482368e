from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from errors.models import SyncError, SyncErrorCleanup
from tests.factories import make_error

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("cleanup_sync_errors", *args, stdout=out)
    return out.getvalue()


def test_days_deletes_older_entries_and_records_it():
    make_error(age=timedelta(days=8))
    keep = make_error(age=timedelta(days=6))
    output = run("--days", "7")
    assert "Deleted 1 entries older than 7 days" in output
    assert list(SyncError.objects.values_list("pk", flat=True)) == [keep.pk]
    cleanup = SyncErrorCleanup.objects.get()
    assert cleanup.trigger == SyncErrorCleanup.Trigger.COMMAND
    assert cleanup.requested_by is None
    assert cleanup.deleted_count == 1


def test_all_deletes_everything():
    make_error(age=timedelta(days=8))
    make_error(age=timedelta(seconds=1))
    assert "Deleted 2 entries" in run("--all")
    assert SyncError.objects.count() == 0


def test_dry_run_only_counts():
    make_error(age=timedelta(days=8))
    make_error(age=timedelta(days=9), status="resolved")
    assert "Would delete 2 entries older than 7 days (1 of them still open)" in run(
        "--days", "7", "--dry-run"
    )
    assert SyncError.objects.count() == 2
    assert SyncErrorCleanup.objects.count() == 0


@pytest.mark.parametrize("args", [[], ["--days", "7", "--all"], ["--days", "0"], ["--days", "x"]])
def test_needs_exactly_one_valid_choice(args):
    make_error(age=timedelta(days=8))
    with pytest.raises((CommandError, SystemExit)):
        run(*args)
    assert SyncError.objects.count() == 1
