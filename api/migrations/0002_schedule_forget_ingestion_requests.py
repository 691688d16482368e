"""Schedule the daily removal of idempotency keys older than 7 days (editable in the admin)."""

from django.db import migrations

from syncconsole.beat import periodic_task


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        periodic_task(
            "Forget old ingestion idempotency keys",
            "api.forget_old_ingestion_requests",
            "An Idempotency-Key is remembered for 7 days.",
            crontab={"minute": "45", "hour": "3"},
        )
    ]
