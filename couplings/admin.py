from django.contrib import admin

from .actions import remove_coupling
from .models import Coupling, CouplingRun


@admin.register(Coupling)
class CouplingAdmin(admin.ModelAdmin):
    list_display = [
        "source_record_id",
        "destination_record_id",
        "mapping",
        "last_synced_to_destination_at",
        "last_result_to_destination",
        "last_synced_from_destination_at",
        "last_result_from_destination",
        "is_skipped",
    ]
    list_filter = [
        "mapping",
        "is_skipped",
        "last_result_to_destination",
        "last_result_from_destination",
    ]
    search_fields = ["=source_record_id", "=destination_record_id"]
    list_select_related = ["mapping"]
    raw_id_fields = ["last_job_to_destination", "last_job_from_destination"]
    show_full_result_count = False

    # Removing a coupling resolves its open entries and is audited, as from the console.
    def delete_model(self, request, obj):
        remove_coupling(obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for coupling in queryset.select_related("mapping"):
            remove_coupling(coupling, user=request.user)


@admin.register(CouplingRun)
class CouplingRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "mapping", "side", "state", "created_at", "requested_by", "message"]
    list_filter = ["state", "mapping"]
    list_select_related = ["mapping", "requested_by"]
    raw_id_fields = ["sync_job"]
    readonly_fields = ["results", "record_ids", "criteria", "started_at", "finished_at"]
