"""The sync engine: runs one job of one table mapping between the two apps.

A job reads what changed on one side (paging through the API), writes it to the other side,
keeps the couplings, and logs every failure as a sync error entry. One record's failure never
stops the job; a failure of the whole job (sign-in, connection) is one entry for the job."""

import copy
import logging
import os
import socket
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db import connection as db_connection
from django.db.models import Max, Model, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from couplings.models import Coupling
from errors.grouping import fingerprint, record_attempts, record_errors
from errors.models import (
    MAX_RETRY_DELAY_SECONDS,
    SETUP_CATEGORIES,
    Category,
    EntryLogging,
    ErrorGroup,
    Status,
    SyncError,
)
from errors.services import resolve_now_coupled, resolve_passed_setup, resolve_synchronized
from syncconsole import logs, metrics, queue, reporting, work
from syncconsole.arrays import any_of

from . import breaker, joblog, keyranges, leases, mapping_health, reconcile
from .classify import classify
from .compare import sent_values
from .connectors import Connector, ConnectorError, RemoteRecord, Throttled, connector_for
from .edits import RecordEdits
from .fields import FROM_DESTINATION, TO_DESTINATION, field_pairs, same_value
from .lookups import LookupFailed, Lookups
from .models import PageShare, RuleVersion, SyncJob, TableMapping
from .preflight import JobFailure, check_integration_users

logger = logging.getLogger(__name__)
LOCK_NAMESPACE = 7301  # the first key of the advisory lock that guards one mapping
TRANSIENT_FAILURES_BEFORE_STOP = 3
MAX_RECORD_RETRY_DELAY = timedelta(seconds=MAX_RETRY_DELAY_SECONDS)
RETRY_BATCH = 100
# Records not coupled whose last write failed, tried again by one scheduled run at most: the
# longest waiting first, so that the runs after a fix take the rest in turn.
UNCOUPLED_RETRIES_PER_RUN = 500
PROGRESS_FIELDS = [*SyncJob.RECORD_COUNTS, "records_read"]
SKIP_NOTE = " The record will be skipped for further synchronization due to a repeatable failure."
# Read a little before the watermark so a change committed late, with an older timestamp,
# is not missed; re-reading a record that is already in step costs an unchanged count.
WATERMARK_OVERLAP = timedelta(seconds=5)
WORKER_LOST = "The worker stopped before the job finished."
DATABASE_LOST = "The connection to the database was lost before the job finished."
LEASE_LOST = (
    "The job lost its hold on {mapping} (its worker or its database connection was lost) and "
    "stopped: job #{job} took the mapping over."
)


class MappingBusy(Exception):
    """Another job of the same mapping holds the lock."""


def _stops_the_job(error: ConnectorError) -> bool:
    """A failure that would fail every record the same way (the sign-in, a missing
    privilege), or an app that asks to slow down: the job stops or pauses, no record fails."""
    return error.is_sign_in_failure or error.is_missing_privilege or isinstance(error, Throttled)


@contextmanager
def mapping_lock(mapping_id: int, *, wait: bool = False):
    """Hold PostgreSQL's advisory lock for the mapping; yields False when another job has it
    (or, with `wait`, waits for it).

    A session lock outlives transactions and is released by PostgreSQL if the worker dies."""
    with db_connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s, %s), true", [LOCK_NAMESPACE, mapping_id])
            acquired = True
        else:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, mapping_id])
            acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with db_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, mapping_id])


def interrupt_abandoned_jobs(
    mapping_ids: list[int] | None = None, *, continued: bool = True
) -> list[SyncJob]:
    """Mark interrupted the jobs left "running" by a worker that died (of the mappings given,
    or of all), each with the job that goes on with it unless `continued` is off, and return
    them.

    A job holds its mapping's advisory lock for as long as it runs, and PostgreSQL releases
    the lock when the connection of a worker that died closes: a running job whose lock can
    be taken has no worker any more. The status is changed under the lock, so a job that
    finishes meanwhile keeps its own outcome."""
    running = SyncJob.objects.filter(status=SyncJob.Status.RUNNING)
    if mapping_ids is not None:
        running = running.filter(mapping_id__in=mapping_ids)
    interrupted: list[SyncJob] = []
    for mapping_id in sorted(set(running.values_list("mapping_id", flat=True))):
        with mapping_lock(mapping_id) as acquired:
            if not acquired:
                continue
            jobs = list(running.filter(mapping_id=mapping_id).select_related("mapping"))
            for job in jobs:
                interrupt(job, WORKER_LOST, continued=continued)
        interrupted += jobs
    return interrupted


# Interrupted jobs in a row after which a mapping's job is no longer continued by itself.
INTERRUPTIONS_IN_A_ROW = 3
# Jobs in a row that an app's throttling paused before they got anything done, after which
# the throttling counts as the app being unavailable (a transient failure of the job).
THROTTLED_PAUSES_IN_A_ROW = 6


def interrupt(
    job: SyncJob,
    reason: str,
    *,
    continued: bool = True,
    throttled: bool = False,
    delay: float | None = None,
) -> None:
    """Mark a job interrupted (by a lost worker or database, or `throttled` by an app) and,
    in the same transaction, create the job that goes on with it (same scope; what the first
    one wrote is coupled by the match fields, not created again), named in the message:
    whoever reads the job sees both or neither. The caller sends the new job,
    `job.successor`, to a worker, `job.successor_delay` (`delay`) seconds from now."""
    successor = None
    job.throttled = throttled
    with transaction.atomic():
        if continued:
            why_not = not_continued_because(job)
            if why_not:
                reason = f"{reason} {why_not}"
            else:
                successor = SyncJob.objects.create(
                    mapping=job.mapping,
                    kind=job.kind,
                    trigger=SyncJob.Trigger.RETRY,
                    direction=job.direction,
                    overwrite=job.overwrite,
                    status=SyncJob.Status.QUEUED,
                    requested_by=job.requested_by,
                    coupling_ids=job.coupling_ids,
                    record_ids=job.record_ids,
                )
                seconds = round(delay or 0)
                when = f" in {seconds} second{'' if seconds == 1 else 's'}" if delay else ""
                reason = f"{reason} Job #{successor.pk} goes on with it{when}."
        _finish(job, SyncJob.Status.INTERRUPTED, reason)
    job.successor = successor
    job.successor_delay = delay if successor is not None else None


def not_continued_because(job: SyncJob) -> str:
    """Why an interrupted job gets no job to go on with it, or "" when it does."""
    earlier = list(
        SyncJob.objects.filter(mapping_id=job.mapping_id, pk__lt=job.pk)
        .order_by("-pk")
        .values_list("status", "throttled")[: INTERRUPTIONS_IN_A_ROW - 1]
    )
    # A pause for an app's throttling is no sign of a job that takes its worker down.
    if (
        not job.throttled
        and len(earlier) == INTERRUPTIONS_IN_A_ROW - 1
        and all(status == SyncJob.Status.INTERRUPTED and not paused for status, paused in earlier)
    ):
        # A job that takes its worker down each time (memory, a time limit) needs a person.
        return (
            f"It was not continued: the last {INTERRUPTIONS_IN_A_ROW} jobs of this mapping "
            "were interrupted. Look into the worker's log (memory, time limits) and start it "
            "again."
        )
    if TableMapping.objects.filter(pk=job.mapping_id, paused_at__isnull=False).exists():
        return "It was not continued: its mapping is paused until its setup check passes."
    waiting = (
        SyncJob.objects.filter(mapping_id=job.mapping_id, status=SyncJob.Status.QUEUED)
        .exclude(pk=job.pk)
        .first()
    )
    if waiting is not None:
        return f"Job #{waiting.pk}, already queued, goes on with it."
    return ""


def connection_lost(exc: Exception) -> bool:
    """Whether a database error means the connection went away (the server restarted, shut
    down, or cannot be reached), rather than a statement that failed."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    code = getattr(exc.__cause__, "pgcode", None)
    # No code: the client found the connection closed; 57P0x: the server is shutting down,
    # crashed or starting; class 08: connection exceptions.
    return code is None or code in ("57P01", "57P02", "57P03") or code.startswith("08")


def give_up(job_id: int, message: str) -> None:
    job = SyncJob.objects.select_related("mapping").get(pk=job_id)
    if not job.is_finished:
        _finish(job, SyncJob.Status.FAILED, message)


@contextmanager
def job_context(job: SyncJob, mapping: TableMapping, **more: Any) -> Iterator[None]:
    """What goes wrong while a job runs reaches error reporting with the job and mapping
    named; every line logged meanwhile names it, its mapping and its connection."""
    with (
        reporting.job_scope(job.pk, mapping.name),
        logs.bound(
            job_id=job.pk,
            mapping_id=mapping.pk,
            mapping=mapping.name,
            connection_id=mapping.connection_id,
            connection=mapping.connection.name,
            **more,
        ),
    ):
        yield


def run_job(
    job_id: int,
    *,
    wait: bool = False,
    source: Connector | None = None,
    destination: Connector | None = None,
    found_running: str = WORKER_LOST,
) -> SyncJob:
    """Run a queued job. Running it again after it finished changes nothing; a job found
    "running" is interrupted with `found_running` as its reason and continued.

    Raises MappingBusy when another job of the mapping runs, unless `wait` is set."""
    job = SyncJob.objects.select_related("mapping__connection").get(pk=job_id)
    if job.is_finished:
        return job
    mapping = job.mapping
    # The job keeps its own log (sync.joblog) within.
    with job_context(job, mapping), mapping_lock(mapping.pk, wait=wait) as acquired:
        if not acquired:
            raise MappingBusy(f"Another job is running for {mapping.name}.")
        with joblog.kept(job):
            _run_locked(job, mapping, source, destination, found_running)
    return job


def _run_locked(
    job: SyncJob,
    mapping: TableMapping,
    source: Connector | None,
    destination: Connector | None,
    found_running: str,
) -> None:
    """run_job, holding the mapping's lock."""
    job.refresh_from_db()
    if job.is_finished:
        return
    if job.status == SyncJob.Status.RUNNING:
        # Running while this worker holds the lock: the worker that ran it died and its
        # message was handed out again. What it wrote stays; a new job goes on with it.
        interrupt(job, found_running)
        return
    mapping.refresh_from_db()
    if mapping.is_paused:
        # Queued before the mapping was paused: running it would only log the same setup
        # failure again.
        _finish(
            job,
            SyncJob.Status.INTERRUPTED,
            f"Not run: {mapping.name} is paused until its setup check passes again.",
        )
        return
    with transaction.atomic():
        # The job's lease: from now on a job of this mapping that started before writes
        # nothing more, should it still be going on a session of its own.
        token = leases.take(mapping.pk)
        job.lease_token = token
        # Holding the lock, no other job of this mapping can be running: any marked so
        # lost its worker or its session, and with the lease taken it stops writing.
        stale = SyncJob.objects.filter(mapping=mapping, status=SyncJob.Status.RUNNING)
        ended = stale.exclude(pk=job.pk).update(
            status=SyncJob.Status.INTERRUPTED,
            finished_at=timezone.now(),
            message=LEASE_LOST.format(mapping=mapping.name, job=job.pk),
        )
        metrics.jobs_ended_unseen(mapping.name, SyncJob.Status.INTERRUPTED, ended)
        job.status = SyncJob.Status.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.save(update_fields=["status", "started_at"])
    logger.info(
        "Job started: %s, %s, trigger %s.",
        job.get_kind_display(),
        job.get_direction_display() if job.direction else mapping.get_direction_display(),
        job.get_trigger_display(),
    )
    try:
        with leases.fenced(mapping.pk, token):
            settled = _run_started(job, mapping, source, destination)
    except leases.LeaseLost:
        # A newer job took the mapping over (this job's database session had ended): it
        # marked this one interrupted, and what it writes is not this job's to touch.
        logger.warning("Sync job %s lost its lease on %s and stopped writing", job.pk, mapping.name)
        job.lease_lost = True
        job.refresh_from_db()
        return
    if settled:
        mapping_health.record_snapshot(mapping.pk)


def _run_started(
    job: SyncJob, mapping: TableMapping, source: Connector | None, destination: Connector | None
) -> bool:
    """Run a job marked running, under its mapping's lock and lease, to its outcome; False
    when it lost its database connection (it is interrupted, and continued)."""
    # A change notification may have added records to the job while it was queued
    # (sync.services.request_sync with join_queued): running now, it takes no more.
    job.refresh_from_db(fields=["record_ids"])
    connection = mapping.connection
    opened: list[Connector] = []
    if not source:
        opened.append(source := connector_for(connection, "source"))
    if not destination:
        opened.append(destination := connector_for(connection, "destination"))
    try:
        if not connection.is_enabled:
            reason = f"The connection {connection.name} is disabled. {connection.disabled_reason}"
            raise JobFailure(
                ConnectorError(reason.strip()), connection.source_app, mapping.source_entity
            )
        check_integration_users(mapping, source, destination, job.direction or mapping.direction)
        by_direction: dict[str, list[str]] = {
            TableMapping.Direction.TO_DESTINATION: [TO_DESTINATION],
            TableMapping.Direction.FROM_DESTINATION: [FROM_DESTINATION],
            TableMapping.Direction.BIDIRECTIONAL: [TO_DESTINATION, FROM_DESTINATION],
        }
        directions = by_direction[job.direction or mapping.direction]
        if job.kind == SyncJob.Kind.RECONCILE:
            job.message = reconcile.run(job, mapping, source, destination)
        else:
            for direction in directions:
                count = page_passes(job, mapping, source, destination, direction)
                if count > 1:
                    run_shared(job, mapping, source, destination, direction, count)
                else:
                    Pass(job, mapping, source, destination, direction).run()
    except JobFailure as failure:
        if isinstance(failure.error, Throttled):
            _job_throttled(job, failure)
        else:
            _job_failed(job, failure)
    except Throttled as throttled:  # a reconciliation's read
        _job_throttled(job, JobFailure(throttled, throttled.app_name, ""))
    except leases.LeaseLost:
        raise  # nothing more is written: the newer job marks this one
    except Exception as exc:  # a bug must not leave the job "running" for ever
        if connection_lost(exc):
            # Not the job's fault nor its records': what it committed stays, and a new
            # job goes on with it. Should the database still be away, this raises and the
            # task tries again later.
            logger.warning("Sync job %s lost its database connection: %s", job.pk, exc)
            interrupt(job, DATABASE_LOST)
            return False
        logger.exception("Sync job %s failed", job.pk)
        record_errors(
            [
                SyncError(
                    created_at=timezone.now(),
                    job=job,
                    mapping=mapping,
                    category=Category.OTHER,
                    message=f"The job stopped: {exc}"[: SyncError.MESSAGE_MAX_LENGTH],
                    detail=traceback.format_exc(),
                )
            ]
        )
        _finish(job, SyncJob.Status.FAILED, f"The job stopped: {exc}")
    else:
        breaker.count_job(mapping, setup_failure=False)
        message = f"{job.failed} records failed." if job.failed else ""
        if job.kind == SyncJob.Kind.RECONCILE:
            message = job.message
        if job.retrying:
            message += f" {job.retrying} records failed transiently and are tried again later."
        if job.not_coupled:
            one = job.not_coupled == 1
            message += (
                f" {job.not_coupled} record{'' if one else 's'} "
                f"{'is' if one else 'are'} not coupled and {'was' if one else 'were'} "
                f"skipped: {mapping.name} synchronizes only coupled records in a "
                "modified-records run; a full synchronization couples or creates them."
            )
        _finish(job, SyncJob.Status.SUCCEEDED, message.strip())
        # It signed in, passed the setup check and wrote: what failed whole jobs before
        # is gone.
        resolve_passed_setup(
            mapping.pk, job.pk, every_direction=job.direction in ("", mapping.direction)
        )
    finally:
        for connector in opened:
            connector.close()
    return True


def _job_failed(job: SyncJob, failure: JobFailure) -> None:
    """Log the failure of a whole job, and count it towards the mapping's breaker.

    A transient one (the app cannot be reached) is logged only when it keeps coming; until
    then the job says when it is tried again (`job.retry_in`, for the task that ran it)."""
    mapping = job.mapping
    category = failure.category or classify(failure.error)
    setup = category in SETUP_CATEGORIES
    in_a_row = breaker.count_job(mapping, setup_failure=setup)
    message = failure.error.message
    entry = None
    if not failure.error.transient or not setup or breaker.should_pause(mapping):
        entry = _log_job_failure(job, failure, category)
    else:
        job.retry_in = breaker.job_retry_delay(in_a_row)
        message += (
            f" This looks temporary: tried again in {job.retry_in} seconds, and logged as an "
            "error when it keeps failing."
        )
    if setup and breaker.should_pause(mapping):
        breaker.pause(mapping, failure.error.message, entry)
        message += " The mapping is paused until its setup check passes again."
    _finish(job, SyncJob.Status.FAILED, message)


# What a job wrote, which the job that goes on with it does not do again.
_WORK_DONE = ("inserted", "modified", "deleted")


def _job_throttled(job: SyncJob, failure: JobFailure) -> None:
    """An app asked the job to slow down for longer than it waits: the job pauses (it is
    interrupted, and a job that goes on with it starts when the app said it may be called
    again). No record failed. Only an app that keeps throttling jobs that get nothing done
    counts as unavailable: the job then fails as a transient connection failure would."""
    error = failure.error
    assert isinstance(error, Throttled)
    progress = job.inserted + job.modified + job.deleted
    earlier = list(
        SyncJob.objects.filter(mapping_id=job.mapping_id, pk__lt=job.pk)
        .order_by("-pk")
        .values_list("status", "throttled", *_WORK_DONE)[: THROTTLED_PAUSES_IN_A_ROW - 1]
    )
    idle = [
        status == SyncJob.Status.INTERRUPTED and paused and not any(done)
        for status, paused, *done in earlier
    ]
    if not progress and len(idle) == THROTTLED_PAUSES_IN_A_ROW - 1 and all(idle):
        error.message = (
            f"{error.message} It kept {failure.app_name} from answering for "
            f"{THROTTLED_PAUSES_IN_A_ROW} jobs in a row."
        )
        error.args = (error.message,)
        _job_failed(job, failure)
        return
    interrupt(
        job,
        f"Paused: {error.message} No record failed.",
        throttled=True,
        delay=error.resume_after,
    )


def _blocked_by(error: ConnectorError) -> dict[str, Any]:
    """The entry's blocked-by fields: the record a lookup needed and did not find (its open
    entry, if any, is found when the entry is recorded)."""
    reference = error.reference if isinstance(error, LookupFailed) else None
    if reference is None:
        return {}
    return {
        "blocked_by_mapping_id": reference.mapping_id,
        "blocked_by_side": reference.side,
        "blocked_by_entity": reference.entity[:100],
        "blocked_by_record": reference.key[:100],
    }


def _had_entries(coupling: Coupling) -> bool:
    """Whether a coupling's last results say an entry may be open for it: it failed, or was
    skipped for failing, in either direction."""
    return (
        bool(
            {coupling.last_result_to_destination, coupling.last_result_from_destination}
            & {Coupling.Result.FAILURE, Coupling.Result.SKIPPED}
        )
        or coupling.is_skipped
    )


def _finish(job: SyncJob, status: str, message: str) -> None:
    if status != SyncJob.Status.SUCCEEDED:
        # A job that stopped left out the records it had read and not dealt with yet.
        job.skipped += max(0, job.records_read - job.records_counted)
    job.status = status
    job.message = message[:2000]
    job.finished_at = timezone.now()
    job.save()
    ran = (job.finished_at - job.started_at).total_seconds() if job.started_at else None
    metrics.job_finished(
        job.mapping.name,
        status,
        ran,
        read=job.records_read,
        written=job.inserted + job.modified + job.deleted,
    )
    logger.log(
        logging.INFO if status == SyncJob.Status.SUCCEEDED else logging.WARNING,
        "Job %s: %s read, %s. %s",
        "paused" if job.throttled else job.get_status_display().lower(),
        job.records_read,
        _counts(job),
        job.message,
    )


def _counts(job: SyncJob, since: dict[str, int] | None = None) -> str:
    """The job's record counts (or those since `since`) in words, for its log."""
    since = since or {}
    return ", ".join(
        f"{getattr(job, name) - since.get(name, 0)} {name}" for name in SyncJob.RECORD_COUNTS
    )


def _log_job_failure(job: SyncJob, failure: JobFailure, category: str) -> SyncError:
    error = failure.error
    mapping = job.mapping
    return record_errors(
        [
            SyncError(
                created_at=timezone.now(),
                job=job,
                mapping=mapping,
                category=category,
                source_app=failure.app_name,
                source_entity=failure.entity,
                message=error.message[: SyncError.MESSAGE_MAX_LENGTH],
                detail=error.detail,
            )
        ]
    )[0]


def record_retry_delay(failures_in_a_row: int, first_seconds: int | None = None) -> timedelta:
    """How long a record that failed transiently waits before a run tries it again: the
    mapping's first delay (else SYNC_RETRY_BACKOFF_SECONDS), doubling, at most 6 hours."""
    first = settings.SYNC_RETRY_BACKOFF_SECONDS if first_seconds is None else first_seconds
    # The exponent is capped so a long run of failures cannot make an enormous number.
    delay = first * 2 ** min(failures_in_a_row - 1, 30)
    return min(timedelta(seconds=delay), MAX_RECORD_RETRY_DELAY)


def writer_batch_size(connector: Connector) -> int:
    return max(1, int(getattr(connector, "batch_size", 1) or 1))


def last_synced(coupling: Coupling) -> datetime | None:
    """When the coupled records were last brought in step, in either direction."""
    times = [
        t
        for t in (coupling.last_synced_to_destination_at, coupling.last_synced_from_destination_at)
        if t
    ]
    return max(times) if times else None


@dataclass
class Write:
    """One record to write to the other side: created when there is no `target_id`."""

    record: RemoteRecord
    coupling: Coupling | None
    target_id: str | None
    values: dict[str, Any]
    etag: str | None = None  # the version of the record to update, as it was read

    @property
    def kind(self) -> str:
        return "create" if self.target_id is None else "update"


def match_key(value: Any) -> str:
    # Apps compare text without regard to case (Dataverse does): so does the match.
    return str(value).casefold()


@dataclass(frozen=True)
class Policy:
    """What a record's failure is subject to: after how many identical failures its coupling
    is skipped (and the problem that says so; None: the mapping), how it is logged, and how
    often and how far apart a transient one is tried again before it is logged."""

    skip_after: int
    skip_problem_id: int | None
    entry_logging: str
    transient_retries: int
    retry_delay_seconds: int | None


# What a transient failure's entry adds to the app's message.
RUNS_IN_A_ROW = " It failed in {} runs in a row."


class Pass:
    """One direction of a job: read changes on one side, write them to the other.

    With a writer that takes batches (`batch_size` > 1), a page is synchronized a batch at a
    time: the records it needs from the other side read in a few requests, the writes sent
    in bulk where the app allows, the couplings written in bulk; otherwise one record at a
    time, with a request per read and per write."""

    def __init__(
        self,
        job: SyncJob,
        mapping: TableMapping,
        source: Connector,
        destination: Connector,
        direction: str,
        share: PageShare | None = None,
    ):
        # A pass over one key range of a shared job (run_shared) counts on its share: the
        # passes run at once, and the job adds their counts up when they are all done.
        self.share = share
        if share is not None:
            job = copy.copy(job)
            for name in PageShare.COUNTS:
                setattr(job, name, getattr(share, name))
        self.job, self.mapping, self.direction = job, mapping, direction
        forward = direction == TO_DESTINATION
        self.reader, self.writer = (source, destination) if forward else (destination, source)
        self.read_entity = mapping.source_entity if forward else mapping.destination_entity
        self.condition = mapping.source_filter if forward else mapping.destination_filter
        self.write_entity = mapping.destination_entity if forward else mapping.source_entity
        self.read_side, self.write_side = (
            ("source", "destination") if forward else ("destination", "source")
        )
        self.match_read = mapping.source_match_field if forward else mapping.destination_match_field
        self.match_write = (
            mapping.destination_match_field if forward else mapping.source_match_field
        )
        self.pairs = field_pairs(mapping.field_mappings, direction)
        self.lookups = Lookups(mapping, direction, source, destination, self.pairs)
        # Values people typed for records an app refused (sync.edits).
        self.edits = RecordEdits(mapping, direction, job)
        self.writing = {pair.write: pair for pair in self.pairs}
        # The mapping's kept rules and those applied with the job (sync.transformations).
        self.rules = RuleVersion.in_force(job, direction)
        # The fields a pass reads on each side: what it maps, matches and compares.
        reads = [p.read for p in self.pairs if not p.has_constant] + [self.match_read]
        writes = [p.held_field for p in self.pairs] + [self.match_write]
        self.read_fields = [name for name in dict.fromkeys(reads) if name]
        self.write_fields = [name for name in dict.fromkeys(writes) if name]
        self.suffix = "to_destination" if forward else "from_destination"
        self.full = job.kind == SyncJob.Kind.FULL
        # Records a person chose are synchronized even where the mapping syncs coupled only.
        self.chosen = job.kind == SyncJob.Kind.COUPLED
        # Outside a job of chosen records, the records a job names are those coupled to a
        # record a change notification announced deleted on the other side: each is read,
        # changed or not, and its coupled record looked for, so that the deletion rule
        # applies (sync.notifications).
        named = [] if self.chosen else (job.record_ids or {}).get(direction, [])
        self.coupled_to_deleted = list(dict.fromkeys(str(record_id) for record_id in named))
        self.checks_deletion = set(self.coupled_to_deleted)
        # Those of them unchanged since their last sync: only their coupled record's
        # existence is checked, nothing is written over it.
        self.only_checked: set[str] = set()
        # Records not coupled that a scheduled run tries again (their write failed before),
        # even where the mapping synchronizes only coupled records.
        self.retrying_uncoupled: set[str] = set()
        self.coupled_now: list[tuple[str, int]] = []  # (read id, coupling id) this page
        # The records found on the other side by their match field this page: read id: id.
        self.matched_now: dict[str, str] = {}
        self.errors: list[SyncError] = []
        # Failures whose policy counts them on the record's open entry (record_attempts).
        self.attempts: list[SyncError] = []
        self.transient_in_a_row = 0
        # The policies each problem sets, by fingerprint.
        self.problem_policies: dict[str, Policy] = {}

    # -- bookkeeping -------------------------------------------------------------------
    @property
    def watermark_field(self) -> str:
        return f"{self.read_side}_synced_until"

    def run(self) -> None:
        if self.job.kind == SyncJob.Kind.COUPLED:
            self.run_chosen()
            return
        since = None if self.full else getattr(self.mapping, self.watermark_field)
        if since is not None:
            since -= WATERMARK_OVERLAP
        newest: datetime | None = getattr(self.mapping, self.watermark_field)
        read: set[str] = set()
        if not self.full:
            self.retrying_uncoupled = set(self.uncoupled_failures())
        condition = self.condition
        if self.share is not None:
            condition = keyranges.range_condition(
                self.reader.key_field(self.read_entity),
                self.share.low,
                self.share.high,
                self.share.done_until,
                condition,
            )
        try:
            pages = self.reader.list_changes(
                self.read_entity, since, condition=condition, select=self.read_fields
            )
            for page in pages:
                self.sync_page(page)
                for record in page:
                    read.add(record.id)
                    if record.modified_at and (newest is None or record.modified_at > newest):
                        newest = record.modified_at
                if self.share is not None and page:
                    # Keyset order: a pass that goes on after its worker died reads past it.
                    self.share.done_until = max(record.id.lower() for record in page)
                    self.share.newest = newest
                    self.save_share()
            if not self.full:
                read.update(self.retry_failures(read))
                # Those not read as changed are read by id: a currency whose rate was entered
                # since is created now, and the records waiting for it on their next runs.
                again = sorted(self.retrying_uncoupled - read)
                self.sync_by_id(again)
                read.update(again)
            self.sync_by_id([r for r in self.coupled_to_deleted if r not in read])
        except ConnectorError as error:
            raise JobFailure(error, self.reader.app_name, self.read_entity) from error
        finally:
            self.flush()
        if self.share is not None:
            return  # the job moves the watermark on when every share has read its range
        # Only a pass that read everything moves the watermark on.
        setattr(self.mapping, self.watermark_field, newest)
        TableMapping.objects.filter(pk=self.mapping.pk).update(**{self.watermark_field: newest})

    def run_chosen(self) -> None:
        """Synchronize the couplings and the uncoupled records the job names (Retry, Retry
        All, Synchronize, Restore), whatever their watermark."""
        record_ids = list(
            Coupling.objects.filter(mapping=self.mapping, pk__in=self.job.coupling_ids)
            .order_by("pk")
            .values_list(f"{self.read_side}_record_id", flat=True)
        )
        chosen = (self.job.record_ids or {}).get(self.direction, [])
        record_ids += [str(record_id) for record_id in chosen if str(record_id) not in record_ids]
        try:
            self.sync_by_id(record_ids)
        except ConnectorError as error:
            raise JobFailure(error, self.reader.app_name, self.read_entity) from error
        finally:
            self.flush()

    def sync_by_id(self, record_ids: list[str]) -> None:
        for start in range(0, len(record_ids), RETRY_BATCH):
            chunk = record_ids[start : start + RETRY_BATCH]
            # A record gone on the read side is left out: the other pass sees to it.
            found = self.reader.get_many(self.read_entity, chunk, select=self.read_fields)
            self.sync_page([found[record_id] for record_id in chunk if record_id in found])

    def retry_failures(self, read: set[str]) -> list[str]:
        """Try again the coupled records whose last sync in this direction failed, changed or
        not, as the anchor does: fixed ones go through, the same failure again may skip them.
        Returns the records tried."""
        failing = (
            Coupling.objects.filter(
                mapping=self.mapping,
                is_skipped=False,
                **{
                    f"last_result_{self.suffix}__in": [
                        Coupling.Result.FAILURE,
                        Coupling.Result.SKIPPED,  # skipped once, since taken back by a retry
                    ]
                },
            )
            .exclude(last_failed_job=self.job)
            .exclude(retry_not_before__gt=timezone.now())  # backing off a transient failure
            .values_list(f"{self.read_side}_record_id", flat=True)
            .order_by("pk")
        )
        tried = [record_id for record_id in failing if record_id not in read]
        self.sync_by_id(tried)
        return tried

    def uncoupled_failures(self) -> list[str]:
        """The records of the read side that are not coupled and have an open (or snoozed)
        entry of this mapping in this direction: their create failed (a currency without an
        exchange rate, a lookup that found nothing), not a record a reconciliation found on
        one side only. One that failed transiently waits out its back-off, as a coupling
        does. At most UNCOUPLED_RETRIES_PER_RUN, the longest waiting first."""
        transient = Q(category=Category.CONNECTION)
        failed = (
            SyncError.objects.filter(
                mapping=self.mapping,
                coupling__isnull=True,
                source_app=self.reader.app_name,
                source_entity=self.read_entity,
                status__in=[Status.OPEN, Status.SNOOZED],
            )
            .exclude(source_record_id="")
            # A record a reconciliation found on one side only waits for a person's choice.
            .exclude(category=Category.NOT_COUPLED)
            # An entry may count several attempts (record_attempts): its latest is the time.
            .annotate(tried=Coalesce("last_attempt_at", "created_at"))
            .values("source_record_id")
            .annotate(
                last=Max("tried"),
                last_transient=Max("tried", filter=transient),
                transient=Sum("attempts", filter=transient),
            )
            .order_by("last", "source_record_id")
        )
        now = timezone.now()
        wanted: list[str] = []
        for row in failed.iterator(chunk_size=RETRY_BATCH):
            if len(wanted) >= UNCOUPLED_RETRIES_PER_RUN:
                break
            if row["last_transient"] is not None and row["last_transient"] >= row["last"]:
                delay = record_retry_delay(row["transient"], self.mapping.retry_delay_seconds)
                if row["last"] + delay > now:
                    continue  # backing off a transient failure
            wanted.append(row["source_record_id"])
        coupled = set(
            Coupling.objects.filter(
                mapping=self.mapping, **{f"{self.read_side}_record_id__in": wanted}
            ).values_list(f"{self.read_side}_record_id", flat=True)
        )
        return [record_id for record_id in wanted if record_id not in coupled]

    def flush(self) -> None:
        if self.errors:
            record_errors(self.errors)
            self.errors = []
        if self.attempts:
            record_attempts(self.attempts)
            self.attempts = []
        self.save_progress()

    def sync_page(self, page: list[RemoteRecord]) -> None:
        logger.info(
            "Read %s %s record%s from %s.",
            len(page),
            self.read_entity,
            "" if len(page) == 1 else "s",
            self.reader.app_name,
        )
        before = {name: getattr(self.job, name) for name in SyncJob.RECORD_COUNTS}
        # The page's lookups in a few requests, rather than some for each record.
        self.lookups.prepare(page)
        ids = [record.id for record in page]
        self.edits.prepare(ids)
        # What decides whether a coupled record needs anything, as tuples: in a full sync
        # most records read are in step (the other direction's just written among them), and
        # only the couplings of the others are loaded whole.
        read_column = f"{self.read_side}_record_id"
        states = {
            read_id: state
            for read_id, *state in Coupling.objects.filter(
                any_of(read_column, ids), mapping=self.mapping
            ).values_list(
                read_column,
                "pk",
                "is_skipped",
                "last_failed_job_id",
                "last_synced_to_destination_at",
                "last_synced_from_destination_at",
            )
        }
        skipped = []
        uncoupled: list[RemoteRecord] = []
        wanted: list[tuple[RemoteRecord, int]] = []
        for record in page:
            self.job.records_read += 1
            state = states.get(record.id)
            if state is None:
                uncoupled.append(record)
                continue
            pk, is_skipped, failed_job_id, to_destination_at, from_destination_at = state
            if is_skipped:
                # Counted in each direction that reads one of its records: a record read is
                # counted once, whatever happens to it.
                self.job.skipped += 1
                skipped.append(pk)
            elif self.only_overlapped(
                record,
                failed_job_id,
                max(filter(None, [to_destination_at, from_destination_at]), default=None),
            ):
                self.job.unchanged += 1
            else:
                wanted.append((record, pk))
        loaded = (
            {c.pk: c for c in Coupling.objects.filter(any_of("pk", [pk for _, pk in wanted]))}
            if wanted
            else {}
        )
        coupled: list[tuple[RemoteRecord, Coupling]] = []
        for record, pk in wanted:
            if pk in loaded:
                coupled.append((record, loaded[pk]))
            else:
                uncoupled.append(record)  # uncoupled meanwhile
        # One path whatever the app takes at once: a writer of one record a request is sent
        # batches of one.
        size = writer_batch_size(self.writer)
        for start in range(0, len(coupled), size):
            self.sync_coupled_batch(coupled[start : start + size])
        for start in range(0, len(uncoupled), size):
            self.sync_uncoupled_batch(uncoupled[start : start + size])
        if self.coupled_now:
            # Entries of these records, logged while they could not be created, are settled.
            resolve_now_coupled(
                self.mapping.pk, self.reader.app_name, self.coupled_now, self.job.pk
            )
            # A record found by its match field may have entries of its own, logged by the
            # other direction while it could not be written uncoupled (its answer lost, say):
            # coupled now to the record it was to be written as, they are settled too.
            matched = [
                (self.matched_now[read_id], coupling_id)
                for read_id, coupling_id in self.coupled_now
                if read_id in self.matched_now
            ]
            if matched:
                resolve_now_coupled(self.mapping.pk, self.writer.app_name, matched, self.job.pk)
            self.coupled_now = []
        self.matched_now = {}
        if skipped:
            # The job's Skipped count opens these couplings.
            Coupling.objects.filter(pk__in=skipped).update(
                **{
                    f"last_result_{self.suffix}": Coupling.Result.SKIPPED,
                    f"last_job_{self.suffix}": self.job,
                }
            )
        self.flush()
        logger.info("Wrote the page to %s: %s.", self.writer.app_name, _counts(self.job, before))
        joblog.flush_if_due()

    # -- a batch of records ------------------------------------------------------------
    def sync_coupled_batch(self, items: list[tuple[RemoteRecord, Coupling]]) -> None:
        todo = [
            (record, coupling) for record, coupling in items if self.needs_target(record, coupling)
        ]
        if not todo:
            return
        target_ids = [getattr(c, f"{self.write_side}_record_id") for _, c in todo]
        try:
            targets = self.writer.get_many(self.write_entity, target_ids, select=self.write_fields)
        except ConnectorError as error:
            self.batch_failed([(record, coupling, None) for record, coupling in todo], error)
            return
        in_step: list[Coupling] = []
        writes: list[Write] = []
        for (record, coupling), target_id in zip(todo, target_ids, strict=True):
            try:
                write = self.write_for(record, coupling, targets.get(target_id), in_step)
            except ConnectorError as error:  # a lookup that found nothing
                self.record_failed(record, coupling, error)
                continue
            if write is not None:
                writes.append(write)
        self.succeed_many(in_step)
        self.write_many(writes)

    def sync_uncoupled_batch(self, records: list[RemoteRecord]) -> None:
        if self.leaves_uncoupled_out():
            # Only those whose write failed before go on: the others wait for a full run.
            left_out = [r for r in records if r.id not in self.retrying_uncoupled]
            if left_out:
                self.left_uncoupled(len(left_out))
            records = [r for r in records if r.id in self.retrying_uncoupled]
            if not records:
                return
        matching = bool(self.match_read and self.match_write)
        wanted = [
            r for r in records if matching and r.values.get(self.match_read) not in (None, "")
        ]
        candidates: dict[str, list[RemoteRecord]] = {}
        taken: set[str] = set()
        if wanted:
            try:
                found = self.writer.find_many(
                    self.write_entity,
                    self.match_write,
                    [r.values[self.match_read] for r in wanted],
                    select=self.write_fields,
                )
            except ConnectorError as error:
                self.batch_failed([(record, None, None) for record in wanted], error)
                records = [record for record in records if record not in wanted]
                wanted, found = [], []
            taken = (
                set(
                    Coupling.objects.filter(
                        any_of(f"{self.write_side}_record_id", [m.id for m in found]),
                        mapping=self.mapping,
                    ).values_list(f"{self.write_side}_record_id", flat=True)
                )
                if found
                else set()
            )
            for match in found:
                candidates.setdefault(match_key(match.values.get(self.match_write)), []).append(
                    match
                )
        claimed: set[str] = set()
        in_step: list[tuple[RemoteRecord, str]] = []
        writes: list[Write] = []
        for record in records:
            try:
                values = self.values_for(record)
            except ConnectorError as error:  # a lookup that found nothing
                self.record_failed(record, None, error)
                continue
            value = record.values.get(self.match_read) if matching else None
            free = [
                m
                for m in (candidates.get(match_key(value), []) if value not in (None, "") else [])
                if m.id not in taken and m.id not in claimed
            ]
            if len(free) > 1:
                self.record_failed(
                    record,
                    None,
                    ConnectorError(
                        f"Cannot couple: {len(free)} records in the {self.writer.app_name} match "
                        f"{self.match_write} = {value}.",
                        status=409,
                    ),
                )
                continue
            if not free:
                writes.append(Write(record, None, None, values))
                continue
            target = free[0]
            claimed.add(target.id)
            self.matched_now[record.id] = target.id
            changes = self.changes(values, target)
            if changes:
                writes.append(Write(record, None, target.id, changes, target.etag))
            else:
                in_step.append((record, target.id))
        if in_step:
            with transaction.atomic():
                self.job.unchanged += len(in_step) - len(self.couple_many(in_step))
                self.save_progress()
        self.write_many(writes)

    def write_many(self, writes: list[Write]) -> None:
        """Write the records, in bulk where the app takes it; couple and count the ones
        written, and log each one refused with the app's own reason."""
        written: list[tuple[Write, RemoteRecord]] = []
        try:
            self.write_refusing_once(writes, written)
        finally:
            # Whatever stops the job, what was written is coupled.
            self.record_written(written)

    def write_refusing_once(
        self, writes: list[Write], written: list[tuple[Write, RemoteRecord]]
    ) -> None:
        """Send the writes; those the app refuses for their values go once more with the
        fields the mapping clears on a failed sync emptied, and what is refused then fails."""
        refused = self.send(writes, written)
        again, failed = [], []
        for item, error in refused:
            cleared = self.cleared_after(error, item.values)
            if cleared is None:
                failed.append((item, error))
            else:
                again.append(replace(item, values=cleared))
        if again:
            failed += self.send(again, written)
        for item, error in failed:
            sent = self.stored_values(item.kind, item.record, item.values)
            self.record_failed(item.record, item.coupling, error, sent=sent)

    def cleared_after(self, error: ConnectorError, values: dict[str, Any]) -> dict[str, Any] | None:
        """The values to send once more after the app refused them: with the fields the
        mapping clears on a failed sync emptied. None when there is nothing to clear or the
        failure is not about the values."""
        clearable = [p.write for p in self.pairs if p.clear_on_failure and p.write in values]
        if error.transient or error.status not in (400, 422) or not clearable:
            return None
        return {**values, **dict.fromkeys(clearable)}

    def send(
        self, writes: list[Write], written: list[tuple[Write, RemoteRecord]]
    ) -> list[tuple[Write, ConnectorError]]:
        """Send creates and updates, in bulk where the app takes it, else one request each;
        returns the ones the app refused, with its reasons. Records that failed together (a
        request that got no answer, a sign-in failure) fail as one batch."""
        if not self.writer.writes_in_bulk_to(self.write_entity):
            return self.send_one_by_one(writes, written)
        refused: list[tuple[Write, ConnectorError]] = []
        overwrite = self.job.overwrite
        creates = [item for item in writes if item.target_id is None]
        updates = [item for item in writes if item.target_id is not None]
        for group in (creates, updates):
            if not group:
                continue
            try:
                if group is creates:
                    results = self.writer.create_many(
                        self.write_entity, [item.values for item in group]
                    )
                else:
                    results = self.writer.update_many(
                        self.write_entity,
                        [
                            (item.target_id, item.values, None if overwrite else item.etag)
                            for item in group
                            if item.target_id
                        ],
                    )
            except ConnectorError as error:
                # The whole group failed with one error.
                results = [error] * len(group)
            together: dict[int, tuple[ConnectorError, list[Write]]] = {}
            for item, result in zip(group, results, strict=True):
                if not isinstance(result, ConnectorError):
                    written.append((item, result))
                    self.transient_in_a_row = 0
                elif result.transient or result.is_sign_in_failure or result.is_missing_privilege:
                    together.setdefault(id(result), (result, []))[1].append(item)
                else:
                    refused.append((item, result))
            # An app that asks to slow down, or a failure that stops the job, goes first: the
            # job pauses or stops before any record is logged as failed.
            for failure, items in sorted(
                together.values(), key=lambda pair: not _stops_the_job(pair[0])
            ):
                self.batch_failed(
                    [
                        (i.record, i.coupling, self.stored_values(i.kind, i.record, i.values))
                        for i in items
                    ],
                    failure,
                )
        return refused

    def send_one_by_one(
        self, writes: list[Write], written: list[tuple[Write, RemoteRecord]]
    ) -> list[tuple[Write, ConnectorError]]:
        """One request a record. A failure counts towards stopping the job as it happens, so
        that an app that is down or refuses the sign-in stops it at once; the records it
        refused for their values are returned for another try."""
        refused: list[tuple[Write, ConnectorError]] = []
        for item in writes:
            result = self.write_one(item)
            if not isinstance(result, ConnectorError):
                written.append((item, result))
                self.transient_in_a_row = 0
            elif result.transient or result.status not in (400, 422):
                sent = self.stored_values(item.kind, item.record, item.values)
                self.record_failed(item.record, item.coupling, result, sent=sent)
            else:
                refused.append((item, result))
        return refused

    def write_one(self, item: Write) -> RemoteRecord | ConnectorError:
        try:
            if item.target_id is None:
                return self.writer.create(self.write_entity, item.values)
            etag = None if self.job.overwrite else item.etag
            return self.writer.update(self.write_entity, item.target_id, item.values, etag=etag)
        except ConnectorError as error:
            return error

    def record_written(self, written: list[tuple[Write, RemoteRecord]]) -> None:
        """Couple and count the records written, in the transaction that saves the job's
        progress: a job that stops after it still knows what it wrote."""
        if not written:
            return
        in_step = [
            item.coupling
            for item, _ in written
            if item.coupling is not None and item.target_id is not None
        ]
        restored = [
            (item.coupling, target)
            for item, target in written
            if item.coupling is not None and item.target_id is None
        ]
        new = [(item, target) for item, target in written if item.coupling is None]
        with transaction.atomic():
            self.edits.written([item.record.id for item, _ in written])
            missed = self.couple_many([(item.record, target.id) for item, target in new])
            self.job.modified += len(in_step)
            for coupling, target in restored:
                # The deleted record is written anew: the coupling now names the new one.
                Coupling.objects.filter(pk=coupling.pk).update(
                    **{
                        f"{self.write_side}_record_id": target.id,
                        f"{self.write_side}_exists": True,
                    }
                )
                self.job.inserted += 1
                in_step.append(coupling)
            for item, _ in new:
                if item.record.id in missed:
                    continue
                if item.target_id is None:
                    self.job.inserted += 1
                else:
                    self.job.modified += 1
            self.succeed_many(in_step)
            self.save_progress()

    def couple_many(self, pairs: list[tuple[RemoteRecord, str]]) -> set[str]:
        """Store new couplings ((record read, id of the record written) pairs), synchronized
        now, with one INSERT of arrays: a few parameters whatever the number of couplings.

        A record coupled meanwhile (by a person, on the Couple page) keeps that coupling: the
        record is logged as failed instead of being coupled twice. Returns the ids (read) of
        the records not coupled."""
        if not pairs:
            return set()
        read_column = f"{self.read_side}_record_id"
        write_column = f"{self.write_side}_record_id"
        other = "from_destination" if self.suffix == "to_destination" else "to_destination"
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Coupling._meta.db_table} (
                    mapping_id, {read_column}, {write_column}, last_synced_{self.suffix}_at,
                    last_result_{self.suffix}, last_job_{self.suffix}_id, last_result_{other},
                    is_skipped, failure_count, last_error_message, transient_failure_count,
                    created_at
                )
                SELECT %(mapping)s, pair.read_id, pair.write_id, %(now)s, %(success)s, %(job)s,
                       '', false, 0, '', 0, %(now)s
                FROM unnest(%(read_ids)s::varchar[], %(write_ids)s::varchar[])
                     AS pair(read_id, write_id)
                ON CONFLICT DO NOTHING
                RETURNING {read_column}, id
                """,  # noqa: S608 - the names are the model's columns, the values parameters
                {
                    "mapping": self.mapping.pk,
                    "now": timezone.now(),
                    "success": Coupling.Result.SUCCESS,
                    "job": self.job.pk,
                    "read_ids": [record.id for record, _ in pairs],
                    "write_ids": [write_id for _, write_id in pairs],
                },
            )
            stored = dict(cursor.fetchall())
        self.coupled_now += list(stored.items())
        missed = set()
        for record, write_id in pairs:
            if record.id not in stored:
                missed.add(record.id)
                self.coupled_meanwhile(record, write_id)
        return missed

    def coupled_meanwhile(self, record: RemoteRecord, write_id: str) -> None:
        self.fail(
            record,
            None,
            ConnectorError(
                f"The {self.read_entity} record {record.id} or the {self.write_entity} record "
                f"{write_id} was coupled meanwhile under {self.mapping.name}, so they were not "
                "coupled to each other.",
                status=409,
            ),
            category=Category.CONFLICT,
        )

    def save_progress(self) -> None:
        if self.share is None:
            self.job.save(update_fields=PROGRESS_FIELDS)

    def save_share(self) -> None:
        """A share's progress, saved when a page is done: its counts and the key it read up
        to go together, so that a pass resumed after its worker died reads the unfinished
        page again from the counts before it (what that page wrote is coupled, and counted
        unchanged when read again)."""
        assert self.share is not None
        PageShare.objects.filter(pk=self.share.pk).update(
            **{name: getattr(self.job, name) for name in PageShare.COUNTS},
            done_until=self.share.done_until,
            newest=self.share.newest,
            heartbeat_at=timezone.now(),
        )

    def succeed_many(self, couplings: list[Coupling]) -> None:
        """What `succeed` does, for many couplings in one statement."""
        if not couplings:
            return
        Coupling.objects.filter(any_of("pk", [c.pk for c in couplings])).update(
            **{
                f"last_synced_{self.suffix}_at": timezone.now(),
                f"last_result_{self.suffix}": Coupling.Result.SUCCESS,
                f"last_job_{self.suffix}": self.job,
            },
            failure_count=0,
            last_error_message="",
            transient_failure_count=0,
            retry_not_before=None,
        )
        direction = None if self.job.overwrite else self.reader.app_name
        settled = [coupling.pk for coupling in couplings if _had_entries(coupling)]
        if settled:
            resolve_synchronized(settled, direction, self.job.pk)

    def record_failed(
        self,
        record: RemoteRecord,
        coupling: Coupling | None,
        error: ConnectorError,
        sent: dict[str, Any] | None = None,
    ) -> None:
        self.stop_if_hopeless(error)
        self.fail(record, coupling, error, sent=sent)

    def batch_failed(
        self,
        items: list[tuple[RemoteRecord, Coupling | None, dict[str, Any] | None]],
        error: ConnectorError,
    ) -> None:
        """A call for a whole batch failed: it counts once towards stopping the job, and
        each record of the batch failed with it."""
        self.stop_if_hopeless(error)
        for record, coupling, sent in items:
            self.fail(record, coupling, error, sent=sent)

    def stop_if_hopeless(self, error: ConnectorError) -> None:
        # These would fail every record the same way: one entry for the job says it. An app
        # that asks to slow down fails nothing: the job pauses.
        if _stops_the_job(error):
            raise JobFailure(error, self.writer.app_name, self.write_entity) from error
        if error.transient:
            # Retried already; one record is logged, an app that stays down stops the job.
            self.transient_in_a_row += 1
            if self.transient_in_a_row >= TRANSIENT_FAILURES_BEFORE_STOP:
                raise JobFailure(error, self.writer.app_name, self.write_entity) from error

    # -- one record --------------------------------------------------------------------
    def values_for(self, record: RemoteRecord) -> dict[str, Any]:
        """The values to write for the record; a lookup that finds nothing raises."""
        values = record.values
        lookups = self.lookups
        computed = {
            pair.write: lookups.value(pair, record) if pair.resolved else pair.value(values)
            for pair in self.pairs
        }
        # The rules in force transform them (sync.transformations); what a person typed on
        # the record's entry, while its source values are unchanged, has the last word.
        return self.edits.apply(record, self.rules.apply(computed))

    def changes(self, values: dict[str, Any], target: RemoteRecord) -> dict[str, Any]:
        """The values that differ from what the record written to holds."""
        return {k: v for k, v in values.items() if not same_value(self.held(target, k), v)}

    def held(self, target: RemoteRecord, name: str) -> Any:
        pair = self.writing.get(name)
        if pair is None:
            return target.values.get(name)
        return self.lookups.held(pair, target.values) if pair.lookup else pair.held(target.values)

    def leaves_uncoupled_out(self) -> bool:
        """Whether records not coupled are left out: a modified-records run of a mapping that
        synchronizes coupled records only."""
        return self.mapping.sync_only_coupled_records and not (self.full or self.chosen)

    def left_uncoupled(self, count: int) -> None:
        self.job.skipped += count
        self.job.not_coupled += count

    def only_overlapped(
        self, record: RemoteRecord, last_failed_job_id: int | None, last_sync: datetime | None
    ) -> bool:
        """Whether a coupled record was read again only because of the watermark overlap
        (or, in a full sync, is as it was synchronized): nothing new on this side, and
        writing it would overwrite a newer change on the other. `needs_target`'s shortcut,
        decided before the coupling is loaded."""
        if self.job.overwrite or last_failed_job_id == self.job.pk:
            return False
        return bool(
            last_sync
            and record.modified_at
            and record.modified_at <= last_sync
            and record.id not in self.checks_deletion
        )

    def needs_target(self, record: RemoteRecord, coupling: Coupling) -> bool:
        """Whether the coupled record must be read to know what to write."""
        if coupling.last_failed_job_id == self.job.pk:
            # The other direction of this job already failed it and logged why.
            self.job.skipped += 1
            return False
        last_sync = last_synced(coupling)
        if self.job.overwrite:
            last_sync = None  # a person chose this direction: no shortcut, no conflict
        if last_sync and record.modified_at and record.modified_at <= last_sync:
            if record.id in self.checks_deletion:
                self.only_checked.add(record.id)
                return True
            # Read again only because of the watermark overlap: nothing new on this side,
            # and writing it would overwrite a newer change on the other.
            self.job.unchanged += 1
            return False
        return True

    def write_for(
        self,
        record: RemoteRecord,
        coupling: Coupling,
        target: RemoteRecord | None,
        in_step: list[Coupling],
    ) -> Write | None:
        """What to write over the coupled record `target` (or in its place, when it is gone
        and the rules restore it); None when nothing is to be written (a record already in
        step is added to `in_step`; a deleted one and a conflict are dealt with here)."""
        target_id = getattr(coupling, f"{self.write_side}_record_id")
        values = self.values_for(record)
        if target is None:
            return self.coupled_record_missing(record, coupling, values)
        if record.id in self.only_checked:
            # Its coupled record is there after all (the deletion was of another record, or
            # it was restored): nothing new on this side to write over it.
            self.job.unchanged += 1
            return None
        changes = self.changes(values, target)
        if not changes:
            self.job.unchanged += 1
            in_step.append(coupling)
            return None
        if not self.job.overwrite and self.changed_on_both_sides(record, target, coupling):
            rule = self.mapping.update_conflict_resolution
            wins = {
                TO_DESTINATION: TableMapping.UpdateConflictResolution.SEND_UPDATE,
                FROM_DESTINATION: TableMapping.UpdateConflictResolution.GET_UPDATE,
            }
            if rule == TableMapping.UpdateConflictResolution.NONE:
                self.fail(
                    record,
                    coupling,
                    ConnectorError(
                        f"Cannot update the {self.write_entity} record {target_id} because it has "
                        f"been modified in both {self.reader.app_name} and {self.writer.app_name} "
                        "since the last synchronization.",
                        status=409,
                    ),
                    category=Category.CONFLICT,
                    sent=self.stored_values(
                        "conflict",
                        record,
                        changes,
                        held={p.write: p.held(target.values) for p in self.pairs},
                    ),
                )
                return None
            if rule != wins[self.direction]:
                self.job.unchanged += 1  # the other side wins; its pass carries the values
                return None
        return Write(record, coupling, target_id, changes, target.etag)

    def changed_on_both_sides(
        self, record: RemoteRecord, target: RemoteRecord, coupling: Coupling
    ) -> bool:
        if self.mapping.direction != TableMapping.Direction.BIDIRECTIONAL:
            return False
        last = last_synced(coupling)
        if not last or not record.modified_at or not target.modified_at:
            return False
        return record.modified_at > last and target.modified_at > last

    def coupled_record_missing(
        self, record: RemoteRecord, coupling: Coupling, values: dict
    ) -> Write | None:
        rule = self.mapping.deletion_conflict_resolution
        if rule == TableMapping.DeletionConflictResolution.REMOVE_COUPLING:
            coupling.delete()
            self.job.deleted += 1
            return None
        # A person who chose to write this record over the other restores it (Restore): it
        # is created anew, and the coupling then names the new record.
        if rule == TableMapping.DeletionConflictResolution.RESTORE_RECORDS or self.job.overwrite:
            return Write(record, coupling, None, values)
        # What the job saw, so Restore and Delete can be offered on the entry.
        setattr(coupling, f"{self.read_side}_exists", True)
        setattr(coupling, f"{self.write_side}_exists", False)
        coupling.existence_checked_at = timezone.now()
        name = record.values.get(self.match_read) if self.match_read else None
        self.fail(
            record,
            coupling,
            ConnectorError(
                f"The {self.read_entity} record {name or record.id} cannot be updated because it "
                "is coupled to a deleted record.",
                status=404,
            ),
            category=Category.COUPLED_RECORD_DELETED,
        )
        return None

    def fail(
        self,
        record: RemoteRecord,
        coupling: Coupling | None,
        error: ConnectorError,
        *,
        category: str | None = None,
        sent: dict[str, Any] | None = None,
    ) -> None:
        message = error.message
        category = category or classify(error)
        log = True
        if coupling is not None:
            first_in_job = coupling.last_failed_job_id != self.job.pk
            if error.transient:
                # A connection that failed even after retries is not the record's fault: it
                # does not count towards skipping the record. It is tried again at later runs,
                # backing off, and becomes an entry only when it keeps failing.
                policy = self.policy(category, message + RUNS_IN_A_ROW.format(1))
                if first_in_job:
                    coupling.transient_failure_count += 1
                    coupling.retry_not_before = timezone.now() + record_retry_delay(
                        coupling.transient_failure_count, policy.retry_delay_seconds
                    )
                # The first failure and the automatic retries stay out of triage.
                log = coupling.transient_failure_count > policy.transient_retries
                if log:
                    message += RUNS_IN_A_ROW.format(coupling.transient_failure_count)
            elif first_in_job:
                repeated = coupling.last_error_message == message[:2048]
                coupling.failure_count = coupling.failure_count + 1 if repeated else 1
                coupling.last_error_message = message[:2048]
                coupling.transient_failure_count = 0
                coupling.retry_not_before = None
                policy = self.policy(category, message)
                threshold = policy.skip_after
                if coupling.failure_count >= threshold:
                    coupling.is_skipped = True
                    coupling.skipped_after = threshold
                    coupling.skipped_by_problem = policy.skip_problem_id
                    message += SKIP_NOTE
            coupling.last_failed_job_id = self.job.pk
            setattr(coupling, f"last_result_{self.suffix}", Coupling.Result.FAILURE)
            setattr(coupling, f"last_job_{self.suffix}_id", self.job.pk)
            coupling.save()
        if not log:
            self.job.retrying += 1
            return
        self.job.failed += 1
        target_id = getattr(coupling, f"{self.write_side}_record_id", "") if coupling else ""
        source_url = self.reader.record_url(self.read_entity, record.id)
        target_url = self.writer.record_url(self.write_entity, target_id) if target_id else ""
        # A failed create that a scheduled run tries again (nothing skips a record that is
        # not coupled) and that fails the same way is one more attempt of its open entry.
        again = coupling is None and record.id in self.retrying_uncoupled
        once = self.policy(category, message).entry_logging == EntryLogging.ONCE
        logged = self.attempts if once or again else self.errors
        logged.append(
            SyncError(
                created_at=timezone.now(),
                job=self.job,
                mapping=self.mapping,
                coupling=coupling,
                category=category,
                source_app=self.reader.app_name,
                source_entity=self.read_entity,
                source_record_id=record.id,
                source_url=source_url,
                destination_app=self.writer.app_name,
                destination_entity=self.write_entity,
                destination_record_id=target_id,
                destination_url=target_url,
                message=message[: SyncError.MESSAGE_MAX_LENGTH],
                detail=error.detail,
                sent_values=sent,
                **_blocked_by(error),
            )
        )

    def policy(self, category: str, message: str) -> "Policy":
        """The policies for a record failing with this message: its problem's where it sets
        one, else the mapping's."""
        key = fingerprint(self.mapping.pk, category, message)
        if key not in self.problem_policies:
            problem = (
                ErrorGroup.objects.filter(fingerprint=key)
                .only(
                    "pk",
                    "skip_after_failures",
                    "entry_logging",
                    "transient_retries",
                    "retry_delay_seconds",
                )
                .first()
            )
            if problem is not None and problem.skip_after_failures is not None:
                skip_after, skip_problem = problem.skip_after_failures, problem.pk
            else:
                skip_after, skip_problem = self.mapping.skip_after_failures, None
            mapping = self.mapping
            self.problem_policies[key] = Policy(
                skip_after,
                skip_problem,
                _own(problem, "entry_logging") or mapping.entry_logging,
                _own(problem, "transient_retries", mapping.transient_retries),
                _own(problem, "retry_delay_seconds", mapping.retry_delay_seconds),
            )
        return self.problem_policies[key]

    def stored_values(
        self,
        kind: str,
        record: RemoteRecord,
        sent: dict[str, Any],
        held: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What the entry keeps to compare: the values sent and the mapped values read."""
        read = {p.read: record.values.get(p.read) for p in self.pairs if not p.has_constant}
        return sent_values(kind, self.direction, sent, read, held)


def _own(problem: ErrorGroup | None, name: str, otherwise: Any = None) -> Any:
    """The problem's own policy value, or `otherwise` where it sets none."""
    value = getattr(problem, name, None)
    return otherwise if value is None else value


def create_counterpart(
    mapping: TableMapping,
    record: RemoteRecord,
    direction: str,
    source: Connector,
    destination: Connector,
) -> RemoteRecord:
    """Create the record's counterpart on the other side from its values by the mapping's
    field mappings, as a full synchronization creates one (fields cleared on a refused value
    included). Coupling it is up to the caller."""
    # The pass is used for its write path only: the job is never saved.
    job = SyncJob(mapping=mapping, kind=SyncJob.Kind.COUPLED, direction=direction)
    writer = Pass(job, mapping, source, destination, direction)
    values = writer.values_for(record)
    try:
        return writer.writer.create(writer.write_entity, values)
    except ConnectorError as error:
        cleared = writer.cleared_after(error, values)
        if cleared is None:
            raise
        return writer.writer.create(writer.write_entity, cleared)


# -- parallel page passes ----------------------------------------------------------------
# How often the job's worker looks at its shares while it waits for them.
SHARE_POLL_SECONDS = 0.2
SHARE_TASK = "sync.run_page_share"


def page_passes(
    job: SyncJob, mapping: TableMapping, source: Connector, destination: Connector, direction: str
) -> int:
    """How many page passes a direction of the job is shared out to: the read side's
    `page_passes` setting (else SYNC_PAGE_PASSES) for a full job of every record whose read
    side keys its records with GUIDs; 1 (one pass, in this worker) otherwise."""
    if job.kind != SyncJob.Kind.FULL or job.coupling_ids or job.record_ids:
        return 1
    forward = direction == TO_DESTINATION
    side = "source" if forward else "destination"
    options = getattr(mapping.connection, f"{side}_settings") or {}
    try:
        count = int(options.get("page_passes", settings.SYNC_PAGE_PASSES))
    except (TypeError, ValueError):
        count = 1
    if count <= 1:
        return 1
    # The key ranges are slices of the GUID space: one record tells whether the keys are.
    reader = source if forward else destination
    entity = mapping.source_entity if forward else mapping.destination_entity
    condition = mapping.source_filter if forward else mapping.destination_filter
    try:
        first = next(iter(reader.list_changes(entity, None, page_size=1, condition=condition)))
    except (StopIteration, ConnectorError):
        # Nothing to share out, or an app that fails the read: one pass meets it, and
        # stops the job as it does with one pass.
        return 1
    if not first or not keyranges.is_guid(first[0].id):
        return 1
    return min(count, keyranges.MAX_SHARES)


def run_shared(
    job: SyncJob,
    mapping: TableMapping,
    source: Connector,
    destination: Connector,
    direction: str,
    count: int,
) -> None:
    """One direction of a full job, shared out to `count` page passes by ranges of the read
    side's keys: the others are queued for other workers, this worker runs the first range,
    then any range no worker has started yet, and waits for the rest. The job's counts are
    their sum; the first share that failed fails the job with its message."""
    assert job.lease_token is not None
    shares = PageShare.objects.bulk_create(
        PageShare(job=job, direction=direction, number=number, low=low, high=high, lease=token)
        for number, (low, high), token in zip(
            range(count), keyranges.guid_ranges(count), [job.lease_token] * count, strict=True
        )
    )
    logger.info("Shared the %s pass out to %s page passes.", direction, count)
    for share in shares[1:]:
        # Without a queue, this worker runs it once its own is done.
        with suppress(queue.QueueUnavailable):
            queue.send(SHARE_TASK, share.pk)
    base = {name: getattr(job, name) for name in PageShare.COUNTS}
    run_share(shares[0].pk, source=source, destination=destination)
    while True:
        pending = PageShare.objects.filter(job=job, direction=direction).exclude(
            status__in=PageShare.FINISHED
        )
        waiting = list(pending.filter(status=PageShare.Status.QUEUED).values_list("pk", flat=True))
        for pk in waiting:
            run_share(pk, source=source, destination=destination)
        if not waiting and not pending.exists():
            break
        _add_up_shares(job, direction, base)
        work.resume_stalled(
            pending.filter(status=PageShare.Status.RUNNING), SHARE_TASK, _share_given_up
        )
        time.sleep(SHARE_POLL_SECONDS)
    _add_up_shares(job, direction, base)
    done = list(PageShare.objects.filter(job=job, direction=direction))
    failed = [share for share in done if share.status == PageShare.Status.FAILED]
    if failed:
        raise _share_failure(failed[0])
    newest = max((share.newest for share in done if share.newest), default=None)
    watermark = f"{'source' if direction == TO_DESTINATION else 'destination'}_synced_until"
    newest = max(filter(None, [newest, getattr(mapping, watermark)]), default=None)
    setattr(mapping, watermark, newest)
    TableMapping.objects.filter(pk=mapping.pk).update(**{watermark: newest})


def _add_up_shares(job: SyncJob, direction: str, base: dict[str, int]) -> None:
    """The job's counts: what it had before the direction was shared out, and its shares'."""
    sums = PageShare.objects.filter(job=job, direction=direction).aggregate(
        **{name: Sum(name) for name in PageShare.COUNTS}
    )
    for name in PageShare.COUNTS:
        setattr(job, name, base[name] + (sums[name] or 0))
    job.save(update_fields=PROGRESS_FIELDS)


def _share_failure(share: PageShare) -> JobFailure:
    """What stopped a share, as it stops the job: a failure fails it, an app's throttling
    pauses it, as they would a pass run in the job's own worker."""
    failure = share.failure or {}
    error = ConnectorError(
        share.message,
        status=failure.get("status"),
        code=failure.get("code", ""),
        detail=failure.get("detail", ""),
        transient=bool(failure.get("transient")),
    )
    if failure.get("resume_after") is not None:
        error = Throttled(
            share.message,
            resume_after=float(failure["resume_after"]),
            cause=error,
            app_name=failure.get("app", ""),
        )
    app, entity = failure.get("app", ""), failure.get("entity", "")
    return JobFailure(error, app, entity, failure.get("category"))


def _share_given_up(share: Model) -> None:
    assert isinstance(share, PageShare)
    _finish_share(
        share.pk,
        PageShare.Status.FAILED,
        work.stopped_message(share.resumes, f"page pass {share.number + 1} of job #{share.job_id}"),
    )


def _finish_share(pk: int, status: str, message: str = "", failure: dict | None = None) -> None:
    PageShare.objects.filter(pk=pk).update(
        status=status, message=message[:2000], failure=failure or {}, finished_at=timezone.now()
    )


def run_share(
    share_id: int, *, source: Connector | None = None, destination: Connector | None = None
) -> None:
    """Run one page pass of a shared job, in the worker that takes it first (a share already
    taken, or finished, is left alone), under the lease of its job: once a newer job of the
    mapping took the lease over, it writes nothing more."""
    with work.worked_on(PageShare, share_id) as mine:
        if not mine:
            return
        share = PageShare.objects.select_related("job__mapping__connection").get(pk=share_id)
        if share.status in PageShare.FINISHED:
            return
        job = share.job
        mapping = job.mapping
        if job.is_finished:
            _finish_share(share.pk, PageShare.Status.FAILED, f"Job #{job.pk} has finished.")
            return
        now = timezone.now()
        PageShare.objects.filter(pk=share.pk).update(
            status=PageShare.Status.RUNNING,
            worker=f"{socket.gethostname()}:{os.getpid()}",
            started_at=share.started_at or now,
            heartbeat_at=now,
        )
        opened: list[Connector] = []
        if source is None:
            opened.append(source := connector_for(mapping.connection, "source"))
        if destination is None:
            opened.append(destination := connector_for(mapping.connection, "destination"))
        try:
            with leases.fenced(mapping.pk, share.lease):
                Pass(job, mapping, source, destination, share.direction, share=share).run()
        except leases.LeaseLost:
            _finish_share(share.pk, PageShare.Status.FAILED, LEASE_LOST_BY_SHARE)
        except JobFailure as failure:
            error = failure.error
            _finish_share(
                share.pk,
                PageShare.Status.FAILED,
                error.message,
                {
                    "status": error.status,
                    "code": error.code,
                    "detail": error.detail[:4000],
                    "transient": error.transient,
                    "app": failure.app_name,
                    "entity": failure.entity,
                    "category": failure.category,
                    "resume_after": getattr(error, "resume_after", None),
                },
            )
        except Exception as exc:
            if connection_lost(exc):
                raise  # the worker's task tries again; the share is resumed where it stopped
            logger.exception("Page pass %s of job %s failed", share.number, job.pk)
            _finish_share(
                share.pk,
                PageShare.Status.FAILED,
                f"The job stopped: {exc}",
                {"detail": traceback.format_exc()[:4000]},
            )
        else:
            _finish_share(share.pk, PageShare.Status.SUCCEEDED)
        finally:
            for connector in opened:
                connector.close()


LEASE_LOST_BY_SHARE = "A newer job of the mapping took it over: this page pass stopped writing."


def run_share_in_worker(share_id: int) -> None:
    """run_share, for a worker that took the share's task: what it logs names the job and
    is kept with the job's log."""
    share = PageShare.objects.select_related("job__mapping__connection").filter(pk=share_id).first()
    if share is None:
        return  # its job was deleted meanwhile
    job, mapping = share.job, share.job.mapping
    with job_context(job, mapping, page_pass=share.number + 1), joblog.kept(job):
        run_share(share_id)
