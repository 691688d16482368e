"""The console's roles, for the API: the same rules as the pages."""

from rest_framework.permissions import BasePermission

from syncconsole.permissions import is_sync_admin, is_sync_user

INGEST = "api.ingest_errors"


class IsSyncUser(BasePermission):
    message = "The API is open to Sync users and Sync administrators only."

    def has_permission(self, request, view) -> bool:
        return is_sync_user(request.user)


class IsSyncAdmin(BasePermission):
    message = "This needs the Sync administrators role."

    def has_permission(self, request, view) -> bool:
        return is_sync_admin(request.user)


class CanIngest(BasePermission):
    message = "Sending errors needs the Integrations or the Sync administrators role."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user.is_authenticated
            and user.is_active
            and (user.has_perm(INGEST) or is_sync_admin(user))
        )
