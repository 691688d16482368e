"""The audit log in the Django admin (read-only)."""

from django.contrib import admin
from django.contrib.auth.models import Group, User
from django_celery_beat.models import PeriodicTask

from .admin_changes import AuditedAdmin
from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_label", "action", "object_type", "object_label", "summary"]
    list_filter = ["action", "at"]
    search_fields = ["actor_label", "object_label", "summary", "=object_id"]
    date_hierarchy = "at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# Accounts, roles and schedules are settings too: their admin pages, as registered, are
# recorded the same way.
for model in (User, Group, PeriodicTask):
    registered = type(admin.site.get_model_admin(model))
    admin.site.unregister(model)
    audited = type(f"Audited{registered.__name__}", (AuditedAdmin, registered), {})
    admin.site.register(model, audited)
