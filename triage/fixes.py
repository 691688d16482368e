"""The one-click fixes of an entry: which apply to it, and doing one.

The entry page and the API both list an entry's fixes with `fixes_for` and do them with
`apply_fix`, so a fix does the same thing wherever it is started."""

from dataclasses import dataclass

from audit import services as audit
from couplings import actions
from couplings.models import Coupling
from errors.models import Category, Status, SyncError
from errors.services import resolve_entries
from sync.connectors import ConnectorError, connector_for
from sync.models import SyncJob, TableMapping
from sync.services import JobRefused
from syncconsole.queue import QueueUnavailable

RETRY = "retry"
TO_DESTINATION = "to_destination"
FROM_DESTINATION = "from_destination"
REMOVE_COUPLING = "remove_coupling"
CHECK_RECORDS = "check_records"
RESTORE = "restore"
DELETE_RECORD = "delete_record"

FIXES = {
    RETRY: "Retry",
    TO_DESTINATION: "Synchronize to the destination",
    FROM_DESTINATION: "Synchronize from the destination",
    REMOVE_COUPLING: "Remove coupling",
    CHECK_RECORDS: "Check records",
    RESTORE: "Restore",
    DELETE_RECORD: "Delete the remaining record",
}


class FixRefused(Exception):
    """The fix cannot be done for this entry, or the app or the queue refused it; the message
    says why."""


@dataclass(frozen=True)
class FixOutcome:
    """What a fix did: the job it queued, or how many open entries it resolved, or what the
    apps said of the records."""

    fix: str
    message: str
    job: SyncJob | None = None
    resolved: int | None = None
    gone: dict[str, int] | None = None


def fixes_for(entry: SyncError) -> list[str]:
    """The fixes that apply to the entry, in the order the entry page offers them."""
    coupling = entry.coupling
    if coupling is None:
        fixes = []
        if actions.read_direction(entry) is not None:
            fixes.append(RETRY)
        if entry.category == Category.NOT_COUPLED and entry.source_record_id:
            fixes.append(DELETE_RECORD)
        return fixes
    direction = coupling.mapping.direction
    fixes = [RETRY]
    if direction != TableMapping.Direction.FROM_DESTINATION:
        fixes.append(TO_DESTINATION)
    if direction != TableMapping.Direction.TO_DESTINATION:
        fixes.append(FROM_DESTINATION)
    fixes += [REMOVE_COUPLING, CHECK_RECORDS]
    if _one_side_gone(coupling):
        fixes += [RESTORE, DELETE_RECORD]
    return fixes


def _one_side_gone(coupling: Coupling) -> bool:
    try:
        actions.remaining_side(coupling)
    except actions.CouplingRefused:
        return False
    return True


def _entries(n: int) -> str:
    return f"{n} open entr{'y' if n == 1 else 'ies'}"


def apply_fix(entry: SyncError, fix: str, *, user=None) -> FixOutcome:
    """Do one fix of the entry; FixRefused says why it could not be done."""
    if fix not in FIXES:
        raise FixRefused("Choose Retry, Synchronize, Restore, Delete or Remove coupling.")
    if fix not in fixes_for(entry):
        raise FixRefused(_not_applicable(entry, fix))
    try:
        if entry.coupling is None:
            return _fix_uncoupled(entry, fix, user)
        return _fix_coupled(entry.coupling, fix, user)
    except (JobRefused, QueueUnavailable, ConnectorError, actions.CouplingRefused) as exc:
        raise FixRefused(str(exc)) from exc


def _not_applicable(entry: SyncError, fix: str) -> str:
    if entry.coupling is None and fix in (RESTORE, TO_DESTINATION, FROM_DESTINATION):
        return "This entry has no coupling left to fix."
    if fix in (RESTORE, DELETE_RECORD) and entry.coupling is not None:
        return (
            "Restore and Delete need exactly one of the two records gone; use Check records first."
        )
    if entry.coupling is None:
        return "This entry has no coupling left to fix."
    mapping = entry.coupling.mapping
    return (
        f"{mapping.name} does not synchronize in that direction "
        f"({mapping.get_direction_display().lower()})."
    )


def _fix_uncoupled(entry: SyncError, fix: str, user) -> FixOutcome:
    direction = actions.read_direction(entry)
    if fix == RETRY and direction is not None and entry.mapping is not None:
        # A record that could not be created: read it again and write it now.
        job = actions.retry_couplings(
            entry.mapping,
            Coupling.objects.none(),
            user=user,
            record_ids={direction: [entry.source_record_id]},
        )
        return FixOutcome(fix, f"Retry: queued as job #{job.pk}.", job=job)
    resolved = delete_uncoupled_record(entry, user=user)
    return FixOutcome(
        fix,
        f"The record {entry.source_record_id} is deleted in {entry.source_app}; "
        f"{_entries(resolved)} resolved.",
        resolved=resolved,
    )


def _fix_coupled(coupling: Coupling, fix: str, user) -> FixOutcome:
    if fix == CHECK_RECORDS:
        gone = actions.find_for_deleted(Coupling.objects.filter(pk=coupling.pk))
        message = (
            "Both records exist."
            if not any(gone.values())
            else f"Gone: {' and '.join(side for side, n in gone.items() if n)} record."
        )
        return FixOutcome(fix, message, gone=gone)
    if fix == DELETE_RECORD:
        resolved = actions.delete_remaining_record(coupling, user=user)
        return FixOutcome(
            fix,
            f"The remaining record is deleted and the coupling removed; {_entries(resolved)} "
            "resolved.",
            resolved=resolved,
        )
    if fix == REMOVE_COUPLING:
        resolved = actions.remove_coupling(coupling, user=user)
        return FixOutcome(
            fix, f"The coupling is removed; {_entries(resolved)} resolved.", resolved=resolved
        )
    if fix == RETRY:
        job = actions.retry_couplings(
            coupling.mapping, Coupling.objects.filter(pk=coupling.pk), user=user
        )
    elif fix == RESTORE:
        job = actions.restore_coupled_record(coupling, user=user)
    else:
        job = actions.synchronize_couplings(
            coupling.mapping, [coupling.pk], direction=fix, user=user
        )
    return FixOutcome(fix, f"{FIXES[fix]}: queued as job #{job.pk}.", job=job)


def delete_uncoupled_record(entry: SyncError, *, user=None) -> int:
    """Delete in its app a record that exists on one side only (an entry of a
    reconciliation), then resolve its open entries; returns how many."""
    mapping = entry.mapping
    if mapping is None:
        raise FixRefused("The entry's mapping is gone.")
    from_destination = actions.read_direction(entry) == TableMapping.Direction.FROM_DESTINATION
    side = "destination" if from_destination else "source"
    entity = getattr(mapping, f"{side}_entity")
    with connector_for(mapping.connection, side) as connector:
        connector.delete(entity, entry.source_record_id)
    audit.record(
        audit.Action.RECORD_DELETED,
        f"Deleted {entity} {entry.source_record_id} in {entry.source_app} (on one side only, "
        f"mapping {mapping.name})",
        user=user,
        object_type="record",
        object_id=entry.source_record_id,
        object_label=f"{entry.source_app} {entity}",
        details={
            "mapping": mapping.pk,
            "app": entry.source_app,
            "entity": entity,
            "record_id": entry.source_record_id,
            "entry": entry.pk,
        },
    )
    who = audit.name_of(user)
    with audit.covered_by("record deleted"):  # one event: the deletion's
        return resolve_entries(
            SyncError.objects.filter(
                mapping=mapping,
                category=Category.NOT_COUPLED,
                source_app=entry.source_app,
                source_record_id=entry.source_record_id,
                status__in=[Status.OPEN, Status.SNOOZED],
            ),
            user=user,
            note=f"The record was deleted in {entry.source_app} by {who}.",
        )
