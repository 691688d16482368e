"""A full job shared out to page passes, run by two real Celery workers at once: the job's
worker runs one range and waits, the other worker runs the other, and together they write
what one pass writes."""

import socket
import uuid
from collections import Counter

import pytest

from couplings.models import Coupling
from demo.models import CrmAccount, DemoFault
from sync.models import PageShare, SyncJob
from sync.services import request_sync
from syncconsole import task_routes
from syncconsole.celery import app as celery_app
from tests.conftest import CeleryProcess, private_queues, wait_until, worker_is_idle

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_workers(transactional_db):
    """Two workers of their own on the sync queue of the test's own queues (no other test's
    work left in them); the test sends to them. Stopped, and the queues emptied, before the
    database is."""
    base = f"syncconsole-shares-{uuid.uuid4().hex[:10]}"
    workers = []
    try:
        with private_queues(base):
            for number in (1, 2):
                worker = CeleryProcess(
                    "worker",
                    base,
                    [
                        "--pool=solo",
                        "-Q",
                        task_routes.queue_name(base, task_routes.SYNC),
                        f"--hostname={base}-{number}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel=INFO",
                    ],
                    name=f"worker-{number}",
                )
                worker.node = f"{base}-{number}@{socket.gethostname()}"
                workers.append(worker)
            for worker in workers:
                worker.wait_for_log("ready.")
            yield workers
            for worker in workers:
                wait_until(lambda w=worker: worker_is_idle(w.node), timeout=30)
    finally:
        for worker in workers:
            worker.stop()
        with celery_app.connection_for_write() as connection:
            for queue in task_routes.queue_names(base):
                connection.default_channel.queue_purge(queue)


def finished(job: SyncJob):
    def check():
        job.refresh_from_db()
        return job.is_finished

    return check


def test_two_workers_share_a_full_job_out_and_write_each_record_once(demo_apps, two_workers):
    connection = demo_apps.connection
    for side in ("source", "destination"):
        getattr(connection, f"{side}_settings")["page_passes"] = 2
    connection.save()
    # The ERP answers slowly, so that the job's worker is still on its own range when the
    # other worker takes the second one.
    demo_apps.fault("erp", DemoFault.Mode.SLOW, entity="customers", delay=1)

    job = request_sync(
        demo_apps.mapping("CUSTOMER"), kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER
    )
    wait_until(finished(job), timeout=90, message=two_workers[0].log_path.read_text())

    # What one pass writes (tests/sync/test_worker.py): ten created, the one in SEK refused.
    assert (job.status, job.inserted, job.failed) == (SyncJob.Status.SUCCEEDED, 10, 1), job.message
    numbers = Counter(CrmAccount.objects.values_list("account_number", flat=True))
    assert CrmAccount.objects.count() == 11 and max(numbers.values()) == 1
    assert Coupling.objects.filter(mapping__name="CUSTOMER").count() == 11
    shares = list(PageShare.objects.filter(job=job))
    assert {share.status for share in shares} == {PageShare.Status.SUCCEEDED}
    assert sum(share.records_read for share in shares) == job.records_read
    sent = [share for share in shares if share.direction == "to_destination"]
    assert len({share.worker for share in sent}) == 2, [s.worker for s in sent]
