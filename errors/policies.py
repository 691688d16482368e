"""A problem's own skip policy: how many identical failures in a row skip a coupling that
fails with it, instead of its mapping's number. The engine reads it; only this module writes
it, with its audit event."""

from django.db import transaction

from audit import services as audit

from .models import SKIP_AFTER_LIMITS, ErrorGroup


class PolicyRefused(Exception):
    """The number asked for is not one a policy may have."""


def set_skip_after(problem: ErrorGroup, by, failures: int | None) -> ErrorGroup:
    """Set (a number) or clear (None: the mapping's policy again) the problem's skip
    threshold, and record who did it."""
    low, high = SKIP_AFTER_LIMITS
    if failures is not None and not (
        isinstance(failures, int) and not isinstance(failures, bool) and low <= failures <= high
    ):
        raise PolicyRefused(f"Skip after a number of failures from {low} to {high}, or clear it.")
    with transaction.atomic():
        locked = ErrorGroup.objects.select_for_update().get(pk=problem.pk)
        previous = locked.skip_after_failures
        if previous == failures:
            return locked
        locked.skip_after_failures = failures
        locked.save(update_fields=["skip_after_failures"])
        audit.record(
            audit.Action.PROBLEM_POLICY_CHANGED,
            (
                f"Skip policy of the problem: after {failures} identical failures"
                if failures is not None
                else "Skip policy of the problem cleared: the mapping's policy"
            )
            + (f" (was {previous})" if previous is not None else ""),
            user=by,
            target=locked,
            object_type="problem",
            details={"skip_after_failures": failures, "previous": previous},
        )
    return locked
