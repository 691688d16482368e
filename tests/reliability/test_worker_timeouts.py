"""An app that never answers cannot hold a worker: the call gives up after the connection's
timeout, the job fails with an entry that says so, and the same worker runs the next job."""

from collections import Counter

import pytest
from django.urls import reverse

from errors.models import Category, SyncError
from sync.models import SyncJob, TableMapping
from tests.conftest import wait_until

from .fixtures_apps import FaultProxy, point_at

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

MAX_RETRIES = 1


def finished(job: SyncJob):
    def check():
        job.refresh_from_db()
        return job.is_finished

    return check


def start(client, mapping: TableMapping, kind: str = SyncJob.Kind.FULL) -> SyncJob:
    response = client.post(reverse("sync:mapping_start", args=[mapping.pk]), {"kind": kind})
    assert response.status_code == 302
    return SyncJob.objects.filter(mapping=mapping).latest("pk")


def test_an_app_that_never_answers_fails_the_job_and_the_worker_goes_on(
    demo_apps, celery_worker, staff_client
):
    proxy = FaultProxy(demo_apps.base_url)
    try:
        point_at(
            demo_apps.connection,
            proxy,
            demo_apps.base_url,
            timeout=1,
            max_retries=MAX_RETRIES,
            backoff_seconds=0.01,
            max_retry_after=0.05,
        )
        proxy.fault("never_answers", r"^/demo/crm/")
        mapping = demo_apps.mapping("CUSTOMER")
        # The app failed the two runs before: this third failure is logged and pauses the
        # mapping, rather than queueing the job again for later.
        TableMapping.objects.filter(pk=mapping.pk).update(setup_failures_in_a_row=2)

        job = start(staff_client, mapping)
        wait_until(finished(job), timeout=120, message=celery_worker.log_path.read_text())

        assert job.status == SyncJob.Status.FAILED
        message = "Dynamics 365 Sales did not answer in time: the operation has timed out."
        assert job.message.startswith(message)
        entry = SyncError.objects.get(job=job)
        assert (entry.category, entry.message) == (Category.CONNECTION, message)
        mapping.refresh_from_db()
        assert mapping.is_paused
        # Each call to the CRM was tried at most MAX_RETRIES more times, then the job gave up.
        calls = Counter(path for _, path in proxy.requests if path.startswith("/demo/crm/"))
        assert calls and max(calls.values()) == MAX_RETRIES + 1

        # The worker is free: once the CRM answers again and an administrator resumes the
        # mapping, it runs the next job.
        proxy.clear()
        connection = demo_apps.connection
        for side in ("source", "destination"):
            getattr(connection, f"{side}_settings")["timeout"] = 30
        connection.save()
        staff_client.post(reverse("sync:mapping_resume", args=[mapping.pk]))
        again = start(staff_client, mapping)
        wait_until(finished(again), timeout=120, message=celery_worker.log_path.read_text())
        assert (again.status, again.inserted) == (SyncJob.Status.SUCCEEDED, 10)
    finally:
        proxy.stop()
