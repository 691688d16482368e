"""A worker of the sync queue runs sync jobs while triage work waits on its own queue: a
long clean-up, or a pile of them, never delays a sync."""

import socket
import uuid

import pytest

from errors.models import SyncErrorCleanup
from errors.services import request_cleanup
from sync.models import SyncJob
from sync.services import request_sync
from syncconsole import task_routes
from syncconsole.celery import app as celery_app
from tests.conftest import CeleryProcess, private_queues, wait_until
from tests.factories import make_error

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def base() -> str:
    """The CELERY_QUEUE of this test's own queues."""
    return f"syncconsole-kinds-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sync_worker(transactional_db, base):
    """A worker that consumes only the sync queue of the test's queues; the test sends to
    them. Stopped, and its queues emptied, before the database is."""
    worker = CeleryProcess(
        "worker",
        base,
        [
            "--pool=solo",
            "-Q",
            task_routes.queue_name(base, task_routes.SYNC),
            f"--hostname={base}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
    )
    worker.node = f"{base}@{socket.gethostname()}"
    try:
        with private_queues(base):
            worker.wait_for_log("ready.")
            yield worker
    finally:
        worker.stop()
        with celery_app.connection_for_write() as connection:
            for queue in task_routes.queue_names(base):
                connection.default_channel.queue_purge(queue)


def test_a_sync_job_runs_while_a_clean_up_waits_on_the_triage_queue(demo_apps, base, sync_worker):
    make_error()
    cleanup = request_cleanup(
        days=None, trigger=SyncErrorCleanup.Trigger.COMMAND, run_in_background=True
    )
    mapping = demo_apps.mapping("CUSTOMER")

    job = request_sync(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)

    def finished():
        job.refresh_from_db()
        return job.is_finished

    wait_until(finished, timeout=90, message=sync_worker.log_path.read_text())
    assert job.status == SyncJob.Status.SUCCEEDED
    # The clean-up went to the triage queue, which this worker does not consume.
    cleanup.refresh_from_db()
    assert cleanup.state == SyncErrorCleanup.State.QUEUED
    assert "Task errors.run_sync_error_cleanup[" not in sync_worker.log_path.read_text()
    triage = task_routes.queue_name(base, task_routes.TRIAGE)
    with celery_app.connection_for_write() as connection:
        assert connection.default_channel.queue_declare(triage, passive=True).message_count == 1
