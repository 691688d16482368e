import pytest
from django_celery_beat.models import PeriodicTask

from syncconsole.celery import app

pytestmark = pytest.mark.django_db


def test_a_migration_schedules_the_daily_cleanup():
    task = PeriodicTask.objects.get(name="Delete expired sync errors")
    assert task.enabled
    assert task.task == "errors.delete_expired_sync_errors"
    assert task.crontab is not None
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("15", "3", "*")


def test_the_scheduled_task_is_registered_with_the_worker_app():
    app.loader.import_default_modules()
    assert "errors.delete_expired_sync_errors" in app.tasks
    assert "errors.run_sync_error_cleanup" in app.tasks
