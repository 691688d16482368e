"""Actions on sync error entries: each state change is one function that also keeps its record.

The console, the Django admin, the command line and Celery tasks all call these.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit import services as audit
from sync.models import TableMapping
from syncconsole import metrics, queue, work
from syncconsole.permissions import is_sync_admin
from syncconsole.queue import QueueUnavailable

from . import blocking, partitions
from .grouping import SNOOZE_ENDED_NOTE, reopen_snoozed_entries
from .models import (
    SETUP_CATEGORIES,
    Category,
    ErrorGroup,
    GroupDay,
    Status,
    SyncError,
    SyncErrorCleanup,
)
from .pacing import Pace
from .status import STATUS_NOTE_MAX_LENGTH, change_entries, change_problems

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanupPreview:
    """What a clean-up would delete if it ran now."""

    action: str
    days: int | None
    cutoff: datetime
    total: int
    open: int


# What a person may ask of a clean-up, wherever they ask it (the console, the Django admin,
# the API, cleanup_sync_errors): the days of "Delete Entries Older than N Days" and who may
# delete all entries.
MAX_CLEANUP_DAYS = 3650
DEFAULT_CLEANUP_DAYS = 7
DAYS_MESSAGE = f"The number of days must be a whole number from 1 to {MAX_CLEANUP_DAYS}."
ALL_MESSAGE = "Delete All Entries needs the Sync administrators role."


class CleanupRefused(Exception):
    """The clean-up cannot be done as asked; `forbidden` when it is the person's role that
    does not allow it."""

    def __init__(self, message: str, *, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden


def cleanup_days(raw: str | int | None) -> int:
    """The days of "Delete Entries Older than N Days", as typed; 7 when not given."""
    if raw is None or raw == "":
        return DEFAULT_CLEANUP_DAYS
    text = str(raw).strip()
    if not (text.isascii() and text.isdecimal()) or not 1 <= int(text) <= MAX_CLEANUP_DAYS:
        raise CleanupRefused(DAYS_MESSAGE)
    return int(text)


def check_cleanup(days: int | None, user=None) -> None:
    """Refuse what no one may ask (days out of range), and Delete All Entries to a person
    without the Sync administrators role. Without a user, it is the system or a command
    run by whoever runs the server."""
    if days is None:
        if user is not None and not is_sync_admin(user):
            raise CleanupRefused(ALL_MESSAGE, forbidden=True)
    elif isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_CLEANUP_DAYS:
        raise CleanupRefused(DAYS_MESSAGE)


def cleanup_cutoff(
    days: int | None, now: datetime | None = None, *, whole_days: bool = False
) -> datetime:
    """Entries created before the returned moment are deleted; None days means all of them.
    With `whole_days` (the retention schedule), the cut-off is the start of the day it falls
    on, keeping at most a day more than `days`: only whole day partitions go, without a
    row-level delete."""
    now = now or timezone.now()
    if days is None:
        return now
    cutoff = now - timedelta(days=days)
    if whole_days:
        cutoff = partitions.day_bounds(partitions.day_of(cutoff))[0]
    return cutoff


def at_day_start(moment: datetime) -> bool:
    return partitions.day_bounds(partitions.day_of(moment))[0] == moment


def entries_before(cutoff: datetime) -> QuerySet[SyncError]:
    return SyncError.objects.filter(created_at__lt=cutoff)


def preview_cleanup(
    days: int | None, now: datetime | None = None, *, whole_days: bool = False
) -> CleanupPreview:
    """Counted from the problems' day figures for the whole days before the cut-off; only
    the day that straddles it and the entries of no problem are counted row by row."""
    cutoff = cleanup_cutoff(days, now, whole_days=whole_days)
    cut_day = partitions.day_of(cutoff)
    day_start = partitions.day_bounds(cut_day)[0]
    counts = GroupDay.objects.filter(day__lt=cut_day).aggregate(
        total=Coalesce(Sum("entries"), 0), open=Coalesce(Sum("open"), 0)
    )
    rows = (
        entries_before(cutoff)
        .filter(Q(created_at__gte=day_start) | Q(group__isnull=True))
        .aggregate(total=Count("pk"), open=Count("pk", filter=Q(status=Status.OPEN)))
    )
    action = SyncErrorCleanup.Action.ALL if days is None else SyncErrorCleanup.Action.OLDER_THAN
    return CleanupPreview(
        action,
        days,
        cutoff,
        counts["total"] + rows["total"],
        counts["open"] + rows["open"],
    )


def request_cleanup(
    *,
    days: int | None,
    trigger: str,
    user=None,
    run_in_background: bool | None = None,
) -> SyncErrorCleanup:
    """Delete the entries older than `days` (all when None), recording who asked and how many.

    Small clean-ups run at once. Above SYNC_ERROR_CLEANUP_ASYNC_THRESHOLD entries (or when
    `run_in_background` is True) the deletion is handed to a Celery worker and the returned
    record shows its progress. Raises QueueUnavailable when the worker cannot be reached; the
    record then says so and nothing is deleted. CleanupRefused says why a person's request
    is refused (see check_cleanup); the retention schedule keeps its own days.
    """
    scheduled = trigger == SyncErrorCleanup.Trigger.SCHEDULE
    if not scheduled:
        check_cleanup(days, user)
    elif days is not None and days < 0:
        raise ValueError("days must be zero or more")
    # The schedule cuts at the start of a day, so that it only drops whole days; a person
    # asking for N days gets the exact cut-off they asked for.
    whole_days = scheduled and days is not None
    preview = preview_cleanup(days, whole_days=whole_days)
    cleanup = SyncErrorCleanup.objects.create(
        action=preview.action,
        days=days,
        cutoff=preview.cutoff,
        trigger=trigger,
        requested_by=user if user is not None and user.is_authenticated else None,
        expected_count=preview.total,
        open_count=preview.open,
    )
    what = "Delete All Entries" if days is None else f"Delete Entries Older than {days} Days"
    audit.record(
        audit.Action.ENTRIES_DELETED,
        f"{what}: {preview.total:,} entries ({preview.open:,} open) before "
        f"{preview.cutoff:%Y-%m-%d %H:%M} UTC"
        + (" (the start of a day: whole days only)" if whole_days else ""),
        user=user,
        actor_label=f"system ({cleanup.get_trigger_display().lower()})",
        target=cleanup,
        object_label=what,
        details={
            "days": days,
            "cutoff": preview.cutoff.isoformat(),
            "whole_days": whole_days,
            "trigger": trigger,
            "expected": preview.total,
            "open": preview.open,
        },
    )
    if run_in_background is None:
        run_in_background = preview.total > settings.SYNC_ERROR_CLEANUP_ASYNC_THRESHOLD
    if not run_in_background:
        return run_cleanup(cleanup.pk)

    try:
        queue.send("errors.run_sync_error_cleanup", cleanup.pk)
    except QueueUnavailable as exc:
        cleanup.state = SyncErrorCleanup.State.FAILED
        cleanup.finished_at = timezone.now()
        cleanup.error_message = "The task queue is unavailable; nothing was deleted."
        cleanup.save(update_fields=["state", "finished_at", "error_message"])
        raise QueueUnavailable(cleanup.error_message) from exc
    return cleanup


def _delete_batch(
    before: datetime, size: int, since: datetime | None
) -> tuple[int, datetime | None]:
    """Delete the oldest `size` entries from `since` (from the first when None) to before
    `before` (a few more when several share the last one's time); the delete trigger takes
    them off their problems' figures. Returns how many went and the time of the last one,
    None when none are left.

    The batch is a range of the time index, read and deleted by that index: never a scan of
    the whole straddling day, nor of the index entries the batches before it left behind
    (they stay until vacuum). Its problems are locked first, in the order writers lock
    them (by fingerprint), so that a writer adding entries to the same problems and records
    waits for the batch or the batch for it, never each for the other."""
    table = SyncError._meta.db_table
    bounds, params = "created_at < %s", [before]
    if since is not None:
        bounds, params = f"{bounds} AND created_at >= %s", [*params, since]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT created_at FROM {table} WHERE {bounds}"  # noqa: S608 - our table
            " ORDER BY created_at OFFSET %s LIMIT 1",
            [*params, size - 1],
        )
        boundary = cursor.fetchone()
        if boundary:
            bounds, params = f"{bounds} AND created_at <= %s", [*params, *boundary]
        cursor.execute(
            f"SELECT id FROM errors_errorgroup WHERE id IN (SELECT DISTINCT group_id FROM {table}"  # noqa: S608 - our table, fixed conditions
            f" WHERE {bounds}) ORDER BY fingerprint FOR UPDATE",
            params,
        )
        cursor.execute(f"DELETE FROM {table} WHERE {bounds}", params)  # noqa: S608 - our table
        deleted = cursor.rowcount
    return deleted, boundary[0] if boundary else None


def run_cleanup(cleanup_id: int) -> SyncErrorCleanup:
    """Delete a clean-up's entries in small batches, each its own short transaction.

    Short transactions keep row locks brief on a big table, so the console stays usable and
    ingestion goes on meanwhile. Safe to run again: a finished clean-up is left as it is, an
    interrupted one goes on from where it stopped, and one another worker runs is left to it.
    """
    with work.worked_on(SyncErrorCleanup, cleanup_id) as mine:
        if not mine:
            return SyncErrorCleanup.objects.get(pk=cleanup_id)
        return _run_cleanup(cleanup_id)


def resume_stalled_cleanups() -> int:
    """Clean-ups left running by a worker that died: queued again to go on from where they
    stopped, or failed once they were resumed WORK_RESUMES times. Returns how many."""
    running = SyncErrorCleanup.objects.filter(state=SyncErrorCleanup.State.RUNNING)
    return work.resume_stalled(running, "errors.run_sync_error_cleanup", _fail_stalled)


def _fail_stalled(cleanup) -> None:
    cleanup.state = SyncErrorCleanup.State.FAILED
    cleanup.finished_at = timezone.now()
    cleanup.error_message = (
        f"Stopped after {cleanup.deleted_count} entries: "
        f"{work.stopped_message(cleanup.resumes, 'clean-up')}"
    )
    cleanup.save(update_fields=["state", "finished_at", "error_message"])


def _run_cleanup(cleanup_id: int) -> SyncErrorCleanup:
    with transaction.atomic():
        cleanup = SyncErrorCleanup.objects.select_for_update().get(pk=cleanup_id)
        if cleanup.is_finished:
            return cleanup
        cleanup.state = SyncErrorCleanup.State.RUNNING
        cleanup.started_at = cleanup.started_at or timezone.now()
        cleanup.heartbeat_at = timezone.now()
        cleanup.save(update_fields=["state", "started_at", "heartbeat_at"])

    # The first batch is small: the pages it needs are not cached yet. Each batch is paced
    # on its time and on the WAL it writes, whose flush its commit waits for.
    pace = Pace(
        settings.SYNC_ERROR_CLEANUP_BATCH_SIZE,
        settings.SYNC_ERROR_CLEANUP_BATCH_MS,
        size=1000,
        wal_bytes=int(settings.SYNC_ERROR_CLEANUP_BATCH_WAL_KB * 1024),
    )

    def progress(deleted: int) -> None:
        cleanup.deleted_count += deleted
        cleanup.heartbeat_at = timezone.now()
        cleanup.save(update_fields=["deleted_count", "heartbeat_at"])
        metrics.cleanup_deleted(deleted)

    def delete_rows(before: datetime) -> None:
        # Each batch goes on from where the one before it stopped. An entry dated before
        # that point that arrives meanwhile (rare: written more than the retention late)
        # stays for the next clean-up. Nothing to delete: no DELETE at all.
        if not entries_before(before).exists():
            return
        since = None
        while True:
            with pace.batch(wal_meter) as size, transaction.atomic():
                deleted, since = _delete_batch(before, size, since)
                if deleted:
                    progress(deleted)
            if since is None:
                break

    try:
        # Entries older than every partition (in the default one) go row by row first, so
        # that a record's latest entry is never older than the days dropped next. Whole days
        # then go at once; only the day that straddles the cut-off is deleted row by row, or
        # emptied at once when none of its entries is at or after the cut-off (Delete All).
        # A cut-off at the start of a day (the schedule's) leaves no day straddling it.
        days = partitions.whole_days_before(cleanup.cutoff)
        if days:
            delete_rows(min(cleanup.cutoff, partitions.day_bounds(days[0])[0]))
        for day in days:
            with transaction.atomic():
                progress(partitions.drop_day(day))
        if cleanup.action == SyncErrorCleanup.Action.ALL and not at_day_start(cleanup.cutoff):
            cut_day = partitions.day_of(cleanup.cutoff)
            if cut_day in partitions.partition_days():
                with transaction.atomic():
                    emptied = partitions.empty_day(cut_day, cleanup.cutoff)
                    if emptied is not None:
                        progress(emptied)
        delete_rows(cleanup.cutoff)
    except Exception as exc:
        cleanup.state = SyncErrorCleanup.State.FAILED
        cleanup.finished_at = timezone.now()
        cleanup.error_message = f"Stopped after {cleanup.deleted_count} entries: {exc}"
        cleanup.save(update_fields=["state", "finished_at", "error_message"])
        _cleanup_ended(cleanup)
        raise

    # Problems left without entries stay, with their history (first and last seen, entries
    # in all, status, example): "has this happened before?" keeps its answer.
    _forget_paused_errors()
    # The blocked entries deleted no longer count towards what their root causes block.
    blocking.refresh(
        ErrorGroup.objects.filter(
            Q(blocks_records__gt=0) | Q(blocked_by__isnull=False)
        ).values_list("pk", flat=True)
    )
    cleanup.state = SyncErrorCleanup.State.DONE
    cleanup.finished_at = timezone.now()
    cleanup.save(update_fields=["state", "finished_at"])
    _cleanup_ended(cleanup)
    logger.info(
        "Clean-up %s (%s, %s) deleted %s sync errors",
        cleanup.pk,
        cleanup.action,
        cleanup.trigger,
        cleanup.deleted_count,
    )
    return cleanup


def _cleanup_ended(cleanup: SyncErrorCleanup) -> None:
    if cleanup.started_at and cleanup.finished_at:
        seconds = (cleanup.finished_at - cleanup.started_at).total_seconds()
        metrics.cleanup_finished(cleanup.state, seconds)


def wal_meter() -> Callable[[], int]:
    """Starts a measure of the WAL the server generates (from its insert position, which
    moves as records are written, not when they reach the disk): the returned function gives
    the bytes since, a batch's own and whatever ran beside it, all of which its commit waits
    to see flushed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        since = cursor.fetchone()[0]

    def written() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)::bigint",
                [since],
            )
            return int(cursor.fetchone()[0])

    return written


def _forget_paused_errors() -> None:
    """Mappings paused by an entry that is gone no longer point at it (no database
    constraint can do it on a partitioned table)."""
    TableMapping.objects.filter(paused_error__isnull=False).exclude(
        Exists(SyncError.objects.filter(pk=OuterRef("paused_error_id")))
    ).update(paused_error=None)


def delete_expired_sync_errors() -> SyncErrorCleanup:
    """The scheduled clean-up: entries older than SYNC_ERROR_RETENTION_DAYS, cut at the start
    of that day (see cleanup_cutoff), so that only whole day partitions go."""
    return request_cleanup(
        days=settings.SYNC_ERROR_RETENTION_DAYS,
        trigger=SyncErrorCleanup.Trigger.SCHEDULE,
        run_in_background=False,
    )


def set_status(errors: QuerySet[SyncError], status: str, user, note: str = "") -> int:
    """Mark entries open, resolved or ignored, keeping who did it, when, and why. A problem
    whose last open entry is resolved is resolved with it."""
    if status == Status.RESOLVED:
        return resolve_entries(errors, user=user, note=note)
    return change_entries(errors, status, user=user, note=note)


FIXED_NOTE = "Resolved: every entry of it was resolved."


def resolve_entries(entries: QuerySet[SyncError], *, user=None, note: str = "", **also) -> int:
    """Resolve entries for what a person did (marked them resolved, removed their coupling,
    deleted or coupled their record), and their problems when none of their entries is left
    open or snoozed; returns how many entries changed."""
    group_ids = set(
        entries.filter(status__in=OPEN_OR_SNOOZED).values_list("group_id", flat=True).distinct()
    ) - {None}
    with transaction.atomic():
        changed = change_entries(entries, Status.RESOLVED, user=user, note=note, **also)
        if changed:
            settle_groups(group_ids, user=user, system="", note=FIXED_NOTE)
    return changed


def set_group_status(
    group: ErrorGroup,
    status: str,
    user,
    note: str = "",
    *,
    snoozed_until: datetime | None = None,
    more_occurrences: int | None = None,
) -> int:
    """Resolve, ignore, snooze or reopen a problem and all its entries; returns how many
    entries changed. Who, when and the note are kept on the problem and on each entry.

    A snooze lasts until a moment or until `more_occurrences` more entries arrive, whichever
    is given; then the problem and its snoozed entries reopen by themselves."""
    if status == Status.SNOOZED and (snoozed_until is None) == (more_occurrences is None):
        raise ValueError("Snooze until a date or until a number of new occurrences.")
    if status != Status.SNOOZED:
        snoozed_until = more_occurrences = None
    with transaction.atomic():
        group = ErrorGroup.objects.select_for_update().get(pk=group.pk)
        entries = SyncError.objects.filter(group=group)
        if status == Status.SNOOZED:
            # Resolved and ignored entries keep their own status; only open ones are set aside.
            entries = entries.filter(status=Status.OPEN)
        with audit.covered_by("problem status"):
            changed = set_status(entries, status, user, note)
        until = ""
        if snoozed_until is not None:
            # Written in UTC whatever zone the person who snoozed it reads times in.
            until = f" until {snoozed_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        elif more_occurrences is not None:
            until = f" until {more_occurrences} more occurrences"
        change_problems(
            [group.pk],
            status,
            user=user,
            note=note,
            summary=f"Problem marked {Status(status).label.lower()}{until} with {changed:,} "
            "entries" + (f": {note.strip()}" if note.strip() else ""),
            details={
                "entries": changed,
                "snoozed_until": snoozed_until.isoformat() if snoozed_until else None,
                "more_occurrences": more_occurrences,
            },
            regressed_at=None,
            snoozed_until=snoozed_until,
            snooze_until_count=None if more_occurrences is None else group.count + more_occurrences,
        )
    return changed


def wake_snoozed(now: datetime | None = None) -> int:
    """Reopen the problems whose snooze date has passed, with their snoozed entries."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            ErrorGroup.objects.select_for_update(skip_locked=True)
            .filter(status=Status.SNOOZED, snoozed_until__lte=now)
            .values_list("pk", flat=True)
        )
        if not due:
            return 0
        change_problems(
            due,
            Status.OPEN,
            note=SNOOZE_ENDED_NOTE,
            system="snooze",
            now=now,
            snoozed_until=None,
            snooze_until_count=None,
        )
        reopen_snoozed_entries(due, now)
    logger.info("Woke %s snoozed problems", len(due))
    return len(due)


OPEN_OR_SNOOZED = (Status.OPEN, Status.SNOOZED)
# Who resolves an entry that closed by itself, in its audit event.
ENGINE = "sync engine"


def resolve_synchronized(coupling_ids: Iterable[int], source_app: str | None, job_id: int) -> int:
    """Resolve the open entries of coupled records that have now synchronized successfully
    in the same direction (from `source_app`; in every direction when None, as after a
    person chose which side wins): the problem is gone, whoever fixed it, whether the
    coupling was failing, skipped or taken back by a retry."""
    entries = SyncError.objects.filter(
        coupling_id__in=list(coupling_ids), status__in=OPEN_OR_SNOOZED
    )
    if source_app is not None:
        entries = entries.filter(source_app=source_app)
    return _resolved_by_itself(
        entries, job_id, f"Resolved by itself: the record synchronized in job #{job_id}."
    )


def resolve_now_coupled(
    mapping_id: int, source_app: str, records: list[tuple[str, int]], job_id: int
) -> int:
    """Resolve the entries logged for records that could not be written while uncoupled and
    have now been written and coupled ((record id, coupling id) pairs, read from
    `source_app`); the entries are linked to their new coupling."""
    resolved = 0
    by_coupling = dict(records)
    entries = SyncError.objects.filter(
        mapping_id=mapping_id,
        coupling__isnull=True,
        source_app=source_app,
        source_record_id__in=list(by_coupling),
        status__in=OPEN_OR_SNOOZED,
    )
    found = entries.values_list("source_record_id", flat=True).distinct()
    note = f"Resolved by itself: the record synchronized in job #{job_id}."
    for record_id in list(found):
        resolved += _resolved_by_itself(
            entries.filter(source_record_id=record_id),
            job_id,
            note,
            coupling_id=by_coupling[record_id],
        )
    return resolved


def _whole_job_entries() -> QuerySet[SyncError]:
    """The open entries of whole jobs: of no record and no coupling."""
    return SyncError.objects.filter(
        coupling__isnull=True,
        source_record_id="",
        destination_record_id="",
        status__in=OPEN_OR_SNOOZED,
    )


def resolve_passed_setup(mapping_id: int, job_id: int, *, every_direction: bool) -> int:
    """Resolve the entries of a whole job of the mapping (a setup failure, an app that could
    not be reached or throttled) once job `job_id` of the mapping got past the point where
    they failed: it signed in, passed the setup check and read and wrote records. A job of
    one direction leaves the missing privileges open: the other direction needs others."""
    entries = _whole_job_entries().filter(mapping_id=mapping_id, job_id__lt=job_id)
    if not every_direction:
        entries = entries.exclude(category=Category.PERMISSION)
    return _resolved_by_itself(
        entries, job_id, f"Resolved by itself: job #{job_id} of the mapping got past this point."
    )


def resolve_setup_checked(mapping_ids: Iterable[int], check_id: int, user=None) -> int:
    """Resolve the setup entries of whole jobs of these mappings (permissions, sign-in, the
    integration user) after the setup health check found nothing that blocks their jobs."""
    entries = _whole_job_entries().filter(
        mapping_id__in=list(mapping_ids),
        category__in=[Category.PERMISSION, Category.AUTHENTICATION, Category.INTEGRATION_USER],
    )
    note = f"Resolved by itself: the setup health check #{check_id} found the cause gone."
    return _resolved_by_itself(entries, None, note, actor=user, group_note=note)


def resolve_lag(mapping_id: int, note: str) -> int:
    """Resolve the open lag entries of a mapping: its lag probe's latest marker arrived
    within the limit."""
    entries = SyncError.objects.filter(
        mapping_id=mapping_id, category=Category.LAG, status__in=OPEN_OR_SNOOZED
    )
    return _resolved_by_itself(entries, None, note, group_note=note)


def _resolved_by_itself(
    entries: QuerySet[SyncError],
    job_id: int | None,
    note: str,
    *,
    actor=None,
    group_note: str = "",
    **also,
) -> int:
    """Resolve the entries whose cause is gone, with one audit event for them (made by the
    engine with its job, or by whoever ran the check), and their problems when nothing of
    them is left open."""
    entries = entries.filter(status__in=OPEN_OR_SNOOZED)
    group_ids = set(entries.values_list("group_id", flat=True).distinct()) - {None}
    system = f"{ENGINE} (job #{job_id})" if job_id else ENGINE
    with transaction.atomic():
        changed = change_entries(
            entries,
            Status.RESOLVED,
            user=actor,
            note=note[:STATUS_NOTE_MAX_LENGTH],
            system=system,
            job_id=job_id,
            by_itself=True,
            **also,
        )
        if changed:
            settle_groups(
                group_ids,
                user=actor,
                system=system,
                job_id=job_id,
                note=group_note or f"{SETTLED_NOTE[:-1]} (job #{job_id}).",
            )
    return changed


SETTLED_NOTE = "Resolved by itself: every record behind it synchronized since."


def settle_groups(
    group_ids, *, note: str = "", user=None, system: str = ENGINE, job_id: int | None = None
) -> list[int]:
    """Resolve the open or snoozed problems none of whose entries is open or snoozed any
    more: every record behind them synchronized since. Returns their ids."""
    if not group_ids:
        return []
    unsettled = SyncError.objects.filter(group_id=OuterRef("pk"), status__in=OPEN_OR_SNOOZED)
    settled = list(
        ErrorGroup.objects.filter(pk__in=list(group_ids), status__in=OPEN_OR_SNOOZED)
        .exclude(Exists(unsettled))
        .values_list("pk", flat=True)
    )
    change_problems(
        settled,
        Status.RESOLVED,
        user=user,
        note=note or SETTLED_NOTE,
        system=system,
        job_id=job_id,
        snoozed_until=None,
        snooze_until_count=None,
    )
    return settled


def resolve_coupled(
    mapping_id: int, records: list[tuple[str, str]], coupling_id: int, user, note: str
) -> int:
    """Resolve the open entries of records that were not coupled and now are: entries of the
    mapping without a coupling that name one of the `records` ((app, record id) pairs) on
    either side. Setup errors stay open: coupling does not fix them. The entries are linked
    to the new coupling, with who coupled and the note."""
    named = Q()
    for app, record_id in records:
        named |= Q(source_app=app, source_record_id=record_id)
        named |= Q(destination_app=app, destination_record_id=record_id)
    return resolve_entries(
        SyncError.objects.filter(mapping_id=mapping_id, coupling__isnull=True, status=Status.OPEN)
        .filter(named)
        .exclude(category__in=SETUP_CATEGORIES),
        user=user,
        note=note[:STATUS_NOTE_MAX_LENGTH],
        coupling_id=coupling_id,
    )
