"""A scheduled run continues the mapping's interrupted job when nothing went on with it (its
successor was lost with the broker), unless the mapping's last three jobs were interrupted."""

import pytest
from django.utils import timezone

from sync import engine, tasks
from sync.models import SyncJob

pytestmark = pytest.mark.django_db

QUEUE_DOWN = "The task queue is unavailable; the job was not started."


def only_customer(demo_apps):
    demo_apps.connection.mappings.exclude(name="CUSTOMER").update(is_enabled=False)
    return demo_apps.mapping("CUSTOMER")


def interrupted(mapping, kind=SyncJob.Kind.FULL) -> SyncJob:
    now = timezone.now()
    return SyncJob.objects.create(
        mapping=mapping,
        kind=kind,
        trigger=SyncJob.Trigger.USER,
        direction=mapping.direction,
        status=SyncJob.Status.INTERRUPTED,
        started_at=now,
        finished_at=now,
        message=engine.WORKER_LOST,
    )


def lost_with_the_broker(mapping, kind=SyncJob.Kind.FULL) -> SyncJob:
    """The job that was to go on with an interrupted one, never queued."""
    return SyncJob.objects.create(
        mapping=mapping,
        kind=kind,
        trigger=SyncJob.Trigger.RETRY,
        direction=mapping.direction,
        status=SyncJob.Status.FAILED,
        finished_at=timezone.now(),
        message=QUEUE_DOWN,
    )


def test_a_scheduled_run_continues_an_interrupted_job_whose_successor_was_lost(demo_apps):
    mapping = only_customer(demo_apps)
    first = interrupted(mapping)
    lost_with_the_broker(mapping)

    assert tasks.synchronize_modified_records() == 1

    continued = SyncJob.objects.filter(mapping=mapping).latest("pk")
    assert continued.pk > first.pk
    assert (continued.kind, continued.trigger, continued.status) == (
        SyncJob.Kind.FULL,
        SyncJob.Trigger.RETRY,
        SyncJob.Status.SUCCEEDED,
    )
    assert continued.inserted > 0
    # The full synchronization took the place of the modified-records run.
    assert not SyncJob.objects.filter(mapping=mapping, trigger=SyncJob.Trigger.SCHEDULE).exists()


def test_a_scheduled_run_continues_a_job_left_running_by_a_dead_worker(demo_apps):
    mapping = only_customer(demo_apps)
    dead = SyncJob.objects.create(
        mapping=mapping,
        kind=SyncJob.Kind.FULL,
        direction=mapping.direction,
        status=SyncJob.Status.RUNNING,
        started_at=timezone.now(),
    )

    assert tasks.synchronize_modified_records() == 1

    dead.refresh_from_db()
    assert dead.status == SyncJob.Status.INTERRUPTED
    continued = SyncJob.objects.filter(mapping=mapping).latest("pk")
    assert (continued.kind, continued.trigger, continued.status) == (
        SyncJob.Kind.FULL,
        SyncJob.Trigger.RETRY,
        SyncJob.Status.SUCCEEDED,
    )


def test_a_narrower_interrupted_job_is_continued_before_the_scheduled_run(demo_apps):
    mapping = only_customer(demo_apps)
    interrupted(mapping, kind=SyncJob.Kind.RECONCILE)

    assert tasks.synchronize_modified_records() == 2

    kinds = list(
        SyncJob.objects.filter(mapping=mapping, status=SyncJob.Status.SUCCEEDED)
        .order_by("pk")
        .values_list("kind", "trigger")
    )
    assert kinds == [
        (SyncJob.Kind.RECONCILE, SyncJob.Trigger.RETRY),
        (SyncJob.Kind.MODIFIED, SyncJob.Trigger.SCHEDULE),
    ]


def test_three_interruptions_in_a_row_are_not_continued_by_the_schedule(demo_apps):
    mapping = only_customer(demo_apps)
    for _ in range(engine.INTERRUPTIONS_IN_A_ROW):
        interrupted(mapping)

    assert tasks.synchronize_modified_records() == 1

    ran = SyncJob.objects.filter(mapping=mapping).latest("pk")
    assert (ran.kind, ran.trigger) == (SyncJob.Kind.MODIFIED, SyncJob.Trigger.SCHEDULE)
    assert not SyncJob.objects.filter(mapping=mapping, trigger=SyncJob.Trigger.RETRY).exists()


def test_a_scheduled_run_leaves_alone_a_job_that_ended_well(demo_apps):
    mapping = only_customer(demo_apps)
    interrupted(mapping)
    SyncJob.objects.create(
        mapping=mapping,
        kind=SyncJob.Kind.FULL,
        trigger=SyncJob.Trigger.RETRY,
        status=SyncJob.Status.SUCCEEDED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )

    assert tasks.synchronize_modified_records() == 1
    assert SyncJob.objects.filter(mapping=mapping).latest("pk").trigger == (
        SyncJob.Trigger.SCHEDULE
    )
