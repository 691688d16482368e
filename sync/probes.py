"""Lag probes: a marker written on a schedule into one record of a mapping, and the time it
takes to arrive on the other side, kept as a time series; a change that takes longer than the
probe's limit is logged as a lag entry of the mapping (so problems, subscriptions and their
throttled alerts work as for any entry), and resolves by itself when a later marker arrives
in time."""

import logging
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from couplings.models import Coupling
from errors import services as error_services
from errors.grouping import record_errors
from errors.models import Category, ErrorGroup, Status, SyncError

from .connectors import ConnectorError, connector_for
from .fields import FieldPair, field_pairs, same_value
from .models import (
    PROBE_INTERVAL_MINUTES,
    PROBE_LIMIT_SECONDS,
    PROBE_MARKER_LENGTH,
    LagProbe,
    LagSample,
    TableMapping,
    spoken,
)

logger = logging.getLogger(__name__)

# The beat's minute is not exact: a marker due a few seconds from now is written now.
DUE_SLACK = timedelta(seconds=15)
# A marker that never arrives is given up after this long (and at least twice the limit), so
# that the probe writes a new one.
GIVE_UP_AFTER = timedelta(hours=24)
# What the pages and the API summarize: the last day.
WINDOW = timedelta(hours=24)
# Samples are kept this long (a month of one a minute is 43,200 rows per probe).
KEEP_SAMPLES = timedelta(days=30)
ERROR_LENGTH = 2000
SYSTEM = "lag probe"


class ProbeRefused(Exception):
    """The probe's settings are not valid; `problems` by field name."""

    def __init__(self, problems: dict[str, list[str]]):
        super().__init__("; ".join(m for messages in problems.values() for m in messages))
        self.problems = problems


def marker_text(at: datetime, number: int, length: int) -> str:
    """The marker: "Lag probe 2026-12-06 08:55:01 #42", or a shorter form that fits in
    `length` characters, each naming the moment and the sample's number."""
    at = at.astimezone(UTC) if timezone.is_aware(at) else at
    for form in (
        f"Lag probe {at:%Y-%m-%d %H:%M:%S} #{number}",
        f"{at:%Y-%m-%d %H:%M:%S} #{number}",
        f"LP{at:%m%d%H%M%S}#{number}",
    ):
        if len(form) <= length:
            return form
    return f"LP{at:%m%d%H%M%S}#{number}"[-length:]


def marker_pair(mapping: TableMapping, direction: str, field: str) -> FieldPair | None:
    """The field pair that carries `field` in `direction`, if it carries a plain value."""
    for pair in field_pairs(mapping.field_mappings, direction):
        if pair.read == field and pair.lookup is None and not pair.has_constant:
            return pair
    return None


def coupling_of(probe: LagProbe) -> Coupling | None:
    """The coupling of the probe's record: its record on the other side."""
    on_side = (
        {"source_record_id": probe.record_id}
        if probe.side == "source"
        else {"destination_record_id": probe.record_id}
    )
    return Coupling.objects.filter(mapping_id=probe.mapping_id, **on_side).first()


def entity_of(mapping: TableMapping, side: str) -> str:
    return mapping.source_entity if side == "source" else mapping.destination_entity


def app_of(mapping: TableMapping, side: str) -> str:
    return getattr(mapping.connection, f"{side}_app")


# -- setting up ------------------------------------------------------------------------------


def _problems(mapping: TableMapping, values: dict[str, Any]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    direction = values["direction"]
    if direction not in (
        TableMapping.Direction.TO_DESTINATION,
        TableMapping.Direction.FROM_DESTINATION,
    ):
        refuse("direction", "Choose to_destination or from_destination.")
        return problems
    if mapping.direction not in (TableMapping.Direction.BIDIRECTIONAL, direction):
        refuse(
            "direction",
            f"{mapping.name} synchronizes {mapping.get_direction_display().lower()} only: a "
            "change the other way would never arrive.",
        )
    for name, (low, high), unit in (
        ("interval_minutes", PROBE_INTERVAL_MINUTES, "minutes"),
        ("limit_seconds", PROBE_LIMIT_SECONDS, "seconds"),
        ("marker_length", PROBE_MARKER_LENGTH, "characters"),
    ):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            refuse(name, f"Enter a whole number from {low} to {high} ({unit}).")
    record_id = values["record_id"]
    if not isinstance(record_id, str) or not record_id.strip() or len(record_id) > 100:
        refuse("record_id", "Enter the id of the record to change (at most 100 characters).")
    field = values["marker_field"]
    if not isinstance(field, str) or marker_pair(mapping, direction, field) is None:
        carried = [
            p.read
            for p in field_pairs(mapping.field_mappings, direction)
            if p.lookup is None and not p.has_constant
        ]
        refuse(
            "marker_field",
            f"{field!s:.100} is not a field {mapping.name} carries "
            f"{'to the destination' if direction == 'to_destination' else 'from the destination'}"
            f" as a plain value. Choose one of: {', '.join(carried) or 'none'}.",
        )
    if not problems:
        probe = LagProbe(mapping=mapping, direction=direction, record_id=record_id.strip())
        if coupling_of(probe) is None:
            side = app_of(mapping, probe.side)
            refuse(
                "record_id",
                f"Record {record_id.strip()} of {side} is not coupled under {mapping.name}: "
                "couple it (or synchronize it once) first.",
            )
    return problems


def save_probe(
    mapping: TableMapping,
    *,
    direction: str,
    record_id: str,
    marker_field: str,
    interval_minutes: int,
    limit_seconds: int,
    marker_length: int = 30,
    is_enabled: bool = True,
    user=None,
    actor_label: str = "",
) -> LagProbe:
    """Set up, change or switch off the mapping's lag probe; ProbeRefused says what is not
    valid. Written with its audit event."""
    values = {
        "direction": direction,
        "record_id": record_id,
        "marker_field": marker_field,
        "interval_minutes": interval_minutes,
        "limit_seconds": limit_seconds,
        "marker_length": marker_length,
    }
    problems = _problems(mapping, values)
    if problems:
        raise ProbeRefused(problems)
    values["record_id"] = record_id.strip()
    with transaction.atomic():
        probe = LagProbe.objects.select_for_update().filter(mapping=mapping).first()
        created = probe is None
        if probe is None:
            probe = LagProbe(mapping=mapping, created_by=audit.person(user))
        before = audit.snapshot(probe)
        moved = not created and (
            probe.direction != direction
            or probe.record_id != values["record_id"]
            or probe.marker_field != marker_field
        )
        for name, value in values.items():
            setattr(probe, name, value)
        probe.is_enabled = bool(is_enabled)
        probe.changed_by = audit.person(user)
        try:
            probe.full_clean(exclude=["mapping"])
        except ValidationError as exc:
            raise ProbeRefused(exc.message_dict) from exc
        probe.save()
        if moved or not probe.is_enabled:
            # A marker written into another record (or by a probe switched off) is not
            # waited for any longer.
            probe.samples.filter(closed_at__isnull=True).update(
                closed_at=timezone.now(), error="The probe was changed before it arrived."
            )
        changed = audit.changes(before, probe)
        for name in ("changed_at", "created_at", "changed_by", "created_by"):
            changed.pop(name, None)
        word = "set up" if created else ("switched off" if not probe.is_enabled else "changed")
        audit.record(
            audit.Action.LAG_PROBE_CHANGED,
            f"Lag probe of {mapping.name} {word}: {probe.marker_field} of record "
            f"{probe.record_id}, every {probe.interval_minutes} min, limit {probe.limit_words}",
            user=user,
            actor_label=actor_label,
            target=mapping,
            details={"probe": probe.pk, "change": word, "fields": changed},
        )
    return probe


# -- running -----------------------------------------------------------------------------


def run_due_probes(now: datetime | None = None) -> int:
    """Run every enabled probe once (the beat's task every minute): look for the marker that
    waits, or write a new one when the interval passed. Returns how many probes ran; an
    app's failure is kept on the sample and never stops the others."""
    now = now or timezone.now()
    ran = 0
    probes = LagProbe.objects.filter(
        is_enabled=True, mapping__is_enabled=True, mapping__connection__is_enabled=True
    ).values_list("pk", flat=True)
    for pk in list(probes):
        try:
            if run_probe(pk, now) is not None:
                ran += 1
        except Exception:  # one probe's fault (a bug, a lost row) must not stop the others
            logger.exception("Lag probe %s failed", pk)
    return ran


def run_probe(probe_id: int, now: datetime | None = None) -> LagSample | None:
    """One run of one probe: the sample it looked at or wrote, or None when nothing was due
    (or another run has the probe)."""
    now = now or timezone.now()
    with transaction.atomic():
        probe = (
            LagProbe.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("mapping__connection")
            .filter(pk=probe_id)
            .first()
        )
        if probe is None:
            return None
        waiting = probe.samples.filter(closed_at__isnull=True).first()
        if waiting is not None:
            return _look_for(probe, waiting, now)
        last = probe.samples.order_by("-written_at", "-pk").first()
        due = last is None or now >= last.written_at + probe.interval - DUE_SLACK
        return _write_marker(probe, now) if due else None


def _failure(error: ConnectorError) -> str:
    text = error.message + (f"\n{error.detail}" if error.detail else "")
    return text[:ERROR_LENGTH]


def _write_marker(probe: LagProbe, now: datetime) -> LagSample:
    mapping = probe.mapping
    number = probe.samples.count() + 1
    marker = marker_text(now, number, probe.marker_length)
    sample = LagSample(probe=probe, marker=marker, written_at=now, checked_at=now)
    connector = connector_for(mapping.connection, probe.side)
    try:
        record = connector.update(
            entity_of(mapping, probe.side), probe.record_id, {probe.marker_field: marker}
        )
        # Measured from the apps' own clocks: the changed record's modified time here, the
        # coupled record's there.
        sample.written_at = record.modified_at or now
    except ConnectorError as error:
        sample.state = LagSample.State.FAILED
        sample.closed_at = now
        sample.error = _failure(error)
    finally:
        connector.close()
    sample.save()
    # The time series keeps a month: each new marker drops what fell out of it.
    probe.samples.filter(written_at__lt=now - KEEP_SAMPLES).delete()
    return sample


def _look_for(probe: LagProbe, sample: LagSample, now: datetime) -> LagSample:
    mapping = probe.mapping
    pair = marker_pair(mapping, probe.direction, probe.marker_field)
    coupling = coupling_of(probe)
    sample.checked_at = now
    sample.error = ""
    found = None
    if pair is None:
        sample.error = f"{mapping.name} no longer carries {probe.marker_field} this way."
    elif coupling is None:
        sample.error = f"Record {probe.record_id} is no longer coupled under {mapping.name}."
    else:
        other_id = (
            coupling.destination_record_id if probe.side == "source" else coupling.source_record_id
        )
        connector = connector_for(mapping.connection, probe.other_side)
        try:
            found = connector.get_many(
                entity_of(mapping, probe.other_side), [other_id], select=[pair.write]
            ).get(other_id)
            if found is None:
                sample.error = (
                    f"The coupled record {other_id} is not in {app_of(mapping, probe.other_side)}."
                )
        except ConnectorError as error:
            sample.error = _failure(error)
        finally:
            connector.close()
    if found is not None and pair is not None:
        expected = pair.value({pair.read: sample.marker})
        if same_value(found.values.get(pair.write), expected):
            _arrived(probe, sample, found.modified_at or now, now)
            sample.save()
            return sample
    waited = (now - sample.written_at).total_seconds()
    if waited > probe.limit_seconds and sample.state == LagSample.State.WAITING:
        sample.state = LagSample.State.LATE
        _log_lag(probe, sample, waited, arrived=False, now=now)
    if now - sample.written_at > max(GIVE_UP_AFTER, 2 * probe.limit):
        sample.closed_at = now
        sample.error = (
            sample.error + "\n" if sample.error else ""
        ) + f"Not arrived after {spoken(waited)}: given up; the next marker is written now."
    sample.save()
    return sample


def _arrived(probe: LagProbe, sample: LagSample, arrived_at: datetime, now: datetime) -> None:
    # An app's clock a little behind the other's must not make a lag below nothing.
    arrived_at = max(arrived_at, sample.written_at)
    sample.arrived_at = arrived_at
    sample.closed_at = now
    sample.lag_seconds = (arrived_at - sample.written_at).total_seconds()
    if sample.lag_seconds <= probe.limit_seconds:
        sample.state = LagSample.State.ARRIVED
        error_services.resolve_lag(
            probe.mapping_id,
            f"Resolved by itself: the lag probe's marker {sample.marker} arrived in "
            f"{spoken(sample.lag_seconds)}, within the limit of {spoken(probe.limit_seconds)}.",
        )
    else:
        was_late = sample.state == LagSample.State.LATE
        sample.state = LagSample.State.LATE
        if not was_late:
            _log_lag(probe, sample, sample.lag_seconds, arrived=True, now=now)


def _log_lag(probe: LagProbe, sample: LagSample, seconds: float, *, arrived: bool, now) -> None:
    """One entry while the lag lasts: none while the mapping has a lag problem that is not
    resolved (open, snoozed or ignored), so a slow hour is one entry, and one alert."""
    mapping = probe.mapping
    unresolved = ErrorGroup.objects.filter(
        mapping_id=mapping.pk, category=Category.LAG, integration=""
    ).exclude(status=Status.RESOLVED)
    if unresolved.exists():
        return
    side, other = probe.side, probe.other_side
    reach = app_of(mapping, other)
    took = spoken(seconds) if arrived else f"more than {spoken(seconds)}"
    coupling = coupling_of(probe)
    other_id = ""
    if coupling is not None:
        other_id = coupling.destination_record_id if side == "source" else coupling.source_record_id
    ids = {side: probe.record_id, other: other_id}
    source = connector_for(mapping.connection, "source")
    destination = connector_for(mapping.connection, "destination")
    detail = (
        f"The lag probe wrote {sample.marker!r} into {probe.marker_field} of "
        f"{app_of(mapping, side)} record {probe.record_id} at {sample.written_at.isoformat()}; "
        + (
            f"it reached {reach} at {sample.arrived_at.isoformat()}."
            if arrived and sample.arrived_at
            else f"{reach} did not hold it at {now.isoformat()}."
        )
    )
    record_errors(
        [
            SyncError(
                created_at=now,
                mapping=mapping,
                category=Category.LAG,
                source_app=mapping.connection.source_app,
                source_entity=mapping.source_entity,
                source_record_id=ids["source"],
                source_url=source.record_url(mapping.source_entity, ids["source"])
                if ids["source"]
                else "",
                destination_app=mapping.connection.destination_app,
                destination_entity=mapping.destination_entity,
                destination_record_id=ids["destination"],
                destination_url=destination.record_url(
                    mapping.destination_entity, ids["destination"]
                )
                if ids["destination"]
                else "",
                message=(
                    f"Changes to {mapping.name} take {took} to reach {reach} "
                    f"(limit {spoken(probe.limit_seconds)})"
                )[: SyncError.MESSAGE_MAX_LENGTH],
                detail=detail,
            )
        ]
    )


# -- what the pages and the API show -----------------------------------------------------------


@dataclass
class LagSummary:
    probe: LagProbe
    samples: list[LagSample]  # the last day's, oldest first
    latest: LagSample | None

    @property
    def lags(self) -> list[float]:
        return [s.lag_seconds for s in self.samples if s.lag_seconds is not None]

    @property
    def median(self) -> float | None:
        return statistics.median(self.lags) if self.lags else None

    @property
    def p95(self) -> float | None:
        lags = sorted(self.lags)
        if not lags:
            return None
        # The nearest rank: the smallest lag that 95 % of the samples do not exceed.
        return lags[max(0, -(-95 * len(lags) // 100) - 1)]

    @property
    def median_words(self) -> str:
        return spoken(self.median)

    @property
    def p95_words(self) -> str:
        return spoken(self.p95)

    @property
    def late(self) -> int:
        return sum(s.state == LagSample.State.LATE for s in self.samples)


# The most samples a summary reads: a day of one a minute, and a little more.
MOST_SAMPLES = 1500


def summary(probe: LagProbe, now: datetime | None = None, window: timedelta = WINDOW) -> LagSummary:
    """The probe's samples of the window (the last day), oldest first, with its latest
    sample (an older one when none is that recent)."""
    now = now or timezone.now()
    newest = probe.samples.filter(written_at__gte=now - window).order_by("-written_at", "-pk")
    samples = list(reversed(newest[:MOST_SAMPLES]))
    latest = samples[-1] if samples else probe.samples.order_by("-written_at", "-pk").first()
    return LagSummary(probe, samples, latest)


def current_lag(sample: LagSample | None, now: datetime) -> float | None:
    """The sample's lag, or for one still waiting, how long it has waited so far."""
    if sample is None:
        return None
    if sample.lag_seconds is not None:
        return sample.lag_seconds
    if sample.is_open:
        return max(0.0, (now - sample.written_at).total_seconds())
    return None
