"""Couplings: one source record linked to one destination record under a mapping."""

from django.conf import settings
from django.db import models
from django.urls import reverse


class Coupling(models.Model):
    class Result(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        SKIPPED = "skipped", "Skipped"

    # Not stored: the addresses of the two records, and both records as the pages show them
    # (errors.models.EntryRecord), set by the pages that link to them.
    source_url: str
    destination_url: str
    records: list

    mapping = models.ForeignKey(
        "sync.TableMapping", on_delete=models.CASCADE, related_name="couplings"
    )
    source_record_id = models.CharField(max_length=100)
    destination_record_id = models.CharField(max_length=100)
    last_synced_to_destination_at = models.DateTimeField(null=True, blank=True)
    last_result_to_destination = models.CharField(max_length=10, choices=Result.choices, blank=True)
    last_job_to_destination = models.ForeignKey(
        "sync.SyncJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_synced_from_destination_at = models.DateTimeField(null=True, blank=True)
    last_result_from_destination = models.CharField(
        max_length=10, choices=Result.choices, blank=True
    )
    last_job_from_destination = models.ForeignKey(
        "sync.SyncJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_skipped = models.BooleanField(
        default=False, help_text="Left out of synchronization after a repeated failure."
    )
    failure_count = models.PositiveSmallIntegerField(
        default=0, help_text="Consecutive jobs in which this record failed with the same error."
    )
    last_error_message = models.CharField(max_length=2048, blank=True)
    # The policy that skipped it: the threshold, and the problem that set it (None: the
    # mapping's own policy).
    skipped_after = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The identical failures in a row that skipped it."
    )
    skipped_by_problem = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="The problem whose policy skipped it; empty: the mapping's policy.",
    )
    transient_failure_count = models.PositiveSmallIntegerField(
        default=0,
        help_text="Consecutive jobs in which this record failed transiently (connection, "
        "timeout, throttling) after the connector's own retries.",
    )
    retry_not_before = models.DateTimeField(
        null=True, blank=True, help_text="A transient failure is tried again from then on."
    )
    last_failed_job = models.ForeignKey(
        "sync.SyncJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What Find for Deleted saw: whether each record still exists (None: not checked).
    source_exists = models.BooleanField(null=True, blank=True)
    destination_exists = models.BooleanField(null=True, blank=True)
    existence_checked_at = models.DateTimeField(null=True, blank=True)
    # When the last reconciliation read each record in its app: one that was not read is gone
    # or outside the mapping's filter, and is asked for by id.
    source_seen_at = models.DateTimeField(null=True, blank=True)
    destination_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mapping", "source_record_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mapping", "source_record_id"], name="one_coupling_per_source_record"
            ),
            models.UniqueConstraint(
                fields=["mapping", "destination_record_id"],
                name="one_coupling_per_destination_record",
            ),
        ]
        indexes = [
            models.Index(
                fields=["mapping"], condition=models.Q(is_skipped=True), name="coupling_skipped"
            ),
            # The records each modified-records run tries again: found without reading every
            # coupling of the mapping.
            models.Index(
                fields=["mapping"],
                condition=models.Q(last_result_to_destination__in=["failure", "skipped"]),
                name="coupling_failing_to_dest",
            ),
            models.Index(
                fields=["mapping"],
                condition=models.Q(last_result_from_destination__in=["failure", "skipped"]),
                name="coupling_failing_from_dest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_record_id} ↔ {self.destination_record_id}"

    @property
    def skip_policy(self) -> str:
        """Which policy skipped it, as people read it; empty when it is not skipped or was
        skipped before the policy was kept."""
        if not self.is_skipped or not self.skipped_after:
            return ""
        whose = (
            f"problem #{self.skipped_by_problem}"
            if self.skipped_by_problem
            else f"the {self.mapping.name} mapping"
        )
        failures = "failure" if self.skipped_after == 1 else "identical failures"
        return f"Skipped after {self.skipped_after} {failures} (policy of {whose})"


class CouplingRun(models.Model):
    """One request to couple records by match (Match-Based Coupling): what was asked, and
    for each record what came of it. Small requests run at once; larger ones in a worker."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    mapping = models.ForeignKey(
        "sync.TableMapping", on_delete=models.CASCADE, related_name="coupling_runs"
    )
    side = models.CharField(max_length=11, help_text="The side the chosen records are on.")
    record_ids = models.JSONField(default=list)
    criteria = models.JSONField(
        default=list, help_text="Source and destination field, priority, case sensitivity."
    )
    create_if_no_match = models.BooleanField(default=False)
    synchronize_after = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    results = models.JSONField(default=list, blank=True, help_text="One outcome per record.")
    sync_job = models.ForeignKey(
        "sync.SyncJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=2000, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The time of its last batch, and how often it was resumed after its worker died
    # (syncconsole.work).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resumes = models.SmallIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Coupling by match #{self.pk} · {self.mapping.name}"

    def get_absolute_url(self) -> str:
        return reverse("couplings:run", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)
