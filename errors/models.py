"""Sync error entries and the record of every clean-up that deleted them."""

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Greatest, Least, Upper
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from syncconsole.permissions import is_sync_admin

from .links import safe_link

if TYPE_CHECKING:
    from .trends import GroupFigures


class Category(models.TextChoices):
    PERMISSION = "permission", "Permission"
    AUTHENTICATION = "authentication", "Authentication"
    INTEGRATION_USER = "integration_user", "Integration user"
    CURRENCY = "currency", "Currency / exchange rate"
    COUPLED_RECORD_DELETED = "coupled_record_deleted", "Coupled record deleted"
    NOT_COUPLED = "not_coupled", "On one side only"
    CONFLICT = "conflict", "Conflict"
    VALIDATION = "validation", "Validation"
    CONNECTION = "connection", "Connection"
    LAG = "lag", "Lag"
    OTHER = "other", "Other"


# The entries for administrators only: Sync users do not see them, jobs that fail with them count
# towards pausing a mapping, and alerts about them are sent while they keep coming. Who acts on an
# entry is its audience (below): a connection entry is in this set but needs nobody at once.
SETUP_CATEGORIES = frozenset(
    {
        Category.PERMISSION,
        Category.AUTHENTICATION,
        Category.INTEGRATION_USER,
        Category.CURRENCY,
        Category.CONNECTION,
    }
)


@dataclass(frozen=True)
class Audience:
    """Who can act on an entry of a category, in the words the pages, the remedies and the
    alerts use: one place, so that they agree."""

    who: str  # after "Cause and fix ·" and in an alert's "Fix (…)"
    label: str  # beside a problem's title
    sentence: str  # under an entry's message


ADMINISTRATOR = Audience(
    who="for an administrator",
    label="setup: for an administrator",
    sentence="A setup error: it needs an administrator (roles and privileges, the integration "
    "user and its sign-in, currencies and exchange rates). Until it is fixed, every record it "
    "touches fails the same way.",
)
SYNC_USER = Audience(
    who="for a Sync user",
    label="coupled records: for a Sync user",
    sentence="A coupled-record error: it comes from what was done to coupled records, and a "
    "Sync user can fix it.",
)
NOBODY_AT_ONCE = Audience(
    who="nobody needs to act at once",
    label="temporary: nobody needs to act at once",
    sentence="Temporary: an app could not be used for a while (unreachable, too slow, "
    "throttling, or an answer that is not its API). Nobody needs to act at once: it closes by "
    "itself when a later job gets through. If it keeps coming, an administrator looks at the "
    "app and the connection.",
)
SLOW = Audience(
    who="for an administrator",
    label="lag: for an administrator",
    sentence="Lag: changes take longer than the lag probe of the mapping allows to reach the "
    "other app. No record failed; an administrator looks at what carries the changes (the "
    "worker, the schedule, the change notifications, throttling by an app). It closes by "
    "itself when a later marker arrives in time.",
)
UNRECOGNIZED = Audience(
    who="for an administrator",
    label="not recognized: for an administrator",
    sentence="Not recognized: the sync does not know this failure. An administrator reads the "
    "detail to tell whether the setup, the data or the console is at fault.",
)
AUDIENCES: dict[str, Audience] = {
    Category.PERMISSION: ADMINISTRATOR,
    Category.AUTHENTICATION: ADMINISTRATOR,
    Category.INTEGRATION_USER: ADMINISTRATOR,
    Category.CURRENCY: ADMINISTRATOR,
    Category.COUPLED_RECORD_DELETED: SYNC_USER,
    Category.NOT_COUPLED: SYNC_USER,
    Category.CONFLICT: SYNC_USER,
    Category.VALIDATION: SYNC_USER,
    Category.CONNECTION: NOBODY_AT_ONCE,
    Category.LAG: SLOW,
    Category.OTHER: UNRECOGNIZED,
}


def audience_of(category: str) -> Audience:
    return AUDIENCES.get(category, UNRECOGNIZED)


# How many identical failures in a row skip a coupling: a mapping's policy, or a problem's.
SKIP_AFTER_LIMITS = (1, 20)


def skip_after_validators() -> list:
    low, high = SKIP_AFTER_LIMITS
    return [MinValueValidator(low), MaxValueValidator(high)]


# Automatic retries of a record that failed transiently: how many later runs try it again
# before it is logged, and the longest wait between two (a mapping's policy, or a problem's).
TRANSIENT_RETRIES_MAX = 10
MAX_RETRY_DELAY_SECONDS = 6 * 60 * 60


class EntryLogging(models.TextChoices):
    """How a record that keeps failing the same way is logged: an entry for every attempt,
    or one entry that counts the attempts while it stays open."""

    EVERY_ATTEMPT = "every_attempt", "An entry for every attempt"
    ONCE = "once", "One entry with a count of attempts"


class Status(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    IGNORED = "ignored", "Ignored"
    SNOOZED = "snoozed", "Snoozed"


class Severity(models.IntegerChoices):
    """How much a problem stops now, highest first: the first part of its severity rank."""

    SET_ASIDE = 0, "Set aside"  # resolved, ignored or snoozed: it stops nothing now
    RECORDS = 1, "Records"  # open: its records fail
    BLOCKING = 2, "Blocking"  # open setup problem of a whole job: no record gets through
    ROOT_CAUSE = 3, "Root cause"  # open, and records of other problems fail because of it


# A problem's severity rank packs, into one bigint, what the problems are sorted by: its level
# (bits 61-62), then its records (bits 33-60, at most SEVERITY_RECORDS_CAP), then when it was
# last seen (seconds since 1970 in bits 0-32, enough until the year 2242). One column, so that
# one index serves the sort and its pages are fetched by position like the other lists.
SEVERITY_LEVEL_UNIT = 2**61
SEVERITY_RECORDS_UNIT = 2**33
SEVERITY_RECORDS_CAP = 2**28 - 1
SEVERITY_SECONDS_CAP = SEVERITY_RECORDS_UNIT - 1


class EpochSeconds(models.Func):
    """Whole seconds since 1970 of a moment. Subtracting a constant moment and reading the
    interval's seconds is immutable, as a generated column needs (EXTRACT of a timestamptz
    itself is only stable)."""

    template = (
        "FLOOR(EXTRACT(EPOCH FROM (%(expressions)s - TIMESTAMPTZ '1970-01-01 00:00:00+00')))"
        "::bigint"
    )
    output_field = models.BigIntegerField()


def severity_rank() -> models.Expression:
    """The problem's severity rank, from its own stored figures (kept by the database as
    entries come and go) and status: computed by PostgreSQL whenever the row changes."""
    level = Case(
        When(~Q(status="open"), then=Value(Severity.SET_ASIDE.value)),
        # Records of other problems fail because of this one: fixed, they may all go through.
        When(Q(blocks_records__gt=0), then=Value(Severity.ROOT_CAUSE.value)),
        # A setup failure that names no record is a whole job's: the mapping stops there.
        When(
            Q(category__in=sorted(SETUP_CATEGORIES), records=0),
            then=Value(Severity.BLOCKING.value),
        ),
        default=Value(Severity.RECORDS.value),
        output_field=models.BigIntegerField(),
    )
    big: models.BigIntegerField = models.BigIntegerField()
    # A moment before 1970 (another integration may send one) counts as 1970: the seconds
    # never borrow from the records or the level.
    seconds = Greatest(
        Value(0, output_field=big),
        Least(EpochSeconds("last_seen"), Value(SEVERITY_SECONDS_CAP, output_field=big)),
    )
    # A root cause ranks by the records it blocks, directly and through others.
    records = Case(
        When(Q(status="open", blocks_records__gt=0), then=F("blocks_records")),
        default=F("records"),
        output_field=big,
    )
    return (
        level * Value(SEVERITY_LEVEL_UNIT, output_field=big)
        + Least(records, Value(SEVERITY_RECORDS_CAP, output_field=big))
        * Value(SEVERITY_RECORDS_UNIT, output_field=big)
        + seconds
    )


class OwnershipRule(models.Model):
    """Who a new problem is assigned to when it is created: on a connection or a table mapping
    (or everywhere), of a category (or any). The most specific rule that matches wins."""

    connection = models.ForeignKey(
        "sync.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    mapping = models.ForeignKey(
        "sync.TableMapping", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    category = models.CharField(
        max_length=30, choices=Category.choices, blank=True, help_text="Empty: any category."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ownership_rules",
        help_text="Assign to this person…",
    )
    group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="…or to this role (Sync users or Sync administrators).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "ownership rule"
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "mapping", "category"],
                nulls_distinct=False,
                name="ownership_rule_one_per_scope",
            ),
            models.CheckConstraint(
                condition=Q(connection__isnull=True) | Q(mapping__isnull=True),
                name="ownership_rule_connection_or_mapping",
            ),
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="ownership_rule_one_assignee",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope_label} → {self.assignee_label}"

    @property
    def scope_label(self) -> str:
        what = f"{Category(self.category).label} problems" if self.category else "Problems"
        if self.mapping_id:
            return f"{what} of table mapping {self.mapping}"
        if self.connection_id:
            return f"{what} of connection {self.connection}"
        return f"{what} of every connection"

    @property
    def assignee_label(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        return self.group.name if self.group is not None else "nobody"

    @property
    def specificity(self) -> int:
        """Higher first: a mapping before a connection before everywhere; a category before
        any."""
        return (2 if self.mapping_id else 1 if self.connection_id else 0) * 2 + bool(self.category)


class ErrorGroup(models.Model):
    """Entries with the same fingerprint (mapping, category, message without ids, numbers and
    times): one problem, however many records it hit. Its figures are kept up to date as
    entries are written and deleted, never counted from the whole table."""

    # Not stored: set by the list of problems for the page shown (grouping.figures_for).
    figures: "GroupFigures"

    fingerprint = models.CharField(max_length=64, unique=True)
    mapping = models.ForeignKey(
        "sync.TableMapping",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="error_groups",
    )
    integration = models.CharField(
        max_length=100,
        blank=True,
        help_text="For problems sent by another integration: its name.",
    )
    category = models.CharField(max_length=30, choices=Category.choices, default=Category.OTHER)
    title = models.CharField(max_length=2048, help_text="The message of its first entry.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # Kept by the entries' triggers alone (errors/sql/errors_add_days.sql), never written from
    # Python: see docs/development/database.md.
    count = models.PositiveBigIntegerField(default=0)
    # Its history, kept when its entries are deleted: written by the problems' upsert in
    # grouping.record_errors (the failures it has had in all: its entries, and the later
    # attempts counted on them by grouping.record_attempts; the first entry, when the
    # problem is created), never by a clean-up.
    # Defaults in the database too: a problem written by SQL (tests, benchmarks) has them.
    seen_total = models.PositiveBigIntegerField(
        default=0,
        db_default=0,
        help_text="Failures it has had in all (entries and the attempts counted on them), "
        "deleted ones too.",
    )
    example = models.JSONField(
        default=dict,
        db_default={},
        blank=True,
        help_text="Its first entry (message, detail excerpt, ids, time), kept after clean-up.",
    )
    # Kept by the database (see GroupRecord), never written by the application.
    records = models.PositiveBigIntegerField(
        default=0, db_default=0, help_text="Distinct source records among its entries."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status_note = models.CharField(max_length=500, blank=True)
    regressed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it happened again after it was resolved."
    )
    # A snoozed problem wakes up (reopens) at this moment, or when its count reaches this.
    snoozed_until = models.DateTimeField(null=True, blank=True)
    snooze_until_count = models.PositiveBigIntegerField(null=True, blank=True)
    # Never written: PostgreSQL computes it from the columns above whenever the row changes.
    # Root causes (errors/blocking.py): the problem whose records all of this one's records
    # wait for, and the records of other problems that wait for this one's, kept when entries
    # are recorded or change status.
    blocked_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The problem every open entry of this one is blocked by.",
    )
    blocks_records = models.PositiveBigIntegerField(
        default=0,
        db_default=0,
        help_text="Records of other problems that fail because of this one, directly and "
        "through others.",
    )
    blocks_directly = models.PositiveBigIntegerField(
        default=0,
        db_default=0,
        help_text="Records whose own entry names this problem as what blocks it.",
    )
    severity = models.GeneratedField(
        expression=severity_rank(),
        output_field=models.BigIntegerField(),
        db_persist=True,
        help_text="Its severity rank: level, then records, then when it was last seen.",
    )
    # Who owns it: a person or a role, or nobody. Written by errors.ownership only.
    assigned_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_problems",
    )
    assigned_group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_problems",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when an ownership rule assigned it.",
    )
    assigned_by_rule = models.ForeignKey(
        OwnershipRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Written by errors.policies only.
    skip_after_failures = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=skip_after_validators(),
        help_text="Skip a coupling after this many identical failures in a row of this "
        "problem. Empty: the policy of the mapping.",
    )

    # Written by errors.policies only.
    transient_retries = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(TRANSIENT_RETRIES_MAX)],
        help_text="After a transient failure of this problem, how many later runs try the "
        "record again before it is logged. Empty: the policy of the mapping.",
    )
    retry_delay_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETRY_DELAY_SECONDS)],
        help_text="The wait before the first of those retries, doubling each time. Empty: "
        "the policy of the mapping.",
    )
    # Written by errors.policies only.
    entry_logging = models.CharField(
        max_length=20,
        choices=EntryLogging.choices,
        blank=True,
        db_default="",  # problems are written by SQL of their own (errors.grouping)
        help_text="How the records failing with this problem are logged. Empty: the policy of "
        "the mapping.",
    )

    class Meta:
        ordering = ["-last_seen", "-id"]
        verbose_name = "error group"
        constraints = [
            models.CheckConstraint(
                condition=Q(assigned_user__isnull=True) | Q(assigned_group__isnull=True),
                name="problem_assigned_to_one",
            ),
        ]
        indexes = [
            models.Index(fields=["-last_seen", "-id"], name="group_recent"),
            # The problems page's default order, fetched by position (keyset).
            models.Index(fields=["-severity", "-id"], name="group_severity"),
            models.Index(fields=["category", "-last_seen", "-id"], name="group_category_recent"),
            models.Index(fields=["mapping", "-last_seen", "-id"], name="group_mapping_recent"),
            models.Index(
                fields=["snoozed_until"],
                condition=models.Q(status="snoozed"),
                name="group_snoozed",
            ),
            # The message search of the problems page and of the entries (errors.search):
            # the entries' messages are found through their problems' titles.
            GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="group_title_trgm"),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.title[:80]}"

    def get_absolute_url(self) -> str:
        return reverse("errors:list") + f"?group={self.pk}"

    def retry_policy(self) -> tuple[int, int | None, bool] | None:
        """The automatic retries of a transient failure in force: how many, the first wait
        (None: the default), and whether they are the problem's own; None without a policy
        (no mapping, none of its own)."""
        own = self.transient_retries is not None or self.retry_delay_seconds is not None
        mapping = self.mapping
        if mapping is None and not own:
            return None
        retries = self.transient_retries
        if retries is None:
            retries = mapping.transient_retries if mapping is not None else 0
        delay = self.retry_delay_seconds
        if delay is None and mapping is not None:
            delay = mapping.retry_delay_seconds
        return retries, delay, own

    @property
    def example_created_at(self) -> datetime | None:
        """When its first entry was created, as the example keeps it (ISO 8601 text)."""
        value = (self.example or {}).get("created_at")
        return parse_datetime(value) if isinstance(value, str) else None

    @property
    def is_setup_error(self) -> bool:
        return self.category in SETUP_CATEGORIES

    @property
    def audience(self) -> Audience:
        return audience_of(self.category)

    @property
    def occurrences_until_awake(self) -> int | None:
        if self.snooze_until_count is None:
            return None
        return max(self.snooze_until_count - self.count, 0)

    @property
    def severity_level(self) -> Severity:
        return Severity(self.severity // SEVERITY_LEVEL_UNIT)

    @property
    def severity_reason(self) -> str:
        """Why it ranks where it does, in a few words ("blocks the CURRENCY mapping")."""
        level = self.severity_level
        if level == Severity.ROOT_CAUSE:
            return self.blocks_label
        if level == Severity.BLOCKING:
            if self.mapping_id and self.mapping is not None:
                paused = " (paused)" if self.mapping.is_paused else ""
                return f"blocks the {self.mapping.name} mapping{paused}"
            if self.integration:
                return f"blocks the integration {self.integration}"
            return "blocks whole jobs"
        if level == Severity.SET_ASIDE:
            return f"{self.get_status_display().lower()}: stops nothing now"
        if not self.records:
            return "no record named"
        return f"{self.records:,} record{'' if self.records == 1 else 's'}"

    @property
    def blocks_label(self) -> str:
        """What it blocks, in words: "blocks 12 records (3 directly)"; "" for nothing."""
        if not self.blocks_records:
            return ""
        total, direct = self.blocks_records, self.blocks_directly
        directly = "" if direct == total else f" ({direct:,} directly)"
        return f"blocks {total:,} record{'' if total == 1 else 's'}{directly}"

    @property
    def assignee_label(self) -> str:
        """Who owns it, as the pages say it ("" for nobody)."""
        if self.assigned_user_id and self.assigned_user is not None:
            return self.assigned_user.get_username()
        if self.assigned_group_id and self.assigned_group is not None:
            return self.assigned_group.name
        return ""


COMMENT_MAX_LENGTH = 4000


class ProblemComment(models.Model):
    """One message of a problem's discussion: who, when, what (plain text, shown escaped)."""

    group = models.ForeignKey(ErrorGroup, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150, help_text="The user name when it was written.")
    created_at = models.DateTimeField(auto_now_add=True)
    text = models.TextField(max_length=COMMENT_MAX_LENGTH)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "problem comment"
        indexes = [models.Index(fields=["group", "created_at", "id"], name="comment_of_problem")]

    def __str__(self) -> str:
        return f"{self.author_name} on problem #{self.group_id}: {self.text[:60]}"


class AssignmentNotice(models.Model):
    """Per person: the problems assigned to them (or to their role) since their last
    assignment e-mail, and when that went, so that they get at most one e-mail an hour."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    events = ArrayField(
        models.BigIntegerField(),
        default=list,
        blank=True,
        help_text="The problems assigned since the last e-mail, waiting to be sent.",
    )
    pending_since = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last assignment e-mail was sent."
    )
    notified_events = ArrayField(models.BigIntegerField(), default=list, blank=True)
    sending_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While a worker sends the e-mail: when its claim lapses, if it dies first.",
    )

    class Meta:
        verbose_name = "assignment notice"

    def __str__(self) -> str:
        return f"Assignment e-mails of {self.user}"


class GroupDay(models.Model):
    """A problem's entries on one day (in TIME_ZONE), how many of them are open, how many of
    its entries were resolved that day, and its later attempts counted on entries that day.

    Kept by triggers on the entries table (errors/sql/errors_add_days.sql) for every insert,
    update and delete, whichever code path runs it; the clean-up takes a dropped day partition
    off these rows itself. The groups page and the overview read only these rows."""

    pk = models.CompositePrimaryKey("group", "day")
    group = models.ForeignKey(
        ErrorGroup, on_delete=models.DO_NOTHING, db_constraint=False, related_name="days"
    )
    day = models.DateField()
    entries = models.BigIntegerField(default=0)
    open = models.BigIntegerField(default=0)
    # Records of the problem whose latest entry is on this day: what dropping the day takes
    # off ErrorGroup.records, without reading its entries.
    latest_records = models.BigIntegerField(default=0, db_default=0)
    # Entries whose status became resolved on this day (by a person or by themselves) and is
    # still resolved: an entry reopened leaves its day again. Deleting an entry leaves it
    # counted, as a resolution that happened, until the day itself is dropped.
    resolved = models.BigIntegerField(default=0, db_default=0)
    # Later failures of a record counted on its standing entry (grouping.record_attempts) on
    # the day they failed: no new entry, but the problem happened that day all the same.
    attempts = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = "problem day"
        # The overview reads every problem's days of the last month.
        indexes = [models.Index(fields=["day"], name="groupday_day")]

    def __str__(self) -> str:
        return f"{self.group_id} {self.day}: {self.entries} ({self.open} open)"


class GroupRecord(models.Model):
    """A source record that a problem's entries name: ErrorGroup.records counts these rows,
    kept by the same triggers (errors/migrations/0017_group_record_latest_day.py).

    last_day is the day of the record's latest entry, counted on GroupDay.latest_records, and
    the table is partitioned by it like the entries by their day
    (errors/migrations/0031_records_go_with_their_day.py): a clean-up that drops a whole day
    takes those counts off without reading a row and drops the day's record rows with its
    entries. In the database the key is (group, record_id, last_day); one row per record
    holds because its writers hold the problem's row first. `entries` and `first_day` are
    exact while all the record's entries are on one day; otherwise a row-level delete counts
    the record's entries again. `moved_from` is no longer written."""

    pk = models.CompositePrimaryKey("group", "record_id")
    group = models.ForeignKey(
        ErrorGroup, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    record_id = models.CharField(max_length=100)
    entries = models.BigIntegerField(default=0)
    first_day = models.DateField()
    last_day = models.DateField()
    # The last_day before the latest write: lets the writing statement move the record from
    # one day's latest_records to another's (RETURNING shows only the new row).
    moved_from = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = "problem record"

    def __str__(self) -> str:
        return f"{self.group_id} {self.record_id}: {self.entries}"


SHORT_ID_LENGTH = 12


def short_id(record_id: str) -> str:
    """A record id short enough for a link's text: long ids (GUIDs) are cut."""
    if len(record_id) <= SHORT_ID_LENGTH:
        return record_id
    return record_id[: SHORT_ID_LENGTH - 4] + "…"


@dataclass(frozen=True)
class EntryRecord:
    """One of the two records an entry names, on the side of its mapping it belongs to."""

    side: str  # "source" or "destination": the mapping's side
    app: str
    entity: str
    record_id: str
    url: str  # as stored: it may come from another system
    name: str = ""  # its number or name, when the entry knows it
    gone: bool = False  # known to be deleted in its app

    @property
    def side_label(self) -> str:
        return self.side.capitalize()

    @property
    def link(self) -> str | None:
        """Where to open it: never for a record known to be gone."""
        return None if self.gone else safe_link(self.url)

    @property
    def label(self) -> str:
        """What a link to it says: its app, and its number or name, else its id. Without a
        record (a whole-job failure, a record that was never created): its app and table."""
        if not self.record_id:
            return " · ".join(part for part in (self.app, self.entity) if part)
        return " · ".join(
            part for part in (self.app, self.name or short_id(self.record_id)) if part
        )

    @property
    def title(self) -> str:
        """Everything the entry knows about it, for a tooltip."""
        parts = [self.app, self.entity, self.record_id]
        if self.name:
            parts.append(self.name)
        return " · ".join(part for part in parts if part)


@dataclass(frozen=True)
class EntrySides:
    source: EntryRecord
    destination: EntryRecord
    # The direction of the failed write, in the apps' names: "Business Central → Dynamics
    # 365 Sales"; "Both directions" for a whole bidirectional job; "" when unknown.
    direction: str


NEW_ENTRY_MESSAGE = (
    "New sync error entries are stored by errors.grouping.record_errors, which keeps their "
    "problems' figures."
)


class SyncError(models.Model):
    """One failure of the synchronization, with links to the records on both sides.

    `source_*` is the record the sync read and `destination_*` the record it wrote (or would
    have written), whichever way the sync ran; `sides` puts them on the mapping's sides.

    The table is partitioned by day of created_at (errors/partitions.py): its primary key in
    the database is (id, created_at); ids stay unique through their sequence."""

    MESSAGE_MAX_LENGTH = 2048

    created_at = models.DateTimeField()
    # No single-column index on these four: the composite indexes in Meta lead with each of
    # them and serve their filters and the SET NULL of a deleted job, coupling, mapping or
    # group; a duplicate would only slow every write down. Nor a constraint in the database:
    # its check (a lookup of the referenced row per key per entry, at commit) cost more than
    # all of the ingestion's Python work. check_references stands for the check; for its
    # ON DELETE SET NULL, a trigger on the jobs', couplings' and mappings' tables clears the
    # key after each delete (migration 0019), seeing entries written while the delete waited;
    # Django's collector sets the group's key to NULL (a problem is deleted only when empty).
    job = models.ForeignKey(
        "sync.SyncJob",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="errors",
        db_index=False,
        db_constraint=False,
    )
    coupling = models.ForeignKey(
        "couplings.Coupling",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="errors",
        db_index=False,
        db_constraint=False,
    )
    mapping = models.ForeignKey(
        "sync.TableMapping",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="errors",
        db_index=False,
        db_constraint=False,
    )
    group = models.ForeignKey(
        ErrorGroup,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="errors",
        db_index=False,
        db_constraint=False,
    )
    integration = models.CharField(
        max_length=100,
        blank=True,
        help_text="For entries sent by another integration through the API: its name.",
    )
    source_app = models.CharField(max_length=100, blank=True)
    source_entity = models.CharField(max_length=100, blank=True)
    source_record_id = models.CharField(max_length=100, blank=True)
    source_url = models.CharField(max_length=2000, blank=True)
    destination_app = models.CharField(max_length=100, blank=True)
    destination_entity = models.CharField(max_length=100, blank=True)
    destination_record_id = models.CharField(max_length=100, blank=True)
    destination_url = models.CharField(max_length=2000, blank=True)
    message = models.CharField(max_length=MESSAGE_MAX_LENGTH)
    detail = models.TextField(blank=True, help_text="Stack trace or response body.")
    category = models.CharField(max_length=30, choices=Category.choices, default=Category.OTHER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Its index is partial (Meta: error_status_changed_by): entries arrive with none, and an
    # index of the NULLs would cost every insert for nothing.
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    status_note = models.CharField(max_length=500, blank=True)
    sent_values = models.JSONField(
        null=True,
        blank=True,
        help_text="For a failed record: the values the sync tried to write and those it read "
        "(for a conflict, what each side held), bounded in size, without credentials.",
    )
    # Under a "once with a count" policy, the later failed attempts of the record are counted
    # on its open entry rather than logged apart (errors.grouping.count_attempts).
    # No CHECK constraint: adding one would read every row of the table to validate it.
    attempts = models.IntegerField(
        default=1,
        db_default=1,
        help_text="How many failed attempts of the record this entry stands for.",
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_job_id = models.BigIntegerField(
        null=True, blank=True, help_text="The job of the latest attempt counted on the entry."
    )
    # What the record failed for want of (a lookup's record missing, not coupled, or failing
    # itself): the referenced mapping, the side and key of its record (a record id, or the
    # code it was looked up by), or for a table outside any mapping its entity; and the open
    # entry of that record when there was one, with its problem. No constraint, as above.
    blocked_by_mapping = models.ForeignKey(
        "sync.TableMapping",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # NULL rather than "": added to a large partitioned table as a change of its catalog
    # only, the rows of before stay as they are, and "not blocked" is one value.
    blocked_by_side = models.CharField(max_length=11, null=True, blank=True)  # noqa: DJ001
    blocked_by_entity = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    blocked_by_record = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    blocked_by_entry_id = models.BigIntegerField(null=True, blank=True)
    blocked_by_group = models.ForeignKey(
        ErrorGroup,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "sync error"
        permissions = [
            (
                "triage_coupled_errors",
                "Can see and resolve coupled-record errors, retry, couple and uncouple",
            ),
            (
                "administer_sync",
                "Can see setup errors and connections, delete all entries and change settings",
            ),
        ]
        indexes = [
            # The list is newest first; every filter leads an index that ends in that order,
            # so each filtered page is an index range scan with keyset pagination.
            models.Index(fields=["-created_at", "-id"], name="error_recent"),
            models.Index(fields=["category", "-created_at", "-id"], name="error_category_recent"),
            models.Index(fields=["status", "-created_at", "-id"], name="error_status_recent"),
            models.Index(fields=["mapping", "-created_at", "-id"], name="error_mapping_recent"),
            models.Index(fields=["job", "-created_at"], name="error_job_recent"),
            # Only the entries that have one: no insert without one pays for it, and the
            # lookups (and the SET NULL of a deleted row) name one, which implies it is set.
            models.Index(
                fields=["coupling"],
                condition=models.Q(coupling__isnull=False),
                name="error_coupling_set",
            ),
            # The entries a job attempted again, counted on them (a job's page links them):
            # only those with a later attempt.
            models.Index(
                fields=["last_attempt_job_id"],
                condition=models.Q(last_attempt_job_id__isnull=False),
                name="error_last_attempt_job",
            ),
            models.Index(
                fields=["status_changed_by"],
                condition=models.Q(status_changed_by__isnull=False),
                name="error_status_changed_by",
            ),
            models.Index(fields=["group", "-created_at", "-id"], name="error_group_recent"),
            models.Index(
                fields=["integration", "-created_at", "-id"],
                condition=~models.Q(integration=""),
                name="error_integration_recent",
            ),
            models.Index(Upper("source_record_id"), name="error_source_record"),
            models.Index(Upper("destination_record_id"), name="error_destination_record"),
            # The few blocked entries: found by the record they wait for when it synchronizes,
            # by the problem they wait for when its figures are counted, and the other way.
            models.Index(
                fields=["blocked_by_mapping", "blocked_by_record"],
                condition=models.Q(blocked_by_record__isnull=False),
                name="error_blocked_by_record",
            ),
            models.Index(
                fields=["blocked_by_group", "group"],
                condition=models.Q(blocked_by_group__isnull=False),
                name="error_blocked_by_group",
            ),
            models.Index(
                fields=["group", "blocked_by_group"],
                condition=models.Q(blocked_by_group__isnull=False),
                name="error_group_blocked",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_category_display()}: {self.message[:80]}"

    def save(self, *args, **kwargs) -> None:
        # A new entry's figures (its problem's count, day and records) are kept by its one
        # writer, which a save would go round.
        if self._state.adding:
            raise TypeError(NEW_ENTRY_MESSAGE)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("errors:detail", args=[self.pk])

    @property
    def source_link(self) -> str | None:
        return safe_link(self.source_url)

    @property
    def destination_link(self) -> str | None:
        return safe_link(self.destination_url)

    @property
    def is_setup_error(self) -> bool:
        return self.category in SETUP_CATEGORIES

    @property
    def audience(self) -> Audience:
        return audience_of(self.category)

    @cached_property
    def sides(self) -> EntrySides:
        """The records on its mapping's source side and destination side, and the direction of
        the failed write. Read with its mapping's connection and its coupling
        (select_related), so that a page of entries costs no query per entry."""
        read_side = self._read_side()
        write_side = "destination" if read_side == "source" else "source"
        read = self._record(read_side, "source")
        written = self._record(write_side, "destination")
        source, destination = (read, written) if read_side == "source" else (written, read)
        return EntrySides(source, destination, self._write_direction(read_side))

    def _read_side(self) -> str:
        """The mapping's side of the record read (stored as `source_*`).

        The values stored with a failed record say which way the sync ran; otherwise the
        apps and tables are compared with the mapping's. An entry without a mapping (sent by
        another integration) keeps the order it was sent in."""
        mapping = self.mapping
        if mapping is None:
            return "source"
        direction = (self.sent_values or {}).get("direction")
        if direction in ("to_destination", "from_destination"):
            return "source" if direction == "to_destination" else "destination"
        connection = mapping.connection
        place = {
            "source": (connection.source_app, mapping.source_entity),
            "destination": (connection.destination_app, mapping.destination_entity),
        }
        read, written = (
            (self.source_app, self.source_entity),
            (self.destination_app, self.destination_entity),
        )
        if read == place["destination"] or (written == place["source"] and read != place["source"]):
            return "destination"
        if (
            read != place["source"]
            and self.source_app == connection.destination_app != connection.source_app
        ):
            return "destination"
        return "source"

    def _record(self, side: str, stored: str) -> EntryRecord:
        record_id = getattr(self, f"{stored}_record_id")
        return EntryRecord(
            side=side,
            app=getattr(self, f"{stored}_app"),
            entity=getattr(self, f"{stored}_entity"),
            record_id=record_id,
            url=getattr(self, f"{stored}_url"),
            name=self._name_of(side, stored) if record_id else "",
            gone=self._is_gone(side, stored, record_id),
        )

    def _name_of(self, side: str, stored: str) -> str:
        """The record's value of its side's match field (its number, say), as the entry keeps
        it among the values read or written."""
        if self.mapping is None or not isinstance(self.sent_values, dict):
            return ""
        field = getattr(self.mapping, f"{side}_match_field")
        if not field:
            return ""
        kept = ["read"] if stored == "source" else ["held", "sent"]
        for key in kept:
            values = self.sent_values.get(key)
            value = values.get(field) if isinstance(values, dict) else None
            if value not in (None, ""):
                return str(value)[:100]
        return ""

    def _is_gone(self, side: str, stored: str, record_id: str) -> bool:
        """Known to be deleted: its coupling's existence check found it gone (or there), else
        the entry says a coupled record was deleted, which is the record it wrote to."""
        if not record_id:
            return False
        coupling = self._coupling_or_none()
        if coupling is not None and getattr(coupling, f"{side}_record_id") == record_id:
            exists = getattr(coupling, f"{side}_exists")
            if exists is not None:
                return not exists
        return self.category == Category.COUPLED_RECORD_DELETED and stored == "destination"

    def _coupling_or_none(self):
        if self.coupling_id is None:
            return None
        try:
            return self.coupling
        except models.ObjectDoesNotExist:
            return None

    def _write_direction(self, read_side: str) -> str:
        mapping = self.mapping
        if mapping is None:
            if self.source_app and self.destination_app:
                return f"{self.source_app} → {self.destination_app}"
            return ""
        connection = mapping.connection
        apps = {"source": connection.source_app, "destination": connection.destination_app}
        if not self.source_record_id and not self.destination_app:
            # A whole job that failed: the mapping's one direction, or both.
            if mapping.direction == "to_destination":
                read_side = "source"
            elif mapping.direction == "from_destination":
                read_side = "destination"
            else:
                return "Both directions"
        write_side = "destination" if read_side == "source" else "source"
        return f"{apps[read_side]} → {apps[write_side]}"


class SyncErrorCleanup(models.Model):
    """The audit record of one deletion of sync error entries, and its progress."""

    class Action(models.TextChoices):
        OLDER_THAN = "older_than", "Delete entries older than N days"
        ALL = "all", "Delete all entries"

    class Trigger(models.TextChoices):
        CONSOLE = "console", "Console"
        ADMIN = "admin", "Django admin"
        COMMAND = "command", "Command line"
        SCHEDULE = "schedule", "Schedule"
        API = "api", "API"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    action = models.CharField(max_length=20, choices=Action.choices)
    days = models.PositiveIntegerField(null=True, blank=True)
    cutoff = models.DateTimeField(help_text="Entries created before this moment are deleted.")
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    expected_count = models.PositiveBigIntegerField(
        default=0, help_text="Entries that matched when the deletion was confirmed."
    )
    open_count = models.PositiveBigIntegerField(
        default=0, help_text="How many of them were still open."
    )
    deleted_count = models.PositiveBigIntegerField(default=0)
    error_message = models.TextField(blank=True)
    # The time of its last batch, and how often it was resumed after its worker died
    # (syncconsole.work).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resumes = models.SmallIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = "sync error clean-up"

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.deleted_count} deleted"

    def get_absolute_url(self) -> str:
        return reverse("errors:cleanup", args=[self.pk])

    @property
    def progress_percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        if not self.expected_count:
            return 0
        return min(99, int(self.deleted_count * 100 / self.expected_count))

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)


class BulkAction(models.Model):
    """One action on many entries (a selection, or all that matched the filters when a person
    confirmed the count): who asked, what, on which entries, its progress and its outcome."""

    class Action(models.TextChoices):
        RESOLVE = "resolve", "Mark resolved"
        IGNORE = "ignore", "Ignore"
        REOPEN = "reopen", "Reopen"
        RETRY = "retry", "Retry"
        TO_DESTINATION = "to_destination", "Synchronize to the destination"
        FROM_DESTINATION = "from_destination", "Synchronize from the destination"
        RESTORE = "restore", "Restore the deleted record"
        DELETE_RECORD = "delete_record", "Delete the remaining record"
        REMOVE_COUPLING = "remove_coupling", "Remove coupling"

    class Scope(models.TextChoices):
        SELECTION = "selection", "Selected entries"
        FILTER = "filter", "All entries that match the filters"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    action = models.CharField(max_length=20, choices=Action.choices)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    filter_query = models.CharField(
        max_length=2000, blank=True, help_text="The list's filters when the action was asked for."
    )
    selected_ids = models.JSONField(default=list, blank=True)
    # Entries written after the count was shown are never included: the scope cannot widen.
    upper_bound_id = models.BigIntegerField(default=0)
    setup_errors_included = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    expected_count = models.PositiveIntegerField(default=0, help_text="Entries in scope.")
    processed_count = models.PositiveIntegerField(default=0)
    changed_count = models.PositiveIntegerField(
        default=0, help_text="Entries changed, or records acted on."
    )
    failed_count = models.PositiveIntegerField(default=0)
    last_processed_id = models.BigIntegerField(default=0)
    job_ids = models.JSONField(default=list, blank=True)
    outcome = models.TextField(blank=True)
    # The time of its last batch, and how often it was resumed after its worker died
    # (syncconsole.work).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resumes = models.SmallIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = "bulk action"

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.get_scope_display().lower()}"

    def get_absolute_url(self) -> str:
        return reverse("errors:bulk_progress", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)

    @property
    def progress_percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        if not self.expected_count:
            return 0
        return min(99, int(self.processed_count * 100 / self.expected_count))


class AlertEvent(models.TextChoices):
    NEW = "new", "New problem"
    REGRESSION = "regression", "Regression"
    SETUP = "setup", "Setup error"


class AlertSubscription(models.Model):
    """A Sync administrator's choice of the problems they are e-mailed about: which events,
    on every connection or on one connection or table mapping."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_subscriptions"
    )
    new_problems = models.BooleanField(default=True, help_text="A problem seen for the first time.")
    regressions = models.BooleanField(
        default=True, help_text="A resolved problem that happens again."
    )
    setup_errors = models.BooleanField(
        default=True, help_text="A setup problem (roles, sign-in, currencies...) new or growing."
    )
    connection = models.ForeignKey(
        "sync.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    mapping = models.ForeignKey(
        "sync.TableMapping", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user_id", "id"]
        verbose_name = "alert subscription"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "connection", "mapping"],
                nulls_distinct=False,
                name="alert_subscription_one_per_scope",
            ),
            models.CheckConstraint(
                condition=models.Q(connection__isnull=True) | models.Q(mapping__isnull=True),
                name="alert_subscription_connection_or_mapping",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.scope_label}"

    @property
    def events(self) -> set[str]:
        chosen = {
            AlertEvent.NEW: self.new_problems,
            AlertEvent.REGRESSION: self.regressions,
            AlertEvent.SETUP: self.setup_errors,
        }
        return {event for event, wanted in chosen.items() if wanted}

    @property
    def scope_label(self) -> str:
        if self.mapping_id:
            return f"table mapping {self.mapping}"
        if self.connection_id:
            return f"connection {self.connection}"
        return "every connection"

    def covers(self, mapping_id: int | None, connection_id: int | None) -> bool:
        if self.mapping_id:
            return self.mapping_id == mapping_id
        if self.connection_id:
            return self.connection_id == connection_id
        return True

    def clean(self) -> None:
        if not self.events:
            raise ValidationError("Choose at least one kind of event.")
        if self.connection_id and self.mapping_id:
            raise ValidationError("Limit to a connection or to a table mapping, not both.")
        if self.user_id and not is_sync_admin(self.user):
            raise ValidationError("Only Sync administrators receive alerts.")


class AlertDelivery(models.Model):
    """The outbox of problem alerts: one e-mail owed to one person about one problem.

    Written in the transaction that records the entries, so that an alert is never decided
    without its row nor its row without the entries. `key` names the person, the problem and
    the throttle window: however many workers record the problem, the person is owed at most
    one alert in that window. A worker claims rows for `ALERT_LEASE_SECONDS`; a row whose
    worker died is claimed again once its lease ends (at least once), and a send that fails
    is tried again later, each time after a longer wait."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent: no longer wanted"
        FAILED = "failed", "Given up"

    key = models.CharField(max_length=100, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(ErrorGroup, on_delete=models.CASCADE, related_name="deliveries")
    events = ArrayField(models.CharField(max_length=20, choices=AlertEvent.choices), default=list)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(
        default=timezone.now, help_text="Not sent before this time (the next try)."
    )
    claim = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "alert delivery"
        verbose_name_plural = "alert deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["available_at", "id"],
                condition=models.Q(state="pending"),
                name="alert_delivery_pending",
            ),
            models.Index(fields=["user", "group", "sent_at"], name="alert_delivery_last_sent"),
            models.Index(fields=["created_at"], name="alert_delivery_created"),
        ]

    def __str__(self) -> str:
        return f"Alert of problem #{self.group_id} to {self.user}"
