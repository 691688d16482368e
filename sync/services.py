"""Starting sync jobs, and keeping the job log within its retention."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import services as audit
from couplings.models import Coupling
from syncconsole import queue
from syncconsole.queue import QueueUnavailable

from . import engine
from .models import RuleVersion, SyncJob, TableMapping

logger = logging.getLogger(__name__)
ACTIVE = (SyncJob.Status.QUEUED, SyncJob.Status.RUNNING)
# How a job that never started ends: failed to be queued, or given up while queued.
NEVER_STARTED = (SyncJob.Status.FAILED, SyncJob.Status.INTERRUPTED)
# A queued job no worker took within this time is given up, so it never blocks new requests.
QUEUED_JOB_EXPIRY = timedelta(minutes=30)


class JobRefused(Exception):
    def __init__(self, message: str, job: SyncJob | None = None):
        super().__init__(message)
        self.job = job


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
    rule_versions: list[RuleVersion] | None = None,
) -> SyncJob:
    """A queued job for the mapping, or JobRefused when one is already waiting or running.
    `rule_versions`: the rules a person applies with the job (sync.transformations)."""
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
        job = SyncJob.objects.create(
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
        if rule_versions:
            job.rule_versions.set(rule_versions)
        return job


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
    join_queued: bool = False,
    rule_versions: list[RuleVersion] | None = None,
) -> SyncJob:
    """Queue a job for a Celery worker (after `countdown` seconds, when given); JobRefused or
    QueueUnavailable say why not. With `join_queued`, a job of the same kind and direction
    that is queued already takes the records named (`record_ids`) and is returned instead."""

    def create() -> SyncJob:
        return create_job(
            mapping,
            kind=kind,
            trigger=trigger,
            user=user,
            allow_behind_running=allow_behind_running,
            coupling_ids=coupling_ids,
            direction=direction,
            overwrite=overwrite,
            record_ids=record_ids,
            rule_versions=rule_versions,
        )

    try:
        job = create()
    except JobRefused as refused:
        waiting = refused.job
        if not join_queued or waiting is None or waiting.kind != kind:
            raise
        if waiting.direction != (direction or mapping.direction):
            raise
        if _join(waiting, record_ids or {}):
            return waiting
        job = create()  # a worker took it meanwhile: this one queues behind it
    _send_to_worker(job, countdown)
    return job


def _join(job: SyncJob, record_ids: dict[str, list[str]]) -> bool:
    """Add the records to a job that is still queued; False when a worker took it already.

    The job's row is locked while its record ids are rewritten, and the engine reads them
    again once it has marked the job running (sync.engine.run_job): either the job still
    queued takes them, or a worker took it first and this finds it no longer queued."""
    with transaction.atomic():
        locked = (
            SyncJob.objects.select_for_update()
            .filter(pk=job.pk, status=SyncJob.Status.QUEUED)
            .first()
        )
        if locked is None:
            return False
        merged = {direction: list(ids) for direction, ids in (locked.record_ids or {}).items()}
        for direction, ids in record_ids.items():
            known = merged.setdefault(direction, [])
            known += [str(i) for i in ids if str(i) not in known]
        if merged != locked.record_ids:
            locked.record_ids = merged
            locked.save(update_fields=["record_ids"])
        job.record_ids = merged
    return True


def _send_to_worker(job: SyncJob, countdown: float | None = None) -> None:
    """Queue a queued job's task; QueueUnavailable (the job marked failed) when the broker
    cannot take it."""
    try:
        queue.send("sync.run_sync_job", job.pk, countdown=countdown)
    except QueueUnavailable as exc:
        job.status = SyncJob.Status.FAILED
        job.finished_at = timezone.now()
        job.message = "The task queue is unavailable; the job was not started."
        job.save(update_fields=["status", "finished_at", "message"])
        raise QueueUnavailable(job.message) from exc


def paused_message(mapping: TableMapping) -> str:
    when = timezone.localtime(mapping.paused_at).strftime("%Y-%m-%d %H:%M %Z")
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


def continue_interrupted(mapping: TableMapping) -> SyncJob | None:
    """A queued job that goes on with the mapping's latest job when that one was interrupted
    and nothing went on with it (its worker died with no message to come back, or the job
    that was to go on with it was lost with the broker and never started): of the same kind
    and scope, as the engine's own would be (engine.interrupt). None when there is nothing
    to continue, or the interrupted job is not to be continued (three interruptions in a
    row, a paused mapping, a job already queued); JobRefused when a job is running."""
    # A job left running by a dead worker is interrupted here, for this to go on with it.
    engine.interrupt_abandoned_jobs([mapping.pk], continued=False)
    latest = (
        SyncJob.objects.filter(mapping=mapping)
        # Jobs that never started (lost with the broker, given up unstarted) went on with
        # nothing.
        .exclude(started_at__isnull=True, status__in=NEVER_STARTED)
        .order_by("-pk")
        .first()
    )
    if latest is None or latest.status != SyncJob.Status.INTERRUPTED:
        return None
    if engine.not_continued_because(latest):
        return None
    return create_job(
        mapping,
        kind=latest.kind,
        trigger=SyncJob.Trigger.RETRY,
        user=latest.requested_by,
        coupling_ids=latest.coupling_ids,
        direction=latest.direction,
        overwrite=latest.overwrite,
        record_ids=latest.record_ids,
    )


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
