"""Two requests for one mapping at the same moment queue one job and refuse the other
clearly; two jobs of one mapping never run at once (PostgreSQL's advisory lock per mapping),
so the records are written and coupled once."""

import threading

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from couplings.models import Coupling
from demo.models import CrmAccount
from sync import engine
from sync.models import SyncJob
from sync.services import JobRefused, create_job
from syncconsole import task_routes
from syncconsole.celery import app as celery_app
from tests.conftest import wait_until

from .fixtures_apps import FaultProxy, InThread, point_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.over_http]


def test_two_requests_at_once_queue_one_job_and_refuse_the_other(demo_apps):
    mapping = demo_apps.mapping("CUSTOMER")
    together = threading.Barrier(2)

    def request():
        together.wait(30)
        return create_job(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)

    requests = [InThread(request).start() for _ in range(2)]
    for thread in requests:
        thread.join()

    queued = SyncJob.objects.get(mapping=mapping)
    assert queued.status == SyncJob.Status.QUEUED
    assert sorted(type(t.error).__name__ for t in requests) == ["JobRefused", "NoneType"]
    (refused,) = [t.error for t in requests if t.error is not None]
    assert isinstance(refused, JobRefused) and refused.job == queued
    assert str(refused) == (
        f"A job for CUSTOMER is already queued (#{queued.pk}); wait for it to finish."
    )


def test_two_people_clicking_run_at_once_get_one_job_and_a_clear_answer(
    demo_apps, staff_user, celery_queue
):
    mapping = demo_apps.mapping("CUSTOMER")
    url = reverse("sync:mapping_start", args=[mapping.pk])
    together = threading.Barrier(2)

    def click():
        client = Client()
        client.force_login(staff_user)
        together.wait(30)
        response = client.post(url, {"kind": SyncJob.Kind.MODIFIED})
        return response.status_code, [str(m) for m in get_messages(response.wsgi_request)]

    clicks = [InThread(click).start() for _ in range(2)]
    try:
        answers = sorted(thread.value() for thread in clicks)
    finally:
        # No worker reads this test's queue: the job queued is not left for a later test.
        with celery_app.connection_for_write() as broker:
            for queue in task_routes.queue_names(celery_queue):
                broker.default_channel.queue_purge(queue)

    job = SyncJob.objects.get(mapping=mapping)
    queued = (302, [f"Synchronize modified records of CUSTOMER is queued as #{job.pk}."])
    assert queued in answers
    # The other is told of that job: still queued, or running already where a worker of this
    # test process (started by an earlier test) reads the queue.
    (other,) = [answer for answer in answers if answer != queued]
    assert other in [
        (302, [f"A job for CUSTOMER is already {state} (#{job.pk}); wait for it to finish."])
        for state in ("queued", "running")
    ]


def test_two_jobs_of_one_mapping_run_one_after_the_other_and_write_each_record_once(
    demo_apps,
):
    proxy = FaultProxy(demo_apps.base_url)
    try:
        point_at(demo_apps.connection, proxy, demo_apps.base_url, timeout=60)
        # The first job's read of the ERP waits until the test lets it go, holding the
        # mapping's lock meanwhile.
        proxy.fault("held", r"/customers$", method="GET", times=1)
        mapping = demo_apps.mapping("CUSTOMER")
        first, second = (
            SyncJob.objects.create(
                mapping=mapping,
                kind=SyncJob.Kind.FULL,
                trigger=SyncJob.Trigger.USER,
                direction=mapping.direction,
                status=SyncJob.Status.QUEUED,
            )
            for _ in range(2)
        )

        running = InThread(engine.run_job, first.pk).start()
        wait_until(lambda: proxy.count(r"/customers$") == 1, message="the first job never read")
        # A worker given the other job now is told the mapping is busy (the task tries it
        # again later) ...
        with pytest.raises(engine.MappingBusy, match="Another job is running for CUSTOMER"):
            engine.run_job(second.pk)
        second.refresh_from_db()
        assert second.status == SyncJob.Status.QUEUED
        # ... or, told to wait, waits for the lock.
        waiting = InThread(lambda: engine.run_job(second.pk, wait=True)).start()
        waiting.wait_until_blocked_or_done()
        assert waiting.thread.is_alive()
        proxy.let_go()
        running.value()
        waiting.value()
    finally:
        proxy.stop()

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == SyncJob.Status.SUCCEEDED
    assert second.started_at >= first.finished_at
    assert (first.inserted, second.inserted) == (10, 0)
    numbers = list(CrmAccount.objects.values_list("account_number", flat=True))
    assert len(numbers) == len(set(numbers))
    couplings = Coupling.objects.filter(mapping=mapping)
    for side in ("source_record_id", "destination_record_id"):
        ids = list(couplings.values_list(side, flat=True))
        assert len(ids) == len(set(ids)) == 11
