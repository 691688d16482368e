"""Starting sync jobs, and keeping the job log within its retention."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import services as audit
from couplings.models import Coupling
from errors.models import Category, Status, SyncError
from errors.status import change_entries
from syncconsole import queue

from . import engine
from .models import SyncJob, TableMapping

logger = logging.getLogger(__name__)
ACTIVE = (SyncJob.Status.QUEUED, SyncJob.Status.RUNNING)
# A queued job no worker took within this time is given up, so it never blocks new requests.
QUEUED_JOB_EXPIRY = timedelta(minutes=30)


class JobRefused(Exception):
    def __init__(self, message: str, job: SyncJob | None = None):
        super().__init__(message)
        self.job = job


class QueueUnavailable(Exception):
    pass


def create_job(
    mapping: TableMapping,
    *,
    kind: str,
    trigger: str,
    user=None,
    allow_behind_running: bool = False,
    coupling_ids: list[int] | None = None,
    direction: str | None = None,
    overwrite: bool = False,
    record_ids: dict[str, list[str]] | None = None,
) -> SyncJob:
    """A queued job for the mapping, or JobRefused when one is already waiting or running."""
    # A job whose worker died must not keep the mapping blocked: it no longer runs.
    engine.interrupt_abandoned_jobs([mapping.pk], continued=False)
    with transaction.atomic():
        # Requests for one mapping are taken one at a time.
        locked = TableMapping.objects.select_for_update().get(pk=mapping.pk)
        if locked.is_paused:
            raise JobRefused(paused_message(locked))
        SyncJob.objects.filter(
            mapping=mapping,
            status=SyncJob.Status.QUEUED,
            created_at__lt=timezone.now() - QUEUED_JOB_EXPIRY,
        ).update(
            status=SyncJob.Status.INTERRUPTED,
            finished_at=timezone.now(),
            message="No worker took the job in time.",
        )
        blocking = [SyncJob.Status.QUEUED] if allow_behind_running else list(ACTIVE)
        active = SyncJob.objects.filter(mapping=mapping, status__in=blocking).first()
        if active is not None:
            raise JobRefused(
                f"A job for {mapping.name} is already {active.get_status_display().lower()} "
                f"(#{active.pk}); wait for it to finish.",
                active,
            )
        return SyncJob.objects.create(
            mapping=mapping,
            kind=kind,
            trigger=trigger,
            direction=direction or mapping.direction,
            overwrite=overwrite,
            status=SyncJob.Status.QUEUED,
            requested_by=user if user is not None and user.is_authenticated else None,
            coupling_ids=coupling_ids or [],
            record_ids=record_ids or {},
        )


def request_sync(
    mapping: TableMapping,
    *,
    kind: str,
    trigger: str,
    user=None,
    allow_behind_running=False,
    coupling_ids: list[int] | None = None,
    direction: str | None = None,
    overwrite: bool = False,
    record_ids: dict[str, list[str]] | None = None,
    countdown: float | None = None,
) -> SyncJob:
    """Queue a job for a Celery worker (after `countdown` seconds, when given); JobRefused or
    QueueUnavailable say why not."""
    job = create_job(
        mapping,
        kind=kind,
        trigger=trigger,
        user=user,
        allow_behind_running=allow_behind_running,
        coupling_ids=coupling_ids,
        direction=direction,
        overwrite=overwrite,
        record_ids=record_ids,
    )
    _send_to_worker(job, countdown)
    return job


def _send_to_worker(job: SyncJob, countdown: float | None = None) -> None:
    """Queue a queued job's task; QueueUnavailable (the job marked failed) when the broker
    cannot take it."""
    try:
        queue.send("sync.run_sync_job", job.pk, countdown=countdown)
    except Exception as exc:  # kombu raises several kinds when the broker is down
        logger.warning("Could not queue sync job %s: %s", job.pk, exc)
        job.status = SyncJob.Status.FAILED
        job.finished_at = timezone.now()
        job.message = "The task queue is unavailable; the job was not started."
        job.save(update_fields=["status", "finished_at", "message"])
        raise QueueUnavailable(job.message) from exc


def paused_message(mapping: TableMapping) -> str:
    when = timezone.localtime(mapping.paused_at).strftime("%Y-%m-%d %H:%M")
    return (
        f"{mapping.name} is paused since {when} because its jobs failed "
        f"{mapping.setup_failures_in_a_row} times in a row for a setup reason: "
        f"{mapping.paused_reason} Fix the setup (see the mapping's health page): the schedule "
        "checks it at each run and resumes the mapping when the check passes, or an "
        "administrator can resume it now with Resume."
    )


def retry_job_later(job: SyncJob, delay: int) -> SyncJob | None:
    """Queue the job again after a transient failure of the whole job, unless another job of
    the mapping is already waiting or the mapping is paused."""
    try:
        return request_sync(
            job.mapping,
            kind=job.kind,
            trigger=SyncJob.Trigger.RETRY,
            allow_behind_running=True,
            coupling_ids=job.coupling_ids,
            record_ids=job.record_ids,
            direction=job.direction,
            overwrite=job.overwrite,
            countdown=delay,
        )
    except (JobRefused, QueueUnavailable) as exc:
        logger.info("Job %s is not tried again: %s", job.pk, exc)
        return None


def send_successor(job: SyncJob) -> SyncJob | None:
    """Send to a worker the job that goes on with an interrupted one (`job.successor`, made by
    the engine in the same write that interrupted it, to start `job.successor_delay` seconds
    from now); None when there is none or the queue is down, in which case the new job is
    marked failed with the reason."""
    successor = job.successor
    if successor is None:
        return None
    try:
        # A job paused by an app's throttling goes on when the app said it may be called.
        _send_to_worker(successor, job.successor_delay)
    except QueueUnavailable as exc:
        logger.info("Interrupted job %s is not continued by a new job: %s", job.pk, exc)
        return None
    return successor


def resume_abandoned_jobs() -> list[SyncJob]:
    """When a worker starts: interrupt the jobs that workers which died left running, and
    send the job that goes on with each to a worker; returns the new jobs."""
    resumed = []
    for job in engine.interrupt_abandoned_jobs():
        successor = send_successor(job)
        if successor is not None:
            resumed.append(successor)
    return resumed


def scheduled_mappings():
    return TableMapping.objects.filter(is_enabled=True, connection__is_enabled=True).order_by(
        "dependency_order", "name"
    )


def delete_expired_jobs(days: int | None = None) -> int:
    """Delete finished jobs older than the retention, except those a skipped coupling names."""
    days = settings.SYNC_JOB_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    skipped = Coupling.objects.filter(is_skipped=True)
    kept = (
        set(skipped.values_list("last_failed_job", flat=True))
        | set(skipped.values_list("last_job_to_destination", flat=True))
        | set(skipped.values_list("last_job_from_destination", flat=True))
    ) - {None}
    expired = SyncJob.objects.filter(created_at__lt=cutoff).exclude(
        Q(pk__in=kept) | Q(status__in=ACTIVE)
    )
    with transaction.atomic():
        deleted, by_model = expired.delete()
        jobs = by_model.get(SyncJob._meta.label, 0)
        if jobs:
            audit.record(
                audit.Action.JOBS_DELETED,
                f"{jobs:,} sync jobs older than {days} days deleted",
                actor_label="system (retention)",
                object_type="sync job",
                details={
                    "days": days,
                    "cutoff": cutoff.isoformat(),
                    "jobs": jobs,
                    "rows": by_model,
                },
            )
    return deleted


def retry_couplings(
    mapping: TableMapping, couplings, *, user=None, record_ids: dict[str, list[str]] | None = None
) -> SyncJob:
    """Take the couplings back into synchronization and queue a job that synchronizes them
    now (Retry for a selection, Retry All for every skipped one), with the uncoupled records
    named by direction in `record_ids` (those whose creation failed)."""
    ids = list(couplings.filter(mapping=mapping).values_list("pk", flat=True))
    record_ids = {direction: ids for direction, ids in (record_ids or {}).items() if ids}
    if not ids and not record_ids:
        raise JobRefused("Choose at least one coupling or record of this mapping.")
    # Taken back first: should the job be refused, the next scheduled run tries them.
    Coupling.objects.filter(pk__in=ids).update(
        is_skipped=False, failure_count=0, last_error_message=""
    )
    return request_sync(
        mapping,
        kind=SyncJob.Kind.COUPLED,
        trigger=SyncJob.Trigger.RETRY,
        user=user,
        allow_behind_running=True,
        coupling_ids=ids,
        record_ids=record_ids,
    )


def read_direction(error) -> str | None:
    """The direction in which an entry's record was being written: its `source_*` fields
    name the record read. None for an entry of no record."""
    mapping = error.mapping
    if mapping is None or not error.source_record_id:
        return None
    from_destination = (
        error.source_app == mapping.connection.destination_app
        and error.source_entity == mapping.destination_entity
    )
    return (
        TableMapping.Direction.FROM_DESTINATION
        if from_destination
        else TableMapping.Direction.TO_DESTINATION
    )


def find_for_deleted(couplings) -> dict[str, int]:
    """Ask both apps whether each coupled record still exists, and remember the answer;
    returns how many were found gone on each side."""
    from .connectors import connector_for

    gone = {"source": 0, "destination": 0}
    opened = {}
    try:
        for coupling in couplings.select_related("mapping__connection"):
            connection = coupling.mapping.connection
            if connection.pk not in opened:
                opened[connection.pk] = (
                    connector_for(connection, "source"),
                    connector_for(connection, "destination"),
                )
            source, destination = opened[connection.pk]
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
    finally:
        for pair in opened.values():
            for connector in pair:
                connector.close()
    return gone


def synchronize_coupling(coupling: Coupling, direction: str, *, user=None) -> SyncJob:
    """Queue a job that writes one coupled record over the other in the direction a person
    chose, whatever changed on the other side."""
    return synchronize_couplings(coupling.mapping, [coupling.pk], direction, user=user)


def synchronize_couplings(
    mapping: TableMapping, coupling_ids: list[int], direction: str, *, user=None
) -> SyncJob:
    """Queue one job that writes the coupled records of the mapping over their counterparts
    in the chosen direction (Synchronize and Restore, for one record or many)."""
    allowed: dict[str, tuple[str, ...]] = {
        TableMapping.Direction.TO_DESTINATION: (
            TableMapping.Direction.BIDIRECTIONAL,
            TableMapping.Direction.TO_DESTINATION,
        ),
        TableMapping.Direction.FROM_DESTINATION: (
            TableMapping.Direction.BIDIRECTIONAL,
            TableMapping.Direction.FROM_DESTINATION,
        ),
    }
    if mapping.direction not in allowed.get(direction, ()):
        raise JobRefused(
            f"{mapping.name} does not synchronize in that direction "
            f"({mapping.get_direction_display().lower()})."
        )
    Coupling.objects.filter(pk__in=coupling_ids).update(is_skipped=False, failure_count=0)
    return request_sync(
        mapping,
        kind=SyncJob.Kind.COUPLED,
        trigger=SyncJob.Trigger.USER,
        user=user,
        allow_behind_running=True,
        coupling_ids=list(coupling_ids),
        direction=direction,
        overwrite=True,
    )


def remove_coupling(coupling: Coupling, *, user=None) -> int:
    """Delete the coupling; its open entries are resolved, saying who removed it."""
    who = user.get_username() if user is not None and user.is_authenticated else "the system"
    with transaction.atomic():
        with audit.covered_by("coupling removed"):  # one event: the coupling's
            resolved = change_entries(
                SyncError.objects.filter(coupling=coupling, status=Status.OPEN),
                Status.RESOLVED,
                user=user,
                note=f"The coupling {coupling} was removed by {who}.",
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
    raise JobRefused(
        "Restore and Delete need exactly one of the two records gone; use Check records first."
    )


def restore_coupled_record(coupling: Coupling, *, user=None) -> SyncJob:
    """Re-create the deleted record from the one that remains, and couple it (as a job)."""
    remaining = remaining_side(coupling)
    direction = (
        TableMapping.Direction.TO_DESTINATION
        if remaining == "source"
        else TableMapping.Direction.FROM_DESTINATION
    )
    return synchronize_coupling(coupling, direction, user=user)


def delete_remaining_record(coupling: Coupling, *, user=None) -> int:
    """Delete the record that remains in its app, then the coupling; returns how many open
    entries were resolved. A refusal of the app (a missing privilege) is raised as it is."""
    from .connectors import connector_for

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


def delete_uncoupled_record(error, *, user=None) -> int:
    """Delete in its app a record that exists on one side only (an entry of a
    reconciliation), then resolve its open entries; returns how many."""

    from .connectors import connector_for

    mapping = error.mapping
    from_destination = read_direction(error) == TableMapping.Direction.FROM_DESTINATION
    side = "destination" if from_destination else "source"
    entity = getattr(mapping, f"{side}_entity")
    with connector_for(mapping.connection, side) as connector:
        connector.delete(entity, error.source_record_id)
    audit.record(
        audit.Action.RECORD_DELETED,
        f"Deleted {entity} {error.source_record_id} in {error.source_app} (on one side only, "
        f"mapping {mapping.name})",
        user=user,
        object_type="record",
        object_id=error.source_record_id,
        object_label=f"{error.source_app} {entity}",
        details={
            "mapping": mapping.pk,
            "app": error.source_app,
            "entity": entity,
            "record_id": error.source_record_id,
            "entry": error.pk,
        },
    )
    who = user.get_username() if user is not None and user.is_authenticated else "the system"
    with audit.covered_by("record deleted"):  # one event: the deletion's
        return change_entries(
            SyncError.objects.filter(
                mapping=mapping,
                category=Category.NOT_COUPLED,
                source_app=error.source_app,
                source_record_id=error.source_record_id,
                status__in=[Status.OPEN, Status.SNOOZED],
            ),
            Status.RESOLVED,
            user=user,
            note=f"The record was deleted in {error.source_app} by {who}.",
        )
