"""Connections between the two apps, table mappings, and sync jobs."""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils.crypto import salted_hmac

from errors.models import (
    MAX_RETRY_DELAY_SECONDS,
    TRANSIENT_RETRIES_MAX,
    EntryLogging,
    skip_after_validators,
)
from syncconsole.encryption import EncryptedTextField

from .connectors.odata import SideConfig
from .connectors.signin import default_authority
from .fields import FROM_DESTINATION, TO_DESTINATION, field_mapping_problems
from .transformations import KINDS, Rules, Step, describe


class Connection(models.Model):
    """The link between the ERP and the CRM: where they are and who signs in."""

    # Not stored: set by the list of connections, for its template.
    last_check: "ConnectionCheck | None"

    class AuthMethod(models.TextChoices):
        OAUTH2 = "oauth2", "OAuth 2.0 client credentials (Microsoft Entra ID)"
        BASIC = "basic", "User name and password (Business Central on-premises)"
        BEARER = "bearer", "Bearer token"

    name = models.CharField(max_length=100, unique=True)
    source_app = models.CharField(
        max_length=100, default="Business Central", help_text="The app records come from (ERP)."
    )
    source_base_url = models.URLField(max_length=500)
    destination_app = models.CharField(
        max_length=100, default="Dynamics 365 Sales", help_text="The integrated app (CRM)."
    )
    destination_base_url = models.URLField(max_length=500)

    class Flavor(models.TextChoices):
        BUSINESS_CENTRAL = "business_central", "Business Central API"
        DATAVERSE = "dataverse", "Dataverse Web API"

    source_flavor = models.CharField(
        max_length=20, choices=Flavor.choices, default=Flavor.BUSINESS_CENTRAL
    )
    destination_flavor = models.CharField(
        max_length=20, choices=Flavor.choices, default=Flavor.DATAVERSE
    )
    auth_method = models.CharField(
        max_length=20,
        choices=AuthMethod.choices,
        default=AuthMethod.OAUTH2,
        help_text="Business Central online and Dataverse sign in with OAuth 2.0 client "
        "credentials; user name and password only reach Business Central on-premises.",
    )
    integration_user = models.CharField(max_length=200, blank=True)
    source_username = models.CharField(
        max_length=200,
        blank=True,
        help_text="The application (client) ID of the app registration, or the user name.",
    )
    source_secret = EncryptedTextField(
        blank=True, help_text="Client secret, password or token; encrypted, never shown."
    )
    source_authority = models.URLField(
        max_length=300,
        blank=True,
        help_text="OAuth 2.0: the Microsoft Entra authority, "
        "https://login.microsoftonline.com/<tenant ID or domain>. Blank: the tenant a "
        "Business Central API address names.",
    )
    source_scope = models.CharField(
        max_length=300,
        blank=True,
        help_text="OAuth 2.0: the scope asked for. Blank: the API address's origin with "
        "/.default (https://api.businesscentral.dynamics.com/.default).",
    )
    destination_username = models.CharField(
        max_length=200,
        blank=True,
        help_text="The application (client) ID of the app registration, or the user name.",
    )
    destination_secret = EncryptedTextField(
        blank=True, help_text="Client secret, password or token; encrypted, never shown."
    )
    destination_authority = models.URLField(
        max_length=300,
        blank=True,
        help_text="OAuth 2.0: the Microsoft Entra authority, "
        "https://login.microsoftonline.com/<tenant ID or domain>.",
    )
    destination_scope = models.CharField(
        max_length=300,
        blank=True,
        help_text="OAuth 2.0: the scope asked for. Blank: the API address's origin with "
        "/.default (https://<org>.crm.dynamics.com/.default).",
    )
    source_settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="Overrides of the API conventions and of the calls: key_fields, "
        "modified_field, record_url, timeout, max_retries, max_retry_after, throttle_budget, "
        "page_size, batch_size.",
    )
    destination_settings = models.JSONField(default=dict, blank=True)
    is_enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """With OAuth 2.0, each side needs an authority to sign in at: one set, or one its
        API address names."""
        if self.auth_method != self.AuthMethod.OAUTH2:
            return
        problems = {}
        for side in ("source", "destination"):
            options = getattr(self, f"{side}_settings") or {}
            base_url = getattr(self, f"{side}_base_url") or ""
            if (
                getattr(self, f"{side}_authority")
                or default_authority(base_url)
                or (isinstance(options, dict) and options.get("token_url"))
            ):
                continue
            problems[f"{side}_authority"] = (
                f"Enter the Microsoft Entra authority of {getattr(self, f'{side}_app')} "
                "(https://login.microsoftonline.com/<tenant ID or domain>): its API address "
                "does not name the tenant."
            )
        if problems:
            raise ValidationError(problems)

    def notification_token(self) -> str:
        """The shared secret an app sends with its change notifications (its clientState)."""
        return salted_hmac("sync.notification", str(self.pk)).hexdigest()

    def side_config(self, side: str):
        """How to reach one side ("source" or "destination") of this connection."""
        if side not in ("source", "destination"):
            raise ValueError(side)
        options = getattr(self, f"{side}_settings") or {}
        tuning: dict[str, Any] = {
            name: kind(options[name])
            for name, kind in (
                ("timeout", float),
                ("max_retries", int),
                ("backoff_seconds", float),
                ("max_retry_after", float),
                ("throttle_budget", float),
                ("page_size", int),
                ("batch_size", int),
            )
            if name in options
        }
        tuning.setdefault("timeout", settings.SYNC_HTTP_TIMEOUT)
        return SideConfig(
            app_name=getattr(self, f"{side}_app"),
            base_url=getattr(self, f"{side}_base_url"),
            flavor=getattr(self, f"{side}_flavor"),
            auth_method=self.auth_method,
            username=getattr(self, f"{side}_username"),
            secret=getattr(self, f"{side}_secret"),
            options=options,
            authority=getattr(self, f"{side}_authority"),
            scope=getattr(self, f"{side}_scope"),
            **tuning,
        )


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
    source_match_field = models.CharField(
        max_length=100,
        blank=True,
        help_text="Couple new records to an existing match on this field.",
    )
    destination_match_field = models.CharField(max_length=100, blank=True)
    dependency_order = models.PositiveSmallIntegerField(
        default=100, help_text="Scheduled runs go in ascending order."
    )
    is_enabled = models.BooleanField(default=True)
    # The newest change each side had when a job last read it: the next "modified records"
    # run asks only for what changed after it.
    source_synced_until = models.DateTimeField(null=True, blank=True)
    destination_synced_until = models.DateTimeField(null=True, blank=True)
    # The circuit breaker: jobs that fail for setup reasons in a row pause the mapping, so
    # a broken setup is one clear entry instead of a new one at every scheduled run.
    setup_failures_in_a_row = models.PositiveSmallIntegerField(
        default=0, help_text="Consecutive jobs that failed for a setup reason."
    )
    paused_at = models.DateTimeField(
        null=True, blank=True, help_text="When repeated setup failures paused the mapping."
    )
    paused_reason = models.CharField(max_length=2048, blank=True)
    paused_error = models.ForeignKey(
        "errors.SyncError",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        # The entries table is partitioned, so no unique key on id alone for a database
        # constraint; the clean-up clears this when it deletes the entry.
        db_constraint=False,
        related_name="+",
        help_text="The setup failure that paused the mapping.",
    )
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_reason = models.CharField(max_length=500, blank=True)
    # Business Central skips a record after the same failure in two jobs in a row; a
    # mapping may wait longer (a problem may set its own, errors.ErrorGroup).
    skip_after_failures = models.PositiveSmallIntegerField(
        default=2,
        validators=skip_after_validators(),
        verbose_name="skip a coupling after",
        help_text="Skip a coupling after this many identical failures in a row (1 to 20).",
    )
    # A record that fails transiently (connection, timeout, 5xx after the connector's own
    # retries) is tried again at later runs, waiting longer each time; it becomes an entry
    # only when these retries fail too.
    transient_retries = models.PositiveSmallIntegerField(
        default=2,
        validators=[MaxValueValidator(TRANSIENT_RETRIES_MAX)],
        verbose_name="automatic retries",
        help_text="After a transient failure, how many later runs try the record again before "
        "it is logged (0 to 10; 0 logs it at once).",
    )
    retry_delay_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_RETRY_DELAY_SECONDS)],
        verbose_name="first retry after (seconds)",
        help_text="The wait before the first retry, doubling at each failure, at most 6 hours. "
        "Empty: SYNC_RETRY_BACKOFF_SECONDS.",
    )

    # Every attempt of a record that keeps failing the same way is an entry of its own, as
    # the anchor logs them; or its open entry counts the attempts (a problem may choose its
    # own, errors.ErrorGroup).
    entry_logging = models.CharField(
        max_length=20,
        choices=EntryLogging.choices,
        default=EntryLogging.EVERY_ATTEMPT,
        help_text="Log an entry for every failed attempt of a record, or one entry per record "
        "that counts its attempts while it stays open.",
    )

    class Meta:
        ordering = ["dependency_order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "name"], name="mapping_name_per_connection"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.source_entity} ↔ {self.destination_entity})"

    def get_absolute_url(self) -> str:
        return reverse("sync:mapping_health", args=[self.pk])

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    def clean(self) -> None:
        problems = field_mapping_problems(self.field_mappings)
        if not problems and self.connection_id:
            names = set(
                TableMapping.objects.filter(connection_id=self.connection_id).values_list(
                    "name", flat=True
                )
            )
            for n, spec in enumerate(self.field_mappings, 1):
                through = (spec.get("lookup") or {}).get("mapping") if spec.get("type") else None
                if through and through not in names:
                    problems.append(
                        f"Field mapping {n}: the lookup goes through {through}, which is not a "
                        "table mapping of this connection."
                    )
        if problems:
            raise ValidationError({"field_mappings": problems})


class SyncJob(models.Model):
    """One run of one table mapping, with what it did."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        USER = "user", "User"
        RETRY = "retry", "Retry"
        WEBHOOK = "webhook", "Change notification"
        # Records retried by themselves once the record they were blocked by synchronized.
        ROOT_CAUSE = "root_cause", "Root cause resolved"

    class Kind(models.TextChoices):
        MODIFIED = "modified", "Synchronize modified records"
        FULL = "full", "Full synchronization"
        COUPLED = "coupled", "Synchronize chosen couplings"
        RECONCILE = "reconcile", "Find records on one side only"

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
    retrying = models.PositiveIntegerField(
        default=0,
        help_text="Records that failed transiently and are tried again at a later run.",
    )
    message = models.TextField(blank=True)
    throttled = models.BooleanField(
        default=False,
        help_text="Interrupted because an app asked to slow down for longer than a job waits: "
        "a job that goes on with it starts when the app said.",
    )
    records_read = models.PositiveIntegerField(default=0)
    coupling_ids = models.JSONField(
        default=list, blank=True, help_text="The couplings a job of chosen couplings synchronizes."
    )
    record_ids = models.JSONField(
        default=dict,
        blank=True,
        help_text="Uncoupled records a job of chosen records synchronizes, by direction: "
        '{"to_destination": [source ids], "from_destination": [destination ids]}.',
    )
    overwrite = models.BooleanField(
        default=False,
        help_text="Write the values of the side read even where the other side changed too "
        "(a person chose the direction).",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    rule_versions: "models.ManyToManyField[RuleVersion, Any]" = models.ManyToManyField(
        "RuleVersion",
        blank=True,
        related_name="jobs",
        help_text="The rules a person applied with this job: those used once apply in it only.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Kept by PostgreSQL as well (db_default), so a running version that does not know the
    # column still inserts jobs while the new one migrates.
    log_lines_dropped = models.IntegerField(
        default=0,
        db_default=0,
        help_text="Lines the job logged beyond what its log keeps (JOB_LOG_MAX_LINES and "
        "JOB_LOG_MAX_BYTES).",
    )

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.INTERRUPTED)
    # What became of each record a job read: together they add up to `records_read`.
    RECORD_COUNTS = (
        "inserted",
        "modified",
        "deleted",
        "unchanged",
        "skipped",
        "failed",
        "retrying",
    )

    class Outcome(models.TextChoices):
        """What a job achieved, as the pages show it: its status, except that a job that ran
        to the end with records that failed completed with failures (not stored: a job's
        status stays "succeeded", and its Failed count tells them apart)."""

        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        COMPLETED_WITH_FAILURES = "completed_with_failures", "Completed with failures"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"

    # Not stored: what the engine tells the task that ran the job. A job interrupted by a
    # lost worker or database names its `successor`, the queued job that goes on with it,
    # for the task to send to a worker; one that failed transiently is tried again in
    # `retry_in` seconds.
    successor: "SyncJob | None" = None
    # Seconds the successor waits before it starts (a job paused by an app's throttling).
    successor_delay: float | None = None
    retry_in: int | None = None
    # Not stored: a newer job took the mapping's lease while this one ran (sync.leases), so
    # the task that ran it does nothing more for it.
    lease_lost: bool = False
    # Not stored: the lease token the running job took, which its page shares write under.
    lease_token: int | None = None
    # Not stored: the records left out because they are not coupled (counted as skipped), for
    # the job's message.
    not_coupled: int = 0

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["mapping", "-created_at"], name="job_mapping_recent"),
            models.Index(fields=["-created_at"], name="job_recent"),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} · {self.mapping.name}"

    def get_absolute_url(self) -> str:
        return reverse("sync:job", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def outcome(self) -> str:
        if self.status == self.Status.SUCCEEDED and self.failed:
            return self.Outcome.COMPLETED_WITH_FAILURES
        return self.status

    @property
    def outcome_display(self) -> str:
        """The job's status in words, with its failures: "Completed with 9 failures"."""
        if self.outcome == self.Outcome.COMPLETED_WITH_FAILURES:
            return f"Completed with {self.failed} failure{'' if self.failed == 1 else 's'}"
        return self.get_status_display()

    @classmethod
    def with_outcome(cls, outcome: str) -> models.Q:
        """The jobs of an outcome, for a filter."""
        if outcome == cls.Outcome.COMPLETED_WITH_FAILURES:
            return models.Q(status=cls.Status.SUCCEEDED, failed__gt=0)
        if outcome == cls.Outcome.SUCCEEDED:
            return models.Q(status=cls.Status.SUCCEEDED, failed=0)
        return models.Q(status=outcome)

    @property
    def records_counted(self) -> int:
        """The records read that the counts account for: each record a job reads is counted
        once, as inserted, modified, deleted, unchanged, skipped, failed or retrying."""
        return sum(getattr(self, name) for name in self.RECORD_COUNTS)

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class MappingLease(models.Model):
    """The fencing token of a mapping's running job (sync.leases): moved on by one by each job
    that starts; a job writes only while the token is still the one it took."""

    mapping = models.OneToOneField(
        TableMapping, on_delete=models.CASCADE, primary_key=True, related_name="lease"
    )
    token = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Lease {self.token} of {self.mapping}"


class PageShare(models.Model):
    """One key range of a full job's direction, read and written by its own page pass, in
    parallel with the other ranges in other workers (sync.keyranges, engine.run_share).

    The job's worker shares the direction out, runs the first range itself and waits for
    the others; each pass writes under the job's lease, keeps its own counts (the job adds
    them up), and its last page's key, so that a pass left by a worker that died goes on
    after it (syncconsole.work)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(SyncJob, on_delete=models.CASCADE, related_name="shares")
    direction = models.CharField(max_length=20)
    number = models.PositiveSmallIntegerField()
    # The range of keys, lowest included and highest excluded; blank: open on that end.
    low = models.CharField(max_length=100, blank=True)
    high = models.CharField(max_length=100, blank=True)
    # The key of the last record of the last page done: a resumed pass reads after it.
    done_until = models.CharField(max_length=100, blank=True)
    lease = models.PositiveBigIntegerField()
    # The worker that runs it (host and process id), for the job's page.
    worker = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    failure = models.JSONField(default=dict, blank=True)
    newest = models.DateTimeField(null=True, blank=True)
    records_read = models.PositiveIntegerField(default=0)
    inserted = models.PositiveIntegerField(default=0)
    modified = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    retrying = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    resumes = models.SmallIntegerField(default=0)

    FINISHED = (Status.SUCCEEDED, Status.FAILED)
    COUNTS = (*SyncJob.RECORD_COUNTS, "records_read")

    class Meta:
        ordering = ["job", "direction", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "direction", "number"], name="one_share_per_range"
            )
        ]

    def __str__(self) -> str:
        return f"Share {self.number} of job #{self.job_id}, {self.direction}"


class JobLogLine(models.Model):
    """One line a job logged while it ran (INFO and above, from the engine, the connectors
    and the services they call), kept with the job and deleted with it."""

    LEVELS = {
        logging.DEBUG: "debug",
        logging.INFO: "info",
        logging.WARNING: "warning",
        logging.ERROR: "error",
        logging.CRITICAL: "critical",
    }
    MESSAGE_MAX_LENGTH = 2000

    job = models.ForeignKey(SyncJob, on_delete=models.CASCADE, related_name="log_lines")
    at = models.DateTimeField()
    level = models.PositiveSmallIntegerField()
    logger = models.CharField(max_length=100)
    message = models.TextField()

    class Meta:
        ordering = ["job", "pk"]

    def __str__(self) -> str:
        return f"{self.level_name}: {self.message[:80]}"

    @property
    def level_name(self) -> str:
        return self.LEVELS.get(self.level, str(self.level))


class ConnectionCheck(models.Model):
    """One run of a connection's setup health check and what it found (codes, severities,
    messages and remedies; never secrets)."""

    KEEP = 10  # checks kept per connection

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="checks")
    checked_at = models.DateTimeField()
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    findings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [
            models.Index(fields=["connection", "-checked_at"], name="check_connection_recent")
        ]

    def __str__(self) -> str:
        return f"Check of {self.connection} at {self.checked_at:%Y-%m-%d %H:%M}"

    def by_severity(self, severity: str) -> list[dict]:
        return [f for f in self.findings if f.get("severity") == severity]

    @property
    def errors(self) -> list[dict]:
        return self.by_severity("error")

    @property
    def warnings(self) -> list[dict]:
        return self.by_severity("warning")

    @property
    def oks(self) -> list[dict]:
        return self.by_severity("ok")


# A mapping's backlog: its records failing, coupled or not, and its skipped couplings.
BACKLOG = ("failing", "failing_not_coupled", "skipped")


class MappingHealthSnapshot(models.Model):
    """How a mapping's coupled records stood at the end of its last job of a day: the history
    behind the backlog trend, written once per job instead of counted from the entries."""

    mapping = models.ForeignKey(
        TableMapping, on_delete=models.CASCADE, related_name="health_snapshots"
    )
    day = models.DateField()
    in_sync = models.PositiveIntegerField(default=0)
    failing = models.PositiveIntegerField(default=0)
    # Records that never got coupled because their create failed (a currency without an
    # exchange rate, a parent not coupled yet) and whose entry is open: they fail as much as
    # a failing coupled record, but have no coupling to count them by.
    failing_not_coupled = models.IntegerField(default=0, db_default=0)
    skipped = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["mapping", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["mapping", "day"], name="one_snapshot_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.mapping.name} {self.day}"

    @property
    def backlog(self) -> int:
        return sum(getattr(self, name) for name in BACKLOG)


class ChangeSubscription(models.Model):
    """A subscription to an app's change notifications for one table of one side of a
    connection, kept so that it is renewed or registered again, and shown on the
    connection's page: a Business Central webhook subscription (which expires after three
    days), or the steps on Create, Update and Delete of a Dataverse table registered on the
    side's webhook (a service endpoint)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FAILED = "failed", "Failed"
        UNSUPPORTED = "unsupported", "Not offered by the app"

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="change_subscriptions"
    )
    side = models.CharField(max_length=20)
    entity = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    subscription_id = models.CharField(max_length=100, blank=True)
    resource = models.CharField(max_length=500, blank=True)
    notification_url = models.URLField(max_length=2048, blank=True)
    etag = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=2000, blank=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    endpoint_id = models.CharField(
        max_length=100, blank=True, help_text="Dataverse: the side's webhook (service endpoint)."
    )
    step_ids = models.JSONField(
        default=dict,
        blank=True,
        help_text="Dataverse: the steps registered for this table on the webhook, by message.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection", "side", "entity"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "side", "entity"], name="one_subscription_per_table"
            )
        ]

    def __str__(self) -> str:
        return f"{self.connection} {self.side} {self.entity}: {self.get_status_display()}"


# The bounds of a lag probe's settings: how often it writes (minutes) and its limit (seconds).
PROBE_INTERVAL_MINUTES = (1, 1440)
PROBE_LIMIT_SECONDS = (10, 7 * 24 * 60 * 60)
# The longest marker a probe writes; a field shorter than its default takes a shorter form.
PROBE_MARKER_LENGTH = (12, 250)


def spoken(seconds: float | None) -> str:
    """A duration as people say it: "45 s", "7 min 12 s", "1 h 5 min"."""
    if seconds is None:
        return "—"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


class ProbeDirection(models.TextChoices):
    """Which side's record a lag probe changes."""

    TO_DESTINATION = "to_destination", "To destination (change the source record)"
    FROM_DESTINATION = "from_destination", "From destination (change the destination record)"


class LagProbe(models.Model):
    """A lag probe of a table mapping: on a schedule it writes a marker into one field of one
    chosen record on one side, and measures when the change arrives on the other side."""

    mapping = models.OneToOneField(TableMapping, on_delete=models.CASCADE, related_name="probe")
    direction = models.CharField(
        max_length=20,
        choices=ProbeDirection.choices,
        default=ProbeDirection.TO_DESTINATION,
        help_text="Which side's record the probe changes: to destination changes the record "
        "of the mapping's source app.",
    )
    record_id = models.CharField(
        max_length=100, help_text="The id of the coupled record the probe changes, on that side."
    )
    marker_field = models.CharField(
        max_length=100,
        help_text="A text field of that record that the mapping carries in that direction; "
        "the probe overwrites it.",
    )
    marker_length = models.PositiveSmallIntegerField(
        default=30,
        validators=[
            MinValueValidator(PROBE_MARKER_LENGTH[0]),
            MaxValueValidator(PROBE_MARKER_LENGTH[1]),
        ],
        help_text="The longest text the field takes on both sides (12 to 250 characters).",
    )
    interval_minutes = models.PositiveSmallIntegerField(
        default=5,
        validators=[
            MinValueValidator(PROBE_INTERVAL_MINUTES[0]),
            MaxValueValidator(PROBE_INTERVAL_MINUTES[1]),
        ],
        help_text="Minutes between two markers (1 to 1440).",
    )
    limit_seconds = models.PositiveIntegerField(
        default=300,
        validators=[
            MinValueValidator(PROBE_LIMIT_SECONDS[0]),
            MaxValueValidator(PROBE_LIMIT_SECONDS[1]),
        ],
        help_text="A change that takes longer to arrive is late, and logged as a lag problem.",
    )
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["mapping"]
        verbose_name = "lag probe"

    def __str__(self) -> str:
        return f"Lag probe of {self.mapping.name}"

    @property
    def side(self) -> str:
        """The side whose record the probe changes."""
        return (
            "source" if self.direction == TableMapping.Direction.TO_DESTINATION else "destination"
        )

    @property
    def other_side(self) -> str:
        return "destination" if self.side == "source" else "source"

    @property
    def changed_app(self) -> str:
        """The app whose record the probe changes."""
        return getattr(self.mapping.connection, f"{self.side}_app")

    @property
    def reached_app(self) -> str:
        return getattr(self.mapping.connection, f"{self.other_side}_app")

    @property
    def limit_words(self) -> str:
        return spoken(self.limit_seconds)

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes)

    @property
    def limit(self) -> timedelta:
        return timedelta(seconds=self.limit_seconds)


class LagSample(models.Model):
    """One marker a probe wrote and when it arrived on the other side: one point of the
    mapping's lag over time."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting"
        ARRIVED = "arrived", "Arrived"
        LATE = "late", "Late"
        FAILED = "failed", "Failed"

    probe = models.ForeignKey(LagProbe, on_delete=models.CASCADE, related_name="samples")
    marker = models.CharField(max_length=250, blank=True)
    written_at = models.DateTimeField(
        help_text="The changed record's modified time in its app (else when it was written)."
    )
    arrived_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The coupled record's modified time on the other side when the marker was "
        "seen there (else when it was seen).",
    )
    lag_seconds = models.FloatField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    checked_at = models.DateTimeField(null=True, blank=True)
    # A sample stays open, looked for at each run, until its marker arrives, it cannot be
    # written, or it is given up; the probe writes its next marker only then.
    closed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="What an app answered when it failed.")

    class Meta:
        ordering = ["-written_at", "-id"]
        verbose_name = "lag sample"
        indexes = [
            models.Index(fields=["probe", "-written_at"], name="lag_sample_series"),
        ]
        constraints = [
            # One marker at a time: the next is written once this one arrived or failed.
            models.UniqueConstraint(
                fields=["probe"],
                condition=models.Q(closed_at__isnull=True),
                name="one_open_lag_sample",
            )
        ]

    def __str__(self) -> str:
        return f"{self.probe.mapping.name} {self.marker}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def lag_words(self) -> str:
        return spoken(self.lag_seconds)


class RecordEdit(models.Model):
    """Values a person typed for one record that an app refused to write, kept on the entry
    it was made on: the engine writes them in place of the values it computes for those
    fields for as long as the record's source values they replace are unchanged.

    Pending until a job writes them, then written; superseded by a later edit of the same
    record (which carries its values on), or lapsed when the source value changed since (the
    source wins). The entry is named by its id: entries are partitioned, with no foreign
    key to them."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        WRITTEN = "written", "Written"
        SUPERSEDED = "superseded", "Superseded"
        LAPSED = "lapsed", "Lapsed"

    # The states in which the engine applies an edit.
    ACTIVE = (State.PENDING, State.WRITTEN)

    mapping = models.ForeignKey(TableMapping, on_delete=models.CASCADE, related_name="edits")
    direction = models.CharField(max_length=20, help_text="to_destination or from_destination.")
    record_id = models.CharField(max_length=100, help_text="The id of the record read.")
    entry_id = models.BigIntegerField(help_text="The entry the edit was made on.")
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    made_by_label = models.CharField(max_length=150, help_text="The user name at the time.")
    made_at = models.DateTimeField()
    before = models.JSONField(
        default=dict, help_text="What the engine would have written for the edited fields."
    )
    after = models.JSONField(default=dict, help_text="The values typed, by the written field.")
    based_on = models.JSONField(
        default=dict,
        help_text="The record's source values the edit replaces, by the read field, when it "
        "was made.",
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    settled_at = models.DateTimeField(null=True, blank=True)
    # A plain id: the job log is cleaned up on its own schedule.
    written_in_job = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-made_at", "-id"]
        verbose_name = "record edit"
        indexes = [
            models.Index(fields=["entry_id"], name="record_edit_entry"),
            models.Index(
                fields=["mapping", "direction", "record_id"],
                condition=models.Q(state__in=["pending", "written"]),
                name="record_edit_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mapping.name} {self.record_id}: {', '.join(self.after)}"


class MappingRule(models.Model):
    """A rule that transforms the value a mapping writes to one field in one direction, made
    from a problem: kept on the mapping (a transformation of every later write, while it is
    active) or used once (in the job that applied it). Its versions keep what it did."""

    DIRECTIONS = [
        (TO_DESTINATION, "To destination"),
        (FROM_DESTINATION, "From destination"),
    ]

    mapping = models.ForeignKey(TableMapping, on_delete=models.CASCADE, related_name="rules")
    direction = models.CharField(
        max_length=20, choices=DIRECTIONS, help_text="The direction of the writes it changes."
    )
    field = models.CharField(max_length=100, help_text="The field written, by the app written to.")
    kept = models.BooleanField(
        default=True, help_text="Kept on the mapping: later writes are transformed too."
    )
    is_active = models.BooleanField(default=True)
    current = models.ForeignKey(
        "RuleVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    origin_problem = models.ForeignKey(
        "errors.ErrorGroup",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rules",
        help_text="The problem it was made to fix.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    switched_off_at = models.DateTimeField(null=True, blank=True)
    switched_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["mapping", "pk"]
        indexes = [
            models.Index(
                fields=["mapping", "direction"],
                condition=models.Q(is_active=True, kept=True),
                name="rule_in_force",
            )
        ]

    def __str__(self) -> str:
        what = describe(self.current.kind, self.current.params) if self.current else "no version"
        return f"Rule {self.pk} · {self.mapping.name} {self.field}: {what}"


class RuleVersion(models.Model):
    """One version of a rule: what it does. A change or a revert adds a version."""

    rule = models.ForeignKey(MappingRule, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=list(KINDS.items()))
    params = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=200, blank=True)
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    made_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rule", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "number"], name="one_rule_version_number")
        ]

    def __str__(self) -> str:
        return f"Rule {self.rule_id} version {self.number}: {self.description}"

    @property
    def description(self) -> str:
        return describe(self.kind, self.params)

    def step(self, field: str) -> Step:
        return Step(field=field, kind=self.kind, params=self.params)

    @classmethod
    def in_force(cls, job: SyncJob, direction: str) -> Rules:
        """The rules a pass of `job` applies: the mapping's active kept rules, and the
        rules applied with the job (used once), each rule once."""
        kept = cls.objects.filter(
            rule__mapping_id=job.mapping_id,
            rule__direction=direction,
            rule__is_active=True,
            rule__kept=True,
            rule__current=models.F("pk"),
        )
        versions: list[RuleVersion] = list(kept.select_related("rule"))
        if job.pk is not None:
            versions += job.rule_versions.filter(rule__direction=direction).select_related("rule")
        chosen: dict[int, RuleVersion] = {}
        for version in sorted(versions, key=lambda v: (v.rule_id, -v.number)):
            chosen.setdefault(version.rule_id, version)  # each rule once: its newest version
        return Rules(version.step(version.rule.field) for version in chosen.values())
