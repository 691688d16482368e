"""The circuit breaker of a table mapping: jobs that keep failing for setup reasons pause
the mapping (one clear entry instead of a new one at every run); the setup check, run at each
scheduled tick while it is paused, or an administrator, resumes it."""

import logging

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from audit import services as audit
from errors.models import SyncError

from .connectors import ConnectorError, connector_for
from .models import TableMapping
from .preflight import JobFailure, check_integration_users

logger = logging.getLogger(__name__)
SETUP_FAILURES_BEFORE_PAUSE = 3
# A job retried after a transient failure must be taken before a queued job expires.
MAX_JOB_RETRY_DELAY = 15 * 60


def count_job(mapping: TableMapping, *, setup_failure: bool) -> int:
    """Count a finished job towards the breaker; returns the setup failures in a row."""
    queryset = TableMapping.objects.filter(pk=mapping.pk)
    if setup_failure:
        queryset.update(setup_failures_in_a_row=F("setup_failures_in_a_row") + 1)
    else:
        queryset.update(setup_failures_in_a_row=0)
    mapping.setup_failures_in_a_row = queryset.values_list(
        "setup_failures_in_a_row", flat=True
    ).get()
    return mapping.setup_failures_in_a_row


def should_pause(mapping: TableMapping) -> bool:
    return mapping.setup_failures_in_a_row >= SETUP_FAILURES_BEFORE_PAUSE


def job_retry_delay(failures_in_a_row: int) -> int:
    """Seconds before a job that failed transiently is tried again (doubling)."""
    delay = settings.SYNC_RETRY_BACKOFF_SECONDS * 2 ** max(failures_in_a_row - 1, 0)
    return min(delay, MAX_JOB_RETRY_DELAY)


def pause(mapping: TableMapping, reason: str, error: SyncError | None) -> None:
    now = timezone.now()
    fields = {"paused_at": now, "paused_reason": reason[:2048], "paused_error": error}
    if mapping.paused_at is not None:
        # Already paused (a failure after a resume that the check could not see): keep when
        # it started, show the newest failure.
        fields.pop("paused_at")
    else:
        audit.record(
            audit.Action.MAPPING_PAUSED,
            f"Mapping {mapping.name} paused: {reason}",
            actor_label="system (circuit breaker)",
            target=mapping,
            details={"reason": reason[:2048], "entry": error.pk if error else None},
        )
    TableMapping.objects.filter(pk=mapping.pk).update(**fields)
    for name, value in fields.items():
        setattr(mapping, name, value)
    logger.warning("Mapping %s paused: %s", mapping.name, reason)


def resume(mapping: TableMapping, reason: str, *, user=None) -> None:
    """Let the mapping's jobs run again. The count of setup failures stays: should the next
    job fail for the same reason, the mapping pauses again at once."""
    audit.record(
        audit.Action.MAPPING_RESUMED,
        f"Mapping {mapping.name} resumed: {reason}",
        user=user,
        actor_label="system (setup check)",
        target=mapping,
        details={"reason": reason[:500]},
    )
    fields = {
        "paused_at": None,
        "paused_error": None,
        "resumed_at": timezone.now(),
        "resumed_reason": reason[:500],
    }
    TableMapping.objects.filter(pk=mapping.pk).update(**fields)
    for name, value in fields.items():
        setattr(mapping, name, value)
    logger.info("Mapping %s resumed: %s", mapping.name, reason)


def resume_by_hand(mapping: TableMapping, user) -> None:
    resume(mapping, f"Resumed by {user.get_username()}.", user=user)


def setup_problem(mapping: TableMapping) -> str:
    """What the setup check of both apps finds wrong for this mapping ("" when it passes):
    the same check a job makes before it writes anything."""
    try:
        with (
            connector_for(mapping.connection, "source") as source,
            connector_for(mapping.connection, "destination") as destination,
        ):
            check_integration_users(mapping, source, destination)
    except JobFailure as failure:
        return failure.error.message
    except ConnectorError as error:
        return error.message
    if not mapping.connection.is_enabled:
        return f"The connection {mapping.connection.name} is disabled."
    return ""


def resume_if_setup_passes(mapping: TableMapping) -> bool:
    """Run the setup check of a paused mapping and resume it when the check passes."""
    problem = setup_problem(mapping)
    if problem:
        logger.info("Mapping %s stays paused: %s", mapping.name, problem)
        return False
    resume(mapping, "The setup check passed again.")
    return True
