"""What can be done to couplings that exist: take them back and retry them, synchronize them
one way, restore a deleted record, delete the record that remains, remove the coupling, and
ask the apps whether their records still exist.

One function for each, called alike by the entry page's fixes, bulk actions, the Skipped
page, the API, the Django admin and Celery tasks. Jobs are asked for through
`sync.services.request_sync`; statuses of entries are written by `errors.status`."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from audit import services as audit
from errors.models import ErrorGroup, Status, SyncError
from errors.services import resolve_entries
from sync.connectors import ConnectorPairs, connector_for
from sync.models import RuleVersion, SyncJob, TableMapping
from sync.services import JobRefused, request_sync
from syncconsole.queue import QueueUnavailable

from .models import Coupling

# The directions a person may choose for a mapping's couplings, by the mapping's direction.
ALLOWED_DIRECTIONS: dict[str, tuple[str, ...]] = {
    TableMapping.Direction.TO_DESTINATION: (
        TableMapping.Direction.BIDIRECTIONAL,
        TableMapping.Direction.TO_DESTINATION,
    ),
    TableMapping.Direction.FROM_DESTINATION: (
        TableMapping.Direction.BIDIRECTIONAL,
        TableMapping.Direction.FROM_DESTINATION,
    ),
}


class CouplingRefused(Exception):
    """The records cannot be coupled, or the coupling cannot be acted on as asked; the
    message says why."""


def retry_couplings(
    mapping: TableMapping,
    couplings,
    *,
    user=None,
    record_ids: dict[str, list[str]] | None = None,
    rule_versions: list[RuleVersion] | None = None,
    trigger: str = SyncJob.Trigger.RETRY,
) -> SyncJob:
    """Take the couplings back into synchronization and queue a job that synchronizes them
    now (Retry for a selection, Retry All for every skipped one), with the uncoupled records
    named by direction in `record_ids` (those whose creation failed), and the rules applied
    with it (`rule_versions`)."""
    ids = list(couplings.filter(mapping=mapping).values_list("pk", flat=True))
    record_ids = {direction: ids for direction, ids in (record_ids or {}).items() if ids}
    if not ids and not record_ids:
        raise JobRefused("Choose at least one coupling or record of this mapping.")
    # Taken back first: should the job be refused, the next scheduled run tries them.
    Coupling.objects.filter(pk__in=ids).update(
        is_skipped=False,
        failure_count=0,
        last_error_message="",
        skipped_after=None,
        skipped_by_problem=None,
    )
    return request_sync(
        mapping,
        kind=SyncJob.Kind.COUPLED,
        trigger=trigger,
        user=user,
        allow_behind_running=True,
        coupling_ids=ids,
        record_ids=record_ids,
        rule_versions=rule_versions,
    )


@dataclass
class Retried:
    """What a retry over several mappings came to: the jobs queued, and per mapping that
    could not be retried, why and how many couplings and records it had."""

    jobs: list[tuple[SyncJob, int]] = field(default_factory=list)  # (job, couplings + records)
    refused: list[tuple[TableMapping, str, int]] = field(default_factory=list)

    @property
    def job_ids(self) -> list[int]:
        return [job.pk for job, _ in self.jobs]


def retry_by_mapping(
    couplings: QuerySet[Coupling],
    *,
    user=None,
    records: dict[int, dict[str, list[str]]] | None = None,
    rule_versions: list[RuleVersion] | None = None,
    trigger: str = SyncJob.Trigger.RETRY,
) -> Retried:
    """Retry couplings of any mappings, and records not coupled yet (`records`: by mapping
    id, then direction), as one retry job per mapping, in the mappings' dependency order; a
    mapping whose job is refused does not keep the others from theirs."""
    records = records or {}
    by_mapping: defaultdict[int, list[int]] = defaultdict(list)
    for pk, mapping_id in couplings.values_list("pk", "mapping_id"):
        by_mapping[mapping_id].append(pk)
    mappings = TableMapping.objects.select_related("connection").filter(
        pk__in=set(by_mapping) | set(records)
    )
    retried = Retried()
    for mapping in mappings.order_by("dependency_order", "name", "pk"):
        ids = by_mapping.get(mapping.pk, [])
        record_ids = {d: v for d, v in records.get(mapping.pk, {}).items() if v}
        count = len(ids) + sum(len(v) for v in record_ids.values())
        try:
            job = retry_couplings(
                mapping,
                Coupling.objects.filter(pk__in=ids),
                user=user,
                record_ids=record_ids,
                rule_versions=[v for v in rule_versions or [] if v.rule.mapping_id == mapping.pk],
                trigger=trigger,
            )
        except (JobRefused, QueueUnavailable) as exc:
            retried.refused.append((mapping, str(exc), count))
            continue
        retried.jobs.append((job, count))
    return retried


def synchronize_couplings(
    mapping: TableMapping,
    coupling_ids: Iterable[int],
    *,
    direction: str | None = None,
    user=None,
) -> SyncJob:
    """Queue one job that synchronizes the chosen couplings of the mapping.

    With a `direction` (Synchronize to or from the destination, Restore), a person chose which
    side wins: the records are written over their counterparts in that direction, whatever
    changed on the other side. Without one (records coupled just now), the job goes by the
    mapping's direction and its conflict rules."""
    ids = list(coupling_ids)
    if direction is not None and mapping.direction not in ALLOWED_DIRECTIONS.get(direction, ()):
        raise JobRefused(
            f"{mapping.name} does not synchronize in that direction "
            f"({mapping.get_direction_display().lower()})."
        )
    Coupling.objects.filter(pk__in=ids).update(
        is_skipped=False, failure_count=0, skipped_after=None, skipped_by_problem=None
    )
    return request_sync(
        mapping,
        kind=SyncJob.Kind.COUPLED,
        trigger=SyncJob.Trigger.USER,
        user=user,
        allow_behind_running=True,
        coupling_ids=ids,
        direction=direction,
        overwrite=direction is not None,
    )


def find_for_deleted(couplings: QuerySet[Coupling]) -> dict[str, int]:
    """Ask both apps whether each coupled record still exists, and remember the answer;
    returns how many were found gone on each side."""
    gone = {"source": 0, "destination": 0}
    with ConnectorPairs() as connectors:
        for coupling in couplings.select_related("mapping__connection"):
            source, destination = connectors.of(coupling.mapping.connection)
            coupling.source_exists = (
                source.get(coupling.mapping.source_entity, coupling.source_record_id) is not None
            )
            coupling.destination_exists = (
                destination.get(coupling.mapping.destination_entity, coupling.destination_record_id)
                is not None
            )
            coupling.existence_checked_at = timezone.now()
            coupling.save(
                update_fields=["source_exists", "destination_exists", "existence_checked_at"]
            )
            gone["source"] += not coupling.source_exists
            gone["destination"] += not coupling.destination_exists
    return gone


def remove_coupling(coupling: Coupling, *, user=None) -> int:
    """Delete the coupling; its open entries are resolved, saying who removed it."""
    with transaction.atomic():
        with audit.covered_by("coupling removed"):  # one event: the coupling's
            resolved = resolve_entries(
                SyncError.objects.filter(coupling=coupling, status=Status.OPEN),
                user=user,
                note=f"The coupling {coupling} was removed by {audit.name_of(user)}.",
            )
        audit.record(
            audit.Action.COUPLING_REMOVED,
            f"Coupling {coupling} of {coupling.mapping.name} removed; {resolved} open "
            f"entr{'y' if resolved == 1 else 'ies'} resolved",
            user=user,
            target=coupling,
            details=_coupling_details(coupling, resolved=resolved),
        )
        coupling.delete()
    return resolved


def _coupling_details(coupling: Coupling, **more) -> dict:
    return {
        "mapping": coupling.mapping_id,
        "source_record_id": coupling.source_record_id,
        "destination_record_id": coupling.destination_record_id,
        **more,
    }


def remaining_side(coupling: Coupling) -> str:
    """The side whose record still exists, when exactly one side is gone."""
    if coupling.destination_exists is False and coupling.source_exists is not False:
        return "source"
    if coupling.source_exists is False and coupling.destination_exists is not False:
        return "destination"
    raise CouplingRefused(
        "Restore and Delete need exactly one of the two records gone; use Check records first."
    )


def restore_direction(coupling: Coupling) -> str:
    """The direction that re-creates the deleted record from the one that remains."""
    if remaining_side(coupling) == "source":
        return TableMapping.Direction.TO_DESTINATION
    return TableMapping.Direction.FROM_DESTINATION


def restore_coupled_record(coupling: Coupling, *, user=None) -> SyncJob:
    """Re-create the deleted record from the one that remains, and couple it (as a job)."""
    return synchronize_couplings(
        coupling.mapping, [coupling.pk], direction=restore_direction(coupling), user=user
    )


def delete_remaining_record(coupling: Coupling, *, user=None) -> int:
    """Delete the record that remains in its app, then the coupling; returns how many open
    entries were resolved. A refusal of the app (a missing privilege) is raised as it is."""
    remaining = remaining_side(coupling)
    mapping = coupling.mapping
    entity = getattr(mapping, f"{remaining}_entity")
    record_id = getattr(coupling, f"{remaining}_record_id")
    app = getattr(mapping.connection, f"{remaining}_app")
    with connector_for(mapping.connection, remaining) as connector:
        connector.delete(entity, record_id)
    with transaction.atomic():
        audit.record(
            audit.Action.RECORD_DELETED,
            f"Deleted {entity} {record_id} in {app} (the other record of coupling {coupling} "
            "was gone), and the coupling",
            user=user,
            target=coupling,
            details=_coupling_details(coupling, app=app, entity=entity, record_id=record_id),
        )
        with audit.covered_by("record deleted"):
            return remove_coupling(coupling, user=user)


def check_unknown(couplings: QuerySet[Coupling]) -> None:
    """Ask the apps about the couplings whose records' existence is not known yet (Restore
    and Delete need to know which side is gone)."""
    unknown = couplings.filter(existence_checked_at__isnull=True)
    if unknown.exists():
        find_for_deleted(unknown)


# At most this many blocked records are retried after one job: more wait for the next job
# that synchronizes what they are blocked by, or for a person's Retry.
MAX_UNBLOCKED_PER_JOB = 500


def retry_unblocked(job: SyncJob) -> Retried:
    """Retry the records whose open entries were blocked by a record that `job` has now
    synchronized (written, coupled or found in step), as jobs of their own mappings, in
    dependency order: only this next level; their own jobs, once they succeed, retry the level
    after. Entries recorded after the job started, and records a queued job of their mapping
    names already, are left alone (no loop, no storm); at most MAX_UNBLOCKED_PER_JOB."""
    retried = Retried()
    if not job.is_finished or job.started_at is None:
        return retried
    synced = Coupling.objects.filter(mapping_id=job.mapping_id).filter(
        Q(last_job_to_destination=job, last_result_to_destination=Coupling.Result.SUCCESS)
        | Q(last_job_from_destination=job, last_result_from_destination=Coupling.Result.SUCCESS)
    )
    by_side = {
        side: synced.filter(**{f"{side}_record_id": OuterRef("blocked_by_record")})
        for side in ("source", "destination")
    }
    entries = list(
        SyncError.objects.filter(
            blocked_by_mapping_id=job.mapping_id,
            blocked_by_record__isnull=False,
            status=Status.OPEN,
            created_at__lt=job.started_at,
        )
        .filter(
            Q(Exists(by_side["source"]), blocked_by_side="source")
            | Q(Exists(by_side["destination"]), blocked_by_side="destination")
        )
        .select_related("mapping__connection")
        .order_by("created_at", "pk")[: MAX_UNBLOCKED_PER_JOB * 4]
    )
    queued = _named_by_queued_jobs({e.mapping_id for e in entries if e.mapping_id})
    couplings: set[int] = set()
    records: dict[int, dict[str, list[str]]] = {}
    chosen: list[SyncError] = []
    for entry in entries:
        if entry.mapping_id is None or len(chosen) >= MAX_UNBLOCKED_PER_JOB:
            continue
        if entry.coupling_id is not None:
            if entry.coupling_id in couplings or entry.coupling_id in queued["couplings"]:
                continue
            couplings.add(entry.coupling_id)
        else:
            direction = read_direction(entry)
            if direction is None:
                continue
            named = records.setdefault(entry.mapping_id, {}).setdefault(direction, [])
            key = (entry.mapping_id, direction, entry.source_record_id)
            if entry.source_record_id in named or key in queued["records"]:
                continue
            named.append(entry.source_record_id)
        chosen.append(entry)
    if not chosen:
        return retried
    retried = retry_by_mapping(
        Coupling.objects.filter(pk__in=couplings),
        records=records,
        trigger=SyncJob.Trigger.ROOT_CAUSE,
    )
    blockers = sorted({e.blocked_by_group_id for e in chosen if e.blocked_by_group_id})
    # An entry blocked by a record that had no entry of its own is the root cause itself.
    roots = sorted(
        set(_roots(blockers))
        | {e.group_id for e in chosen if e.group_id and not e.blocked_by_group_id}
    )
    count = len(chosen)
    jobs = ", ".join(f"#{j.pk} ({j.mapping.name})" for j, _ in retried.jobs) or "none"
    audit.record(
        audit.Action.BLOCKED_RETRIED,
        f"{count:,} blocked record{'' if count == 1 else 's'} retried: job #{job.pk} of "
        f"{job.mapping.name} synchronized what {'it was' if count == 1 else 'they were'} "
        f"blocked by. Jobs {jobs}.",
        actor_label=f"sync engine (job #{job.pk})",
        object_type="sync job",
        object_id=job.pk,
        details={
            "job": job.pk,
            "records": count,
            "entries": [e.pk for e in chosen][:100],
            "blocked_by": blockers,
            "root_problems": roots,
            "jobs": retried.job_ids,
            "refused": [(m.name, reason) for m, reason, _ in retried.refused],
        },
    )
    return retried


def read_direction(entry: SyncError) -> str | None:
    """The direction in which an entry's record was being written: its `source_*` fields
    name the record read. None for an entry of no record."""
    mapping = entry.mapping
    if mapping is None or not entry.source_record_id:
        return None
    from_destination = (
        entry.source_app == mapping.connection.destination_app
        and entry.source_entity == mapping.destination_entity
    )
    return (
        TableMapping.Direction.FROM_DESTINATION
        if from_destination
        else TableMapping.Direction.TO_DESTINATION
    )


def _named_by_queued_jobs(mapping_ids: set[int]) -> dict[str, set]:
    """The couplings and records (mapping, direction, id) that queued jobs of these
    mappings will synchronize anyway."""
    named: dict[str, set] = {"couplings": set(), "records": set()}
    for mapping_id, coupling_ids, record_ids in SyncJob.objects.filter(
        mapping_id__in=mapping_ids, status=SyncJob.Status.QUEUED, kind=SyncJob.Kind.COUPLED
    ).values_list("mapping_id", "coupling_ids", "record_ids"):
        named["couplings"].update(coupling_ids or [])
        for direction, ids in (record_ids or {}).items():
            named["records"].update((mapping_id, direction, str(i)) for i in ids)
    return named


def _roots(group_ids: list[int]) -> list[int]:
    """The root problems above these: each followed up its `blocked_by` (a loop stops)."""
    roots = set()
    for pk in group_ids:
        seen = {pk}
        while True:
            parent = ErrorGroup.objects.filter(pk=pk).values_list("blocked_by", flat=True).first()
            if parent is None or parent in seen:
                break
            seen.add(parent)
            pk = parent
        roots.add(pk)
    return sorted(roots)
