"""A Celery worker killed with SIGKILL in the middle of a sync job, over a Redis of the
test's own with a short visibility timeout: the job is marked interrupted, the entries it
wrote stay, and the job that goes on with it leaves no duplicate record or coupling."""

import os
import random
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from demo.seed import NOT_IN_THE_CRM, create_connection, create_records
from errors.models import SyncError
from sync import engine, services
from sync.models import SyncJob
from tests.conftest import wait_until

from .conftest import console_broker, env_on_test_db, queue_name, worker_command

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 50
VISIBILITY_TIMEOUT = 2


@pytest.fixture
def customers(live_server):
    """The demo apps with many ERP customers, read ten at a time and written one at a time,
    so that a full synchronization of CUSTOMER runs long enough to be killed."""
    create_records(random.Random(7), customers=CUSTOMERS)
    connection = create_connection(live_server.url)
    connection.source_settings.update({"page_size": 10, "max_retries": 2, "backoff_seconds": 0.05})
    connection.destination_settings.update(
        {"batch_size": 1, "max_retries": 2, "backoff_seconds": 0.05}
    )
    connection.save()
    return connection.mappings.get(name="CUSTOMER")


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def lock_released(mapping_id: int):
    """PostgreSQL has ended the killed worker's session, and with it the mapping's lock."""

    def check():
        with engine.mapping_lock(mapping_id) as acquired:
            return acquired

    return check


def written_midway(job: SyncJob):
    def check():
        job.refresh_from_db()
        assert not job.is_finished, "the job ended before the worker could be killed"
        return job.inserted >= 10 and SyncError.objects.filter(job=job).count() >= 2

    return check


def assert_no_duplicates(mapping) -> None:
    # The demo's CRM starts without SEK and NOK: their customers wait for them.
    expected = ErpCustomer.objects.exclude(currency_code__in=NOT_IN_THE_CRM).count()
    numbers = CrmAccount.objects.values("account_number").annotate(n=Count("pk"))
    assert [row for row in numbers if row["n"] > 1] == []
    assert CrmAccount.objects.count() == expected
    couplings = Coupling.objects.filter(mapping=mapping)
    for side in ("source_record_id", "destination_record_id"):
        assert not couplings.values(side).annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert couplings.count() == expected


def finished_successor(job: SyncJob, log):
    def check():
        successor = SyncJob.objects.filter(pk__gt=job.pk, mapping=job.mapping).first()
        return successor if successor and successor.is_finished else None

    return wait_until(check, timeout=120, message=log())


@pytest.mark.parametrize("killed", ["the whole worker", "the pool process running the job"])
def test_a_job_whose_worker_is_killed_is_interrupted_and_continued_without_duplicates(
    customers, private_redis, processes, killed
):
    queue = queue_name()
    env = env_on_test_db(
        CELERY_BROKER_URL=private_redis.url(),
        CELERY_QUEUE=queue,
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
    )
    pool = ["--pool=prefork", "--concurrency=1"]
    worker = processes.start("worker-killed", worker_command(queue, *pool), env)
    worker.wait_for_log("ready.")
    with console_broker(private_redis.url(), queue):
        job = services.request_sync(customers, kind=SyncJob.Kind.FULL, trigger="user")

    wait_until(written_midway(job), timeout=120, interval=0.05, message=worker.log_text())
    if killed == "the whole worker":
        worker.kill()
    else:
        # The pool process dies alone (as when the kernel's OOM killer picks it): the worker
        # hands the task's message back to the queue at once.
        [pool_process] = child_pids(worker.pid)
        os.kill(pool_process, signal.SIGKILL)
    entries_before = set(SyncError.objects.filter(job=job).values_list("pk", flat=True))
    job.refresh_from_db()
    assert job.status == SyncJob.Status.RUNNING and entries_before

    if killed == "the whole worker":
        wait_until(lock_released(customers.pk), timeout=30)
        # Redis hands the message out again once the visibility timeout has passed since it
        # was delivered (before the job started); a new worker starts after that.
        redelivery = job.started_at + timedelta(seconds=VISIBILITY_TIMEOUT + 1)
        wait_until(lambda: timezone.now() > redelivery, timeout=VISIBILITY_TIMEOUT + 5)
        worker = processes.start("worker-after-kill", worker_command(queue, *pool), env)
    successor = finished_successor(job, worker.log_text)

    job.refresh_from_db()
    assert job.status == SyncJob.Status.INTERRUPTED
    assert job.message == f"{engine.WORKER_LOST} Job #{successor.pk} goes on with it."
    assert (successor.status, successor.trigger, successor.kind) == (
        SyncJob.Status.SUCCEEDED,
        SyncJob.Trigger.RETRY,
        SyncJob.Kind.FULL,
    )
    assert entries_before <= set(SyncError.objects.values_list("pk", flat=True))
    assert SyncJob.objects.filter(mapping=customers).count() == 2
    assert_no_duplicates(customers)
    # The killed task's message was handed out again and acknowledged: nothing is left over.
    wait_until(
        lambda: (
            private_redis.command("HLEN", "unacked") == "0"
            and private_redis.command("LLEN", queue) == "0"
        ),
        timeout=60,
        message=worker.log_text(),
    )
    assert SyncJob.objects.filter(mapping=customers).count() == 2


def test_a_worker_that_starts_interrupts_the_jobs_left_running_and_goes_on_with_them(
    demo_apps, private_redis, processes
):
    mapping = demo_apps.mapping("CUSTOMER")
    # A job marked running whose worker is gone, and whose message was lost with it.
    abandoned = SyncJob.objects.create(
        mapping=mapping,
        kind=SyncJob.Kind.FULL,
        trigger=SyncJob.Trigger.USER,
        status=SyncJob.Status.RUNNING,
        started_at=timezone.now(),
    )
    queue = queue_name()
    env = env_on_test_db(CELERY_BROKER_URL=private_redis.url(), CELERY_QUEUE=queue)
    worker = processes.start("worker-start", worker_command(queue, "--pool=solo"), env)

    successor = finished_successor(abandoned, worker.log_text)
    abandoned.refresh_from_db()
    assert abandoned.status == SyncJob.Status.INTERRUPTED
    assert abandoned.message == f"{engine.WORKER_LOST} Job #{successor.pk} goes on with it."
    assert (successor.status, successor.trigger, successor.kind) == (
        SyncJob.Status.SUCCEEDED,
        SyncJob.Trigger.RETRY,
        SyncJob.Kind.FULL,
    )
    assert successor.inserted > 0
