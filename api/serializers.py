"""What the API reads and writes: every field that comes in is checked here first."""

import re
from collections.abc import Callable
from datetime import timedelta
from typing import cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from couplings.forms import MAX_RECORDS, RECORD_ID_MAX_LENGTH
from couplings.models import Coupling, CouplingRun
from errors.filters import SEARCH_MAX_LENGTH
from errors.links import safe_link
from errors.models import (
    COMMENT_MAX_LENGTH,
    MAX_RETRY_DELAY_SECONDS,
    SKIP_AFTER_LIMITS,
    TRANSIENT_RETRIES_MAX,
    BulkAction,
    Category,
    EntryLogging,
    ErrorGroup,
    ProblemComment,
    Severity,
    Status,
    SyncError,
    SyncErrorCleanup,
)
from errors.services import MAX_CLEANUP_DAYS, STATUS_NOTE_MAX_LENGTH
from sync.edits import KINDS as VALUE_KINDS
from sync.models import (
    PROBE_INTERVAL_MINUTES,
    PROBE_LIMIT_SECONDS,
    PROBE_MARKER_LENGTH,
    Connection,
    ConnectionCheck,
    JobLogLine,
    LagProbe,
    LagSample,
    MappingRule,
    ProbeDirection,
    RecordEdit,
    RuleVersion,
    SyncJob,
    TableMapping,
)
from sync.transformations import KINDS, MAX_LENGTH, MAX_TEXT
from triage import fixes
from triage.bulk import MAX_SELECTION

from .fields import (
    CONTROL,
    LINK_PATTERN,
    MAX_ID,
    NUL,
    DayField,
    FlagField,
    Form,
    IdField,
    MomentField,
    StrictSerializer,
    TextField,
    WholeMatch,
    WholeNumberField,
    text_pattern,
)
from .ingestion import ENTRY_FIELDS

MAX_DETAIL_LENGTH = 65_536
# Clocks of other systems drift; an entry from further in the future is a mistake.
FUTURE_TOLERANCE = timedelta(minutes=5)
# How far ahead a snooze may end.
MAX_SNOOZE = timedelta(days=365)


def http_link(value: str) -> None:
    if value.strip() and safe_link(value) is None:
        raise serializers.ValidationError("Give an absolute http:// or https:// address.")


def link_field() -> TextField:
    return TextField(
        max_length=2000,
        required=False,
        allow_blank=True,
        pattern=LINK_PATTERN,
        message="Give an absolute http:// or https:// address.",
        validators=[http_link],
    )


def record_id_field(**kwargs) -> TextField:
    return TextField(
        max_length=RECORD_ID_MAX_LENGTH,
        forbidden=CONTROL,
        message="A record id is text without control characters or line breaks.",
        **kwargs,
    )


def id_text() -> TextField:
    """An id written as a query parameter is: digits."""
    return TextField(required=False, pattern="^[0-9]*[1-9][0-9]*$", message="Give an id.")


def note_field() -> TextField:
    return TextField(
        max_length=STATUS_NOTE_MAX_LENGTH, required=False, default="", allow_blank=True
    )


class SyncErrorSerializer(serializers.ModelSerializer):
    mapping_name = serializers.CharField(
        source="mapping.name", default=None, read_only=True, allow_null=True
    )
    status_changed_by = serializers.CharField(
        source="status_changed_by.get_username", default=None, read_only=True, allow_null=True
    )
    source_url = serializers.SerializerMethodField()
    destination_url = serializers.SerializerMethodField()
    url = serializers.CharField(source="get_absolute_url", read_only=True)
    blocked_by_mapping = serializers.IntegerField(
        source="blocked_by_mapping_id",
        read_only=True,
        allow_null=True,
        help_text="Blocked by: the table mapping of the record this one needed (a lookup's), "
        "null when it is not blocked or the record is outside any mapping.",
    )
    blocked_by_side = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Blocked by: the side of that record, source or destination.",
    )
    blocked_by_entity = serializers.CharField(
        read_only=True, allow_null=True, help_text="Blocked by: the table of that record."
    )
    blocked_by_record = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Blocked by: that record's id, or the code it was looked up by.",
    )
    blocked_by_entry = serializers.IntegerField(
        source="blocked_by_entry_id",
        read_only=True,
        allow_null=True,
        help_text="Blocked by: that record's open entry when this one was recorded.",
    )
    blocked_by_problem = serializers.IntegerField(
        source="blocked_by_group_id",
        read_only=True,
        allow_null=True,
        help_text="Blocked by: the problem of that entry.",
    )

    class Meta:
        model = SyncError
        fields = [
            "id",
            "created_at",
            "category",
            "status",
            "status_note",
            "status_changed_at",
            "status_changed_by",
            "message",
            "detail",
            "integration",
            "mapping",
            "mapping_name",
            "job",
            "coupling",
            "group",
            "source_app",
            "source_entity",
            "source_record_id",
            "source_url",
            "destination_app",
            "destination_entity",
            "destination_record_id",
            "destination_url",
            "attempts",
            "last_attempt_at",
            "last_attempt_job_id",
            "blocked_by_mapping",
            "blocked_by_side",
            "blocked_by_entity",
            "blocked_by_record",
            "blocked_by_entry",
            "blocked_by_problem",
            "url",
        ]
        read_only_fields = fields

    # Only links a browser may follow safely are given out.
    def get_source_url(self, error) -> str | None:
        return error.source_link

    def get_destination_url(self, error) -> str | None:
        return error.destination_link


SEVERITIES = [level.name.lower() for level in Severity]


class ErrorGroupSerializer(serializers.ModelSerializer):
    mapping_name = serializers.CharField(
        source="mapping.name", default=None, read_only=True, allow_null=True
    )
    url = serializers.CharField(source="get_absolute_url", read_only=True)
    entry_logging = serializers.ChoiceField(
        choices=EntryLogging.choices,
        allow_blank=True,
        read_only=True,
        help_text="The problem's own logging policy; empty: its mapping's.",
    )
    severity = serializers.SerializerMethodField(
        help_text="root_cause (open, and records of other problems fail because of it), "
        "blocking (an open setup problem of whole jobs: its mapping stops), records "
        "(open: its records fail) or set_aside (resolved, ignored or snoozed)."
    )
    blocked_by = serializers.IntegerField(
        source="blocked_by_id",
        read_only=True,
        allow_null=True,
        help_text="The problem every open entry of this one is blocked by; null for none.",
    )
    blocks_records = serializers.IntegerField(
        read_only=True,
        help_text="Records of other problems that fail because of this one, directly and "
        "through others.",
    )
    blocks_directly = serializers.IntegerField(
        read_only=True,
        help_text="Of those, the records whose own entry names this problem.",
    )
    severity_rank = serializers.IntegerField(
        source="severity",
        read_only=True,
        help_text="What the problems are sorted by (highest first): the level, then the "
        "records, then when it was last seen.",
    )
    severity_reason = serializers.CharField(read_only=True)
    assigned_to = serializers.SerializerMethodField(
        help_text="The user name or the role it is assigned to; null for nobody."
    )

    @extend_schema_field(serializers.ChoiceField(choices=SEVERITIES))
    def get_severity(self, group) -> str:
        return group.severity_level.name.lower()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_assigned_to(self, group) -> str | None:
        return group.assignee_label or None

    class Meta:
        model = ErrorGroup
        fields = [
            "id",
            "title",
            "category",
            "integration",
            "mapping",
            "mapping_name",
            "count",
            "seen_total",
            "first_seen",
            "last_seen",
            "status",
            "status_note",
            "status_changed_at",
            "regressed_at",
            "snoozed_until",
            "snooze_until_count",
            "severity",
            "severity_rank",
            "severity_reason",
            "blocked_by",
            "blocks_records",
            "blocks_directly",
            "assigned_to",
            "assigned_user",
            "assigned_group",
            "assigned_at",
            "skip_after_failures",
            "transient_retries",
            "retry_delay_seconds",
            "entry_logging",
            "url",
        ]
        read_only_fields = fields


class ProblemAssignmentSerializer(StrictSerializer):
    """Take the problem (`{"assignee": "me"}`), give it back (`{"assignee": "nobody"}`), or
    (Sync administrators) assign it to a person (`user`) or a role (`group`)."""

    assignee = serializers.ChoiceField(choices=["me", "nobody"], required=False)
    user = IdField(required=False, help_text="A Sync user or Sync administrator, by id.")
    group = IdField(required=False, help_text="The Sync users or Sync administrators role.")

    forms = (
        Form(("assignee",), ("assignee",)),
        Form(("user",), ("user",)),
        Form(("group",), ("group",)),
    )
    forms_message = "Give one of `assignee` (me or nobody), `user` or `group`."


class ProblemPolicySerializer(StrictSerializer):
    """The problem's policies, each left as it is when not sent: skip a coupling after this
    many identical failures in a row (1 to 20, or null for the policy of its mapping); log
    an entry for every failed attempt of a record (`every_attempt`) or one entry that counts
    them (`once`), or "" for the policy of its mapping."""

    skip_after_failures = serializers.IntegerField(
        min_value=SKIP_AFTER_LIMITS[0],
        max_value=SKIP_AFTER_LIMITS[1],
        allow_null=True,
        required=False,
    )
    transient_retries = serializers.IntegerField(
        min_value=0, max_value=TRANSIENT_RETRIES_MAX, allow_null=True, required=False
    )
    retry_delay_seconds = serializers.IntegerField(
        min_value=1, max_value=MAX_RETRY_DELAY_SECONDS, allow_null=True, required=False
    )
    entry_logging = serializers.ChoiceField(
        choices=EntryLogging.choices, allow_blank=True, required=False
    )


class CommentSerializer(serializers.ModelSerializer):
    problem = serializers.IntegerField(source="group_id", read_only=True)
    author = serializers.CharField(source="author_name", read_only=True)

    class Meta:
        model = ProblemComment
        fields = ["id", "problem", "author", "created_at", "text"]
        read_only_fields = fields


class CommentRequestSerializer(StrictSerializer):
    text = TextField(max_length=COMMENT_MAX_LENGTH, help_text="Plain text, shown as it is.")


class SyncJobSerializer(serializers.ModelSerializer):
    mapping_name = serializers.CharField(source="mapping.name", read_only=True)

    class Meta:
        model = SyncJob
        fields = [
            "id",
            "mapping",
            "mapping_name",
            "kind",
            "trigger",
            "direction",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "records_read",
            "inserted",
            "modified",
            "deleted",
            "unchanged",
            "skipped",
            "failed",
            "retrying",
            "message",
        ]
        read_only_fields = fields


class JobLogLineSerializer(serializers.ModelSerializer):
    level = serializers.CharField(
        source="level_name", read_only=True, help_text="info, warning, error or critical."
    )

    class Meta:
        model = JobLogLine
        fields = ["at", "level", "logger", "message"]
        read_only_fields = fields


class SyncJobDetailSerializer(SyncJobSerializer):
    """A job with its own log: the lines it logged while it ran, oldest first, at most
    JOB_LOG_MAX_LINES; `log_lines_dropped` counts those beyond."""

    log = JobLogLineSerializer(source="log_lines", many=True, read_only=True)

    class Meta(SyncJobSerializer.Meta):
        fields = [*SyncJobSerializer.Meta.fields, "log", "log_lines_dropped"]
        read_only_fields = fields


class StartJobSerializer(StrictSerializer):
    mapping = IdField()
    kind = serializers.ChoiceField(
        choices=[SyncJob.Kind.MODIFIED, SyncJob.Kind.FULL, SyncJob.Kind.RECONCILE],
        help_text="`reconcile` finds the records that exist on one side only.",
    )


class EntryStatusSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=[Status.OPEN, Status.RESOLVED, Status.IGNORED])
    note = note_field()


class FixRequestSerializer(StrictSerializer):
    fix = serializers.ChoiceField(choices=list(fixes.FIXES.items()))


class FixSerializer(serializers.Serializer):
    """One fix an entry offers."""

    fix = serializers.ChoiceField(choices=list(fixes.FIXES.items()))
    title = serializers.CharField(help_text="As the entry's page names it.")


class EntryFixesSerializer(serializers.Serializer):
    entry = serializers.IntegerField()
    fixes = FixSerializer(many=True)


class FixOutcomeSerializer(serializers.Serializer):
    """What a fix did: the job it queued (`job`), or how many open entries it resolved
    (`resolved`), or which records the apps found gone (`gone`: by side)."""

    fix = serializers.ChoiceField(choices=list(fixes.FIXES.items()))
    message = serializers.CharField()
    job = serializers.IntegerField(allow_null=True, source="job.pk", default=None)
    resolved = serializers.IntegerField(allow_null=True)
    gone = serializers.DictField(child=serializers.IntegerField(), allow_null=True)


class EditableFieldSerializer(serializers.Serializer):
    """A field of the refused record that may be edited, with what each app holds now (as
    text; null when it could not be read)."""

    name = serializers.CharField(help_text="The field in the app written to.")
    read_field = serializers.CharField(source="read", help_text="The field read at the source.")
    kind = serializers.ChoiceField(choices=list(VALUE_KINDS))
    max_length = serializers.IntegerField(
        allow_null=True, help_text="The longest text the app takes, where its refusal said it."
    )
    value_to_send = serializers.JSONField(
        source="sent", help_text="What the retry sends now: the value sent, or the edit's."
    )
    source_now = serializers.CharField(allow_null=True)
    destination_now = serializers.CharField(allow_null=True)


class RecordEditSerializer(serializers.Serializer):
    """An edit kept on an entry: pending until a job writes it, then written; superseded by
    a later edit, or lapsed when the source value changed since."""

    id = serializers.IntegerField()
    entry = serializers.IntegerField(source="entry_id")
    record_id = serializers.CharField()
    direction = serializers.CharField()
    made_by = serializers.CharField(source="made_by_label")
    made_at = serializers.DateTimeField()
    before = serializers.DictField(help_text="What the engine would have sent.")
    after = serializers.DictField(help_text="The values typed.")
    based_on = serializers.DictField(help_text="The source values the edit replaces.")
    state = serializers.ChoiceField(choices=RecordEdit.State.choices)
    settled_at = serializers.DateTimeField(allow_null=True)
    written_in_job = serializers.IntegerField(allow_null=True)


class EntryEditSerializer(serializers.Serializer):
    entry = serializers.IntegerField()
    # DRF takes declared fields out of the class: this is the answer's key, not Serializer.fields.
    fields = EditableFieldSerializer(many=True)  # type: ignore[assignment]
    edits = RecordEditSerializer(many=True)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"nullable": True},
        "minProperties": 1,
        "description": "At least one field: its value (null empties it).",
    }
)
class EditedValuesField(serializers.DictField):
    """The values typed, by field name: at least one."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.JSONField(allow_null=True), allow_empty=False, **kwargs)


class EditRequestSerializer(StrictSerializer):
    """The values to retry with, by field name (those of `fields` in the GET answer)."""

    values = EditedValuesField()


class EditOutcomeSerializer(serializers.Serializer):
    """The edit kept and the retry job it queued (null when the retry was refused: the next
    job of the mapping that reads the record writes the edit)."""

    message = serializers.CharField()
    job = serializers.IntegerField(allow_null=True, source="job.pk", default=None)
    edit = RecordEditSerializer()
    superseded = serializers.ListField(child=serializers.IntegerField())


SETTLED = (Status.OPEN, Status.RESOLVED, Status.IGNORED)


class ProblemStatusSerializer(StrictSerializer):
    """Open, resolve or ignore a problem; or snooze it until a moment (`snoozed_until`, in
    the coming year) or until a number of new occurrences (`more_occurrences`)."""

    status = serializers.ChoiceField(choices=Status.choices)
    note = note_field()
    snoozed_until = MomentField(required=False, help_text="In the future, within a year.")
    more_occurrences = WholeNumberField(required=False, min_value=1, max_value=1_000_000)

    forms = (
        Form(("status", "note"), ("status",), {"status": SETTLED}),
        Form(
            ("status", "note", "snoozed_until"),
            ("status", "snoozed_until"),
            {"status": (Status.SNOOZED,)},
        ),
        Form(
            ("status", "note", "more_occurrences"),
            ("status", "more_occurrences"),
            {"status": (Status.SNOOZED,)},
        ),
    )
    forms_message = (
        "Snooze until a date (snoozed_until) or a number of new occurrences "
        "(more_occurrences), exactly one; other statuses take neither."
    )


class ErrorFiltersSerializer(StrictSerializer):
    """The errors list's filters, as its query parameters are written."""

    q = TextField(max_length=SEARCH_MAX_LENGTH, required=False, allow_blank=True)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    connection = id_text()
    mapping = id_text()
    job = id_text()
    coupling = id_text()
    group = id_text()
    integration = TextField(max_length=100, required=False, allow_blank=True)
    # A person by id: "me" means nothing to the worker that runs the action later.
    assignee = id_text()
    created_after = DayField(required=False)
    created_before = DayField(required=False)


class BulkActionRequestSerializer(StrictSerializer):
    """An action on chosen entries (`ids`), or on all that match `filters`: first a dry run
    (`dry_run: true`), then the action with the `expected_count` it gave."""

    action = serializers.ChoiceField(choices=BulkAction.Action.choices)
    ids = serializers.ListField(
        child=IdField(),
        required=False,
        min_length=1,
        max_length=MAX_SELECTION,
        help_text="The entries to act on; or give `filters` instead.",
    )
    filters = ErrorFiltersSerializer(
        required=False,
        help_text="The errors list's filters (as its query parameters): act on all entries "
        "that match.",
    )
    expected_count = WholeNumberField(
        required=False,
        min_value=0,
        max_value=MAX_ID,
        help_text="With `filters`: the count a dry run gave. The action is refused when the "
        "entries that match now are not that many.",
    )
    dry_run = FlagField(required=False, default=False)
    note = note_field()

    forms = (
        Form(("action", "ids", "dry_run", "note"), ("action", "ids"), {"dry_run": (False,)}),
        Form(
            ("action", "filters", "dry_run", "expected_count", "note"),
            ("action", "filters", "dry_run"),
            {"dry_run": (True,)},
        ),
        Form(
            ("action", "filters", "dry_run", "expected_count", "note"),
            ("action", "filters", "expected_count"),
            {"dry_run": (False,)},
        ),
    )
    forms_message = (
        "Give either `ids`, or `filters` with `dry_run: true` first and then with the "
        "`expected_count` the dry run gave."
    )


class BulkActionSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = BulkAction
        fields = [
            "id",
            "action",
            "scope",
            "filter_query",
            "selected_ids",
            "note",
            "requested_at",
            "started_at",
            "finished_at",
            "state",
            "expected_count",
            "processed_count",
            "changed_count",
            "failed_count",
            "job_ids",
            "outcome",
            "progress_percent",
            "url",
        ]
        read_only_fields = fields


class CleanupRequestSerializer(StrictSerializer):
    """`{"days": N}` deletes the entries older than N days; `{"all": true}` deletes all."""

    days = WholeNumberField(
        required=False,
        min_value=1,
        max_value=MAX_CLEANUP_DAYS,
        help_text="Delete the entries older than this many days.",
    )
    all = FlagField(
        required=False, default=False, help_text="Delete all entries (Sync administrators)."
    )

    forms = (
        Form(("days", "all"), ("days",), {"all": (False,)}),
        Form(("all",), ("all",), {"all": (True,)}),
    )
    forms_message = "Give either `days` or `all: true`."


class CleanupSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = SyncErrorCleanup
        fields = [
            "id",
            "action",
            "days",
            "cutoff",
            "trigger",
            "requested_at",
            "started_at",
            "finished_at",
            "state",
            "expected_count",
            "open_count",
            "deleted_count",
            "error_message",
            "progress_percent",
            "url",
        ]
        read_only_fields = fields


class IngestedErrorSerializer(StrictSerializer):
    """One failure of another integration."""

    integration = TextField(
        max_length=100,
        required=False,
        help_text="The integration's name; entries are grouped per integration. Defaults to "
        "the token's integration; required when the token names none.",
    )
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    message = TextField(max_length=SyncError.MESSAGE_MAX_LENGTH)
    detail = TextField(max_length=MAX_DETAIL_LENGTH, required=False, allow_blank=True)
    occurred_at = MomentField(
        required=False,
        help_text="When it failed (RFC 3339, with its offset); default now. Not more than "
        "five minutes ahead of the console's clock.",
    )
    source_app = TextField(max_length=100, required=False, allow_blank=True)
    source_entity = TextField(max_length=100, required=False, allow_blank=True)
    source_record_id = TextField(max_length=100, required=False, allow_blank=True)
    source_url = link_field()
    destination_app = TextField(max_length=100, required=False, allow_blank=True)
    destination_entity = TextField(max_length=100, required=False, allow_blank=True)
    destination_record_id = TextField(max_length=100, required=False, allow_blank=True)
    destination_url = link_field()

    def validate(self, data):
        data = super().validate(data)
        data["integration"] = data.get("integration") or self.context.get("integration", "")
        if not data["integration"]:
            raise serializers.ValidationError(
                {"integration": ["Name the integration, or use a token that names one."]}
            )
        return data


assert set(ENTRY_FIELDS) <= set(IngestedErrorSerializer._declared_fields)


class MappingSerializer(serializers.ModelSerializer):
    connection_name = serializers.CharField(source="connection.name", read_only=True)
    health = serializers.SerializerMethodField()
    last_success_at = serializers.DateTimeField(read_only=True, default=None, allow_null=True)
    last_job = serializers.IntegerField(
        source="last_job_id", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = TableMapping
        fields = [
            "id",
            "name",
            "connection",
            "connection_name",
            "source_entity",
            "destination_entity",
            "direction",
            "is_enabled",
            "dependency_order",
            "paused_at",
            "paused_reason",
            "skip_after_failures",
            "transient_retries",
            "retry_delay_seconds",
            "entry_logging",
            "health",
            "last_success_at",
            "last_job",
        ]
        read_only_fields = fields

    def get_health(self, mapping) -> dict:
        health = getattr(mapping, "health", None)
        if health is None:
            return {}
        figures = {name: getattr(health, name) for name in HEALTH_FIGURES}
        return {"coupled": getattr(mapping, "coupled", None), **figures}


HEALTH_FIGURES = ("in_sync", "failing", "failing_not_coupled", "skipped", "open_errors")


class ConnectionSerializer(serializers.ModelSerializer):
    """A connection without its secrets."""

    class Meta:
        model = Connection
        fields = [
            "id",
            "name",
            "source_app",
            "source_base_url",
            "source_flavor",
            "destination_app",
            "destination_base_url",
            "destination_flavor",
            "auth_method",
            "integration_user",
            "is_enabled",
        ]
        read_only_fields = fields


class ConnectionCheckSerializer(serializers.ModelSerializer):
    checked_by = serializers.CharField(
        source="checked_by.get_username", default=None, read_only=True
    )

    class Meta:
        model = ConnectionCheck
        fields = ["id", "connection", "checked_at", "checked_by", "findings"]
        read_only_fields = fields


class CouplingSerializer(serializers.ModelSerializer):
    mapping_name = serializers.CharField(source="mapping.name", read_only=True)
    # Blank until the coupling has been synchronized that way.
    last_result_to_destination = serializers.ChoiceField(
        Coupling.Result.choices, allow_blank=True, read_only=True
    )
    last_result_from_destination = serializers.ChoiceField(
        Coupling.Result.choices, allow_blank=True, read_only=True
    )
    skip_policy = serializers.CharField(
        read_only=True, help_text="Which policy skipped it; empty when it is not skipped."
    )

    class Meta:
        model = Coupling
        fields = [
            "id",
            "mapping",
            "mapping_name",
            "source_record_id",
            "destination_record_id",
            "last_synced_to_destination_at",
            "last_result_to_destination",
            "last_synced_from_destination_at",
            "last_result_from_destination",
            "is_skipped",
            "skipped_after",
            "skipped_by_problem",
            "skip_policy",
            "failure_count",
            "last_error_message",
            "source_exists",
            "destination_exists",
            "existence_checked_at",
            "created_at",
        ]
        read_only_fields = fields


class CoupleSerializer(StrictSerializer):
    mapping = IdField()
    source_record_id = record_id_field()
    destination_record_id = record_id_field()
    synchronize_after = FlagField(required=False, default=False)


class CriterionSerializer(StrictSerializer):
    # DRF takes declared fields off the class, so this one does not replace Field.source.
    source = TextField(  # type: ignore[assignment]
        max_length=100, help_text="A source field of the mapping."
    )
    destination = TextField(max_length=100)
    priority = WholeNumberField(min_value=1, max_value=99, default=1)
    case_sensitive = FlagField(default=True)


class CoupleByMatchSerializer(StrictSerializer):
    mapping = IdField()
    side = serializers.ChoiceField(choices=["source", "destination"])
    record_ids = serializers.ListField(
        child=record_id_field(), min_length=1, max_length=MAX_RECORDS
    )
    criteria = CriterionSerializer(
        many=True, help_text="Pairs of fields of the mapping (see the Couple page)."
    )
    create_if_no_match = FlagField(required=False, default=False)
    synchronize_after = FlagField(required=False, default=False)


class CouplingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = CouplingRun
        fields = [
            "id",
            "mapping",
            "side",
            "record_ids",
            "criteria",
            "create_if_no_match",
            "synchronize_after",
            "state",
            "results",
            "sync_job",
            "message",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class CouplingIdsSerializer(StrictSerializer):
    """The chosen couplings (`ids`), or every skipped one (`all_skipped: true`, of `mapping`
    when given)."""

    ids = serializers.ListField(
        child=IdField(), required=False, min_length=1, max_length=MAX_SELECTION
    )
    all_skipped = FlagField(
        required=False,
        default=False,
        help_text="Retry every skipped coupling (of `mapping` when given).",
    )
    mapping = IdField(required=False)

    forms = (
        Form(("ids", "all_skipped"), ("ids",), {"all_skipped": (False,)}),
        Form(("all_skipped", "mapping"), ("all_skipped",), {"all_skipped": (True,)}),
    )
    forms_message = "Give either `ids` or `all_skipped: true`."


class ChosenCouplingsSerializer(StrictSerializer):
    ids = serializers.ListField(child=IdField(), min_length=1, max_length=MAX_SELECTION)


class LagProbeSerializer(serializers.ModelSerializer):
    class Meta:
        model = LagProbe
        fields = [
            "id",
            "mapping",
            "direction",
            "record_id",
            "marker_field",
            "marker_length",
            "interval_minutes",
            "limit_seconds",
            "is_enabled",
            "created_at",
            "changed_at",
        ]
        read_only_fields = fields


class LagProbeRequestSerializer(StrictSerializer):
    """The probe's settings; the service checks them against the mapping."""

    direction = serializers.ChoiceField(
        choices=ProbeDirection.choices,
        help_text="to_destination changes the source app's record.",
    )
    record_id = TextField(max_length=100)
    marker_field = TextField(max_length=100)
    marker_length = serializers.IntegerField(
        min_value=PROBE_MARKER_LENGTH[0], max_value=PROBE_MARKER_LENGTH[1], default=30
    )
    interval_minutes = serializers.IntegerField(
        min_value=PROBE_INTERVAL_MINUTES[0], max_value=PROBE_INTERVAL_MINUTES[1]
    )
    limit_seconds = serializers.IntegerField(
        min_value=PROBE_LIMIT_SECONDS[0], max_value=PROBE_LIMIT_SECONDS[1]
    )
    is_enabled = serializers.BooleanField(default=True)


class LagSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = LagSample
        fields = [
            "id",
            "marker",
            "written_at",
            "arrived_at",
            "lag_seconds",
            "state",
            "checked_at",
            "closed_at",
            "error",
        ]
        read_only_fields = fields


class LagSerializer(serializers.Serializer):
    probe = LagProbeSerializer(allow_null=True)
    hours = serializers.IntegerField(help_text="The window of the samples and figures.")
    latest_lag_seconds = serializers.FloatField(
        allow_null=True,
        help_text="The latest sample's lag, or how long its marker has waited so far.",
    )
    latest_state = serializers.CharField(allow_null=True)
    median_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)
    late = serializers.IntegerField()
    samples = LagSampleSerializer(many=True, help_text="Newest first, at most 1,000.")


class KeptTextField(TextField):
    """Text kept as it is sent, surrounding whitespace included: a rule may replace " ext. "."""

    def run_validation(self, data=serializers.empty):
        return serializers.CharField.run_validation(self, data)


class RuleParamsSerializer(StrictSerializer):
    """The parameters of a rule; each kind takes its own (set: value; map: map; truncate:
    length, or none for the length the app's message names; replace: find and replace;
    clear: none). Those of another kind are refused (409)."""

    value = KeptTextField(max_length=MAX_TEXT, allow_blank=True, required=False)
    map = serializers.DictField(
        child=KeptTextField(max_length=MAX_TEXT, allow_blank=True),
        required=False,
        help_text='Value to value: {"NOK": "EUR"}.',
    )
    length = serializers.IntegerField(min_value=1, max_value=MAX_LENGTH, required=False)
    find = KeptTextField(max_length=MAX_TEXT, required=False)
    replace = KeptTextField(max_length=MAX_TEXT, allow_blank=True, required=False)


class RuleRequestSerializer(StrictSerializer):
    """A rule that fixes a problem: the field written, what to do to it and its parameters.
    The direction is that of the problem's entries unless given. A field the mapping does not
    write in that direction, or parameters of another kind, are refused (409)."""

    field = TextField(max_length=100)
    kind = serializers.ChoiceField(choices=list(KINDS.items()))
    params = RuleParamsSerializer(required=False)
    direction = serializers.ChoiceField(choices=MappingRule.DIRECTIONS, required=False)


class RuleApplySerializer(RuleRequestSerializer):
    keep = serializers.BooleanField(
        help_text="Keep it on the mapping (later records are fixed too), or use it once."
    )


class PreviewRowSerializer(serializers.Serializer):
    entry = serializers.IntegerField(source="entry_id")
    record_id = serializers.CharField()
    coupled = serializers.BooleanField()
    known = serializers.BooleanField()
    before = serializers.JSONField()
    after = serializers.JSONField()
    changes = serializers.BooleanField()
    note = serializers.CharField()


class RulePreviewSerializer(serializers.Serializer):
    direction = serializers.CharField(source="spec.direction")
    field = serializers.CharField(source="spec.field")
    kind = serializers.CharField(source="spec.kind")
    params = serializers.DictField(source="spec.params")
    entries = serializers.IntegerField(help_text="Open entries of the problem.")
    records = serializers.IntegerField(help_text="Records the job that applies it writes.")
    changed = serializers.IntegerField(help_text="Rows whose value the rule changes.")
    cut_short = serializers.BooleanField(help_text="More entries than the rows shown.")
    rows = PreviewRowSerializer(many=True)


class RuleVersionSerializer(serializers.ModelSerializer):
    made_by = serializers.CharField(
        source="made_by.get_username", default=None, read_only=True, allow_null=True
    )
    description = serializers.CharField(read_only=True)

    class Meta:
        model = RuleVersion
        fields = ["number", "kind", "params", "description", "note", "made_by", "made_at"]


class MappingRuleSerializer(serializers.ModelSerializer):
    current = RuleVersionSerializer(read_only=True)
    versions = RuleVersionSerializer(many=True, read_only=True)
    created_by = serializers.CharField(
        source="created_by.get_username", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = MappingRule
        fields = [
            "id",
            "mapping",
            "direction",
            "field",
            "kept",
            "is_active",
            "current",
            "versions",
            "origin_problem",
            "created_by",
            "created_at",
            "switched_off_at",
        ]


class RuleAppliedSerializer(serializers.Serializer):
    rule = MappingRuleSerializer()
    job = serializers.IntegerField(source="job.pk", allow_null=True)
    records = serializers.IntegerField()
    refused = serializers.CharField(help_text="Why no job was queued, if none was.")


class QuickIngestCheck:
    """IngestedErrorSerializer's rules for a whole batch, read from its fields, without the
    serializer's work per field (the larger part of an ingestion request's time): a batch
    that plainly keeps every rule is taken as the serializer would take it; for any other,
    `validated` answers None and the serializer checks it, with its messages. So it may
    send a good batch to the serializer, never take one the serializer refuses."""

    # What every text is checked for here at once: its length, and (in all the texts of the
    # batch together) no NUL and no lone surrogate.
    COVERED = (MaxLengthValidator, ProhibitNullCharactersValidator,
               ProhibitSurrogateCharactersValidator)  # fmt: skip

    def __init__(self):
        # Rules this check does not read must not exist: a form, or a field's validate_ method.
        assert not IngestedErrorSerializer.forms
        added = set(dir(IngestedErrorSerializer)) - set(dir(StrictSerializer))
        assert not [name for name in added if name.startswith("validate_")]
        fields = IngestedErrorSerializer().fields
        self.names = frozenset(fields)
        self.required = frozenset(name for name, field in fields.items() if field.required)
        # A plain text's pattern (no NUL; some text unless it may be blank) is checked as
        # above and by strip(); any other pattern or check (a link's) is run on the value.
        plain = {text_pattern(NUL, blank=True), text_pattern(NUL, blank=False)}
        self.texts: dict[str, tuple[int, bool, list[re.Pattern], list[Callable]]] = {}
        for name, field in fields.items():
            if not isinstance(field, TextField):
                continue
            own = [v for v in field.validators if not isinstance(v, self.COVERED)]
            # Compiled once here: a RegexValidator's own pattern is compiled lazily, and
            # reading it goes through a proxy at every call.
            regexes = [
                cast(re.Pattern, v.regex)
                for v in own
                if isinstance(v, WholeMatch) and cast(re.Pattern, v.regex).pattern not in plain
            ]
            patterns = [re.compile(regex.pattern, regex.flags) for regex in regexes]
            checks = [cast(Callable, v) for v in own if not isinstance(v, WholeMatch)]
            assert field.max_length is not None, name
            self.texts[name] = (field.max_length, field.allow_blank, patterns, checks)
        self.choices = {
            name: frozenset(field.choices)
            for name, field in fields.items()
            if isinstance(field, serializers.ChoiceField)
        }
        self.moments = {
            name: field for name, field in fields.items() if isinstance(field, MomentField)
        }
        assert not any(field.validators for field in self.moments.values())
        assert self.names == set(self.texts) | set(self.choices) | set(self.moments)

    def validated(self, entries: list, integration: str) -> list[dict] | None:
        names, texts, choices, moments = self.names, self.texts, self.choices, self.moments
        checked: list[dict] = []
        seen: list[str] = []
        for entry in entries:
            if entry.__class__ is not dict or not names.issuperset(entry):
                return None
            if not self.required.issubset(entry):
                return None
            data = {}
            for name, value in entry.items():
                if name in texts:
                    if value.__class__ is not str:
                        return None
                    longest, blank, patterns, checks = texts[name]
                    if value == "" and blank:  # DRF takes it as it is, unchecked
                        data[name] = value
                        continue
                    stripped = value.strip()
                    if len(value) > longest or not (blank or stripped):
                        return None
                    if not all(pattern.fullmatch(value) for pattern in patterns):
                        return None
                    try:
                        for check in checks:
                            check(value)
                    except (ValidationError, DjangoValidationError):
                        return None
                    seen.append(value)
                    data[name] = stripped
                elif name in choices:
                    if value.__class__ is not str or value not in choices[name]:
                        return None
                    data[name] = value
                else:
                    if value is None:  # the field's "may not be null"
                        return None
                    try:  # the field has no validators: its reading is its check
                        data[name] = moments[name].to_internal_value(value)
                    except ValidationError:
                        return None
            data["integration"] = data.get("integration") or integration
            if not data["integration"]:
                return None
            checked.append(data)
        joined = "\x01".join(seen)
        if "\x00" in joined:
            return None
        try:
            joined.encode()
        except UnicodeEncodeError:
            return None
        return checked


quick_ingest_check = QuickIngestCheck()
