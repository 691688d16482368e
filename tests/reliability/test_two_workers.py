"""Two workers, each given a job of the same mapping, never run them at once: the second
finds the mapping's lock taken and tries again once the first is done."""

import pytest

from couplings.models import Coupling
from demo.models import CrmAccount
from sync.models import SyncJob
from sync.services import request_sync
from syncconsole import task_routes
from tests.conftest import CeleryProcess, wait_until

from .fixtures_apps import FaultProxy, point_at

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def second_worker(celery_worker, celery_queue):
    worker = CeleryProcess(
        "worker",
        f"{celery_queue}-second",
        [
            "--pool=solo",
            "-Q",
            ",".join(task_routes.queue_names(celery_queue)),
            "-n",
            "second@%h",
            "--without-gossip",
            "--without-mingle",
            "--prefetch-multiplier=1",
            "--loglevel=INFO",
        ],
    )
    try:
        worker.wait_for_log("ready.")
        yield worker
    finally:
        worker.stop()


def test_two_workers_never_run_two_jobs_of_one_mapping_at_once(
    demo_apps, celery_worker, second_worker
):
    proxy = FaultProxy(demo_apps.base_url)

    def logs() -> str:
        return celery_worker.log_path.read_text() + second_worker.log_path.read_text()

    try:
        point_at(demo_apps.connection, proxy, demo_apps.base_url, timeout=120)
        # The first job's read of the ERP waits until the test lets it go.
        proxy.fault("held", r"/customers$", method="GET", times=1)
        mapping = demo_apps.mapping("CUSTOMER")
        first = request_sync(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)
        wait_until(lambda: proxy.count(r"/customers$") == 1, timeout=60, message=logs())
        # A second job queued behind the running one (as a retry is).
        second = request_sync(
            mapping,
            kind=SyncJob.Kind.FULL,
            trigger=SyncJob.Trigger.RETRY,
            allow_behind_running=True,
        )
        # The other worker takes it, finds the mapping's lock taken and tries again later.
        wait_until(lambda: "retry: Retry in" in logs(), 60, message=logs())
        second.refresh_from_db()
        assert second.status == SyncJob.Status.QUEUED
        proxy.let_go()

        def both_finished():
            return all(job.is_finished for job in SyncJob.objects.filter(mapping=mapping))

        wait_until(both_finished, timeout=90, message=logs())
    finally:
        proxy.stop()

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == SyncJob.Status.SUCCEEDED
    assert second.started_at >= first.finished_at
    assert (first.inserted, second.inserted) == (10, 0)
    numbers = list(CrmAccount.objects.values_list("account_number", flat=True))
    assert len(numbers) == len(set(numbers))
    for side in ("source_record_id", "destination_record_id"):
        ids = list(Coupling.objects.filter(mapping=mapping).values_list(side, flat=True))
        assert len(ids) == len(set(ids)) == 11
