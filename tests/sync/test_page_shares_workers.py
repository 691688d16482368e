"""A full job shared out to page passes, run by two real Celery workers at once: the job's
worker runs one range and waits, the other worker runs the other, and together they write
what one pass writes."""

import socket
from collections import Counter

import pytest

from couplings.models import Coupling
from demo.models import CrmAccount, DemoFault
from sync.models import PageShare, SyncJob
from sync.services import request_sync
from syncconsole import task_routes
from tests.conftest import CeleryProcess, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def second_worker(celery_worker, celery_queue):
    """Another worker on the session's sync queue, beside the session's worker."""
    name = f"second-{celery_queue}"
    worker = CeleryProcess(
        "worker",
        celery_queue,
        [
            "--pool=solo",
            "-Q",
            task_routes.queue_name(celery_queue, task_routes.SYNC),
            f"--hostname={name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        name="second-worker",
    )
    worker.node = f"{name}@{socket.gethostname()}"
    try:
        worker.wait_for_log("ready.")
        yield worker
    finally:
        worker.stop()


def finished(job: SyncJob):
    def check():
        job.refresh_from_db()
        return job.is_finished

    return check


def test_two_workers_share_a_full_job_out_and_write_each_record_once(
    demo_apps, celery_worker, second_worker
):
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
    logs = celery_worker.log_path.read_text
    wait_until(finished(job), timeout=90, message=logs())

    # What one pass writes (tests/sync/test_worker.py): ten created, the one in SEK refused.
    assert (job.status, job.inserted, job.failed) == (SyncJob.Status.SUCCEEDED, 10, 1), (
        job.message
    )
    numbers = Counter(CrmAccount.objects.values_list("account_number", flat=True))
    assert CrmAccount.objects.count() == 11 and max(numbers.values()) == 1
    assert Coupling.objects.filter(mapping__name="CUSTOMER").count() == 11
    shares = list(PageShare.objects.filter(job=job))
    assert {share.status for share in shares} == {PageShare.Status.SUCCEEDED}
    assert sum(share.records_read for share in shares) == job.records_read
    sent = [share for share in shares if share.direction == "to_destination"]
    assert len({share.worker for share in sent}) == 2, [s.worker for s in sent]
