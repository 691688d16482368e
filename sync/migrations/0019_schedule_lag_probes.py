"""Run the lag probes every minute (editable in the admin)."""

from django.db import migrations

from syncconsole.beat import periodic_task


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0018_lag_probes"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        periodic_task(
            "Run the lag probes",
            "sync.run_lag_probes",
            "Each enabled lag probe looks for its marker on the other side, or writes the "
            "next one when its interval has passed.",
            every_minutes=1,
        )
    ]
