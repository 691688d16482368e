"""Values a person edits on a refused record's entry: which fields may be edited and how each
typed value is checked, and how the engine writes a record's edit in place of the values it
computes (`RecordEdits`), for as long as the source values the edit replaces stay as they were.

The edit itself is made by `triage.edits.edit_and_retry`; here are the engine's side and the
checks both share."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import dateparse, timezone

from audit import services as audit
from errors.models import SETUP_CATEGORIES, SyncError
from syncconsole.arrays import any_of

from .compare import is_secret
from .connectors import RemoteRecord
from .fields import FROM_DESTINATION, TO_DESTINATION, FieldPair, field_pairs, same_value
from .models import RecordEdit, SyncJob, TableMapping

TEXT, NUMBER, BOOLEAN, DATE = "text", "number", "boolean", "date"
KINDS = (TEXT, NUMBER, BOOLEAN, DATE)
# The kinds of write that an app refused for the values sent; a conflict sent nothing.
WRITE_KINDS = ("create", "update")
MAX_TEXT_LENGTH = 1000  # as much as an entry keeps of a value sent
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
# The apps' words for a text too long: Business Central names the field's caption, so the
# field is the one whose value sent was longer; Dataverse names the field.
TOO_LONG = re.compile(r"must not exceed (\d+) characters")
TOO_LONG_NAMED = re.compile(
    r"length of the '(\w+)' attribute .*? maximum allowed length of '(\d+)'"
)


@dataclass(frozen=True)
class EditableField:
    """A field of the record written that a person may edit: its name in the app written
    to, the field read that gives its value, its kind, the longest text the app takes
    where the refusal said it, and the value the engine would send (`sent`)."""

    name: str
    read: str
    kind: str
    max_length: int | None
    sent: Any

    @property
    def kind_label(self) -> str:
        if self.kind == TEXT and self.max_length:
            return f"text, at most {self.max_length} characters"
        return self.kind


class NotEditable(Exception):
    """The entry is not one of a record an app refused to write; the message says why."""


def editable_pairs(mapping: TableMapping, direction: str) -> list[FieldPair]:
    """The pairs whose values a person may type: not a constant, nor a lookup (the engine
    resolves a lookup's record from its code: the code is fixed at the source), nor a field
    whose name looks like a credential (entries neither keep nor show those)."""
    return [
        pair
        for pair in field_pairs(mapping.field_mappings, direction)
        if not pair.has_constant
        and pair.lookup is None
        and not (is_secret(pair.read) or is_secret(pair.write))
    ]


def entry_direction(entry: SyncError) -> str:
    """The direction of an entry's refused write; NotEditable for any other entry."""
    stored = entry.sent_values or {}
    if entry.mapping_id is None or not entry.source_record_id:
        raise NotEditable("Only the entry of a record can be edited, not one of a whole job.")
    if entry.category in SETUP_CATEGORIES:
        raise NotEditable("A setup error is fixed in the setup, not in a record's values.")
    if stored.get("kind") not in WRITE_KINDS or stored.get("direction") not in (
        TO_DESTINATION,
        FROM_DESTINATION,
    ):
        raise NotEditable(
            "Only the entry of a record an app refused to write keeps the values sent to edit."
        )
    return str(stored["direction"])


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, (int, float, Decimal)):
        return NUMBER
    if isinstance(value, str) and value and _as_date(value) is not None:
        return DATE
    return TEXT


def _as_date(text: str) -> Any:
    try:
        return dateparse.parse_datetime(text) or dateparse.parse_date(text)
    except ValueError:
        return None


def length_limits(message: str, sent: dict[str, Any]) -> dict[str, int]:
    """The longest text the app takes, by field, where its refusal says it."""
    named = TOO_LONG_NAMED.search(message)
    if named:
        return {named.group(1): int(named.group(2))}
    found = TOO_LONG.search(message)
    if not found:
        return {}
    limit = int(found.group(1))
    return {
        name: limit for name, value in sent.items() if isinstance(value, str) and len(value) > limit
    }


def editable_fields(entry: SyncError, edit: RecordEdit | None = None) -> list[EditableField]:
    """The fields of the entry's record a person may edit, with the values the engine would
    send now: those sent, or those of the record's edit that still applies (`edit`)."""
    direction = entry_direction(entry)
    assert entry.mapping is not None  # entry_direction saw to it
    stored = entry.sent_values or {}
    sent, read = stored.get("sent") or {}, stored.get("read") or {}
    limits = length_limits(entry.message, sent)
    fields = []
    for pair in editable_pairs(entry.mapping, direction):
        value = sent[pair.write] if pair.write in sent else pair.value(read)
        if edit is not None and pair.write in edit.after:
            value = edit.after[pair.write]
        fields.append(
            EditableField(
                name=pair.write,
                read=pair.read,
                kind=kind_of(sent.get(pair.write, read.get(pair.read))),
                max_length=limits.get(pair.write),
                sent=value,
            )
        )
    return fields


def checked_value(field: EditableField, raw: Any) -> Any:
    """The typed value as the app takes it; ValueError says what is wrong with it."""
    if raw is None or raw == "":
        return "" if field.kind == TEXT else None
    if field.kind == BOOLEAN:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError("Enter true or false.")
    if field.kind == NUMBER:
        if isinstance(raw, bool):
            raise ValueError("Enter a number.")
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            raise ValueError("Enter a number.") from None
        if not number.is_finite():
            raise ValueError("Enter a number.")
        return int(number) if number == number.to_integral_value() else float(number)
    if not isinstance(raw, str):
        raise ValueError("Enter text.")
    if field.kind == DATE:
        if _as_date(raw.strip()) is None:
            raise ValueError("Enter a date as YYYY-MM-DD (or a date and time in ISO 8601).")
        return raw.strip()
    limit = field.max_length or MAX_TEXT_LENGTH
    if len(raw) > limit:
        raise ValueError(f"At most {limit} characters: this is {len(raw)}.")
    return raw


def still_based_on(edit: RecordEdit, values: dict[str, Any]) -> bool:
    """Whether the record's source values are still those the edit replaced."""
    return all(same_value(values.get(name), was) for name, was in edit.based_on.items())


class RecordEdits:
    """The edits of the records one pass writes: `apply` puts a record's edited values in
    place of those computed, while its source values are those the edit replaced; an edit
    whose source values changed lapses (the source wins, so neither the edited value nor the
    original comes back). `written` marks the pending edits of records written settled."""

    def __init__(self, mapping: TableMapping, direction: str, job: SyncJob):
        self.mapping, self.direction, self.job = mapping, direction, job
        self.active: dict[str, RecordEdit] = {}
        self.loaded: set[str] = set()
        self.applied: dict[str, int] = {}  # record id: its pending edit applied

    def prepare(self, record_ids: list[str]) -> None:
        """Read the edits of these records in one query."""
        wanted = [record_id for record_id in record_ids if record_id not in self.loaded]
        if not wanted or self.mapping.pk is None:
            return
        self.loaded.update(wanted)
        edits = RecordEdit.objects.filter(
            any_of("record_id", wanted),
            mapping_id=self.mapping.pk,
            direction=self.direction,
            state__in=RecordEdit.ACTIVE,
        ).order_by("made_at", "pk")
        for edit in edits:
            self.active[edit.record_id] = edit  # the latest, should two be active

    def apply(self, record: RemoteRecord, values: dict[str, Any]) -> dict[str, Any]:
        self.prepare([record.id])
        edit = self.active.get(record.id)
        if edit is None:
            return values
        if not still_based_on(edit, record.values):
            del self.active[record.id]
            self._lapse(edit)
            return values
        if edit.state == RecordEdit.State.PENDING:
            self.applied[record.id] = edit.pk
        return {**values, **{name: v for name, v in edit.after.items() if name in values}}

    def written(self, record_ids: list[str]) -> None:
        ids = [self.applied.pop(record_id) for record_id in record_ids if record_id in self.applied]
        if not ids or self.job.pk is None:
            return
        RecordEdit.objects.filter(pk__in=ids, state=RecordEdit.State.PENDING).update(
            state=RecordEdit.State.WRITTEN, settled_at=timezone.now(), written_in_job=self.job.pk
        )
        audit.record(
            audit.Action.RECORD_EDITS_SETTLED,
            f"Edited values of {len(ids)} record{'s' if len(ids) > 1 else ''} written "
            f"({self.mapping.name})",
            actor_label=f"sync engine (job #{self.job.pk})",
            object_type="record edit",
            object_id=ids[0] if len(ids) == 1 else "",
            details={"written": ids, "job": self.job.pk, "mapping": self.mapping.pk},
        )

    def _lapse(self, edit: RecordEdit) -> None:
        RecordEdit.objects.filter(pk=edit.pk, state__in=RecordEdit.ACTIVE).update(
            state=RecordEdit.State.LAPSED, settled_at=timezone.now()
        )
        self.applied.pop(edit.record_id, None)
        audit.record(
            audit.Action.RECORD_EDITS_SETTLED,
            f"Edited values of {edit.record_id} lapsed: the source value changed since "
            f"({self.mapping.name})",
            actor_label=f"sync engine (job #{self.job.pk})" if self.job.pk else "sync engine",
            object_type="record edit",
            object_id=edit.pk,
            details={"lapsed": [edit.pk], "job": self.job.pk, "mapping": self.mapping.pk},
        )
