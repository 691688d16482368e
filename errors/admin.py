from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit.admin_changes import AuditedAdmin
from syncconsole.permissions import is_sync_admin
from syncconsole.queue import QueueUnavailable

from . import ownership, services
from .models import (
    AlertDelivery,
    AlertSubscription,
    AssignmentNotice,
    BulkAction,
    OwnershipRule,
    ProblemComment,
    Status,
    SyncError,
    SyncErrorCleanup,
)
from .ownership_forms import OwnershipRuleAdminForm
from .search import search as search_entries
from .templatetags.records import entry_record_html


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record kept for reading: it is written only by the console's services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SyncError)
class SyncErrorAdmin(AuditedAdmin):
    list_display = [
        "id",
        "created_at",
        "category",
        "short_message",
        "mapping",
        "job_link",
        "source",
        "destination",
        "direction",
        "status",
    ]
    list_filter = ["category", "status", "mapping__connection", "mapping", "created_at"]
    # The search box is the errors list's search (errors.search), whose message text is
    # looked up through the problems' titles: search_fields only makes the admin show it.
    search_fields = ["message"]
    list_select_related = ["mapping__connection", "job", "coupling"]
    date_hierarchy = "created_at"
    raw_id_fields = ["job", "coupling", "status_changed_by"]
    # The status changes through the actions, which keep who, when and the audit event.
    readonly_fields = [
        "status",
        "status_note",
        "status_changed_at",
        "status_changed_by",
        "sent_values",
        "attempts",
        "last_attempt_at",
        "last_attempt_job_id",
        # Set by the engine as the entry is recorded (errors/blocking.py).
        "blocked_by_mapping",
        "blocked_by_side",
        "blocked_by_entity",
        "blocked_by_record",
        "blocked_by_entry_id",
        "blocked_by_group",
    ]
    show_full_result_count = False
    actions = ["mark_resolved", "mark_ignored", "reopen"]
    change_list_template = "admin/errors/syncerror/change_list.html"

    def get_search_results(self, request, queryset, search_term):
        return search_entries(queryset, search_term), False

    @admin.display(description="Message")
    def short_message(self, error: SyncError) -> str:
        return error.message[:120]

    @admin.display(description="Job", ordering="job")
    def job_link(self, error: SyncError) -> str:
        if not error.job_id:
            return "—"
        url = reverse("admin:sync_syncjob_change", args=[error.job_id])
        return format_html('<a href="{}">#{}</a>', url, error.job_id)

    @admin.display(description="Source")
    def source(self, error: SyncError) -> str:
        return entry_record_html(error.sides.source)

    @admin.display(description="Destination")
    def destination(self, error: SyncError) -> str:
        return entry_record_html(error.sides.destination)

    @admin.display(description="Direction")
    def direction(self, error: SyncError) -> str:
        return error.sides.direction or "—"

    def _set_status(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        changed = services.set_status(queryset, status, request.user)
        self.message_user(request, f"{changed} entries marked {Status(status).label.lower()}.")

    @admin.action(description="Mark selected entries resolved")
    def mark_resolved(self, request, queryset):
        self._set_status(request, queryset, Status.RESOLVED)

    @admin.action(description="Ignore selected entries")
    def mark_ignored(self, request, queryset):
        self._set_status(request, queryset, Status.IGNORED)

    @admin.action(description="Reopen selected entries")
    def reopen(self, request, queryset):
        self._set_status(request, queryset, Status.OPEN)

    def get_urls(self):
        return [
            path(
                "cleanup/older-than-7-days/",
                self.admin_site.admin_view(self.cleanup_view),
                {"days": 7},
                name="errors_syncerror_cleanup_older",
            ),
            path(
                "cleanup/all/",
                self.admin_site.admin_view(self.cleanup_view),
                {"days": None},
                name="errors_syncerror_cleanup_all",
            ),
            *super().get_urls(),
        ]

    def cleanup_view(self, request: HttpRequest, days: int | None) -> HttpResponse:
        if not self.has_delete_permission(request):
            messages.error(request, "You may not delete sync errors.")
            return redirect("admin:errors_syncerror_changelist")
        try:
            services.check_cleanup(days, request.user)
        except services.CleanupRefused as exc:
            messages.error(request, str(exc))
            return redirect("admin:errors_syncerror_changelist")
        if request.method == "POST":
            try:
                cleanup = services.request_cleanup(
                    days=days, trigger=SyncErrorCleanup.Trigger.ADMIN, user=request.user
                )
            except (QueueUnavailable, services.CleanupRefused) as exc:
                messages.error(request, str(exc))
                return redirect("admin:errors_syncerror_changelist")
            if cleanup.is_finished:
                self.message_user(request, f"Deleted {cleanup.deleted_count} entries.")
                return redirect("admin:errors_syncerror_changelist")
            return redirect("errors:cleanup", pk=cleanup.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Delete All Entries"
            if days is None
            else f"Delete Entries Older than {days} Days",
            "preview": services.preview_cleanup(days),
        }
        return TemplateResponse(request, "admin/errors/syncerror/cleanup_confirm.html", context)


@admin.register(SyncErrorCleanup)
class SyncErrorCleanupAdmin(ReadOnlyAdmin):
    list_display = [
        "requested_at",
        "action",
        "days",
        "trigger",
        "requested_by",
        "state",
        "expected_count",
        "open_count",
        "deleted_count",
        "finished_at",
    ]
    list_filter = ["action", "trigger", "state"]
    date_hierarchy = "requested_at"


@admin.register(BulkAction)
class BulkActionAdmin(ReadOnlyAdmin):
    """The audit of actions on many entries: read-only."""

    list_display = [
        "requested_at",
        "action",
        "scope",
        "requested_by",
        "state",
        "expected_count",
        "processed_count",
        "changed_count",
        "failed_count",
    ]
    list_filter = ["action", "scope", "state"]
    search_fields = ["requested_by__username", "filter_query", "note"]
    date_hierarchy = "requested_at"


@admin.register(AlertSubscription)
class AlertSubscriptionAdmin(AuditedAdmin):
    list_display = ["user", "email", "new_problems", "regressions", "setup_errors", "scope"]
    list_filter = ["new_problems", "regressions", "setup_errors", "connection"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user", "connection", "mapping__connection"]
    raw_id_fields = ["user"]

    @admin.display(description="e-mail")
    def email(self, subscription: AlertSubscription) -> str:
        return subscription.user.email or "— (no address: nothing is sent)"

    @admin.display(description="where")
    def scope(self, subscription: AlertSubscription) -> str:
        return subscription.scope_label


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    """The outbox of alerts: what was sent, what waits, and the tries that failed. For reading
    only: the sender is the one writer of its rows."""

    list_display = [
        "group",
        "user",
        "events",
        "state",
        "created_at",
        "attempts",
        "last_error",
        "sent_at",
    ]
    list_filter = ["state"]
    list_select_related = ["group", "user"]
    readonly_fields = [
        "key", "user", "group", "events", "state", "created_at", "available_at", "claim",
        "claimed_until", "attempts", "last_error", "sent_at",
    ]  # fmt: skip

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OwnershipRule)
class OwnershipRuleAdmin(admin.ModelAdmin):
    """The rules that assign new problems: saved and deleted through errors.ownership, with
    the console's checks and audit events."""

    form = OwnershipRuleAdminForm
    list_display = ["id", "scope", "assignee", "created_by", "created_at"]
    list_filter = ["category", "connection"]
    list_select_related = ["connection", "mapping__connection", "user", "group", "created_by"]
    search_fields = ["user__username", "group__name"]

    @admin.display(description="problems")
    def scope(self, rule: OwnershipRule) -> str:
        return rule.scope_label

    @admin.display(description="assigned to")
    def assignee(self, rule: OwnershipRule) -> str:
        return rule.assignee_label + (" (role)" if rule.group_id else "")

    def _administers(self, request) -> bool:
        return is_sync_admin(request.user)

    def has_add_permission(self, request):
        return self._administers(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._administers(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._administers(request) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        ownership.save_rule(obj, request.user)

    def delete_model(self, request, obj):
        ownership.delete_rule(obj, request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset.select_related("connection", "mapping", "user", "group"):
            ownership.delete_rule(rule, request.user)


@admin.register(ProblemComment)
class ProblemCommentAdmin(ReadOnlyAdmin):
    """The problems' discussions, for reading: comments are written on the problem's page or
    through the API."""

    list_display = ["created_at", "group", "author_name", "short_text"]
    list_select_related = ["group"]
    search_fields = ["text", "author_name"]
    date_hierarchy = "created_at"
    readonly_fields = ["group", "author", "author_name", "created_at", "text"]

    @admin.display(description="comment")
    def short_text(self, comment: ProblemComment) -> str:
        return comment.text[:120]


@admin.register(AssignmentNotice)
class AssignmentNoticeAdmin(admin.ModelAdmin):
    """When each person was last e-mailed about what was assigned to them, and what waits for
    its hour: for reading only."""

    list_display = ["user", "events", "pending_since", "notified_at", "notified_events"]
    list_select_related = ["user"]
    readonly_fields = ["user", "events", "pending_since", "notified_at", "notified_events"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
