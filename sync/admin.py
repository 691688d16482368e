from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from .models import Connection, SyncJob, TableMapping


class TableMappingInline(admin.TabularInline):
    model = TableMapping
    extra = 0
    fields = ["name", "source_entity", "destination_entity", "direction", "is_enabled"]
    show_change_link = True


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
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
    search_fields = ["name", "integration_user"]
    inlines = [TableMappingInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(TableMapping)
class TableMappingAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "connection",
        "source_entity",
        "destination_entity",
        "direction",
        "sync_only_coupled_records",
        "dependency_order",
        "is_enabled",
    ]
    list_filter = ["connection", "direction", "is_enabled"]
    search_fields = ["name", "source_entity", "destination_entity"]
    list_select_related = ["connection"]


@admin.register(SyncJob)
class SyncJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "mapping",
        "kind",
        "trigger",
        "status",
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

    @admin.display(description="Failed", ordering="failed")
    def failed_link(self, job: SyncJob) -> str:
        if not job.failed:
            return "0"
        url = reverse("admin:errors_syncerror_changelist") + f"?job__id__exact={job.pk}"
        return format_html('<a href="{}">{}</a>', url, job.failed)
