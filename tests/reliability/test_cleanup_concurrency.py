"""Clean-ups that run beside each other, beside heavy ingestion and beside the creation of
new day partitions: each side in its own thread, process and database connection. None
fails or deadlocks, nothing newer than the cut-off goes, and the problems' figures equal a
recount afterwards."""

import itertools
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from errors import partitions, services
from errors.grouping import record_errors
from errors.models import Category, SyncError, SyncErrorCleanup
from errors.partitions import day_of, partition_days, partition_name
from tests.conftest import wait_until
from tests.errors.test_group_figures import assert_figures_right

pytestmark = pytest.mark.django_db(transaction=True)
worker = pytest.mark.worker

OLDER = reverse("errors:cleanup_confirm", args=["older_than"])
MESSAGES = [
    "The field Phone No. of record {n} cannot be '{n}': it must not be longer than 30.",
    "There is no exchange rate for currency DKK on 2026-01-{d:02d} (record {n}).",
    "The integration user has no privilege to create contact (record {n}).",
]
# Entries this much younger than the retention are kept by every clean-up of a test, however
# long it runs.
MARGIN = timedelta(minutes=30)
_numbers = itertools.count(1)


def entries(moments) -> list[SyncError]:
    """Unsaved entries at these moments, in three problems, naming a few records again and
    again (as a record that keeps failing does)."""
    made = []
    for moment in moments:
        n = next(_numbers)
        record = f"C{n % 17:05d}"
        made.append(
            SyncError(
                created_at=moment,
                message=MESSAGES[n % 3].format(n=n, d=n % 28 + 1),
                category=Category.VALIDATION,
                source_app="Business Central",
                source_entity="customers",
                source_record_id=record,
                source_url=f"https://erp.example.com/customers/{record}",
                destination_app="Dynamics 365 Sales",
                destination_entity="accounts",
                destination_record_id=f"A{n % 17:05d}",
                destination_url=f"https://crm.example.com/accounts/A{n % 17:05d}",
            )
        )
    return made


def write_history(days: int = 12, per_day: int = 24) -> None:
    """Entries spread over the last `days` days, the day that straddles the cut-off and the
    first moments of the retention included."""
    now = timezone.now()
    for day in range(days, -1, -1):
        step = timedelta(days=1) / per_day
        moments = [now - timedelta(days=day) + i * step for i in range(per_day)]
        record_errors(entries(m for m in moments if m < now))


class InThread(threading.Thread):
    """Runs `work` on a database connection of its own and keeps what it raised."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work = work
        self.error: BaseException | None = None
        self.result = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            connections.close_all()

    def outcome(self, timeout: float = 300):
        self.join(timeout)
        assert not self.is_alive(), "still running: a deadlock or a wait that never ends"
        if self.error is not None:
            raise self.error
        return self.result


def assert_only_the_old_entries_went(cutoff, kept_ids) -> None:
    remaining = set(SyncError.objects.values_list("pk", flat=True))
    assert set(kept_ids) <= remaining
    assert not SyncError.objects.filter(created_at__lt=cutoff).exists()
    assert_figures_right()


@worker
def test_two_clean_ups_at_once_from_the_console_and_the_schedule(
    staff_client, settings, celery_worker
):
    settings.SYNC_ERROR_CLEANUP_BATCH_SIZE = 4
    write_history()
    young = SyncError.objects.filter(
        created_at__gte=timezone.now() - timedelta(days=7) + MARGIN
    ).values_list("pk", flat=True)
    kept = set(young)
    total = SyncError.objects.count()
    # A reader of the entries table holds the days and their problems: both clean-ups get as
    # far as dropping the first day and wait there, then go on together.
    blocker = connections.create_connection("default")
    blocker.set_autocommit(False)
    with blocker.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM errors_syncerror")
        cursor.execute("SELECT id FROM errors_errorgroup ORDER BY fingerprint FOR UPDATE")
    from errors.tasks import delete_expired_sync_errors

    try:
        console = InThread(lambda: staff_client.post(OLDER, {"days": "7"}))
        console.start()
        delete_expired_sync_errors.delay()
        wait_until(
            lambda: SyncErrorCleanup.objects.filter(state="running").count() == 2,
            timeout=60,
            message="both clean-ups should be running",
        )
    finally:
        blocker.rollback()
        blocker.close()
    assert console.outcome().status_code == 302
    wait_until(
        lambda: SyncErrorCleanup.objects.filter(trigger="schedule", finished_at__isnull=False),
        timeout=120,
        message=celery_worker.log_path.read_text(),
    )

    cleanups = list(SyncErrorCleanup.objects.all())
    assert {c.trigger for c in cleanups} == {"console", "schedule"}
    assert all(c.state == SyncErrorCleanup.State.DONE for c in cleanups), [
        c.error_message for c in cleanups
    ]
    # Each entry was deleted once, by one of them.
    assert sum(c.deleted_count for c in cleanups) == total - SyncError.objects.count()
    assert_only_the_old_entries_went(max(c.cutoff for c in cleanups), kept)


def test_a_clean_up_during_heavy_ingestion(settings):
    settings.SYNC_ERROR_CLEANUP_BATCH_SIZE = 3
    write_history(per_day=30)
    kept = set(
        SyncError.objects.filter(
            created_at__gte=timezone.now() - timedelta(days=7) + MARGIN
        ).values_list("pk", flat=True)
    )
    started = threading.Event()
    done = threading.Event()

    def ingest() -> list[int]:
        written: list[int] = []
        while not done.is_set() or len(written) < 200:
            now = timezone.now()
            # Now, and days within the retention: the records and problems the clean-up
            # takes entries off at the same moment.
            moments = [now - timedelta(days=n % 6, minutes=n) for n in range(20)]
            written += [e.pk for e in record_errors(entries(moments))]
            started.set()
        return written

    writers = [InThread(ingest), InThread(ingest)]
    for writer in writers:
        writer.start()
    started.wait(60)

    def clean_up():
        try:
            return services.request_cleanup(days=7, trigger="command", run_in_background=False)
        finally:
            done.set()

    cleaner = InThread(clean_up)
    cleaner.start()
    cleanup = cleaner.outcome()
    ingested = [pk for writer in writers for pk in writer.outcome()]

    assert cleanup.state == SyncErrorCleanup.State.DONE
    assert cleanup.deleted_count > 0
    assert len(ingested) >= 400
    assert_only_the_old_entries_went(cleanup.cutoff, kept | set(ingested))


def test_a_clean_up_while_new_day_partitions_are_created(settings):
    settings.SYNC_ERROR_CLEANUP_BATCH_SIZE = 3
    write_history()
    kept = set(
        SyncError.objects.filter(
            created_at__gte=timezone.now() - timedelta(days=7) + MARGIN
        ).values_list("pk", flat=True)
    )
    today = day_of(timezone.now())
    ahead = [
        today + timedelta(days=n) for n in range(1, settings.SYNC_ERROR_PARTITION_DAYS_AHEAD + 1)
    ]
    with connection.cursor() as cursor:
        for day in ahead:
            cursor.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
    done = threading.Event()

    def create_ahead() -> int:
        created = 0
        for round_ in itertools.count():
            if done.is_set():
                return created
            created += len(partitions.create_partitions_ahead())
            # A day with nothing in it yet goes missing again, to be created by the next
            # round or by a writer that needs it first.
            day = ahead[round_ % len(ahead)]
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE errors_syncerror IN ACCESS EXCLUSIVE MODE")
                cursor.execute(
                    "SELECT EXISTS (SELECT 1 FROM errors_syncerror WHERE created_at >= %s "
                    "AND created_at < %s)",
                    list(partitions.day_bounds(day)),
                )
                if not cursor.fetchone()[0]:
                    cursor.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
            time.sleep(0.05)  # let the others at the table between rounds
        return created

    def write_ahead() -> list[int]:
        written: list[int] = []
        for round_ in range(15):
            # Both writers need the same new days at the same time.
            day = ahead[round_ % len(ahead)]
            start = partitions.day_bounds(day)[0]
            moments = [start + timedelta(hours=h, seconds=round_) for h in range(0, 24, 3)]
            written += [e.pk for e in record_errors(entries(moments))]
        return written

    creator = InThread(create_ahead)
    writers = [InThread(write_ahead), InThread(write_ahead)]
    creator.start()
    for writer in writers:
        writer.start()
    cleanup = services.request_cleanup(days=7, trigger="command", run_in_background=False)
    ingested = [pk for writer in writers for pk in writer.outcome()]
    done.set()
    assert creator.outcome() > 0

    assert cleanup.state == SyncErrorCleanup.State.DONE
    assert cleanup.deleted_count > 0
    assert len(ingested) == 2 * 15 * 8
    # Entries written while their day had no partition waited in the default one; the next
    # round moves them into it.
    partitions.create_partitions_ahead()
    assert set(ahead) <= set(partition_days())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT}")  # noqa: S608
        assert cursor.fetchone()[0] == 0
    assert_only_the_old_entries_went(cleanup.cutoff, kept | set(ingested))
