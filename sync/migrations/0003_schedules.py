"""Schedule the modified-records sync (every 30 minutes) and the job log clean-up (daily)."""

from django.db import migrations
from django.utils import timezone

SYNC_TASK = "Synchronize modified records"
CLEANUP_TASK = "Delete expired sync jobs"


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every_30_minutes, _ = IntervalSchedule.objects.get_or_create(every=30, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=SYNC_TASK,
        defaults={
            "task": "sync.synchronize_modified_records",
            "interval": every_30_minutes,
            "enabled": True,
            "description": "Runs every enabled table mapping in dependency order.",
        },
    )
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="45",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.update_or_create(
        name=CLEANUP_TASK,
        defaults={
            "task": "sync.delete_expired_jobs",
            "crontab": nightly,
            "enabled": True,
            "description": "Deletes jobs older than SYNC_JOB_RETENTION_DAYS, except those "
            "a skipped coupling points to.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[SYNC_TASK, CLEANUP_TASK]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0002_connectors_and_watermarks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
