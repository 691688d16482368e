from django import forms
from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from audit.admin_changes import AuditedAdmin
from errors.admin import ReadOnlyAdmin

from . import breaker, subscriptions
from .connectors import ConnectorError, connector_for
from .models import (
    ChangeSubscription,
    Connection,
    ConnectionCheck,
    JobLogLine,
    LagProbe,
    LagSample,
    MappingHealthSnapshot,
    MappingRule,
    PageShare,
    RecordEdit,
    RuleVersion,
    SyncJob,
    TableMapping,
)

KEEP_STORED_HELP = "Never shown. Leave blank to keep the stored secret."


def _https_by_default(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class ConnectionForm(forms.ModelForm):
    """Secrets can be set or replaced, never read back."""

    source_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text=KEEP_STORED_HELP
    )
    destination_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text=KEEP_STORED_HELP
    )

    class Meta:
        model = Connection
        # Every field the admin edits: a ModelForm that names fields limits the admin's form
        # to them.
        fields = [
            "name",
            "source_app",
            "source_base_url",
            "source_flavor",
            "destination_app",
            "destination_base_url",
            "destination_flavor",
            "auth_method",
            "integration_user",
            "source_username",
            "source_secret",
            "source_authority",
            "source_scope",
            "destination_username",
            "destination_secret",
            "destination_authority",
            "destination_scope",
            "source_settings",
            "destination_settings",
            "is_enabled",
            "disabled_reason",
        ]
        formfield_callback = _https_by_default

    def _kept(self, name: str) -> str:
        return self.cleaned_data.get(name) or getattr(self.instance, name, "") or ""

    def clean_source_secret(self) -> str:
        return self._kept("source_secret")

    def clean_destination_secret(self) -> str:
        return self._kept("destination_secret")


class TableMappingInline(admin.TabularInline):
    model = TableMapping
    extra = 0
    fields = ["name", "source_entity", "destination_entity", "direction", "is_enabled"]
    show_change_link = True


@admin.register(Connection)
class ConnectionAdmin(AuditedAdmin):
    list_display = [
        "name",
        "source_app",
        "source_base_url",
        "destination_app",
        "destination_base_url",
        "integration_user",
        "is_enabled",
    ]
    list_filter = ["is_enabled", "auth_method"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    ("source_app", "source_flavor"),
                    "source_base_url",
                    ("destination_app", "destination_flavor"),
                    "destination_base_url",
                    "integration_user",
                    "is_enabled",
                    "disabled_reason",
                ]
            },
        ),
        (
            "Sign-in",
            {
                "description": "OAuth 2.0 client credentials at Microsoft Entra ID, as Business "
                "Central online and Dataverse expect: per app, the app registration's client ID "
                "and secret, the authority (https://login.microsoftonline.com/<tenant ID>) and "
                "the scope. User name and password reach only Business Central on-premises.",
                "fields": [
                    "auth_method",
                    "source_username",
                    "source_secret",
                    "source_authority",
                    "source_scope",
                    "destination_username",
                    "destination_secret",
                    "destination_authority",
                    "destination_scope",
                ],
            },
        ),
        ("Settings", {"fields": ["source_settings", "destination_settings"]}),
    ]
    search_fields = ["name", "integration_user"]
    inlines = [TableMappingInline]
    form = ConnectionForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["test_connection", "keep_change_notifications", "remove_change_notifications"]

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        """Sign in to both apps and check the integration user, as the anchor's Test
        Connection does."""
        for connection in queryset:
            for side in ("source", "destination"):
                app = getattr(connection, f"{side}_app")
                try:
                    with connector_for(connection, side) as connector:
                        findings = connector.check_setup()
                except ConnectorError as error:
                    self.message_user(request, f"{connection} · {app}: {error}", messages.ERROR)
                    continue
                if not findings:
                    self.message_user(request, f"{connection} · {app}: the address is valid.")
                for finding in findings:
                    level = {"ok": messages.SUCCESS, "warning": messages.WARNING}.get(
                        finding.severity, messages.ERROR
                    )
                    text = f"{connection} · {app}: {finding.message} {finding.remedy}".strip()
                    self.message_user(request, text, level)
            health = reverse("sync:connection_health", args=[connection.pk])
            self.message_user(
                request,
                format_html(
                    "{}: the full setup health check (privileges per mapping, currencies) is on "
                    '<a href="{}">its health page</a>.',
                    connection,
                    health,
                ),
                messages.INFO,
            )

    @admin.action(description="Subscribe to change notifications now")
    def keep_change_notifications(self, request, queryset):
        """What the periodic task "Keep change notification subscriptions" does, now: the
        subscriptions and the Dataverse webhook are made where they are missing."""
        for connection in queryset:
            kept = subscriptions.keep_subscribed(connection)
            failed = [s for s in kept if s.status == ChangeSubscription.Status.FAILED]
            for subscription in failed:
                self.message_user(
                    request,
                    f"{connection} · {subscription.entity}: {subscription.message}",
                    messages.ERROR,
                )
            self.message_user(
                request, f"{connection}: {len(kept) - len(failed)} of {len(kept)} tables kept."
            )

    @admin.action(description="Remove change notifications in the apps")
    def remove_change_notifications(self, request, queryset):
        """Delete the subscriptions and the Dataverse webhook in the apps (the periodic task
        makes them again while the connection is enabled and has mappings)."""
        for connection in queryset:
            problems = subscriptions.remove_subscriptions(connection, user=request.user)
            for problem in problems:
                self.message_user(request, f"{connection}: {problem}", messages.ERROR)
            if not problems:
                self.message_user(request, f"{connection}: change notifications removed.")


@admin.register(TableMapping)
class TableMappingAdmin(AuditedAdmin):
    list_display = [
        "name",
        "connection",
        "source_entity",
        "destination_entity",
        "direction",
        "sync_only_coupled_records",
        "dependency_order",
        "is_enabled",
        "paused_at",
        "setup_failures_in_a_row",
    ]
    list_filter = [
        "connection",
        "direction",
        "is_enabled",
        ("paused_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["name", "source_entity", "destination_entity"]
    list_select_related = ["connection"]
    readonly_fields = [
        "setup_failures_in_a_row",
        "paused_at",
        "paused_reason",
        "paused_error_link",
        "resumed_at",
        "resumed_reason",
    ]
    exclude = ["paused_error"]
    actions = ["resume"]

    @admin.display(description="Paused by entry")
    def paused_error_link(self, mapping: TableMapping) -> str:
        if not mapping.paused_error_id:
            return "—"
        url = reverse("errors:detail", args=[mapping.paused_error_id])
        return format_html('<a href="{}">#{}</a>', url, mapping.paused_error_id)

    @admin.action(description="Resume the selected paused mappings")
    def resume(self, request, queryset):
        resumed = 0
        for mapping in queryset.filter(paused_at__isnull=False):
            breaker.resume_by_hand(mapping, request.user)
            resumed += 1
        self.message_user(request, f"{resumed} mappings resumed.")


class RuleVersionInline(admin.TabularInline):
    model = RuleVersion
    fields = ["number", "kind", "params", "note", "made_by", "made_at"]
    readonly_fields = ["number", "kind", "params", "note", "made_by", "made_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MappingRule)
class MappingRuleAdmin(ReadOnlyAdmin):
    """Rules are made, switched off and reverted from the problem and mapping pages (and the
    API), which keep their versions and audit events: here they are read only."""

    list_display = [
        "id",
        "mapping",
        "direction",
        "field",
        "does",
        "version",
        "kept",
        "is_active",
        "origin_problem",
        "created_by",
        "created_at",
    ]
    list_filter = ["is_active", "kept", "mapping"]
    list_select_related = ["mapping", "current", "created_by", "origin_problem"]
    search_fields = ["field"]
    inlines = [RuleVersionInline]

    @admin.display(description="Does")
    def does(self, rule: MappingRule) -> str:
        return rule.current.description if rule.current else "—"

    @admin.display(description="Version")
    def version(self, rule: MappingRule) -> int | None:
        return rule.current.number if rule.current else None


@admin.register(MappingHealthSnapshot)
class MappingHealthSnapshotAdmin(admin.ModelAdmin):
    list_display = [
        "mapping",
        "day",
        "in_sync",
        "failing",
        "failing_not_coupled",
        "skipped",
        "updated_at",
    ]
    list_filter = ["mapping"]
    list_select_related = ["mapping"]
    date_hierarchy = "day"


class JobLogLineInline(admin.TabularInline):
    """The job's own log, as it was written: read only."""

    model = JobLogLine
    fields = ["at", "level_name", "logger", "message"]
    readonly_fields = ["at", "level_name", "logger", "message"]
    ordering = ["pk"]
    extra = 0
    can_delete = False
    verbose_name = "log line"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Level")
    def level_name(self, line: JobLogLine) -> str:
        return line.level_name


class PageShareInline(admin.TabularInline):
    """The page passes a full job was shared out to (sync.engine.run_shared): read only."""

    model = PageShare
    fields = readonly_fields = (
        "direction",
        "number",
        "low",
        "high",
        "status",
        "worker",
        "records_read",
        "inserted",
        "failed",
        "resumes",
        "message",
    )
    extra = 0
    can_delete = False
    verbose_name = "page pass"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncJob)
class SyncJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "mapping",
        "kind",
        "trigger",
        "status_shown",
        "started_at",
        "finished_at",
        "inserted",
        "modified",
        "deleted",
        "unchanged",
        "skipped",
        "failed_link",
    ]
    list_filter = ["status", "kind", "trigger", "mapping"]
    list_select_related = ["mapping"]
    date_hierarchy = "created_at"
    search_fields = ["=id", "message"]
    show_full_result_count = False
    readonly_fields = ["log_lines_dropped"]
    inlines = [PageShareInline, JobLogLineInline]

    @admin.display(description="Status", ordering="status")
    def status_shown(self, job: SyncJob) -> str:
        return job.outcome_display

    @admin.display(description="Failed", ordering="failed")
    def failed_link(self, job: SyncJob) -> str:
        if not job.failed:
            return "0"
        url = reverse("admin:errors_syncerror_changelist") + f"?job__id__exact={job.pk}"
        return format_html('<a href="{}">{}</a>', url, job.failed)


@admin.register(ChangeSubscription)
class ChangeSubscriptionAdmin(admin.ModelAdmin):
    """The subscriptions to the apps' change notifications, kept by the periodic task "Keep
    change notification subscriptions"."""

    list_display = ["connection", "side", "entity", "status", "expires_at", "message"]
    list_filter = ["connection", "status"]
    list_select_related = ["connection"]
    readonly_fields = [
        "connection", "side", "entity", "status", "subscription_id", "resource",
        "notification_url", "etag", "expires_at", "message", "renewed_at", "endpoint_id",
        "step_ids", "updated_at",
    ]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ConnectionCheck)
class ConnectionCheckAdmin(admin.ModelAdmin):
    list_display = ["connection", "checked_at", "checked_by", "error_count", "warning_count"]
    list_filter = ["connection"]
    list_select_related = ["connection", "checked_by"]
    readonly_fields = ["connection", "checked_at", "checked_by", "findings"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Errors")
    def error_count(self, check: ConnectionCheck) -> int:
        return len(check.errors)

    @admin.display(description="Warnings")
    def warning_count(self, check: ConnectionCheck) -> int:
        return len(check.warnings)


@admin.register(LagProbe)
class LagProbeAdmin(ReadOnlyAdmin):
    list_display = [
        "mapping",
        "direction",
        "record_id",
        "marker_field",
        "interval_minutes",
        "limit_seconds",
        "is_enabled",
        "changed_at",
    ]
    list_select_related = ["mapping"]


@admin.register(LagSample)
class LagSampleAdmin(ReadOnlyAdmin):
    list_display = ["probe", "marker", "written_at", "arrived_at", "lag_seconds", "state"]
    list_filter = ["state", "probe"]
    list_select_related = ["probe__mapping"]
    date_hierarchy = "written_at"


@admin.register(RecordEdit)
class RecordEditAdmin(ReadOnlyAdmin):
    """The values people typed on refused records' entries: made only by Edit and retry
    (triage.edits), settled only by the engine."""

    list_display = ["id", "made_at", "made_by_label", "mapping", "direction", "record_id",
                    "entry_link", "state", "written_in_job"]  # fmt: skip
    list_filter = ["state", "mapping"]
    search_fields = ["record_id", "=entry_id"]
    list_select_related = ["mapping"]

    @admin.display(description="Entry", ordering="entry_id")
    def entry_link(self, obj: RecordEdit):
        return format_html(
            '<a href="{}">#{}</a>', reverse("errors:detail", args=[obj.entry_id]), obj.entry_id
        )
