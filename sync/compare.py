"""What a failed record's entry keeps of the values it tried to write, and the side-by-side
comparison of those values with both records as the apps hold them now."""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .connectors import ConnectorError, connector_for
from .fields import FROM_DESTINATION, TO_DESTINATION, field_pairs, same_value

# The values come from another system: bounded, so one odd record cannot bloat the table.
MAX_FIELDS = 50
MAX_VALUE_LENGTH = 1000
# Field names that may carry credentials: their values are neither stored nor shown.
SECRET_NAME = re.compile(r"passw(or)?d|secret|token|api_?key|credential|authoriz", re.I)
# The entry page must render quickly when an app is slow or down: one short try per record.
COMPARE_TIMEOUT = 3.0
DISPLAY_LENGTH = 40
FULL_DISPLAY_LENGTH = 5000


def is_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def _bounded_value(value: Any) -> tuple[Any, bool]:
    if value is None or isinstance(value, (bool, int, float)):
        return value, False
    text = value if isinstance(value, str) else _as_text(value)
    if len(text) > MAX_VALUE_LENGTH:
        return text[:MAX_VALUE_LENGTH], True
    return text, False


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def bounded(values: dict[str, Any], truncated: set[str]) -> dict[str, Any]:
    """At most MAX_FIELDS values, each cut to MAX_VALUE_LENGTH characters, without the fields
    whose names look like credentials; the names of the cut values are added to `truncated`."""
    kept: dict[str, Any] = {}
    for name, value in values.items():
        name = str(name)[:200]
        if is_secret(name):
            continue
        if len(kept) >= MAX_FIELDS:
            truncated.add("…")  # more fields than were kept
            break
        kept[name], cut = _bounded_value(value)
        if cut:
            truncated.add(name)
    return kept


def sent_values(
    kind: str,
    direction: str,
    sent: dict[str, Any],
    read: dict[str, Any],
    held: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What an entry keeps: the values written (by the written app's field names), the values
    read (by the read app's names) and, for a conflict, what the other app held then."""
    truncated: set[str] = set()
    stored = {
        "kind": kind,
        "direction": direction,
        "sent": bounded(sent, truncated),
        "read": bounded(read, truncated),
    }
    if held is not None:
        stored["held"] = bounded(held, truncated)
    stored["truncated"] = sorted(truncated)
    return stored


# -- the comparison on the entry page ----------------------------------------------------
@dataclass
class Shown:
    """A value as the table shows it: short, with the full text at hand."""

    present: bool
    text: str = ""
    full: str = ""
    empty: bool = False
    hidden: bool = False

    @property
    def is_long(self) -> bool:
        return len(self.full) > DISPLAY_LENGTH


def shown(value: Any, present: bool = True, hidden: bool = False) -> Shown:
    if hidden:
        return Shown(present=present, hidden=True)
    if not present:
        return Shown(present=False)
    if value in (None, ""):
        return Shown(present=True, empty=True)
    full = value if isinstance(value, str) else _as_text(value)
    full = full[:FULL_DISPLAY_LENGTH]
    text = full if len(full) <= DISPLAY_LENGTH else full[: DISPLAY_LENGTH - 1] + "…"
    return Shown(present=True, text=text, full=full)


@dataclass
class Row:
    read_field: str
    write_field: str
    sent: Shown
    read_then: Shown
    held: Shown | None
    other_now: Shown
    source_now: Shown
    differs: bool = False
    changed_since: bool = False


@dataclass
class Comparison:
    """Sent values against the records now; `note` says why something could not be read."""

    kind: str = ""
    read_app: str = ""
    write_app: str = ""
    rows: list[Row] = field(default_factory=list)
    has_stored: bool = False
    can_compare: bool = False
    other_gone: bool = False
    source_gone: bool = False
    other_error: str = ""
    source_error: str = ""
    truncated: bool = False

    @property
    def is_conflict(self) -> bool:
        return self.kind == "conflict"

    @property
    def differing(self) -> int:
        return sum(row.differs for row in self.rows)


def _read(connection, side: str, entity: str, record_id: str):
    """(record or None, error message)"""
    try:
        # One try: an app that asks to slow down is not waited for by a page.
        with connector_for(
            connection, side, timeout=COMPARE_TIMEOUT, max_retries=0, throttle_budget=0
        ) as connector:
            return connector.get(entity, record_id), ""
    except ConnectorError as error:
        return None, error.message


def _same(stored: Any, now: Any, cut: bool) -> bool:
    if cut and isinstance(stored, str):
        # Only the start of a long value was kept.
        return isinstance(now, str) and now.startswith(stored)
    return same_value(stored, now)


def compare_entry(error) -> Comparison | None:
    """The comparison for a record-level entry, or None for an entry of a whole job.

    Reads at most the two records, each with one short try."""
    mapping = error.mapping
    coupling = error.coupling
    stored = error.sent_values or {}
    if mapping is None or not (error.source_record_id or coupling):
        return None
    connection = mapping.connection
    direction = stored.get("direction")
    if direction not in (TO_DESTINATION, FROM_DESTINATION):
        # Entries name the app that was read as their source.
        direction = (
            FROM_DESTINATION
            if error.source_app
            and error.source_app == connection.destination_app
            and error.source_app != connection.source_app
            else TO_DESTINATION
        )
    forward = direction == TO_DESTINATION
    read_side, write_side = ("source", "destination") if forward else ("destination", "source")
    read_entity = mapping.source_entity if forward else mapping.destination_entity
    write_entity = mapping.destination_entity if forward else mapping.source_entity
    read_id = (getattr(coupling, f"{read_side}_record_id", "") if coupling else "") or (
        error.source_record_id
    )
    write_id = (getattr(coupling, f"{write_side}_record_id", "") if coupling else "") or (
        error.destination_record_id
    )
    result = Comparison(
        kind=stored.get("kind", ""),
        read_app=getattr(connection, f"{read_side}_app"),
        write_app=getattr(connection, f"{write_side}_app"),
        has_stored=bool(stored),
        can_compare=bool(write_id),
        truncated=bool(stored.get("truncated")),
    )
    if not write_id and not stored:
        return result
    other = source = None
    if write_id:
        # Side by side, so a slow app costs the page one timeout, not two.
        with ThreadPoolExecutor(max_workers=2) as pool:
            other_read = pool.submit(_read, connection, write_side, write_entity, write_id)
            source_read = pool.submit(_read, connection, read_side, read_entity, read_id)
            other, result.other_error = other_read.result()
            source, result.source_error = source_read.result()
        result.other_gone = other is None and not result.other_error
        result.source_gone = source is None and not result.source_error
    sent = stored.get("sent", {})
    read = stored.get("read", {})
    held = stored.get("held")
    cut = set(stored.get("truncated", []))
    pairs = field_pairs(mapping.field_mappings, direction)
    known = {pair.write for pair in pairs}
    extra = [name for name in sent if name not in known]
    for pair in pairs:
        secret = is_secret(pair.read) or is_secret(pair.write)
        other_value = pair.held(other.values) if other else None
        source_value = source.values.get(pair.read) if source else None
        # What a lookup read (a code, an id) is not what it writes: only a value sent counts.
        derived = (pair.read in read or pair.has_constant) and not pair.resolved
        if pair.write in sent:
            expected, expected_cut = sent[pair.write], pair.write in cut
        elif derived:
            expected, expected_cut = pair.value(read), pair.read in cut
        else:
            expected, expected_cut = None, False
        has_expected = pair.write in sent or derived
        row = Row(
            read_field=pair.read,
            write_field=pair.write,
            sent=shown(sent.get(pair.write), pair.write in sent, secret),
            read_then=shown(read.get(pair.read), pair.read in read, secret),
            held=shown(held.get(pair.write), pair.write in held, secret)
            if held is not None
            else None,
            other_now=shown(other_value, other is not None, secret),
            source_now=shown(source_value, source is not None, secret),
        )
        if not secret:
            if other is not None and has_expected:
                row.differs = not _same(expected, other_value, expected_cut)
            elif other is not None and source is not None and not pair.resolved:
                row.differs = not same_value(pair.value(source.values), other_value)
            if source is not None and has_expected and not pair.has_constant and not pair.resolved:
                row.changed_since = not _same(expected, pair.value(source.values), expected_cut)
        result.rows.append(row)
    for name in extra:  # the mapping changed since the entry was written
        value = other.values.get(name) if other else None
        result.rows.append(
            Row(
                read_field="",
                write_field=name,
                sent=shown(sent[name]),
                read_then=shown(None, False),
                held=None,
                other_now=shown(value, other is not None),
                source_now=shown(None, False),
                differs=other is not None and not _same(sent[name], value, name in cut),
            )
        )
    return result
