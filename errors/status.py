"""The one place that writes the status of entries and of problems, each change with its audit
event: by a person, in bulk, by the engine when a record synchronizes or a job gets past a
setup failure, by a check, by a snooze that ends, by a regression. The services above decide
what changes; this writes it."""

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from audit import services as audit

from . import blocking
from .models import ErrorGroup, Status, SyncError

STATUS_NOTE_MAX_LENGTH = 500
AUDITED_IDS = 100  # an event names at most this many entries; its count says how many

ENTRY_EVENTS: dict[str, str] = {
    Status.OPEN: audit.Action.ENTRIES_REOPENED,
    Status.RESOLVED: audit.Action.ENTRIES_RESOLVED,
    Status.IGNORED: audit.Action.ENTRIES_IGNORED,
    Status.SNOOZED: audit.Action.ENTRIES_SNOOZED,
}
PROBLEM_EVENTS: dict[str, str] = {
    Status.OPEN: audit.Action.PROBLEM_REOPENED,
    Status.RESOLVED: audit.Action.PROBLEM_RESOLVED,
    Status.IGNORED: audit.Action.PROBLEM_IGNORED,
    Status.SNOOZED: audit.Action.PROBLEM_SNOOZED,
}


def _person(user):
    return user if user is not None and user.is_authenticated else None


def change_entries(
    entries: QuerySet[SyncError],
    status: str,
    *,
    user=None,
    note: str = "",
    system: str = "",
    job_id: int | None = None,
    by_itself: bool = False,
    now: datetime | None = None,
    **also,
) -> int:
    """Set the status of the entries not in it yet (`by_itself`: their cause went away).
    Who did it is `user`, or the part of the system named by `system` (the sync engine with
    its `job_id`, a snooze that ended). One audit event for them all. Returns how many
    changed."""
    if status not in Status.values:
        raise ValueError(f"Unknown status {status!r}")
    note = note.strip()
    if len(note) > STATUS_NOTE_MAX_LENGTH:
        raise ValueError(f"The note can be at most {STATUS_NOTE_MAX_LENGTH} characters.")
    changing = entries.exclude(status=status)
    ids = list(changing.order_by().values_list("pk", flat=True)[:AUDITED_IDS])
    # What blocks what counts open entries only: the root causes' figures move with them.
    blocking_moved = blocking.affected_by(changing)
    changed = changing.update(
        status=status,
        status_changed_at=now or timezone.now(),
        status_changed_by=_person(user),
        status_note=note,
        **also,
    )
    if changed:
        blocking.refresh(blocking_moved)
        label = Status(status).label.lower()
        entries_word = f"{changed:,} entr{'y' if changed == 1 else 'ies'}"
        if by_itself:
            summary = f"{entries_word} {label} by {'itself' if changed == 1 else 'themselves'}"
            summary += f" in job #{job_id}" if job_id else ""
        else:
            summary = f"{entries_word} marked {label}"
        audit.record(
            ENTRY_EVENTS[status],
            summary + (f": {note}" if note else ""),
            user=user,
            actor_label=system,
            object_type="sync job" if job_id else "sync error",
            object_id=job_id or (ids[0] if changed == 1 and ids else ""),
            details={"count": changed, "ids": ids, "note": note, "job": job_id},
        )
    return changed


def change_problems(
    group_ids: list[int],
    status: str,
    *,
    user=None,
    note: str = "",
    system: str = "",
    job_id: int | None = None,
    summary: str = "",
    details: dict | None = None,
    now: datetime | None = None,
    **also,
) -> int:
    """Set the status of problems (the ids given) and write one audit event for each. The
    entries of each are changed by the caller, through `change_entries`."""
    if not group_ids:
        return 0
    changed = ErrorGroup.objects.filter(pk__in=group_ids).update(
        status=status,
        status_changed_at=now or timezone.now(),
        status_changed_by=_person(user),
        status_note=note.strip()[:STATUS_NOTE_MAX_LENGTH],
        **also,
    )
    for group in ErrorGroup.objects.filter(pk__in=group_ids).only("pk", "title"):
        audit.record(
            PROBLEM_EVENTS[status],
            summary
            or f"Problem marked {Status(status).label.lower()}: {note.strip()}".rstrip(": "),
            user=user,
            actor_label=system,
            target=group,
            object_type="problem",
            details={"note": note.strip(), "job": job_id, **(details or {})},
        )
    return changed


def problems_reopened(group_ids: list[int], note: str, *, system: str) -> None:
    """The audit events of problems that new entries reopened in the statement that wrote
    them (a regression, a snooze until N more occurrences that ended)."""
    for group in ErrorGroup.objects.filter(pk__in=group_ids).only("pk", "title"):
        audit.record(
            audit.Action.PROBLEM_REOPENED,
            f"Problem reopened: {note}",
            actor_label=system,
            target=group,
            object_type="problem",
            details={"note": note},
        )
