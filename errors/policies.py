"""A problem's own policies, in place of its mapping's: how many identical failures in a row
skip a coupling that fails with it, and whether each failed attempt is an entry of its own or
counted on the record's open entry. The engine reads them; only this module writes them, each
change with its audit event."""

from django.db import transaction

from audit import services as audit

from .models import SKIP_AFTER_LIMITS, EntryLogging, ErrorGroup


class PolicyRefused(Exception):
    """The value asked for is not one a policy may have."""


def set_skip_after(problem: ErrorGroup, by, failures: int | None) -> ErrorGroup:
    """Set (a number) or clear (None: the mapping's policy again) the problem's skip
    threshold, and record who did it."""
    low, high = SKIP_AFTER_LIMITS
    if failures is not None and not (
        isinstance(failures, int) and not isinstance(failures, bool) and low <= failures <= high
    ):
        raise PolicyRefused(f"Skip after a number of failures from {low} to {high}, or clear it.")
    return _change(
        problem,
        by,
        "skip_after_failures",
        failures,
        lambda value: (
            f"Skip policy of the problem: after {value} identical failures"
            if value is not None
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
        "entry_logging",
        logging,
        lambda value: (
            f"Logging policy of the problem: {EntryLogging(value).label.lower()}"
            if value
            else "Logging policy of the problem cleared: the mapping's policy"
        ),
    )


def _change(problem: ErrorGroup, by, field: str, value, describe) -> ErrorGroup:
    with transaction.atomic():
        locked = ErrorGroup.objects.select_for_update().get(pk=problem.pk)
        previous = getattr(locked, field)
        if previous == value:
            return locked
        setattr(locked, field, value)
        locked.save(update_fields=[field])
        was = f" (was {previous})" if previous not in (None, "") else ""
        audit.record(
            audit.Action.PROBLEM_POLICY_CHANGED,
            describe(value) + was,
            user=by,
            target=locked,
            object_type="problem",
            details={field: value, "previous": previous},
        )
    return locked
