"""Periodic tasks created by migrations (editable afterwards in the Django admin)."""

from django.db import migrations
from django.utils import timezone


class ScheduleOperation(migrations.RunPython):
    """Python that writes only the beat's schedule tables (a few rows): the migration checker
    (syncconsole.migration_safety) lets it through, where other Python is refused."""

    small_tables_only = True


def periodic_task(name: str, task: str, description: str, *, crontab=None, every_minutes=None):
    """A migration operation that schedules `task` as the periodic task `name`, at a crontab
    (a dict of its fields, UTC) or every N minutes, and removes it when migrated back."""

    def create(apps, schema_editor):
        beat = apps.get_app_config("django_celery_beat")
        PeriodicTask = beat.get_model("PeriodicTask")
        if crontab is not None:
            fields = {"day_of_week": "*", "day_of_month": "*", "month_of_year": "*", **crontab}
            when, _ = beat.get_model("CrontabSchedule").objects.get_or_create(
                timezone="UTC", **fields
            )
            schedule = {"crontab": when}
        else:
            when, _ = apps.get_model(
                "django_celery_beat", "IntervalSchedule"
            ).objects.get_or_create(every=every_minutes, period="minutes")
            schedule = {"interval": when}
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": task, "enabled": True, "description": description, **schedule},
        )
        # Tell a running beat that the schedule changed.
        beat.get_model("PeriodicTasks").objects.update_or_create(
            ident=1, defaults={"last_update": timezone.now()}
        )

    def remove(apps, schema_editor):
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()

    return ScheduleOperation(create, remove)
