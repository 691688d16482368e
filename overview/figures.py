"""What the overview shows, read from what is kept as the synchronization runs, never counted
from the entries:

- per table mapping (grouped by connection): its state, its last successful sync and the lag
  since, and its open problems by severity; from the mappings, the latest job and health
  snapshot of each, the latest setup check of each connection and the problems' own figures;
- per day of the last month: the entries that came and those resolved (the problems' day
  figures), and the changes that may explain a rise (the audit log).

A Sync user sees what the console shows them elsewhere: no setup problems (a count says how
many are left to administrators), no setup check findings and no audit log."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import models
from django.db.models import OuterRef, Subquery, Sum
from django.utils import timezone

from audit.models import AuditEvent
from errors.models import SETUP_CATEGORIES, ErrorGroup, GroupDay, Severity, Status
from sync.health import Finding
from sync.mapping_health import latest_snapshots
from sync.models import (
    Connection,
    ConnectionCheck,
    LagProbe,
    LagSample,
    SyncJob,
    TableMapping,
    spoken,
)
from sync.probes import current_lag
from syncconsole.permissions import is_sync_admin

from .severity import SEVERITY_FIELDS, severity_of

DAYS = 30
# Four runs of the default 30-minute schedule missed: the lag is shown as late.
LATE_AFTER = timedelta(hours=2)
# The most changes marked: the newest of each kind.
CHANGES_SHOWN = 100


class State(models.TextChoices):
    PAUSED = "paused", "Paused by the circuit breaker"
    BLOCKED = "blocked", "Stopped by the setup check"
    FAILING = "failing", "Failing"
    SKIPPED = "skipped", "Skipped records waiting"
    NOT_RUN = "not_run", "Not synchronized yet"
    HEALTHY = "healthy", "Healthy"
    DISABLED = "disabled", "Disabled"


# A connection reads as its worst mapping; a disabled mapping is not unwell, only off.
WORST_FIRST = list(State)
NEEDS_ATTENTION = {State.PAUSED, State.BLOCKED, State.FAILING, State.SKIPPED}


@dataclass
class ProblemCount:
    severity: Severity
    problems: int = 0
    records: int = 0


def by_severity(counts: dict[Severity, ProblemCount]) -> list[ProblemCount]:
    """The severities that have open problems, highest first."""
    return [counts[s] for s in sorted(counts, reverse=True) if counts[s].problems]


@dataclass
class MappingOverview:
    mapping: TableMapping
    now: datetime
    state: State = State.HEALTHY
    # Why, in words every role may read; `detail` only for administrators (a setup finding).
    reason: str = ""
    detail: str = ""
    last_success: datetime | None = None
    last_job: SyncJob | None = None
    # Records, as the latest health snapshot counted them: coupled records whose last sync
    # failed, records not coupled because their create failed, and skipped couplings.
    failing: int = 0
    failing_not_coupled: int = 0
    skipped: int = 0
    counts: dict[Severity, ProblemCount] = field(default_factory=dict)
    setup_problems_hidden: int = 0
    # The lag probe's latest marker, when the mapping has a probe that wrote one.
    probe_sample: LagSample | None = None

    @property
    def failing_records(self) -> int:
        return self.failing + self.failing_not_coupled

    @property
    def probe_lag(self) -> float | None:
        """The latest marker's lag, or how long it has waited so far."""
        return current_lag(self.probe_sample, self.now)

    @property
    def probe_lag_words(self) -> str:
        return spoken(self.probe_lag)

    @property
    def probe_state(self) -> str:
        return self.probe_sample.state if self.probe_sample else ""

    @property
    def problems(self) -> list[ProblemCount]:
        return by_severity(self.counts)

    @property
    def open_problems(self) -> int:
        return sum(c.problems for c in self.counts.values())

    @property
    def lag(self) -> timedelta | None:
        return self.now - self.last_success if self.last_success else None

    @property
    def is_late(self) -> bool:
        return self.state != State.DISABLED and (self.lag is None or self.lag > LATE_AFTER)


@dataclass
class ConnectionOverview:
    connection: Connection
    mappings: list[MappingOverview] = field(default_factory=list)

    @property
    def state(self) -> State:
        if not self.connection.is_enabled:
            return State.DISABLED
        if not self.mappings:
            return State.NOT_RUN
        return min((m.state for m in self.mappings), key=WORST_FIRST.index)

    @property
    def running(self) -> list[MappingOverview]:
        return [m for m in self.mappings if m.state != State.DISABLED]

    @property
    def oldest_success(self) -> MappingOverview | None:
        """The mapping that lags most (one never synchronized first)."""
        return min(
            self.running,
            key=lambda m: (m.last_success is not None, m.last_success or m.now),
            default=None,
        )

    @property
    def problems(self) -> list[ProblemCount]:
        total: dict[Severity, ProblemCount] = {}
        for mapping in self.mappings:
            for severity, count in mapping.counts.items():
                summed = total.setdefault(severity, ProblemCount(severity))
                summed.problems += count.problems
                summed.records += count.records
        return by_severity(total)

    @property
    def setup_problems_hidden(self) -> int:
        return sum(m.setup_problems_hidden for m in self.mappings)


@dataclass(frozen=True)
class Change:
    """A change that may explain a rise: an event of the audit log."""

    pk: int
    at: datetime
    kind: str  # one of CHANGE_KINDS
    summary: str
    actor: str
    day: date

    @property
    def label(self) -> str:
        return CHANGE_KINDS[self.kind]


@dataclass
class Day:
    day: date
    new: int = 0
    resolved: int = 0
    changes: list[Change] = field(default_factory=list)


@dataclass
class Integration:
    """Problems sent by another integration through the API: no mapping of ours."""

    name: str
    counts: dict[Severity, ProblemCount] = field(default_factory=dict)

    @property
    def problems(self) -> list[ProblemCount]:
        return by_severity(self.counts)


@dataclass
class Overview:
    now: datetime
    connections: list[ConnectionOverview]
    integrations: list[Integration]
    days: list[Day]
    changes: list[Change]
    # The audit log is for administrators: a Sync user's chart marks no change.
    changes_shown: bool
    setup_problems_hidden: int = 0

    @property
    def mappings(self) -> list[MappingOverview]:
        return [m for c in self.connections for m in c.mappings]

    @property
    def needing_attention(self) -> list[MappingOverview]:
        return [m for m in self.mappings if m.state in NEEDS_ATTENTION]

    @property
    def new(self) -> int:
        return sum(d.new for d in self.days)

    @property
    def resolved(self) -> int:
        return sum(d.resolved for d in self.days)


def overview_for(user, now: datetime | None = None) -> Overview:
    """Everything the overview shows to `user`, in a fixed number of queries whatever the
    number of connections, mappings, problems, entries and events."""
    now = now or timezone.now()
    admin = is_sync_admin(user)
    # Not the secrets: the overview has no use for them.
    connections = list(
        Connection.objects.only("pk", "name", "is_enabled", "disabled_reason").order_by(
            "name", "pk"
        )
    )
    mappings = mappings_with_jobs()
    snapshots = latest_snapshots([m.pk for m, _, _ in mappings])
    checks = latest_checks([c.pk for c in connections])
    counts, integrations, hidden = open_problems(admin)
    samples = latest_samples()
    overviews: dict[int, ConnectionOverview] = {c.pk: ConnectionOverview(c) for c in connections}
    for mapping, last_success, last_finished in mappings:
        connection = overviews[mapping.connection_id]
        mapping.connection = connection.connection
        snapshot = snapshots.get(mapping.pk)
        overview = MappingOverview(
            mapping,
            now,
            last_success=last_success,
            last_job=last_finished,
            failing=snapshot.failing if snapshot else 0,
            failing_not_coupled=snapshot.failing_not_coupled if snapshot else 0,
            skipped=snapshot.skipped if snapshot else 0,
            counts=counts.get(mapping.pk, {}),
            setup_problems_hidden=hidden.get(mapping.pk, 0),
            probe_sample=samples.get(mapping.pk),
        )
        judge(overview, checks.get(mapping.connection_id), admin)
        connection.mappings.append(overview)
    days, changes = daily_figures(admin, now)
    return Overview(
        now=now,
        connections=list(overviews.values()),
        integrations=integrations,
        days=days,
        changes=changes,
        changes_shown=admin,
        setup_problems_hidden=sum(hidden.values()),
    )


# What the overview shows of a job: its status and outcome (not the records it was given).
JOB_FIELDS = ("pk", "mapping_id", "status", "failed", "created_at", "finished_at")


def mappings_with_jobs() -> list[tuple[TableMapping, datetime | None, SyncJob | None]]:
    """Every mapping with when it last synchronized successfully and its last finished job:
    one query for the mappings, one for those jobs. Both subqueries walk the jobs' (mapping,
    created) index from the newest."""
    jobs = SyncJob.objects.filter(mapping=OuterRef("pk")).order_by("-created_at", "-pk")
    mappings = list(
        TableMapping.objects.annotate(
            last_success_at=Subquery(
                jobs.filter(status=SyncJob.Status.SUCCEEDED).values("finished_at")[:1]
            ),
            last_finished_id=Subquery(jobs.filter(status__in=SyncJob.FINISHED).values("pk")[:1]),
        ).order_by("dependency_order", "name", "pk")
    )
    finished = SyncJob.objects.only(*JOB_FIELDS).in_bulk(
        [m.last_finished_id for m in mappings if m.last_finished_id]
    )
    return [(m, m.last_success_at, finished.get(m.last_finished_id)) for m in mappings]


def latest_samples() -> dict[int, LagSample]:
    """Each lag probe's latest marker, by mapping: one query, one walk of the samples' (probe,
    written) index per probe."""
    newest = LagSample.objects.filter(probe=OuterRef("pk")).order_by("-written_at", "-pk")
    latest = LagSample.objects.filter(
        pk__in=LagProbe.objects.annotate(latest=Subquery(newest.values("pk")[:1])).values("latest")
    ).select_related("probe")
    return {sample.probe.mapping_id: sample for sample in latest}


def latest_checks(connection_ids: list[int]) -> dict[int, ConnectionCheck]:
    latest = (
        ConnectionCheck.objects.filter(connection_id__in=connection_ids)
        .order_by("connection_id", "-checked_at", "-pk")
        .distinct("connection_id")
    )
    return {c.connection_id: c for c in latest}


def open_problems(
    admin: bool,
) -> tuple[dict[int, dict[Severity, ProblemCount]], list[Integration], dict[int, int]]:
    """The open problems by mapping and severity, those of other integrations, and per mapping
    the setup problems a Sync user does not see: one query over the problems (a few hundred
    open at most, as problems are causes; their entries are never read)."""
    counts: dict[int, dict[Severity, ProblemCount]] = defaultdict(dict)
    integrations: dict[str, Integration] = {}
    hidden: dict[int, int] = defaultdict(int)
    for problem in open_problem_rows():
        if not admin and problem.is_setup_error:
            # Those of other integrations count in all, under no mapping (0).
            hidden[problem.mapping_id or 0] += 1
            continue
        if problem.mapping_id:
            counted = counts[problem.mapping_id]
        elif problem.integration:
            integration = integrations.setdefault(
                problem.integration, Integration(problem.integration)
            )
            counted = integration.counts
        else:
            continue
        severity = severity_of(problem)
        count = counted.setdefault(severity, ProblemCount(severity))
        count.problems += 1
        count.records += problem.records
    return counts, list(integrations.values()), hidden


def open_problem_rows() -> list[ErrorGroup]:
    """The problems open now, with what their severity is decided from (their records are
    kept by the entries' triggers)."""
    problems = ErrorGroup.objects.filter(status=Status.OPEN, count__gt=0)
    fields = ("pk", "mapping_id", "integration", "category", "records", *SEVERITY_FIELDS)
    return list(problems.only(*fields).order_by("integration", "pk"))


def judge(overview: MappingOverview, check: ConnectionCheck | None, admin: bool) -> None:
    """The mapping's state, and why, from the worst down."""
    mapping = overview.mapping
    connection = mapping.connection
    job = overview.last_job
    if not mapping.is_enabled or not connection.is_enabled:
        overview.state = State.DISABLED
        if not connection.is_enabled:
            overview.reason = f"The connection {connection.name} is disabled."
            overview.detail = connection.disabled_reason if admin else ""
        return
    if mapping.is_paused:
        overview.state = State.PAUSED
        overview.reason = mapping.paused_reason
        return
    finding = blocking_finding(check, mapping, overview.last_success)
    if finding is not None:
        overview.state = State.BLOCKED
        overview.reason = "Its jobs stop at the setup check until an administrator fixes it."
        overview.detail = str(finding.get("message", "")) if admin else ""
        return
    if job is not None and job.status == SyncJob.Status.FAILED:
        overview.state = State.FAILING
        overview.reason = "Its last job failed."
    elif overview.failing_records:
        overview.state = State.FAILING
        failing = overview.failing_records
        overview.reason = f"{failing:,} record{plural(failing)} failing."
    elif overview.skipped:
        overview.state = State.SKIPPED
        overview.reason = (
            f"{overview.skipped:,} record{plural(overview.skipped)} left out after failing "
            "twice: retry them once the cause is fixed."
        )
    elif job is None:
        overview.state = State.NOT_RUN
    else:
        overview.state = State.HEALTHY


def blocking_finding(
    check: ConnectionCheck | None, mapping: TableMapping, last_success: datetime | None
) -> dict | None:
    """A finding of the connection's latest setup check that stops the mapping's jobs (about
    the connection as a whole, or about this mapping), unless a job succeeded since."""
    if check is None or (last_success is not None and last_success > check.checked_at):
        return None
    for finding in check.findings:
        if not isinstance(finding, dict) or finding.get("mapping") not in (None, "", mapping.name):
            continue
        kept = Finding(str(finding.get("code", "")), str(finding.get("severity", "")), "")
        if kept.blocks_jobs:
            return finding
    return None


def plural(n: int) -> str:
    return "" if n == 1 else "s"


# The audit events marked on the time axis, by kind.
CHANGE_KINDS = {
    "mapping": "Table mapping changed",
    "connection": "Connection changed",
    "credentials": "Sign-in changed",
    "cleanup": "Entries deleted",
}
CHANGE_ACTIONS = {
    AuditEvent.Action.MAPPING_CHANGED: "mapping",
    AuditEvent.Action.CONNECTION_CHANGED: "connection",
    AuditEvent.Action.ENTRIES_DELETED: "cleanup",
}
# A connection change that touches one of these is a change of how it signs in.
SIGN_IN_FIELDS = frozenset(
    f"{side}_{name}"
    for side in ("source", "destination")
    for name in ("username", "secret", "authority", "scope")
) | {"auth_method", "integration_user"}


def change_kind(event: AuditEvent) -> str:
    kind = CHANGE_ACTIONS[AuditEvent.Action(event.action)]
    fields = event.details.get("fields") if isinstance(event.details, dict) else None
    if kind == "connection" and isinstance(fields, dict) and SIGN_IN_FIELDS & set(fields):
        return "credentials"
    return kind


def daily_figures(admin: bool, now: datetime) -> tuple[list[Day], list[Change]]:
    """The last DAYS days up to today: entries that came and entries resolved (the problems'
    day figures, a Sync user's without setup problems), and for administrators the changes
    of those days, newest first."""
    today = timezone.localdate(now)
    first = today - timedelta(days=DAYS - 1)
    days = {first + timedelta(days=i): Day(first + timedelta(days=i)) for i in range(DAYS)}
    for day, new, resolved in entries_per_day(admin, first, today):
        days[day].new, days[day].resolved = new, resolved
    if not admin:
        return list(days.values()), []
    changes = []
    for event in recent_changes(timezone.make_aware(datetime.combine(first, datetime.min.time()))):
        day = timezone.localdate(event.at)
        change = Change(
            event.pk, event.at, change_kind(event), event.summary, event.actor_label, day
        )
        if day in days:
            days[day].changes.append(change)
            changes.append(change)
    return list(days.values()), changes


def entries_per_day(admin: bool, first: date, last: date) -> list[tuple[date, int, int]]:
    """(day, entries that came, entries resolved) from the problems' day figures: one row
    per problem and day of the month, never an entry."""
    figures = GroupDay.objects.filter(day__gte=first, day__lte=last)
    if not admin:
        figures = figures.exclude(group__category__in=SETUP_CATEGORIES)
    summed = figures.values("day").annotate(new=Sum("entries"), resolved=Sum("resolved"))
    return [(row["day"], row["new"], row["resolved"]) for row in summed]


def recent_changes(since: datetime) -> list[AuditEvent]:
    """The newest CHANGES_SHOWN events of each kind since `since`, newest first: one query,
    each kind read along its (action, time) index from the newest."""
    kinds = [
        AuditEvent.objects.filter(action=action, at__gte=since).order_by("-at", "-pk")[
            :CHANGES_SHOWN
        ]
        for action in CHANGE_ACTIONS
    ]
    events = kinds[0].union(*kinds[1:], all=True).order_by("-at", "-pk")
    return list(events[:CHANGES_SHOWN])
