"""Connections between the two apps, table mappings, and sync jobs."""

from django.db import models
from django.urls import reverse


class Connection(models.Model):
    """The link between the ERP and the CRM: where they are and who signs in."""

    class AuthMethod(models.TextChoices):
        BASIC = "basic", "User name and password"
        BEARER = "bearer", "Bearer token"
        OAUTH2 = "oauth2", "OAuth 2.0 client credentials"

    name = models.CharField(max_length=100, unique=True)
    source_app = models.CharField(
        max_length=100, default="Business Central", help_text="The app records come from (ERP)."
    )
    source_base_url = models.URLField(max_length=500)
    destination_app = models.CharField(
        max_length=100, default="Dynamics 365 Sales", help_text="The integrated app (CRM)."
    )
    destination_base_url = models.URLField(max_length=500)
    auth_method = models.CharField(
        max_length=20, choices=AuthMethod.choices, default=AuthMethod.BASIC
    )
    integration_user = models.CharField(max_length=200, blank=True)
    is_enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TableMapping(models.Model):
    """Which entity on one side syncs with which on the other, and how."""

    class Direction(models.TextChoices):
        BIDIRECTIONAL = "bidirectional", "Bidirectional"
        TO_DESTINATION = "to_destination", "To destination"
        FROM_DESTINATION = "from_destination", "From destination"

    class UpdateConflictResolution(models.TextChoices):
        NONE = "none", "None (log a conflict error)"
        SEND_UPDATE = "send_update", "Take the source"
        GET_UPDATE = "get_update", "Take the destination"

    class DeletionConflictResolution(models.TextChoices):
        NONE = "none", "None (log an error)"
        REMOVE_COUPLING = "remove_coupling", "Remove the coupling"
        RESTORE_RECORDS = "restore_records", "Restore the record"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="mappings")
    name = models.CharField(max_length=50, help_text="For example CUSTOMER.")
    source_entity = models.CharField(max_length=100)
    destination_entity = models.CharField(max_length=100)
    direction = models.CharField(
        max_length=20, choices=Direction.choices, default=Direction.BIDIRECTIONAL
    )
    field_mappings = models.JSONField(default=list, blank=True)
    source_filter = models.CharField(max_length=500, blank=True)
    destination_filter = models.CharField(max_length=500, blank=True)
    sync_only_coupled_records = models.BooleanField(default=True)
    update_conflict_resolution = models.CharField(
        max_length=20,
        choices=UpdateConflictResolution.choices,
        default=UpdateConflictResolution.NONE,
    )
    deletion_conflict_resolution = models.CharField(
        max_length=20,
        choices=DeletionConflictResolution.choices,
        default=DeletionConflictResolution.NONE,
    )
    dependency_order = models.PositiveSmallIntegerField(
        default=100, help_text="Scheduled runs go in ascending order."
    )
    is_enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["dependency_order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "name"], name="mapping_name_per_connection"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.source_entity} ↔ {self.destination_entity})"


class SyncJob(models.Model):
    """One run of one table mapping, with what it did."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        USER = "user", "User"
        RETRY = "retry", "Retry"
        WEBHOOK = "webhook", "Change notification"

    class Kind(models.TextChoices):
        MODIFIED = "modified", "Synchronize modified records"
        FULL = "full", "Full synchronization"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"

    mapping = models.ForeignKey(TableMapping, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MODIFIED)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.SCHEDULE)
    direction = models.CharField(
        max_length=20,
        choices=TableMapping.Direction.choices,
        default=TableMapping.Direction.BIDIRECTIONAL,
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    inserted = models.PositiveIntegerField(default=0)
    modified = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["mapping", "-created_at"], name="job_mapping_recent")]

    def __str__(self) -> str:
        return f"Job {self.pk} · {self.mapping.name}"

    def get_absolute_url(self) -> str:
        return reverse("admin:sync_syncjob_change", args=[self.pk])

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None
