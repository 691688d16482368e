"""A problem's own policies, in place of its mapping's: how many identical failures in a row
skip a coupling that fails with it, how often and how far apart a transient failure is tried
again before it is logged, and whether each failed attempt is an entry of its own or counted on
the record's open entry. The engine reads them; only this module writes them, each
change with its audit event."""

from django.db import transaction

from audit import services as audit

from .models import (
    MAX_RETRY_DELAY_SECONDS,
    SKIP_AFTER_LIMITS,
    TRANSIENT_RETRIES_MAX,
    EntryLogging,
    ErrorGroup,
)


class PolicyRefused(Exception):
    """The value asked for is not one a policy may have."""


def set_skip_after(problem: ErrorGroup, by, failures: int | None) -> ErrorGroup:
    """Set (a number) or clear (None: the mapping's policy again) the problem's skip
    threshold, and record who did it."""
    low, high = SKIP_AFTER_LIMITS
    if failures is not None and not _whole(failures, low, high):
        raise PolicyRefused(f"Skip after a number of failures from {low} to {high}, or clear it.")
    return _change(
        problem,
        by,
        {"skip_after_failures": failures},
        lambda values: (
            f"Skip policy of the problem: after {values['skip_after_failures']} identical failures"
            if values["skip_after_failures"] is not None
            else "Skip policy of the problem cleared: the mapping's policy"
        ),
    )


def set_entry_logging(problem: ErrorGroup, by, logging: str) -> ErrorGroup:
    """Set how the records failing with the problem are logged (an EntryLogging value), or
    clear it ("": the mapping's policy again), and record who did it."""
    if logging not in ("", *EntryLogging.values):
        choices = ", ".join(EntryLogging.values)
        raise PolicyRefused(f"Log entries by one of {choices}, or clear it.")
    return _change(
        problem,
        by,
        {"entry_logging": logging},
        lambda values: (
            f"Logging policy of the problem: {EntryLogging(values['entry_logging']).label.lower()}"
            if values["entry_logging"]
            else "Logging policy of the problem cleared: the mapping's policy"
        ),
    )


def set_retries(problem: ErrorGroup, by, retries: int | None, delay: int | None) -> ErrorGroup:
    """Set the problem's automatic retries of a transient failure: how many later runs try
    the record again before it is logged (0 to 10) and the wait before the first, in seconds
    (doubling each time); None for either: the mapping's."""
    if retries is not None and not _whole(retries, 0, TRANSIENT_RETRIES_MAX):
        raise PolicyRefused(f"Automatic retries from 0 to {TRANSIENT_RETRIES_MAX}, or clear it.")
    if delay is not None and not _whole(delay, 1, MAX_RETRY_DELAY_SECONDS):
        raise PolicyRefused(
            f"A first retry after 1 to {MAX_RETRY_DELAY_SECONDS} seconds, or clear it."
        )

    def describe(values: dict) -> str:
        if values["transient_retries"] is None and values["retry_delay_seconds"] is None:
            return "Retry policy of the problem cleared: the mapping's policy"
        count = values["transient_retries"]
        wait = values["retry_delay_seconds"]
        return (
            "Retry policy of the problem: "
            + (f"{count} automatic retries" if count is not None else "the mapping's retries")
            + (f", the first after {wait} s" if wait is not None else ", the mapping's wait")
        )

    return _change(
        problem, by, {"transient_retries": retries, "retry_delay_seconds": delay}, describe
    )


def _whole(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _change(problem: ErrorGroup, by, values: dict, describe) -> ErrorGroup:
    """Write the policy values that change, with one audit event naming the previous ones."""
    with transaction.atomic():
        locked = ErrorGroup.objects.select_for_update().get(pk=problem.pk)
        previous = {field: getattr(locked, field) for field in values}
        if previous == values:
            return locked
        for field, value in values.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(values))
        was = ", ".join(str(v) for v in previous.values() if v not in (None, ""))
        details = dict(values)
        details["previous"] = previous if len(values) > 1 else next(iter(previous.values()))
        audit.record(
            audit.Action.PROBLEM_POLICY_CHANGED,
            describe(values) + (f" (was {was})" if was else ""),
            user=by,
            target=locked,
            object_type="problem",
            details=details,
        )
    return locked
