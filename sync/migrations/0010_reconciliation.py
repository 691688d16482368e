"""Reconciliation jobs, and their daily schedule (editable in the Django admin)."""

from django.db import migrations, models

from syncconsole.beat import periodic_task


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
        periodic_task(
            "Find records on one side only",
            "sync.reconcile_mappings",
            "Reads both apps of every enabled mapping and logs records that exist on one side "
            "only.",
            crontab={"minute": "30", "hour": "2"},
        ),
    ]
