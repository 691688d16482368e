"""Schedule the daily creation of the entries table's day partitions ahead of time."""

from django.db import migrations

from syncconsole.beat import periodic_task


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0011_group_figures"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        periodic_task(
            "Create sync error partitions",
            "errors.create_error_partitions",
            "Creates the day partitions of the sync error entries a week ahead.",
            crontab={"minute": "5", "hour": "*/6"},
        )
    ]
