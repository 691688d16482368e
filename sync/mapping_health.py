"""Health per table mapping: how many coupled records are in step, failing or skipped, the
last good job, the open entries, and the backlog over the last two weeks (from one small
snapshot per mapping and day, written at the end of each job)."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from couplings.models import Coupling
from errors.models import Category, Status, SyncError
from errors.trends import TREND_DAYS, Bar, trend_bars, trend_width

from .models import BACKLOG, MappingHealthSnapshot, SyncJob, TableMapping

R = Coupling.Result


def in_sync(prefix: str = "") -> Q:
    """Couplings whose last result is a success in every direction that has one."""
    f = {
        name: f"{prefix}{name}"
        for name in ("is_skipped", "last_result_to_destination", "last_result_from_destination")
    }
    return (
        Q(**{f["is_skipped"]: False})
        & (
            Q(**{f["last_result_to_destination"]: R.SUCCESS})
            | Q(**{f["last_result_from_destination"]: R.SUCCESS})
        )
        & ~Q(**{f"{f['last_result_to_destination']}__in": [R.FAILURE, R.SKIPPED]})
        & ~Q(**{f"{f['last_result_from_destination']}__in": [R.FAILURE, R.SKIPPED]})
    )


def failing(prefix: str = "") -> Q:
    """Couplings whose last result failed in a direction, and that are not skipped."""
    return Q(**{f"{prefix}is_skipped": False}) & (
        Q(**{f"{prefix}last_result_to_destination": R.FAILURE})
        | Q(**{f"{prefix}last_result_from_destination": R.FAILURE})
    )


@dataclass
class MappingHealth:
    in_sync: int = 0
    failing: int = 0  # coupled records whose last sync failed
    # Records not coupled because their create failed, at the mapping's last job.
    failing_not_coupled: int = 0
    skipped: int = 0
    open_errors: int = 0
    trend: list[Bar] = field(default_factory=list)

    @property
    def backlog(self) -> int:
        return sum(getattr(self, name) for name in BACKLOG)

    @property
    def trend_width(self) -> int:
        return trend_width()


def coupling_counts(mapping_id: int) -> dict[str, int]:
    return Coupling.objects.filter(mapping_id=mapping_id).aggregate(
        in_sync=Count("pk", filter=in_sync()),
        failing=Count("pk", filter=failing()),
        skipped=Count("pk", filter=Q(is_skipped=True)),
    )


def failing_not_coupled(mapping_id: int) -> int:
    """The records of the mapping that are not coupled and have an open entry: their create
    failed (a currency without an exchange rate, a parent not coupled yet), and scheduled
    runs try them again. A record a reconciliation found on one side only is not one: it
    waits for a person's choice, not for a fix."""
    return (
        SyncError.objects.filter(mapping_id=mapping_id, coupling__isnull=True, status=Status.OPEN)
        .exclude(source_record_id="")
        .exclude(category=Category.NOT_COUPLED)
        .values("source_app", "source_record_id")
        .distinct()
        .count()
    )


def record_snapshot(mapping_id: int) -> MappingHealthSnapshot:
    """Write today's figures of the mapping (one statement: insert, or update the day's
    row), so the trend needs no scan of couplings or entries when a page is drawn."""
    now = timezone.now()
    snapshot = MappingHealthSnapshot(
        mapping_id=mapping_id,
        day=timezone.localdate(now, timezone=timezone.get_default_timezone()),
        updated_at=now,
        failing_not_coupled=failing_not_coupled(mapping_id),
        **coupling_counts(mapping_id),
    )
    MappingHealthSnapshot.objects.bulk_create(
        [snapshot],
        update_conflicts=True,
        unique_fields=["mapping", "day"],
        update_fields=["in_sync", "failing", "failing_not_coupled", "skipped", "updated_at"],
    )
    return snapshot


def latest_snapshots(mapping_ids: list[int]) -> dict[int, MappingHealthSnapshot]:
    """Each mapping's latest health snapshot: how its records stood at its last job."""
    latest = (
        MappingHealthSnapshot.objects.filter(mapping_id__in=mapping_ids)
        .order_by("mapping_id", "-day")
        .distinct("mapping_id")
    )
    return {s.mapping_id: s for s in latest}


def with_health(mappings, today: date | None = None) -> list[TableMapping]:
    """The mappings with their health figures (`mapping.health`), last job and last
    successful sync, in a fixed number of queries however many mappings there are."""
    last_job = SyncJob.objects.filter(mapping=OuterRef("pk")).order_by("-created_at", "-pk")
    last_success = SyncJob.objects.filter(
        mapping=OuterRef("pk"), status=SyncJob.Status.SUCCEEDED
    ).order_by("-finished_at", "-pk")
    mappings = list(
        # Not select_related("paused_error"): grouped by mapping, PostgreSQL would need the
        # entry's primary key, which (partitioned by day) is (id, created_at), not id alone.
        mappings.select_related("connection").annotate(
            last_job_id=Subquery(last_job.values("pk")[:1]),
            last_success_at=Subquery(last_success.values("finished_at")[:1]),
            coupled=Count("couplings"),
            in_sync=Count("couplings", filter=in_sync("couplings__")),
            failing=Count("couplings", filter=failing("couplings__")),
            skipped=Count("couplings", filter=Q(couplings__is_skipped=True)),
        )
    )
    ids = [m.pk for m in mappings]
    jobs = SyncJob.objects.in_bulk([m.last_job_id for m in mappings if m.last_job_id])
    open_errors = dict(
        SyncError.objects.filter(mapping_id__in=ids, status=Status.OPEN)
        .values("mapping_id")
        .annotate(n=Count("pk"))
        .values_list("mapping_id", "n")
    )
    trends = backlog_trends(ids, today)
    snapshots = latest_snapshots(ids)
    paused = SyncError.objects.in_bulk([m.paused_error_id for m in mappings if m.paused_error_id])
    for mapping in mappings:
        if mapping.paused_error_id:
            mapping.paused_error = paused.get(mapping.paused_error_id)
        mapping.last_job = jobs.get(mapping.last_job_id)
        mapping.health = MappingHealth(
            in_sync=mapping.in_sync,
            failing=mapping.failing,
            failing_not_coupled=(
                snapshots[mapping.pk].failing_not_coupled if mapping.pk in snapshots else 0
            ),
            skipped=mapping.skipped,
            open_errors=open_errors.get(mapping.pk, 0),
            trend=trends[mapping.pk],
        )
    return mappings


def backlog_trends(mapping_ids: list[int], today: date | None = None) -> dict[int, list[Bar]]:
    """Failing (coupled or not) and skipped records per day over the last 14 days, per
    mapping: a day without a job keeps the figure of the day before. Two queries."""
    # The snapshots' days are the console's (TIME_ZONE), whatever zone the reader is in.
    today = today or timezone.localdate(timezone=timezone.get_default_timezone())
    first = today - timedelta(days=TREND_DAYS - 1)
    snapshots = MappingHealthSnapshot.objects.filter(mapping_id__in=mapping_ids)
    per_day: dict[int, dict[date, int]] = {pk: {} for pk in mapping_ids}
    for row in snapshots.filter(day__gte=first, day__lte=today).values(
        "mapping_id", "day", *BACKLOG
    ):
        per_day[row["mapping_id"]][row["day"]] = sum(row[name] for name in BACKLOG)
    before = {
        row["mapping_id"]: sum(row[name] for name in BACKLOG)
        for row in snapshots.filter(day__lt=first)
        .order_by("mapping_id", "-day")
        .distinct("mapping_id")
        .values("mapping_id", *BACKLOG)
    }
    trends = {}
    for pk in mapping_ids:
        carried = before.get(pk, 0)
        counts = []
        for i in range(TREND_DAYS):
            carried = per_day[pk].get(first + timedelta(days=i), carried)
            counts.append(carried)
        trends[pk] = trend_bars(counts, first)
    return trends
