"""Reconciliation: the records of a mapping that exist on one side only.

A reconciliation job pages through both apps (one page in memory at a time) and finds
- records never coupled, on each side the mapping reads from, and
- couplings whose record is gone from its app (asked for by id before it is said to be gone:
  a record outside the mapping's filter is not deleted).
Each becomes a triage entry with the fixes of coupled-record errors: couple by match or
create it on the other side (Retry), delete it, or for a coupling to a deleted record
Restore, Delete the remaining record and Remove coupling. An orphan already reported and
still open is not reported again."""

from dataclasses import dataclass, field

from django.utils import timezone

from couplings.models import Coupling
from errors.grouping import record_errors
from errors.models import Category, Status, SyncError

from .connectors import Connector
from .models import SyncJob, TableMapping

SIDES = ("source", "destination")
# Couplings not read in a pass are asked for by id, this many per query of the database.
CHECK_BATCH = 200


@dataclass
class Findings:
    read: dict[str, int] = field(default_factory=lambda: {"source": 0, "destination": 0})
    not_coupled: dict[str, int] = field(default_factory=lambda: {"source": 0, "destination": 0})
    gone: dict[str, int] = field(default_factory=lambda: {"source": 0, "destination": 0})
    # Every record read is counted once: in step (coupled to an existing record, or on a side
    # whose uncoupled records do not matter), reported now (an entry), or reported already.
    in_step: int = 0
    reported_already: int = 0
    # The remaining records of couplings to a deleted record that were not among the pages
    # read (outside the mapping's filter): read by id.
    read_by_id: int = 0

    def summary(self, mapping: TableMapping) -> str:
        connection = mapping.connection
        apps = {"source": connection.source_app, "destination": connection.destination_app}
        parts = [
            f"Read {self.read['source']:,} {apps['source']} and "
            f"{self.read['destination']:,} {apps['destination']} records"
            + (f", and {self.read_by_id:,} more by id." if self.read_by_id else ".")
        ]
        for side in SIDES:
            if self.not_coupled[side]:
                parts.append(f"{self.not_coupled[side]:,} {apps[side]} records are not coupled.")
            if self.gone[side]:
                parts.append(
                    f"{self.gone[side]:,} couplings point to a record deleted in {apps[side]}."
                )
        if len(parts) == 1:
            parts.append("Every record is coupled to an existing record.")
        return " ".join(parts)


def reads_uncoupled(mapping: TableMapping, side: str) -> bool:
    """Records never coupled matter on a side the mapping reads from: there, a sync would
    write them to the other app (or should have)."""
    direction = mapping.direction
    if side == "source":
        return direction != TableMapping.Direction.FROM_DESTINATION
    return direction != TableMapping.Direction.TO_DESTINATION


def run(job: SyncJob, mapping: TableMapping, source: Connector, destination: Connector) -> str:
    started = timezone.now()
    findings = Findings()
    connectors = {"source": source, "destination": destination}
    for side in SIDES:
        _read_side(job, mapping, side, connectors, started, findings)
    for side in SIDES:
        _find_gone(job, mapping, side, connectors, started, findings)
    job.records_read = sum(findings.read.values()) + findings.read_by_id
    job.failed = sum(findings.not_coupled.values()) + sum(findings.gone.values())
    job.unchanged = findings.in_step
    job.skipped = findings.reported_already
    job.save(update_fields=["records_read", "failed", "unchanged", "skipped"])
    return findings.summary(mapping)


def _read_side(job, mapping, side, connectors, started, findings) -> None:
    connector = connectors[side]
    entity = getattr(mapping, f"{side}_entity")
    condition = getattr(mapping, f"{side}_filter")
    report = reads_uncoupled(mapping, side)
    for page in connector.list_changes(entity, None, condition=condition):
        ids = [record.id for record in page]
        findings.read[side] += len(ids)
        couplings = Coupling.objects.filter(mapping=mapping, **{f"{side}_record_id__in": ids})
        coupled = set(couplings.values_list(f"{side}_record_id", flat=True))
        couplings.update(**{f"{side}_seen_at": started, f"{side}_exists": True})
        if not report:
            findings.in_step += len(ids)
            continue
        lonely = [record_id for record_id in ids if record_id not in coupled]
        new = _not_reported(mapping, side, lonely)
        findings.in_step += len(ids) - len(lonely)
        findings.reported_already += len(lonely) - len(new)
        if new:
            record_errors(
                [_not_coupled_entry(job, mapping, side, connector, record_id) for record_id in new]
            )
            findings.not_coupled[side] += len(new)


def _find_gone(job, mapping, side, connectors, started, findings) -> None:
    """Couplings whose record on `side` was not read: gone, or outside the filter."""
    connector = connectors[side]
    entity = getattr(mapping, f"{side}_entity")
    unseen = Coupling.objects.filter(mapping=mapping).exclude(**{f"{side}_seen_at": started})
    last = 0
    while True:
        batch = list(unseen.filter(pk__gt=last).order_by("pk")[:CHECK_BATCH])
        if not batch:
            return
        last = batch[-1].pk
        gone = []
        for coupling in batch:
            record_id = getattr(coupling, f"{side}_record_id")
            exists = connector.get(entity, record_id) is not None
            setattr(coupling, f"{side}_exists", exists)
            coupling.existence_checked_at = timezone.now()
            coupling.save(update_fields=[f"{side}_exists", "existence_checked_at"])
            if not exists:
                gone.append(coupling)
        reported = set(
            SyncError.objects.filter(
                coupling__in=gone,
                category=Category.COUPLED_RECORD_DELETED,
                status__in=[Status.OPEN, Status.SNOOZED],
            ).values_list("coupling_id", flat=True)
        )
        new = [c for c in gone if c.pk not in reported]
        for coupling in gone:
            # The record that remains is counted as reported, not in step.
            if getattr(coupling, f"{_other(side)}_seen_at") == started:
                findings.in_step -= 1
            else:
                findings.read_by_id += 1
            if coupling.pk in reported:
                findings.reported_already += 1
        if new:
            entries = record_errors([_gone_entry(job, mapping, side, connectors, c) for c in new])
            # As when a sync writes to the deleted record: the coupling failed towards it, so a
            # later success (Restore) resolves its entries.
            towards = "to_destination" if side == "destination" else "from_destination"
            for coupling, entry in zip(new, entries, strict=True):
                Coupling.objects.filter(pk=coupling.pk).update(
                    **{
                        f"last_result_{towards}": Coupling.Result.FAILURE,
                        "last_error_message": entry.message,
                    }
                )
            findings.gone[side] += len(new)


def _not_reported(mapping, side, record_ids: list[str]) -> list[str]:
    """Records with no open entry yet: one that failed to be created is reported already."""
    if not record_ids:
        return []
    app = getattr(mapping.connection, f"{side}_app")
    open_ones = set(
        SyncError.objects.filter(
            mapping=mapping,
            coupling__isnull=True,
            source_app=app,
            source_record_id__in=record_ids,
            status__in=[Status.OPEN, Status.SNOOZED],
        ).values_list("source_record_id", flat=True)
    )
    return [record_id for record_id in record_ids if record_id not in open_ones]


def _other(side: str) -> str:
    return "destination" if side == "source" else "source"


def _names(mapping, side):
    connection = mapping.connection
    return getattr(connection, f"{side}_app"), getattr(mapping, f"{side}_entity")


def _not_coupled_entry(job, mapping, side, connector, record_id) -> SyncError:
    app, entity = _names(mapping, side)
    other_app, other_entity = _names(mapping, _other(side))
    return SyncError(
        created_at=timezone.now(),
        job=job,
        mapping=mapping,
        category=Category.NOT_COUPLED,
        source_app=app,
        source_entity=entity,
        source_record_id=record_id,
        source_url=connector.record_url(entity, record_id),
        destination_app=other_app,
        destination_entity=other_entity,
        message=f"The {app} record {record_id} ({entity}) is not coupled to a {other_app} "
        f"record: it exists in {app} only.",
    )


def _gone_entry(job, mapping, side, connectors, coupling) -> SyncError:
    """Written from the side that remains, as the engine writes a deleted coupled record."""
    remaining = _other(side)
    app, entity = _names(mapping, remaining)
    gone_app, gone_entity = _names(mapping, side)
    record_id = getattr(coupling, f"{remaining}_record_id")
    gone_id = getattr(coupling, f"{side}_record_id")
    return SyncError(
        created_at=timezone.now(),
        job=job,
        mapping=mapping,
        coupling=coupling,
        category=Category.COUPLED_RECORD_DELETED,
        source_app=app,
        source_entity=entity,
        source_record_id=record_id,
        source_url=connectors[remaining].record_url(entity, record_id),
        destination_app=gone_app,
        destination_entity=gone_entity,
        destination_record_id=gone_id,
        message=f"The coupled record {gone_id} was deleted in {gone_app}; the {app} record "
        f"{record_id} is still coupled to it.",
    )
