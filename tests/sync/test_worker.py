"""Sync jobs run by a real Celery worker over the configured broker (Redis in CI), started
from the console, by beat, and by the apps' change notifications."""

import pytest
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from demo.models import CrmAccount, ErpCustomer
from demo.seed import subscribe_to_changes
from sync.models import SyncJob
from tests.conftest import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def finished(job: SyncJob):
    def check():
        job.refresh_from_db()
        return job.is_finished

    return check


def test_a_job_started_from_the_console_runs_in_the_worker(demo_apps, celery_worker, staff_client):
    mapping = demo_apps.mapping("CUSTOMER")
    response = staff_client.post(reverse("sync:mapping_start", args=[mapping.pk]), {"kind": "full"})
    job = SyncJob.objects.get()
    assert response["Location"] == job.get_absolute_url()
    assert (job.trigger, job.kind) == (SyncJob.Trigger.USER, SyncJob.Kind.FULL)

    wait_until(finished(job), timeout=60, message=celery_worker.log_path.read_text())
    assert (job.status, job.inserted, job.failed) == (SyncJob.Status.SUCCEEDED, 10, 1)
    assert job.requested_by.username == "triager"
    assert CrmAccount.objects.count() == 11


def test_a_change_in_the_erp_is_synchronized_within_seconds(demo_apps, celery_worker):
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    subscribe_to_changes(demo_apps.connection, demo_apps.base_url)
    customer = ErpCustomer.objects.get(number="C00030")
    customer.city = "Skagen"
    customer.save()  # the ERP announces the change to the console

    def in_the_crm():
        return CrmAccount.objects.filter(account_number="C00030", city="Skagen").exists()

    wait_until(in_the_crm, timeout=30, message=celery_worker.log_path.read_text())
    job = SyncJob.objects.filter(trigger=SyncJob.Trigger.WEBHOOK).order_by("pk").first()
    assert (job.mapping.name, job.kind) == ("CUSTOMER", SyncJob.Kind.MODIFIED)
    wait_until(finished(job), timeout=30)
    assert job.modified >= 1 and job.status == SyncJob.Status.SUCCEEDED


def test_beat_runs_every_enabled_mapping_in_dependency_order(
    demo_apps, celery_worker, start_celery_beat
):
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name="Synchronize modified records",
        defaults={
            "task": "sync.synchronize_modified_records",
            "interval": every_second,
            "enabled": True,
        },
    )
    ErpCustomer.objects.filter(number="C00030").update(city="Ribe")
    start_celery_beat()

    def every_mapping_ran():
        jobs = SyncJob.objects.filter(trigger=SyncJob.Trigger.SCHEDULE).order_by("pk")
        return len({job.mapping_id for job in jobs if job.is_finished}) == 4 and list(jobs)

    jobs = wait_until(every_mapping_ran, timeout=90, message=celery_worker.log_path.read_text())
    task.enabled = False
    task.save()
    assert [job.mapping.name for job in jobs[:4]] == [
        "CURRENCY",
        "CUSTOMER",
        "CONTACT",
        "ITEM-PRODUCT",
    ]
    assert all(job.kind == SyncJob.Kind.MODIFIED for job in jobs)
