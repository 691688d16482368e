from django.contrib import admin, messages

from audit.admin_changes import AuditedAdmin
from audit.models import AuditEvent

from .models import ApiToken, IngestionRequest


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    list_display = [
        "name",
        "user",
        "integration",
        "lookup",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "integration", "lookup"]
    readonly_fields = ["lookup", "created_at", "last_used_at"]
    fields = [
        "name",
        "user",
        "integration",
        "expires_at",
        "revoked_at",
        "lookup",
        "created_at",
        "last_used_at",
    ]
    autocomplete_fields = ["user"]

    def audit_action(self, obj, changed: dict, deleted: bool = False) -> str:
        # A deleted token stops working as a revoked one does.
        if deleted or ("revoked_at" in changed and obj.revoked_at is not None):
            return AuditEvent.Action.TOKEN_REVOKED
        return super().audit_action(obj, changed, deleted)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, key = ApiToken.issue(
            obj.user,
            obj.name,
            integration=obj.integration,
            expires_at=obj.expires_at,
            issued_by=request.user,
        )
        obj.pk = token.pk
        # Shown once: only the hash is kept.
        messages.warning(request, f"The token's key, shown only now: {key}")


@admin.register(IngestionRequest)
class IngestionRequestAdmin(admin.ModelAdmin):
    list_display = ["key", "user", "status_code", "created_at"]
    readonly_fields = ["user", "key", "body_hash", "status_code", "response", "created_at"]
