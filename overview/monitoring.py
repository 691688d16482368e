"""The figures /metrics reads from the database and the broker at each scrape: open entries by
category, open problems by severity, skipped couplings and lag per mapping, recent jobs by
status and the depth of the task queues.

Like the overview, they come from what is kept as the synchronization runs, never from the
entries table (millions of rows): the problems' day figures, the problems, the couplings'
partial index of skipped ones, the mappings with their latest successful job, and the jobs of
the last day along their time index. A fixed number of queries, whatever the data.

A part that cannot be read (the database or the broker down) leaves its figures out and says
so in syncconsole_scrape_up{source} = 0: /metrics still answers."""

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from celery import Celery
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from couplings.models import Coupling
from errors.models import SEVERITY_LEVEL_UNIT, ErrorGroup, GroupDay, Severity, Status
from sync.models import SyncJob, TableMapping
from syncconsole.celery import app as celery_app
from syncconsole.readiness import queue_names

logger = logging.getLogger(__name__)

# Jobs counted by status: those created in this window, read along the jobs' time index.
RECENT_JOBS = timedelta(hours=24)


def open_entries_by_category() -> dict[str, int]:
    """Open entries per category, from the problems' day figures (one row per problem and
    day kept, never an entry)."""
    rows = (
        GroupDay.objects.filter(open__gt=0)
        .values("group__category")
        .annotate(entries=Sum("open"))
        .order_by()
    )
    return {row["group__category"]: row["entries"] for row in rows}


def open_problems_by_severity() -> dict[str, int]:
    """Open problems per severity (overview/severity.py: the problems' own stored rank)."""
    rows = (
        ErrorGroup.objects.filter(status=Status.OPEN, count__gt=0)
        .annotate(level=F("severity") / SEVERITY_LEVEL_UNIT)
        .values("level")
        .annotate(problems=Count("pk"))
        .order_by()
    )
    counts = {Severity(level).name.lower(): 0 for level in Severity if level != Severity.SET_ASIDE}
    for row in rows:
        counts[Severity(row["level"]).name.lower()] = row["problems"]
    return counts


def mappings_with_last_success() -> list[tuple[int, str, bool, datetime | None]]:
    """(id, name, running, last successful job's end) of every mapping: one query, its
    subquery walking the jobs' (mapping, created) index from the newest."""
    succeeded = SyncJob.objects.filter(
        mapping=OuterRef("pk"), status=SyncJob.Status.SUCCEEDED
    ).order_by("-created_at", "-pk")
    rows = TableMapping.objects.annotate(
        last_success_at=Subquery(succeeded.values("finished_at")[:1])
    ).values_list("pk", "name", "is_enabled", "connection__is_enabled", "last_success_at")
    return [
        (pk, name, mapping_on and connection_on, last)
        for pk, name, mapping_on, connection_on, last in rows
    ]


def skipped_couplings() -> dict[int, int]:
    """Skipped couplings per mapping id, along the couplings' partial index of skipped ones."""
    rows = (
        Coupling.objects.filter(is_skipped=True)
        .values("mapping_id")
        .annotate(couplings=Count("pk"))
        .order_by()
    )
    return {row["mapping_id"]: row["couplings"] for row in rows}


def recent_jobs_by_status(now: datetime) -> dict[str, int]:
    counts = dict.fromkeys(SyncJob.Status.values, 0)
    rows = (
        SyncJob.objects.filter(created_at__gte=now - RECENT_JOBS)
        .values("status")
        .annotate(jobs=Count("pk"))
        .order_by()
    )
    for row in rows:
        counts[row["status"]] = row["jobs"]
    return counts


def queue_depths(app: Celery) -> dict[str, int]:
    """Messages waiting in each queue (LLEN of its lists on Redis), through kombu so that any
    broker the console runs on answers; a queue no worker declared yet holds none."""
    depths = {}
    with app.connection_for_read() as connection:
        connection.connect()
        channel = connection.default_channel
        for name in queue_names(app):
            try:
                depths[name] = channel.queue_declare(queue=name, passive=True).message_count
            except connection.channel_errors:  # no such queue (an empty list on Redis)
                depths[name] = 0
    return depths


class DatabaseFigures(Collector):
    """A prometheus_client collector: registered in the registry of one scrape only, so that
    nothing else (a worker's own HTTP server) reads the database."""

    def __init__(self, app: Celery = celery_app, now: Callable[[], datetime] = timezone.now):
        self.app = app
        self.now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "syncconsole_scrape_up",
            "Whether the figures of a source (database, broker) could be read at this scrape.",
            labels=["source"],
        )
        for source, read in (("database", self.database), ("broker", self.broker)):
            try:
                figures = list(read())
            except Exception:  # whatever failed, /metrics answers with the rest
                logger.warning("Metrics: could not read the %s's figures", source, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from figures
        yield up

    def database(self) -> Iterable[Metric]:
        now = self.now()
        entries = GaugeMetricFamily(
            "syncconsole_open_entries", "Open sync error entries, by category.", labels=["category"]
        )
        for category, count in sorted(open_entries_by_category().items()):
            entries.add_metric([category], count)
        problems = GaugeMetricFamily(
            "syncconsole_open_problems", "Open problems, by severity.", labels=["severity"]
        )
        for severity, count in open_problems_by_severity().items():
            problems.add_metric([severity], count)
        skipped = GaugeMetricFamily(
            "syncconsole_skipped_couplings",
            "Couplings skipped after failing, waiting for a retry, by table mapping.",
            labels=["mapping"],
        )
        lag = GaugeMetricFamily(
            "syncconsole_lag_seconds",
            "Seconds since the last successful job of each enabled table mapping (none: it "
            "never succeeded).",
            labels=["mapping"],
        )
        never = GaugeMetricFamily(
            "syncconsole_mapping_never_succeeded",
            "1 for an enabled table mapping no job of which succeeded yet.",
            labels=["mapping"],
        )
        skipped_by_mapping = skipped_couplings()
        for pk, name, running, last_success in mappings_with_last_success():
            skipped.add_metric([name], skipped_by_mapping.get(pk, 0))
            if not running:
                continue
            if last_success is None:
                never.add_metric([name], 1)
            else:
                lag.add_metric([name], max((now - last_success).total_seconds(), 0.0))
                never.add_metric([name], 0)
        jobs = GaugeMetricFamily(
            "syncconsole_jobs",
            "Sync jobs created in the last 24 hours, by status.",
            labels=["status"],
        )
        for status, count in recent_jobs_by_status(now).items():
            jobs.add_metric([status], count)
        return [entries, problems, skipped, lag, never, jobs]

    def broker(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "syncconsole_queue_messages",
            "Tasks waiting in each Celery queue of the broker.",
            labels=["queue"],
        )
        for name, count in queue_depths(self.app).items():
            depth.add_metric([name], count)
        return [depth]
