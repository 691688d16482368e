"""Who may use the console: signed-in staff for now."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def staff_required(view):
    """Send anonymous visitors to sign in; refuse signed-in users who are not staff."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("Sync Console is open to staff accounts only.")
        return view(request, *args, **kwargs)

    return wrapper
