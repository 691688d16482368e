from django.conf import settings
from django.db import models


class Profile(models.Model):
    """A person's own settings: the time zone the console shows them times in
    (syncconsole.timezones)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_profile"
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="An IANA time zone, such as Europe/Copenhagen."
    )

    class Meta:
        verbose_name = "profile"
        verbose_name_plural = "profiles"

    def __str__(self) -> str:
        return f"Profile of {self.user}"


class ProcessHeartbeat(models.Model):
    """The last sign of life of one Celery worker or beat process, written every
    PROCESS_HEARTBEAT_SECONDS by the process itself (syncconsole.heartbeats) and read by
    /readyz and `manage.py health`. One row per process name, moved on in place."""

    WORKER = "worker"
    BEAT = "beat"
    KINDS = [(WORKER, "Celery worker"), (BEAT, "Celery beat")]

    kind = models.CharField(max_length=16, choices=KINDS)
    # The worker's node name (name@host) or beat's beat@host: a restarted process on the same
    # machine takes its row back.
    name = models.CharField(max_length=255)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "process heartbeat"
        verbose_name_plural = "process heartbeats"
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="process_heartbeat_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"
