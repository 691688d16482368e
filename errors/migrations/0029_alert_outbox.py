"""The alerts' outbox (AlertDelivery) in place of the per-problem ProblemAlert, a lease on the
assignment e-mails, and their schedules. New tables, a nullable column, and a small table
dropped: nothing rewrites a big table."""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from syncconsole.beat import ScheduleOperation, periodic_task

SENDING = (
    "Send problem alerts",
    "errors.send_problem_alerts",
    "E-mails the problem alerts waiting in the outbox, and tries the failed ones again.",
)


class Migration(migrations.Migration):
    # Each step commits by itself: the outbox's foreign key and the dropped table's each lock
    # the problems table for a moment only, never for the whole migration.
    atomic = False
    reviewed_unsafe = {
        "drop-or-rename": "ProblemAlert is small (a row per alerted problem and hour) and only "
        "the alert task of the version before reads it: until the workers are rolled, that "
        "task fails and its alerts wait in the outbox, which the new workers send."
    }
    dependencies = [
        ("errors", "0028_blocked_by"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AlertDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=100, unique=True)),
                (
                    "events",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(
                            choices=[
                                ("new", "New problem"),
                                ("regression", "Regression"),
                                ("setup", "Setup error"),
                            ],
                            max_length=20,
                        ),
                        default=list,
                        size=None,
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Waiting to be sent"),
                            ("sent", "Sent"),
                            ("skipped", "Not sent: no longer wanted"),
                            ("failed", "Given up"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "available_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now,
                        help_text="Not sent before this time (the next try).",
                    ),
                ),
                ("claim", models.UUIDField(blank=True, null=True)),
                ("claimed_until", models.DateTimeField(blank=True, null=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("last_error", models.TextField(blank=True)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                (
                    "group",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="errors.errorgroup",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "alert delivery",
                "verbose_name_plural": "alert deliveries",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.DeleteModel(
            name="ProblemAlert",
        ),
        migrations.AddIndex(
            model_name="alertdelivery",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["available_at", "id"],
                name="alert_delivery_pending",
            ),
        ),
        migrations.AddIndex(
            model_name="alertdelivery",
            index=models.Index(
                fields=["user", "group", "sent_at"], name="alert_delivery_last_sent"
            ),
        ),
        migrations.AddIndex(
            model_name="alertdelivery",
            index=models.Index(fields=["created_at"], name="alert_delivery_created"),
        ),
        migrations.AddField(
            model_name="assignmentnotice",
            name="sending_until",
            field=models.DateTimeField(
                blank=True,
                help_text="While a worker sends the e-mail: when its claim lapses, if it dies first.",
                null=True,
            ),
        ),
        periodic_task(
            "Forget old alert deliveries",
            "errors.forget_old_alert_deliveries",
            "Drops the alert outbox's rows settled more than 30 days ago.",
            crontab={"minute": "55", "hour": "3"},
        ),
        # The schedule drains the outbox every minute (besides the send after each commit).
        ScheduleOperation(
            periodic_task(*SENDING, every_minutes=1).code,
            periodic_task(*SENDING, every_minutes=5).code,
        ),
    ]
