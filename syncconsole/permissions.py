"""Who may use the console: two roles, each a group created by a migration.

"Sync users" see and resolve coupled-record errors, retry, couple and uncouple. "Sync
administrators" may do everything: setup errors, connections and their secrets, mappings,
delete all entries, clean-up settings. Superusers hold every permission."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import connection

SYNC_USERS = "Sync users"
SYNC_ADMINISTRATORS = "Sync administrators"
# Accounts of other integrations: they may send their errors through the API, nothing else.
INTEGRATIONS = "Integrations"
TRIAGE = "errors.triage_coupled_errors"
ADMINISTER = "errors.administer_sync"


# Every permission a user holds, their own and their groups', named as Django's ModelBackend
# names them ("app_label.codename"); {user} is the user's id. One statement of constant text:
# ModelBackend's own way is two queries, each compiled anew by the ORM on every request.
PERMISSIONS_OF_USER = """
    SELECT c.app_label || '.' || p.codename
    FROM auth_permission AS p JOIN django_content_type AS c ON c.id = p.content_type_id
    WHERE p.id IN (
        SELECT o.permission_id FROM auth_user_user_permissions AS o WHERE o.user_id = {user}
        UNION
        SELECT g.permission_id FROM auth_group_permissions AS g
        JOIN auth_user_groups AS m ON m.group_id = g.group_id
        WHERE m.user_id = {user}
    )"""


def load_permissions(user) -> None:
    """Read the user's permissions once for this request's user object, in one statement:
    ModelBackend keeps them on it (_perm_cache) and answers every later role check of the
    request from there. A superuser holds every permission without them."""
    if user.is_superuser or hasattr(user, "_perm_cache"):
        return
    with connection.cursor() as cursor:
        cursor.execute(PERMISSIONS_OF_USER.format(user="%s"), [user.pk, user.pk])
        keep_permissions(user, {name for (name,) in cursor.fetchall()})


def keep_permissions(user, names: set[str]) -> None:
    """The user's permissions, read with PERMISSIONS_OF_USER, kept where ModelBackend looks
    for them first."""
    if not user.is_superuser:
        user._perm_cache = names


def is_sync_admin(user) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    load_permissions(user)
    return user.has_perm(ADMINISTER)


def is_sync_user(user) -> bool:
    """A Sync user or a Sync administrator: anyone who may use the console."""
    if not (user.is_authenticated and user.is_active):
        return False
    load_permissions(user)
    return user.has_perm(TRIAGE) or user.has_perm(ADMINISTER)


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
