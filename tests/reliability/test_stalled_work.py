"""A worker killed with SIGKILL in the middle of a long clean-up, bulk action or coupling
run: a second worker finds it left running (its last batch is old and no worker holds it)
and it goes on from where it stopped, long before its message would come back from the
broker (an hour here)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from couplings import services as couplings
from couplings.models import Coupling, CouplingRun
from demo.models import ErpCustomer
from errors import partitions, services
from errors.grouping import record_errors
from errors.models import BulkAction, Category, Status, SyncError, SyncErrorCleanup
from tests.conftest import wait_until
from triage import bulk

from .conftest import console_broker, env_on_test_db, queue_name, worker_command
from .fixtures_apps import FaultProxy, point_at

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ENTRIES = 1500
STALLED_AFTER_SECONDS = 1
DAYS = 7
# What keeps the clean-up long enough to be killed in its middle: one entry a batch.
SLOW = {
    "SYNC_ERROR_CLEANUP_BATCH_SIZE": "1",
    "SYNC_ERROR_CLEANUP_BATCH_MS": "1",
    "SYNC_BULK_BATCH_SIZE": "2",
}


def old_entries(count: int) -> None:
    """Entries of the day that straddles the cut-off of a clean-up of the entries older than
    DAYS, all before it: the clean-up deletes them row by row (whole days before it are
    dropped at once, and Delete All empties today's partition at once)."""
    cutoff = timezone.now() - timedelta(days=DAYS)
    start, _ = partitions.day_bounds(partitions.day_of(cutoff))
    # A second before the cut-off at the latest: the clean-up takes its own a moment later.
    span = max(cutoff - start - timedelta(seconds=1), timedelta(0))
    record_errors(
        [
            SyncError(
                created_at=start + span * n / count,
                message=f"The field Phone No. of record {n} is too long.",
                category=Category.VALIDATION,
                source_app="Business Central",
                source_entity="customers",
                source_record_id=f"C{n:05d}",
                destination_app="Dynamics 365 Sales",
                destination_entity="accounts",
            )
            for n in range(count)
        ]
    )


def until_stalled(piece) -> None:
    """Until the killed worker's piece of work counts as stalled (its heartbeat older than
    WORK_STALLED_AFTER_SECONDS): the second worker looks for stalled work once, as it starts,
    and a worker that starts sooner leaves it to beat's next look, a minute later."""

    def quiet():
        piece.refresh_from_db()
        beat = piece.heartbeat_at or piece.started_at
        return timezone.now() - beat > timedelta(seconds=STALLED_AFTER_SECONDS)

    wait_until(quiet, timeout=10, interval=0.1)


def workers_env(redis_url: str, queue: str, **extra: str) -> dict:
    return env_on_test_db(
        CELERY_BROKER_URL=redis_url,
        CELERY_QUEUE=queue,
        CELERY_VISIBILITY_TIMEOUT="3600",
        WORK_STALLED_AFTER_SECONDS=str(STALLED_AFTER_SECONDS),
        **SLOW,
        **extra,
    )


def test_a_clean_up_whose_worker_is_killed_goes_on_in_another_worker(private_redis, processes):
    old_entries(ENTRIES)
    queue = queue_name()
    env = workers_env(private_redis.url(), queue)
    first = processes.start("worker-cleanup-1", worker_command(queue, "--pool=solo"), env)
    first.wait_for_log("ready.")
    with console_broker(private_redis.url(), queue):
        cleanup = services.request_cleanup(
            days=DAYS, trigger=SyncErrorCleanup.Trigger.CONSOLE, run_in_background=True
        )

    def deleted_midway():
        cleanup.refresh_from_db()
        assert not cleanup.is_finished, "the clean-up ended before the worker could be killed"
        return cleanup.deleted_count >= 50

    wait_until(deleted_midway, timeout=60, interval=0.05, message=first.log_text())
    first.kill()
    until_stalled(cleanup)

    second = processes.start("worker-cleanup-2", worker_command(queue, "--pool=solo"), env)

    def done():
        cleanup.refresh_from_db()
        return cleanup.is_finished

    wait_until(done, timeout=90, interval=0.2, message=second.log_text())
    assert cleanup.state == SyncErrorCleanup.State.DONE, cleanup.error_message
    assert cleanup.resumes == 1
    assert cleanup.deleted_count == ENTRIES
    assert not SyncError.objects.exists()


def test_a_bulk_action_whose_worker_is_killed_goes_on_in_another_worker(
    private_redis, processes, staff_user
):
    old_entries(ENTRIES // 3)
    ids = list(SyncError.objects.order_by("pk").values_list("pk", flat=True))
    queue = queue_name()
    env = workers_env(private_redis.url(), queue)
    first = processes.start("worker-bulk-1", worker_command(queue, "--pool=solo"), env)
    first.wait_for_log("ready.")
    with console_broker(private_redis.url(), queue):
        action = bulk.request_bulk_action(
            action=BulkAction.Action.IGNORE,
            user=staff_user,
            selected_ids=ids,
            run_in_background=True,
        )

    def processed_midway():
        action.refresh_from_db()
        assert not action.is_finished, "the action ended before the worker could be killed"
        return action.processed_count >= 20

    wait_until(processed_midway, timeout=60, interval=0.05, message=first.log_text())
    first.kill()
    until_stalled(action)

    second = processes.start("worker-bulk-2", worker_command(queue, "--pool=solo"), env)

    def done():
        action.refresh_from_db()
        return action.is_finished

    wait_until(done, timeout=90, interval=0.2, message=second.log_text())
    assert action.state == BulkAction.State.DONE, action.outcome
    assert action.resumes == 1
    assert action.processed_count == len(ids)
    assert not SyncError.objects.exclude(status=Status.IGNORED).exists()


def test_a_coupling_run_whose_worker_is_killed_goes_on_in_another_worker(
    demo_apps, private_redis, processes
):
    proxy = FaultProxy(demo_apps.base_url)
    try:
        point_at(demo_apps.connection, proxy, demo_apps.base_url, timeout=60)
        # The run's third search of the CRM waits: the worker is killed meanwhile.
        proxy.fault("held", r"/accounts$", method="GET", every=3, times=3)
        customers = [
            str(pk) for pk in ErpCustomer.objects.order_by("pk").values_list("pk", flat=True)
        ]
        queue = queue_name()
        env = workers_env(private_redis.url(), queue)
        first = processes.start("worker-run-1", worker_command(queue, "--pool=solo"), env)
        first.wait_for_log("ready.")
        with console_broker(private_redis.url(), queue):
            run = couplings.couple_by_match(
                demo_apps.mapping("CUSTOMER"),
                "source",
                customers,
                [couplings.Criterion("number", "accountnumber")],
                run_in_background=True,
            )
        wait_until(lambda: proxy.count(r"/accounts$", "GET") >= 3, 60, message=first.log_text())
        first.kill()
        run.refresh_from_db()
        assert run.state == CouplingRun.State.RUNNING and 0 < len(run.results) < len(customers)
        until_stalled(run)

        second = processes.start("worker-run-2", worker_command(queue, "--pool=solo"), env)

        def done():
            run.refresh_from_db()
            return run.is_finished

        wait_until(done, timeout=90, interval=0.2, message=second.log_text())
    finally:
        proxy.stop()
    assert run.state == CouplingRun.State.DONE, run.message
    assert run.resumes == 1
    assert [result["record_id"] for result in run.results] == customers
    sources = list(Coupling.objects.values_list("source_record_id", flat=True))
    assert len(sources) == len(set(sources))
