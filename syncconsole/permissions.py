"""Who may use the console: two roles, each a group created by a migration.

"Sync users" see and resolve coupled-record errors, retry, couple and uncouple. "Sync
administrators" may do everything: setup errors, connections and their secrets, mappings,
delete all entries, clean-up settings. Superusers hold every permission."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

SYNC_USERS = "Sync users"
SYNC_ADMINISTRATORS = "Sync administrators"
# Accounts of other integrations: they may send their errors through the API, nothing else.
INTEGRATIONS = "Integrations"
TRIAGE = "errors.triage_coupled_errors"
ADMINISTER = "errors.administer_sync"


def is_sync_admin(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(ADMINISTER))


def is_sync_user(user) -> bool:
    """A Sync user or a Sync administrator: anyone who may use the console."""
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.has_perm(TRIAGE) or user.has_perm(ADMINISTER))
    )


def _role_required(check, refusal: str):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not check(request.user):
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


sync_user_required = _role_required(
    is_sync_user, "Sync Console is open to Sync users and Sync administrators only."
)
sync_admin_required = _role_required(is_sync_admin, "This needs the Sync administrators role.")


def require_sync_admin_for_setup(user, error_or_group) -> None:
    """Setup errors and their details are for administrators: a Sync user gets a refusal."""
    if error_or_group.is_setup_error and not is_sync_admin(user):
        raise PermissionDenied("Setup and connection errors are for Sync administrators.")
