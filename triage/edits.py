"""Edit, then retry: the values a person types for a record an app refused, checked against
the mapping's fields, kept on the entry and written once by the retry it queues.

The entry page and `POST /api/v1/errors/<id>/edit/` both call `edit_and_retry`; the engine
writes the edit in place of the values it computes (sync.edits.RecordEdits)."""

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from errors.models import Status, SyncError
from sync.connectors import ConnectorError, connector_for
from sync.edits import (
    EditableField,
    NotEditable,
    checked_value,
    editable_fields,
    editable_pairs,
    entry_direction,
    still_based_on,
)
from sync.fields import TO_DESTINATION, same_value
from sync.models import RecordEdit, SyncJob

from . import fixes


class EditRefused(Exception):
    """The edit was not kept: the message says why, and `fields` what is wrong with each
    value typed (by field name)."""

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.fields = fields or {}


@dataclass(frozen=True)
class EditOutcome:
    """The edit kept, and the retry job it queued (None when the retry was refused: the next
    job of the mapping that reads the record writes the edit)."""

    edit: RecordEdit
    message: str
    job: SyncJob | None = None
    superseded: list[int] = field(default_factory=list)


def record_edits(entry: SyncError, direction: str):
    """The edits of the entry's record in the direction of its write, active ones first."""
    return RecordEdit.objects.filter(
        mapping_id=entry.mapping_id, direction=direction, record_id=entry.source_record_id
    )


def active_edit(entry: SyncError, direction: str) -> RecordEdit | None:
    return (
        record_edits(entry, direction)
        .filter(state__in=RecordEdit.ACTIVE)
        .order_by("-made_at", "-pk")
        .first()
    )


def edits_on(entry: SyncError) -> list[RecordEdit]:
    """The edits made on this entry, newest first."""
    return list(RecordEdit.objects.filter(entry_id=entry.pk).select_related("made_by"))


def fields_to_edit(entry: SyncError) -> list[EditableField]:
    """The fields a person may edit on the entry, with the values the engine would send now;
    EditRefused when the entry is not one of a refused write."""
    try:
        direction = entry_direction(entry)
    except NotEditable as exc:
        raise EditRefused(str(exc)) from exc
    return editable_fields(entry, active_edit(entry, direction))


def can_edit(entry: SyncError) -> bool:
    if entry.status == Status.RESOLVED:
        return False
    try:
        entry_direction(entry)
    except NotEditable:
        return False
    return True


def _checked(fields: dict[str, EditableField], values: Any, mapping_name: str) -> dict[str, Any]:
    if not isinstance(values, dict) or not values:
        raise EditRefused("Change at least one value to retry with.")
    problems: dict[str, str] = {}
    checked: dict[str, Any] = {}
    for name, raw in values.items():
        name = str(name)
        if name not in fields:
            problems[name[:100]] = (
                f"{mapping_name} writes no such field in this direction; it writes "
                f"{', '.join(fields) or 'no field that can be edited'}."
            )
            continue
        try:
            checked[name] = checked_value(fields[name], raw)
        except ValueError as exc:
            problems[name] = str(exc)
    if problems:
        raise EditRefused("Some values are not valid; nothing was kept.", problems)
    return checked


def edit_and_retry(
    entry: SyncError, values: Any, *, user=None, via: str = "console"
) -> EditOutcome:
    """Check the values typed for the entry's record, keep them as the record's edit (an
    earlier edit of the record is superseded, its values carried on), write the audit event,
    and retry the record through the entry's Retry fix. Nothing is kept when a value is
    refused (EditRefused, with a message per field)."""
    if entry.status == Status.RESOLVED:
        raise EditRefused("This entry is resolved already: its record synchronized.")
    try:
        direction = entry_direction(entry)
    except NotEditable as exc:
        raise EditRefused(str(exc)) from exc
    mapping = entry.mapping
    assert mapping is not None  # entry_direction saw to it
    earlier = active_edit(entry, direction)
    fields = {f.name: f for f in editable_fields(entry, earlier)}
    checked = _checked(fields, values, mapping.name)

    # The record's source values now: the edit holds while they stay so.
    forward = direction == TO_DESTINATION
    side = "source" if forward else "destination"
    entity = mapping.source_entity if forward else mapping.destination_entity
    app = getattr(mapping.connection, f"{side}_app")
    try:
        with connector_for(mapping.connection, side) as connector:
            source = connector.get(entity, entry.source_record_id)
    except ConnectorError as exc:
        raise EditRefused(f"The record could not be read in {app}: {exc.message}") from exc
    if source is None:
        raise EditRefused(f"The record {entry.source_record_id} is gone in {app}.")
    carried = earlier if earlier is not None and still_based_on(earlier, source.values) else None
    original = {f.name: f.sent for f in editable_fields(entry)}
    effective = {**original, **(carried.after if carried else {})}
    changed = {
        name: value for name, value in checked.items() if not same_value(value, effective[name])
    }
    if not changed:
        raise EditRefused("Change at least one value: these are the values the retry sends.")
    reads = {pair.write: pair.read for pair in editable_pairs(mapping, direction)}
    after = {**(carried.after if carried else {}), **changed}
    # What the engine computes: an entry of a retry that failed again kept the edited values.
    before = {**{n: original[n] for n in changed}, **(carried.before if carried else {})}
    based_on = {
        **(carried.based_on if carried else {}),
        **{reads[n]: source.values.get(reads[n]) for n in changed},
    }

    with transaction.atomic():
        active = (
            record_edits(entry, direction).select_for_update().filter(state__in=RecordEdit.ACTIVE)
        )
        superseded = list(active.values_list("pk", flat=True))
        active.update(state=RecordEdit.State.SUPERSEDED, settled_at=timezone.now())
        edit = RecordEdit.objects.create(
            mapping=mapping,
            direction=direction,
            record_id=entry.source_record_id,
            entry_id=entry.pk,
            made_by=audit.person(user),
            made_by_label=audit.name_of(user)[:150],
            made_at=timezone.now(),
            before=before,
            after=after,
            based_on=based_on,
        )
        audit.record(
            audit.Action.ENTRY_VALUES_EDITED,
            f"Edited {', '.join(changed)} of {entity} {entry.source_record_id} on entry "
            f"#{entry.pk} and retried",
            user=user,
            object_type="sync error",
            object_id=entry.pk,
            object_label=f"{app} {entity} {entry.source_record_id}",
            details={
                "entry": entry.pk,
                "edit": edit.pk,
                "mapping": mapping.pk,
                "direction": direction,
                "record_id": entry.source_record_id,
                "before": {n: before[n] for n in changed},
                "after": changed,
                "superseded": superseded,
                "via": via,
            },
        )
    # Queued once the edit is committed, so the job that writes the record finds it.
    try:
        retried = fixes.apply_fix(entry, fixes.RETRY, user=user)
    except fixes.FixRefused as exc:
        return EditOutcome(
            edit,
            f"Your values are kept, but the retry was not queued: {exc} The next job of "
            f"{mapping.name} that reads the record writes them.",
            superseded=superseded,
        )
    job = retried.job
    return EditOutcome(
        edit,
        f"Retrying with your values: queued as job #{job.pk}." if job else retried.message,
        job=job,
        superseded=superseded,
    )
