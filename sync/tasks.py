"""Celery tasks of the sync app: thin wrappers that take ids and call the engine."""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from couplings.actions import retry_unblocked
from syncconsole import work

from . import breaker, engine, probes, services, subscriptions
from .models import SyncJob

logger = logging.getLogger(__name__)


@shared_task(name="sync.run_sync_job", bind=True, acks_late=True, max_retries=120)
def run_sync_job(self, job_id: int, database_lost: bool = False) -> str:
    # A job found "running" when its message comes back lost its worker, or, on the retry
    # below, its database connection.
    found_running = engine.DATABASE_LOST if database_lost else engine.WORKER_LOST
    try:
        job = engine.run_job(job_id, wait=False, found_running=found_running)
    except engine.MappingBusy as busy:
        # Another job of this mapping is running: wait for it instead of failing.
        if self.request.retries >= self.max_retries:
            engine.give_up(job_id, str(busy))
            return SyncJob.Status.FAILED
        raise self.retry(countdown=5) from busy
    except (OperationalError, InterfaceError) as error:
        if not engine.connection_lost(error):
            raise
        # The database went away under the job (a restart, a fail-over) and is not back yet:
        # the job stays "running" with no one running it. The next attempt, on a new
        # connection, marks it interrupted and queues a job that goes on with it.
        raise self.retry(
            args=(job_id,), kwargs={"database_lost": True}, exc=error, countdown=5
        ) from error
    if job.lease_lost:
        return job.status  # a newer job of the mapping goes on; this one does nothing more
    services.send_successor(job)
    _retry_if_transient(job)
    retry_unblocked(job)
    return job.status


work.look_at_worker_start("jobs left running by a stopped worker", services.resume_abandoned_jobs)


@shared_task(name="sync.run_page_share", acks_late=True)
def run_page_share(share_id: int) -> None:
    """One page pass of a full job shared out by key ranges (engine.run_shared); the job's
    worker waits for it and resumes it should this worker die."""
    engine.run_share_in_worker(share_id)


def _retry_if_transient(job: SyncJob) -> None:
    # Setup failures never come back by themselves: only a transient one is tried again.
    if job.retry_in:
        services.retry_job_later(job, job.retry_in)


@shared_task(name="sync.synchronize_modified_records", acks_late=True)
def synchronize_modified_records() -> int:
    """The scheduled run: every enabled mapping in dependency order, one after another. A
    paused mapping gets only its setup check, and runs again when the check passes."""
    return _run_each_mapping(SyncJob.Kind.MODIFIED, resume_paused=True)


def _run_each_mapping(kind: str, *, resume_paused: bool) -> int:
    ran = 0
    for mapping in services.scheduled_mappings():
        if mapping.is_paused and not (resume_paused and breaker.resume_if_setup_passes(mapping)):
            continue
        try:
            # An interrupted job nothing went on with is continued first; a full run, or one
            # as wide as the scheduled one, takes its place.
            continued = services.continue_interrupted(mapping)
            if continued is not None:
                _run_now(continued)
                ran += 1
                if _covers(continued, kind):
                    continue
            job = services.create_job(mapping, kind=kind, trigger=SyncJob.Trigger.SCHEDULE)
        except services.JobRefused as refused:
            logger.info("Scheduled %s of %s skipped: %s", kind, mapping.name, refused)
            continue
        _run_now(job)
        ran += 1
    return ran


def _run_now(job: SyncJob) -> None:
    job = engine.run_job(job.pk, wait=True)
    if job.lease_lost:
        return
    services.send_successor(job)
    _retry_if_transient(job)
    retry_unblocked(job)


def _covers(job: SyncJob, kind: str) -> bool:
    """Whether a job does all that a scheduled run of `kind` would do."""
    everything = not job.coupling_ids and not job.record_ids
    whole = job.direction in ("", job.mapping.direction)
    wide_enough = job.kind == kind or (job.kind, kind) == (SyncJob.Kind.FULL, SyncJob.Kind.MODIFIED)
    return everything and whole and wide_enough


@shared_task(name="sync.delete_expired_jobs", acks_late=True)
def delete_expired_jobs() -> int:
    return services.delete_expired_jobs()


@shared_task(name="sync.reconcile_mappings", acks_late=True)
def reconcile_mappings() -> int:
    """The scheduled reconciliation: each enabled mapping that is not paused, one after
    another, finds its records that exist on one side only."""
    return _run_each_mapping(SyncJob.Kind.RECONCILE, resume_paused=False)


@shared_task(name="sync.keep_change_subscriptions", acks_late=True)
def keep_change_subscriptions() -> int:
    """Subscribe to the apps' change notifications where missing, and renew the
    subscriptions before they expire."""
    return subscriptions.keep_every_connection_subscribed()


@shared_task(name="sync.run_lag_probes", acks_late=True)
def run_lag_probes() -> int:
    """Every minute: each enabled lag probe looks for its marker, or writes the next one."""
    return probes.run_due_probes()
