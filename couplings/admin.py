from django.contrib import admin, messages

from . import actions as coupling_actions
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
    actions = ["retry", "find_for_deleted"]

    # A coupling changes only through the coupling actions (couplings/actions.py), as from
    # the console: editing its fields here would skip the entries and the audit log. Records
    # are coupled on the Couple page.
    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    # Removing a coupling resolves its open entries and is audited, as from the console.
    def delete_model(self, request, obj):
        coupling_actions.remove_coupling(obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for coupling in queryset.select_related("mapping"):
            coupling_actions.remove_coupling(coupling, user=request.user)

    @admin.action(description="Retry the selected couplings (one job per mapping)")
    def retry(self, request, queryset):
        retried = coupling_actions.retry_by_mapping(queryset, user=request.user)
        for job, count in retried.jobs:
            self.message_user(
                request, f"{job.mapping.name}: {count} couplings queued as job #{job.pk}."
            )
        for mapping, why, _ in retried.refused:
            self.message_user(request, f"{mapping.name}: {why}", messages.ERROR)

    @admin.action(description="Check whether their records still exist (Find for Deleted)")
    def find_for_deleted(self, request, queryset):
        gone = coupling_actions.find_for_deleted(queryset)
        self.message_user(
            request,
            f"Checked {queryset.count()} couplings: {gone['source']} gone in the source app, "
            f"{gone['destination']} gone in the destination app.",
        )


@admin.register(CouplingRun)
class CouplingRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "mapping", "side", "state", "created_at", "requested_by", "message"]
    list_filter = ["state", "mapping"]
    list_select_related = ["mapping", "requested_by"]
    raw_id_fields = ["sync_job"]
    readonly_fields = ["results", "record_ids", "criteria", "started_at", "finished_at"]
