"""Wrong API tokens are limited as sign-ins are: LOGIN_FAILURE_LIMIT of them from one address
within LOGIN_LOCKOUT_MINUTES lock that address out of token authentication for
LOGIN_LOCKOUT_MINUTES. The count lives in the database, so that every web process shares it."""

import logging
import math
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from syncconsole.signin import client_address

from .models import TokenFailures

logger = logging.getLogger(__name__)


def enabled() -> bool:
    return settings.AXES_ENABLED


def record_failure(request, now: datetime | None = None) -> int:
    """Count a wrong token from the request's address; returns the seconds of the lock it
    starts, or 0. Failures older than the window are forgotten."""
    if not enabled():
        return 0
    now = now or timezone.now()
    window = settings.AXES_COOLOFF_TIME
    address = client_address(request)
    with transaction.atomic():
        row, created = TokenFailures.objects.select_for_update().get_or_create(
            address=address, defaults={"failures": 0, "window_started_at": now}
        )
        if not created and row.window_started_at <= now - window:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        until = now + window if row.failures >= settings.AXES_FAILURE_LIMIT else None
        if until is not None:
            # The lock starts a new window: the failures that made it are spent.
            row.locked_until, row.failures, row.window_started_at = until, 0, now
        row.save()
    if until is None:
        return 0
    logger.warning(
        "API token authentication locked for %s after %d wrong tokens; until %s.",
        address or "an unknown address",
        settings.AXES_FAILURE_LIMIT,
        until.isoformat(),
    )
    return math.ceil(window.total_seconds())


def forget_old(now: datetime | None = None) -> int:
    """Drop the addresses whose failures and lock are over. Returns how many."""
    now = now or timezone.now()
    deleted, _ = (
        TokenFailures.objects.filter(window_started_at__lte=now - settings.AXES_COOLOFF_TIME)
        .exclude(locked_until__gt=now)
        .delete()
    )
    return deleted
