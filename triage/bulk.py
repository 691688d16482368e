"""Actions on many entries at once: a selection, or all that match the list's filters.

The scope is fixed when the person confirms it: the selection is cut to what the filters
match, and entries written after the count was shown are never included, so an action can
never reach further than what was shown. Each action is kept as a BulkAction, the audit
record and the progress of the work, which a Celery worker does in batches."""

import logging
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.http import QueryDict
from django.utils import timezone

from audit import services as audit
from couplings import actions
from couplings.actions import read_direction
from couplings.models import Coupling
from errors.filters import SyncErrorFilter
from errors.models import SETUP_CATEGORIES, BulkAction, Status, SyncError
from errors.services import STATUS_NOTE_MAX_LENGTH, set_status
from sync.connectors import ConnectorError
from sync.models import RuleVersion, TableMapping
from sync.services import JobRefused
from syncconsole import queue, work
from syncconsole.queue import QueueUnavailable
from syncconsole.timezones import zone_of

logger = logging.getLogger(__name__)

Action = BulkAction.Action
STATUS_ACTIONS: dict[str, str] = {
    Action.RESOLVE: Status.RESOLVED,
    Action.IGNORE: Status.IGNORED,
    Action.REOPEN: Status.OPEN,
}
# Actions that queue sync jobs of chosen couplings, one per mapping and direction.
JOB_ACTIONS = {Action.RETRY, Action.TO_DESTINATION, Action.FROM_DESTINATION, Action.RESTORE}
# Small selections of quick actions are done at once; the rest goes to a worker.
QUICK_ACTIONS = {*STATUS_ACTIONS, Action.REMOVE_COUPLING}
MAX_SELECTION = 500
# Couple by match on all matching entries looks at the newest entries only; coupling them and
# asking again reaches the rest.
COUPLE_SCAN_LIMIT = 20_000
PREVIEW_MAX_AGE = 3600  # seconds a confirmed count stays valid
PREVIEW_SALT = "errors.bulk.preview"  # unchanged, so that confirmations in flight stay valid


class BulkRefused(Exception):
    """The action cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Preview:
    """What an action on all matching entries would reach, counted exactly."""

    action: str
    filter_query: str
    count: int
    coupled: int
    upper_bound_id: int
    setup_errors_included: bool

    def token(self) -> str:
        """The signed scope the confirmation sends back: it cannot be widened on the way."""
        return signing.dumps(
            [
                self.action,
                self.filter_query,
                self.count,
                self.upper_bound_id,
                self.setup_errors_included,
            ],
            salt=PREVIEW_SALT,
        )


def matching(filter_query: str, *, setup_errors_included: bool) -> QuerySet[SyncError]:
    """The entries the list shows for these filters (setup errors only for administrators)."""
    entries = SyncError.objects.all()
    if not setup_errors_included:
        entries = entries.exclude(category__in=SETUP_CATEGORIES)
    filters = SyncErrorFilter(QueryDict(filter_query), queryset=entries)
    if not filters.is_valid():
        problems = "; ".join(
            f"{field}: {message}" for field, ms in filters.errors.items() for message in ms
        )
        raise BulkRefused(f"The filters are not valid ({problems}).")
    return filters.qs.order_by()


def preview(action: str, filter_query: str, *, setup_errors_included: bool) -> Preview:
    """The dry run: exactly how many entries an action on all matching entries would reach."""
    _check_action(action)
    figures = matching(filter_query, setup_errors_included=setup_errors_included).aggregate(
        count=Count("pk"), coupled=Count("coupling", distinct=True), last=Max("pk")
    )
    return Preview(
        action,
        filter_query,
        figures["count"],
        figures["coupled"],
        figures["last"] or 0,
        setup_errors_included,
    )


def confirmed_preview(token: str) -> Preview:
    try:
        action, filter_query, count, upper, setup = signing.loads(
            token, salt=PREVIEW_SALT, max_age=PREVIEW_MAX_AGE
        )
    except signing.SignatureExpired:
        raise BulkRefused("The count is more than an hour old; ask for it again.") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise BulkRefused("The confirmation is not valid; ask for the count again.") from None
    return Preview(action, filter_query, count, 0, upper, setup)


@dataclass(frozen=True)
class RecordsToCouple:
    mapping_id: int
    side: str
    record_ids: list[str]
    left_out: int  # entries of other mappings or sides, or beyond the first MAX_SELECTION records
    already_coupled: int


def records_to_couple(
    entries: QuerySet[SyncError], side_of: Callable[[int, str, str], str]
) -> RecordsToCouple:
    """The records of these entries that are not coupled (they could not be created, or their
    coupling was removed), for one mapping and side: the one most of them belong to."""
    rows = (
        entries.filter(mapping__isnull=False)
        .exclude(source_record_id="")
        .order_by("-created_at", "-id")
        .values_list(
            "mapping_id", "source_app", "source_entity", "source_record_id", "coupling_id"
        )[:COUPLE_SCAN_LIMIT]
    )
    by_place: dict[tuple[int, str], dict[str, None]] = {}
    coupled = 0
    for mapping_id, app, entity, record_id, coupling_id in rows:
        if coupling_id is not None:
            coupled += 1
            continue
        place = (mapping_id, side_of(mapping_id, app, entity))
        by_place.setdefault(place, {})[record_id] = None
    if not by_place:
        raise BulkRefused(
            "None of these entries is about a record that is not coupled: Couple is for records "
            "that could not be created or whose coupling was removed. Use Retry or Synchronize "
            "for coupled records."
        )
    place, records = max(by_place.items(), key=lambda item: len(item[1]))
    ids = list(records)
    others = sum(len(r) for p, r in by_place.items() if p != place)
    return RecordsToCouple(
        place[0], place[1], ids[:MAX_SELECTION], others + max(len(ids) - MAX_SELECTION, 0), coupled
    )


def _check_action(action: str) -> None:
    if action not in Action.values:
        raise BulkRefused("Choose an action.")


def in_zone_of(bulk: BulkAction) -> AbstractContextManager:
    """The days of a date filter, read as the person who asked read them (in their zone),
    so that the worker never reaches beyond the entries they were shown."""
    if bulk.requested_by_id is None:
        return nullcontext()
    return timezone.override(zone_of(bulk.requested_by_id))


def scope_of(bulk: BulkAction) -> QuerySet[SyncError]:
    with in_zone_of(bulk):
        entries = matching(bulk.filter_query, setup_errors_included=bulk.setup_errors_included)
    entries = entries.filter(pk__lte=bulk.upper_bound_id)
    if bulk.scope == BulkAction.Scope.SELECTION:
        entries = entries.filter(pk__in=bulk.selected_ids)
    return entries


def resolved_since(bulk: BulkAction) -> int | None:
    """How many of the action's entries have been resolved since it was asked for: by the
    jobs it queued, most often. None when its filters no longer apply (a mapping deleted).

    The entries are found again as the action found them, but for a status filter: the open
    entries it matched may be resolved now."""
    query = QueryDict(bulk.filter_query, mutable=True)
    query.pop("status", None)
    try:
        entries = matching(query.urlencode(), setup_errors_included=bulk.setup_errors_included)
    except BulkRefused:
        return None
    entries = entries.filter(
        pk__lte=bulk.upper_bound_id,
        status=Status.RESOLVED,
        status_changed_at__gte=bulk.requested_at,
    )
    if bulk.scope == BulkAction.Scope.SELECTION:
        entries = entries.filter(pk__in=bulk.selected_ids)
    return entries.count()


def request_bulk_action(
    *,
    action: str,
    user,
    note: str = "",
    selected_ids: list[int] | None = None,
    filter_query: str = "",
    confirmed: Preview | None = None,
    setup_errors_included: bool = False,
    run_in_background: bool | None = None,
) -> BulkAction:
    """Record the action and do it: at once when it is small and quick, else in a worker.

    Either `selected_ids` (cut to what `filter_query` matches) or a `confirmed` preview of
    all matching entries gives the scope. Raises BulkRefused or QueueUnavailable."""
    _check_action(action)
    if len(note) > STATUS_NOTE_MAX_LENGTH:
        raise BulkRefused(f"The note can be at most {STATUS_NOTE_MAX_LENGTH} characters.")
    if confirmed is not None:
        if confirmed.action != action:
            raise BulkRefused("The confirmation is for another action; ask for the count again.")
        bulk = BulkAction(
            scope=BulkAction.Scope.FILTER,
            filter_query=confirmed.filter_query,
            upper_bound_id=confirmed.upper_bound_id,
            setup_errors_included=confirmed.setup_errors_included,
        )
    else:
        ids = sorted({int(pk) for pk in selected_ids or []})
        if not ids:
            raise BulkRefused("Select at least one entry.")
        if len(ids) > MAX_SELECTION:
            raise BulkRefused(f"Select at most {MAX_SELECTION} entries, or act on all matching.")
        bulk = BulkAction(
            scope=BulkAction.Scope.SELECTION,
            filter_query=filter_query,
            selected_ids=ids,
            upper_bound_id=ids[-1],
            setup_errors_included=setup_errors_included,
        )
    bulk.action = action
    bulk.note = note.strip()
    bulk.requested_by = user if user is not None and user.is_authenticated else None
    bulk.expected_count = scope_of(bulk).count()
    if not bulk.expected_count:
        raise BulkRefused("No entry matches any more; nothing was changed.")
    bulk.save()
    _audit(bulk)
    if run_in_background is None:
        run_in_background = not (
            bulk.scope == BulkAction.Scope.SELECTION
            and action in QUICK_ACTIONS
            and bulk.expected_count <= settings.SYNC_BULK_INLINE_LIMIT
        )
    if not run_in_background:
        return run_bulk_action(bulk.pk)

    try:
        queue.send("errors.run_bulk_action", bulk.pk)
    except QueueUnavailable as exc:
        _finish(bulk, BulkAction.State.FAILED, "The task queue is unavailable; nothing changed.")
        raise QueueUnavailable(bulk.outcome) from exc
    return bulk


BULK_EVENTS: dict[str, str] = {
    Action.RESOLVE: audit.Action.ENTRIES_RESOLVED,
    Action.IGNORE: audit.Action.ENTRIES_IGNORED,
    Action.REOPEN: audit.Action.ENTRIES_REOPENED,
    Action.REMOVE_COUPLING: audit.Action.COUPLING_REMOVED,
    Action.DELETE_RECORD: audit.Action.RECORD_DELETED,
}


def _audit(bulk: BulkAction) -> None:
    """One event for the whole action, when it is asked for: the BulkAction it names keeps
    the progress and the outcome, so what it does entry by entry writes no event of its own."""
    scope = (
        f"{len(bulk.selected_ids)} selected"
        if bulk.scope == BulkAction.Scope.SELECTION
        else "all matching"
    )
    audit.record(
        BULK_EVENTS.get(bulk.action, audit.Action.BULK_ACTION),
        f"Bulk action {bulk.get_action_display()} on {scope} entries "
        f"({bulk.expected_count:,} in scope)" + (f": {bulk.note}" if bulk.note else ""),
        user=bulk.requested_by,
        target=bulk,
        object_type="bulk action",
        details={
            "action": bulk.action,
            "scope": bulk.scope,
            "filters": bulk.filter_query,
            "expected": bulk.expected_count,
            "note": bulk.note,
        },
    )


def run_bulk_action(bulk_id: int) -> BulkAction:
    """Work through the scope in batches, each its own transaction, keeping the progress.
    Safe to run again: a finished action is left alone, an interrupted one goes on, and one
    another worker runs is left to it."""
    with work.worked_on(BulkAction, bulk_id) as mine:
        if not mine:
            return BulkAction.objects.get(pk=bulk_id)
        return _run_bulk_action(bulk_id)


def resume_stalled_bulk_actions() -> int:
    """Bulk actions left running by a worker that died: queued again to go on from where
    they stopped, or failed once they were resumed WORK_RESUMES times. Returns how many."""
    running = BulkAction.objects.filter(state=BulkAction.State.RUNNING)
    return work.resume_stalled(running, "errors.run_bulk_action", _fail_stalled)


def _fail_stalled(bulk) -> None:
    _finish(
        bulk,
        BulkAction.State.FAILED,
        f"Stopped after {bulk.processed_count} of {bulk.expected_count} entries: "
        f"{work.stopped_message(bulk.resumes, 'action')}",
    )


def _run_bulk_action(bulk_id: int) -> BulkAction:
    with transaction.atomic():
        bulk = (
            BulkAction.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("requested_by")
            .filter(pk=bulk_id)
            .first()
        )
        if bulk is None or bulk.is_finished:
            return bulk or BulkAction.objects.get(pk=bulk_id)
        bulk.state = BulkAction.State.RUNNING
        bulk.started_at = bulk.started_at or timezone.now()
        bulk.heartbeat_at = timezone.now()
        bulk.save(update_fields=["state", "started_at", "heartbeat_at"])
    work = _Work(bulk)
    try:
        with audit.covered_by(f"bulk action #{bulk.pk}"):
            _work_through(bulk, work)
    except Exception as exc:
        logger.exception("Bulk action %s failed", bulk.pk)
        _finish(bulk, BulkAction.State.FAILED, f"The action stopped: {exc}")
        return bulk
    _finish(bulk, BulkAction.State.DONE, work.outcome())
    return bulk


def _work_through(bulk: BulkAction, work: "_Work") -> None:
    while True:
        batch = list(
            scope_of(bulk)
            .filter(pk__gt=bulk.last_processed_id)
            .order_by("pk")
            .values_list(
                "pk",
                "coupling_id",
                "mapping_id",
                "source_app",
                "source_entity",
                "source_record_id",
            )[: settings.SYNC_BULK_BATCH_SIZE]
        )
        if not batch:
            break
        with transaction.atomic():
            work.batch(batch)
            bulk.processed_count += len(batch)
            bulk.last_processed_id = batch[-1][0]
            bulk.heartbeat_at = timezone.now()
            bulk.save(
                update_fields=[
                    "processed_count",
                    "changed_count",
                    "failed_count",
                    "last_processed_id",
                    "heartbeat_at",
                ]
            )
    work.finish()


def retry_records(
    couplings: QuerySet[Coupling],
    records: dict[int, set[tuple[str, str, str]]],
    *,
    user,
    rule_versions: list[RuleVersion] | None = None,
) -> actions.Retried:
    """Retry the couplings and the records not coupled yet (by mapping id: (app, entity,
    record id) of the record read) as one retry job per mapping, with the rules applied."""
    by_direction: defaultdict[int, defaultdict[str, list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    mappings = TableMapping.objects.select_related("connection").in_bulk(records)
    for mapping_id, mapping in mappings.items():
        for app, entity, record_id in sorted(records[mapping_id]):
            entry = SyncError(
                mapping=mapping,
                source_app=app,
                source_entity=entity,
                source_record_id=record_id,
            )
            direction = read_direction(entry)
            if direction is not None:  # always: the entry names its mapping and record
                by_direction[mapping_id][direction].append(record_id)
    return actions.retry_by_mapping(
        couplings,
        user=user,
        records={k: dict(v) for k, v in by_direction.items()},
        rule_versions=rule_versions,
    )


def retry_entries(
    entries: QuerySet[SyncError], *, user, rule_versions: list[RuleVersion] | None = None
) -> actions.Retried:
    """Retry the records of these entries as Retry does for a bulk action: their couplings,
    and the records that could not be created, one job per mapping."""
    coupling_ids: set[int] = set()
    records: dict[int, set[tuple[str, str, str]]] = defaultdict(set)
    for coupling_id, mapping_id, app, entity, record_id in entries.values_list(
        "coupling_id", "mapping_id", "source_app", "source_entity", "source_record_id"
    ):
        if coupling_id is not None:
            coupling_ids.add(coupling_id)
        elif mapping_id and record_id:
            records[mapping_id].add((app, entity, record_id))
    return retry_records(
        Coupling.objects.filter(pk__in=coupling_ids),
        records,
        user=user,
        rule_versions=rule_versions,
    )


def _finish(bulk: BulkAction, state: str, outcome: str) -> None:
    bulk.state = state
    bulk.outcome = outcome[:4000]
    bulk.finished_at = timezone.now()
    bulk.save()


class _Work:
    """What one action does to each batch, and what it does once all batches are seen."""

    def __init__(self, bulk: BulkAction):
        self.bulk = bulk
        self.user = bulk.requested_by
        self.couplings: set[int] = set()
        self.records: dict[int, set[tuple[str, str, str]]] = defaultdict(set)
        self.uncoupled = 0
        self.problems: list[str] = []
        self.jobs: list[str] = []

    def batch(self, rows: list[tuple]) -> None:
        action = self.bulk.action
        if action in STATUS_ACTIONS:
            self.bulk.changed_count += set_status(
                SyncError.objects.filter(pk__in=[row[0] for row in rows]),
                STATUS_ACTIONS[action],
                self.user,
                note=self.bulk.note,
            )
            return
        for _, coupling, mapping_id, app, entity, record_id in rows:
            if coupling is not None:
                continue
            if action == Action.RETRY and mapping_id and record_id:
                # A record that could not be created is read again and written.
                self.records[mapping_id].add((app, entity, record_id))
            else:
                self.uncoupled += 1
        # Couplings are acted on once each, however many of their entries are in scope.
        new = {row[1] for row in rows if row[1] is not None} - self.couplings
        self.couplings |= new
        if action == Action.REMOVE_COUPLING:
            self._remove(new)
        elif action == Action.DELETE_RECORD:
            self._delete_remaining(new)

    def finish(self) -> None:
        if self.bulk.action not in JOB_ACTIONS or not (self.couplings or self.records):
            return
        couplings = Coupling.objects.filter(pk__in=self.couplings).select_related("mapping")
        if self.bulk.action == Action.RETRY:
            self._retry(couplings)
            return
        if self.bulk.action == Action.RESTORE:
            by_job = self._restorable(couplings)
        else:
            by_job = defaultdict(list)
            for coupling in couplings:
                by_job[(coupling.mapping, self.bulk.action)].append(coupling.pk)
        self._queue_jobs(by_job)

    def _queued(self, job, count: int, mapping) -> None:
        self.bulk.changed_count += count
        self.bulk.job_ids = [*self.bulk.job_ids, job.pk]
        self.jobs.append(f"job #{job.pk} for {count} record{'s' * (count != 1)} of {mapping.name}")

    def _refused(self, mapping, message: str, count: int) -> None:
        self.bulk.failed_count += count
        self.problems.append(f"{mapping.name}: {message}")

    def _queue_jobs(self, by_job) -> None:
        for (mapping, direction), ids in sorted(by_job.items(), key=lambda kv: kv[0][0].pk):
            try:
                job = actions.synchronize_couplings(
                    mapping, ids, direction=direction, user=self.user
                )
            except (JobRefused, QueueUnavailable) as exc:
                self._refused(mapping, str(exc), len(ids))
                continue
            self._queued(job, len(ids), mapping)

    def _retry(self, couplings) -> None:
        """One retry job per mapping: its couplings and its records not coupled yet."""
        retried = retry_records(couplings, self.records, user=self.user)
        for job, count in retried.jobs:
            self._queued(job, count, job.mapping)
        for mapping, message, count in retried.refused:
            self._refused(mapping, message, count)

    def _restorable(self, couplings):
        """Restore needs exactly one side gone: ask the apps where it is not known yet."""
        actions.check_unknown(couplings)
        by_job = defaultdict(list)
        for coupling in couplings.all():
            try:
                direction = actions.restore_direction(coupling)
            except actions.CouplingRefused:
                self.bulk.failed_count += 1
                continue
            by_job[(coupling.mapping, str(direction))].append(coupling.pk)
        if self.bulk.failed_count:
            self.problems.append(
                f"{self.bulk.failed_count} coupling(s) do not have exactly one record gone."
            )
        return by_job

    def _remove(self, ids: set[int]) -> None:
        for coupling in Coupling.objects.filter(pk__in=ids).select_related("mapping"):
            actions.remove_coupling(coupling, user=self.user)
            self.bulk.changed_count += 1

    def _delete_remaining(self, ids: set[int]) -> None:
        couplings = Coupling.objects.filter(pk__in=ids).select_related("mapping__connection")
        actions.check_unknown(couplings)
        for coupling in couplings.all():
            try:
                actions.delete_remaining_record(coupling, user=self.user)
            except (actions.CouplingRefused, ConnectorError) as exc:
                self.bulk.failed_count += 1
                if len(self.problems) < 5:
                    self.problems.append(f"{coupling}: {exc}")
                continue
            self.bulk.changed_count += 1

    def outcome(self) -> str:
        bulk, action = self.bulk, self.bulk.action
        if action in STATUS_ACTIONS:
            label = Status(STATUS_ACTIONS[action]).label.lower()
            text = f"{bulk.changed_count:,} of {bulk.processed_count:,} entries are now {label}"
            text += (
                "; the others already were." if bulk.changed_count < bulk.processed_count else "."
            )
        elif action in JOB_ACTIONS:
            text = "Queued " + ", ".join(self.jobs) + "." if self.jobs else "No job was queued."
        elif action == Action.REMOVE_COUPLING:
            text = f"Removed {bulk.changed_count:,} coupling{'s' * (bulk.changed_count != 1)}."
        else:
            text = (
                f"Deleted {bulk.changed_count:,} remaining record"
                f"{'s' * (bulk.changed_count != 1)} and their couplings."
            )
        if self.uncoupled:
            text += f" {self.uncoupled:,} entries have no coupling and were left as they are."
        if bulk.failed_count:
            text += f" {bulk.failed_count:,} could not be done: " + " ".join(self.problems)
        if bulk.processed_count < bulk.expected_count:
            text += (
                f" {bulk.expected_count - bulk.processed_count:,} entries were deleted or "
                "changed meanwhile and no longer matched."
            )
        return text
