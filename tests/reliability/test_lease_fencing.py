"""A job whose database session is ended while it waits on a slow app loses its mapping's
lock; a second job of the mapping starts on another worker. When the first goes on, it writes
nothing more: not a coupling, an entry, a count, a watermark nor its own status."""

import re

import pytest
from django.db import connection

from couplings.models import Coupling
from errors.models import SyncError
from sync.engine import LOCK_NAMESPACE, WORKER_LOST
from sync.models import SyncJob, TableMapping
from sync.services import request_sync
from syncconsole import task_routes
from tests.conftest import CeleryProcess, wait_until

from .fixtures_apps import FaultProxy, point_at

CREATE_MULTIPLE = r"/accounts/Microsoft\.Dynamics\.CRM\.CreateMultiple$"

pytestmark = [pytest.mark.worker, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


TASK_RETURNED = re.compile(r"Task sync\.run_sync_job\[[0-9a-f-]+\] succeeded in")


@pytest.fixture
def second_worker(celery_worker, celery_queue):
    worker = CeleryProcess(
        "worker",
        f"{celery_queue}-lease",
        [
            "--pool=solo", "-Q", ",".join(task_routes.queue_names(celery_queue)), "-n",
            "lease@%h", "--without-gossip",
            "--without-mingle", "--prefetch-multiplier=1", "--loglevel=INFO",
        ],
    )  # fmt: skip
    try:
        worker.wait_for_log("ready.")
        yield worker
    finally:
        worker.stop()


def lock_holder(mapping_id: int) -> int | None:
    """The database session that holds the mapping's advisory lock (its running job's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [LOCK_NAMESPACE, mapping_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def what_the_jobs_wrote(mapping: TableMapping) -> dict:
    mapping.refresh_from_db()
    return {
        "couplings": sorted(
            Coupling.objects.filter(mapping=mapping).values_list(
                "pk",
                "source_record_id",
                "destination_record_id",
                "last_synced_to_destination_at",
                "last_job_to_destination",
                "source_seen_at",
            )
        ),
        "jobs": sorted(
            SyncJob.objects.filter(mapping=mapping).values_list(
                "pk", "status", "message", "inserted", "modified", "failed", "finished_at"
            )
        ),
        "entries": SyncError.objects.filter(mapping=mapping).count(),
        "watermarks": (mapping.source_synced_until, mapping.destination_synced_until),
    }


def test_a_job_that_lost_its_lease_writes_nothing_after_a_newer_job_started(
    demo_apps, celery_worker, second_worker
):
    proxy = FaultProxy(demo_apps.base_url)

    def logs() -> str:
        return celery_worker.log_path.read_text() + second_worker.log_path.read_text()

    try:
        point_at(demo_apps.connection, proxy, demo_apps.base_url, timeout=120)
        # The first job's create in the CRM waits until the test lets it go.
        proxy.fault("held", CREATE_MULTIPLE, method="POST", times=1)
        mapping = demo_apps.mapping("CUSTOMER")
        first = request_sync(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)
        wait_until(lambda: proxy.count(CREATE_MULTIPLE) == 1, timeout=60, message=logs())

        # Its database session ends (a fail-over, a network cut, an administrator): the lock
        # goes with it, while the job still waits on the app.
        holder = wait_until(lambda: lock_holder(mapping.pk), timeout=10, message=logs())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [holder])
        wait_until(lambda: lock_holder(mapping.pk) is None, timeout=10, message=logs())

        second = request_sync(
            mapping,
            kind=SyncJob.Kind.FULL,
            trigger=SyncJob.Trigger.USER,
            allow_behind_running=True,
        )
        wait_until(
            lambda: SyncJob.objects.get(pk=second.pk).is_finished, timeout=60, message=logs()
        )
        second.refresh_from_db()
        assert second.status == SyncJob.Status.SUCCEEDED, second.message
        before = what_the_jobs_wrote(mapping)

        # The first job gets its answer and goes on.
        proxy.let_go()
        wait_until(lambda: "lost its lease" in logs(), timeout=60, interval=0.1, message=logs())
        # Both jobs' tasks have returned (read from the workers' logs: the server-less broker
        # of `make test` without a Redis answers no remote control).
        wait_until(lambda: len(TASK_RETURNED.findall(logs())) >= 2, timeout=30, message=logs())
    finally:
        proxy.stop()

    assert what_the_jobs_wrote(mapping) == before
    first.refresh_from_db()
    assert first.status == SyncJob.Status.INTERRUPTED
    # Marked so when the second job was asked for: its lock was free.
    assert first.message == WORKER_LOST
