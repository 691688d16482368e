"""The clean-up through a real Celery worker and a real beat, over the configured broker
(Redis in CI)."""

from datetime import timedelta

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from errors import services
from errors.models import SyncError, SyncErrorCleanup
from tests.conftest import wait_until
from tests.factories import make_error

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_large_cleanup_runs_in_the_worker(celery_worker, settings):
    settings.SYNC_ERROR_CLEANUP_ASYNC_THRESHOLD = 5
    for _ in range(12):
        make_error(age=timedelta(days=9))
    keep = make_error(age=timedelta(days=2))

    cleanup = services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.CONSOLE)
    assert cleanup.state == SyncErrorCleanup.State.QUEUED

    def finished():
        cleanup.refresh_from_db()
        return cleanup.is_finished

    wait_until(finished, timeout=60, message=celery_worker.log_path.read_text())
    assert cleanup.state == SyncErrorCleanup.State.DONE
    assert cleanup.deleted_count == 12
    assert list(SyncError.objects.values_list("pk", flat=True)) == [keep.pk]


def test_beat_runs_the_scheduled_cleanup_in_the_worker(celery_worker, start_celery_beat, settings):
    old = [make_error(age=timedelta(days=8)) for _ in range(3)]
    keep = make_error(age=timedelta(days=7) - timedelta(minutes=1))
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name="Delete expired sync errors",
        defaults={
            "task": "errors.delete_expired_sync_errors",
            "interval": every_second,
            "crontab": None,
            "enabled": True,
        },
    )
    start_celery_beat()

    def scheduled_cleanup_done():
        return SyncErrorCleanup.objects.filter(
            trigger=SyncErrorCleanup.Trigger.SCHEDULE, state=SyncErrorCleanup.State.DONE
        ).exists()

    wait_until(scheduled_cleanup_done, timeout=60, message=celery_worker.log_path.read_text())
    assert not SyncError.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert SyncError.objects.filter(pk=keep.pk).exists()
    first = SyncErrorCleanup.objects.filter(trigger=SyncErrorCleanup.Trigger.SCHEDULE).last()
    assert first.days == settings.SYNC_ERROR_RETENTION_DAYS == 7
    assert first.requested_by is None
