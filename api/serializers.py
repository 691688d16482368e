"""What the API reads and writes: every field that comes in is checked here first."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from couplings.forms import MAX_RECORDS, RECORD_ID_MAX_LENGTH, printable
from couplings.models import Coupling, CouplingRun
from errors.links import safe_link
from errors.models import BulkAction, Category, ErrorGroup, Status, SyncError, SyncErrorCleanup
from errors.services import STATUS_NOTE_MAX_LENGTH
from sync.models import Connection, ConnectionCheck, SyncJob, TableMapping

from .ingestion import ENTRY_FIELDS

MAX_DETAIL_LENGTH = 65_536
# Clocks of other systems drift; an entry from further in the future is a mistake.
FUTURE_TOLERANCE = timedelta(minutes=5)


def http_link(value: str) -> None:
    if value and safe_link(value) is None:
        raise serializers.ValidationError("Give an absolute http:// or https:// address.")


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
            "url",
        ]
        read_only_fields = fields

    # Only links a browser may follow safely are given out.
    def get_source_url(self, error) -> str | None:
        return error.source_link

    def get_destination_url(self, error) -> str | None:
        return error.destination_link


class ErrorGroupSerializer(serializers.ModelSerializer):
    mapping_name = serializers.CharField(
        source="mapping.name", default=None, read_only=True, allow_null=True
    )
    url = serializers.CharField(source="get_absolute_url", read_only=True)

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
            "first_seen",
            "last_seen",
            "status",
            "status_note",
            "status_changed_at",
            "regressed_at",
            "snoozed_until",
            "snooze_until_count",
            "url",
        ]
        read_only_fields = fields


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


class StartJobSerializer(serializers.Serializer):
    mapping = serializers.IntegerField(min_value=1)
    kind = serializers.ChoiceField(
        choices=[SyncJob.Kind.MODIFIED, SyncJob.Kind.FULL, SyncJob.Kind.RECONCILE],
        help_text="`reconcile` finds the records that exist on one side only.",
    )


class EntryStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[Status.OPEN, Status.RESOLVED, Status.IGNORED])
    note = serializers.CharField(
        max_length=STATUS_NOTE_MAX_LENGTH, required=False, default="", allow_blank=True
    )


class ProblemStatusSerializer(EntryStatusSerializer):
    status = serializers.ChoiceField(choices=Status.choices)
    snoozed_until = serializers.DateTimeField(required=False)
    more_occurrences = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def validate(self, data):
        snoozing = data["status"] == Status.SNOOZED
        given = [name for name in ("snoozed_until", "more_occurrences") if name in data]
        if snoozing and len(given) != 1:
            raise serializers.ValidationError(
                "Snooze until a date (snoozed_until) or a number of new occurrences "
                "(more_occurrences): give exactly one."
            )
        if not snoozing and given:
            raise serializers.ValidationError({given[0]: "Only a snooze has an end."})
        until = data.get("snoozed_until")
        now = timezone.now()
        if until is not None and not now < until <= now + timedelta(days=365):
            raise serializers.ValidationError(
                {"snoozed_until": "The snooze must end in the future, within a year."}
            )
        return data


class BulkActionRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=BulkAction.Action.choices)
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=500,
        help_text="The entries to act on; or give `filters` instead.",
    )
    filters = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=200),
        required=False,
        help_text="The errors list's filters (as its query parameters): act on all entries "
        "that match.",
    )
    expected_count = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="With `filters`: the count a dry run gave. The action is refused when the "
        "entries that match now are not that many.",
    )
    dry_run = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(
        max_length=STATUS_NOTE_MAX_LENGTH, required=False, default="", allow_blank=True
    )

    def validate(self, data):
        if ("ids" in data) == ("filters" in data):
            raise serializers.ValidationError("Give either `ids` or `filters`.")
        if "ids" in data and not data["ids"]:
            raise serializers.ValidationError({"ids": "Give at least one entry id."})
        if "filters" in data and not data["dry_run"] and "expected_count" not in data:
            raise serializers.ValidationError(
                {"expected_count": "Ask for a dry run first and send the count it gave."}
            )
        return data


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


class CleanupRequestSerializer(serializers.Serializer):
    days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Delete the entries older than this many days.",
    )
    all = serializers.BooleanField(
        required=False, default=False, help_text="Delete all entries (Sync administrators)."
    )

    def validate(self, data):
        if ("days" in data) == data["all"]:
            raise serializers.ValidationError("Give either `days` or `all: true`.")
        return data


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


class IngestedErrorSerializer(serializers.Serializer):
    """One failure of another integration."""

    integration = serializers.CharField(
        max_length=100,
        required=False,
        help_text="The integration's name; entries are grouped per integration. Defaults to "
        "the token's integration.",
    )
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    message = serializers.CharField(max_length=SyncError.MESSAGE_MAX_LENGTH)
    detail = serializers.CharField(max_length=MAX_DETAIL_LENGTH, required=False, allow_blank=True)
    occurred_at = serializers.DateTimeField(
        required=False, help_text="When it failed (ISO 8601 with a time zone); default now."
    )
    source_app = serializers.CharField(max_length=100, required=False, allow_blank=True)
    source_entity = serializers.CharField(max_length=100, required=False, allow_blank=True)
    source_record_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    source_url = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, validators=[http_link]
    )
    destination_app = serializers.CharField(max_length=100, required=False, allow_blank=True)
    destination_entity = serializers.CharField(max_length=100, required=False, allow_blank=True)
    destination_record_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    destination_url = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, validators=[http_link]
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send an error as an object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name[:100]: ["Unknown field."] for name in unknown[:20]}
            )
        return super().to_internal_value(data)

    def validate_occurred_at(self, value):
        if value > timezone.now() + FUTURE_TOLERANCE:
            raise serializers.ValidationError("This moment is in the future.")
        return value

    def validate(self, data):
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


HEALTH_FIGURES = ("in_sync", "failing", "skipped", "open_errors")


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
            "failure_count",
            "last_error_message",
            "source_exists",
            "destination_exists",
            "existence_checked_at",
            "created_at",
        ]
        read_only_fields = fields


class CoupleSerializer(serializers.Serializer):
    mapping = serializers.IntegerField(min_value=1)
    source_record_id = serializers.CharField(
        max_length=RECORD_ID_MAX_LENGTH, validators=[printable]
    )
    destination_record_id = serializers.CharField(
        max_length=RECORD_ID_MAX_LENGTH, validators=[printable]
    )
    synchronize_after = serializers.BooleanField(required=False, default=False)


class CriterionSerializer(serializers.Serializer):
    # DRF takes declared fields off the class, so this one does not replace Field.source.
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=100, help_text="A source field of the mapping."
    )
    destination = serializers.CharField(max_length=100)
    priority = serializers.IntegerField(min_value=1, max_value=99, default=1)
    case_sensitive = serializers.BooleanField(default=True)


class CoupleByMatchSerializer(serializers.Serializer):
    mapping = serializers.IntegerField(min_value=1)
    side = serializers.ChoiceField(choices=["source", "destination"])
    record_ids = serializers.ListField(
        child=serializers.CharField(max_length=RECORD_ID_MAX_LENGTH, validators=[printable]),
        min_length=1,
        max_length=MAX_RECORDS,
    )
    criteria = CriterionSerializer(many=True)
    create_if_no_match = serializers.BooleanField(required=False, default=False)
    synchronize_after = serializers.BooleanField(required=False, default=False)


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


class CouplingIdsSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=500
    )
    all_skipped = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Retry every skipped coupling (of `mapping` when given).",
    )
    mapping = serializers.IntegerField(min_value=1, required=False)

    def validate(self, data):
        if bool(data.get("ids")) == data["all_skipped"]:
            raise serializers.ValidationError("Give either `ids` or `all_skipped: true`.")
        return data
