"""The Django admin, in the console's name."""

from django.contrib import admin

from .models import ProcessHeartbeat

admin.site.site_header = "Sync Console administration"
admin.site.site_title = "Sync Console administration"
admin.site.index_title = "Administration"


@admin.register(ProcessHeartbeat)
class ProcessHeartbeatAdmin(admin.ModelAdmin):
    """Read only: the workers and beat write their own heartbeats (syncconsole.heartbeats)."""

    list_display = ["kind", "name", "seen_at"]
    list_filter = ["kind"]
    ordering = ["kind", "-seen_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
