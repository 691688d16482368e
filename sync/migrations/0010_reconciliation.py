"""Reconciliation jobs, and their daily schedule (editable in the Django admin)."""

from django.db import migrations, models
from django.utils import timezone

TASK_NAME = "Find records on one side only"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )  # fmt: skip
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": "sync.reconcile_mappings",
            "crontab": crontab,
            "enabled": True,
            "description": "Reads both apps of every enabled mapping and logs records that "
            "exist on one side only.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0009_paused_error_without_constraint"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AlterField(
            model_name="syncjob",
            name="kind",
            field=models.CharField(
                choices=[
                    ("modified", "Synchronize modified records"),
                    ("full", "Full synchronization"),
                    ("coupled", "Synchronize chosen couplings"),
                    ("reconcile", "Find records on one side only"),
                ],
                default="modified",
                max_length=20,
            ),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
