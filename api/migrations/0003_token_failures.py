"""Wrong API tokens counted per address, and the daily task that forgets them."""

from django.db import migrations, models

from syncconsole.beat import periodic_task


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_schedule_forget_ingestion_requests"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="TokenFailures",
            fields=[
                ("address", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("failures", models.PositiveIntegerField(default=0)),
                (
                    "window_started_at",
                    models.DateTimeField(
                        help_text="When the first failure still counted was sent."
                    ),
                ),
                ("locked_until", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "API token failures",
                "verbose_name_plural": "API token failures",
                "indexes": [
                    models.Index(fields=["window_started_at"], name="token_failures_window")
                ],
            },
        ),
        periodic_task(
            "Forget old API token failures",
            "api.forget_old_token_failures",
            "Drops the addresses whose wrong API tokens and lock are over.",
            crontab={"minute": "50", "hour": "3"},
        ),
    ]
