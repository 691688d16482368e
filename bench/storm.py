"""Benchmark: a record storm. One job whose records all fail the same way writes its entries
through errors.grouping.record_errors (1,000,000 at full scale, in batches of a page, each its
own transaction) onto the entries the other benchmarks generate, while another process keeps
asking for the errors list (the newest page, and the storm's problem's entries) and the
Problems page: how fast the storm is absorbed, how long the pages take meanwhile (p95), and
whether the problem's figures on the Problems page are exact at the end (compared with counts
made from the entries themselves).

A setup storm (every record failing for the same setup reason) never gets this far: the
engine stops a job at its first setup failure and the circuit breaker pauses the mapping after
SETUP_FAILURES_BEFORE_PAUSE such jobs (sync.breaker; tests/sync/test_breaker.py)."""

import multiprocessing
import os
import time
from datetime import datetime, timedelta

from .common import analyze, median, ms, p95, stage, table

# BENCH_STORM_ENTRIES runs it at another scale (the result says which).
FULL, QUICK = int(os.environ.get("BENCH_STORM_ENTRIES", 1_000_000)), 20_000
BACKGROUND, QUICK_BACKGROUND = 1_000_000, 20_000
TARGET_P95_MS = 100
MESSAGE = "The field name of customer {id} cannot be '{value}': it must not be longer than 30."
PAGES = ("errors list, newest", "errors list, the storm's problem", "Problems page")


def run(quick: bool) -> str:
    from django.db import connection
    from django.utils import timezone

    from errors.models import ErrorGroup, SyncError
    from sync.connectors.odata import SideConfig
    from sync.models import SyncJob

    from .data import bench_mappings, clear_errors, generate_errors
    from .error_list import sync_administrator

    size, background = (QUICK, QUICK_BACKGROUND) if quick else (FULL, BACKGROUND)
    batch = SideConfig.page_size
    with stage(f"{background:,} entries before the storm"):
        if SyncError.objects.count() != background:
            clear_errors()
            generate_errors(background)
        analyze(SyncError._meta.db_table, ErrorGroup._meta.db_table)
    sync_administrator()
    mapping = bench_mappings()[0]
    job = SyncJob.objects.create(
        mapping=mapping, started_at=timezone.now(), status=SyncJob.Status.RUNNING
    )
    mark = SyncError.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    with stage(f"a storm of {size:,} entries"), Pages() as pages:
        start = time.perf_counter()
        seconds = _storm(job, size, batch, pages)
        elapsed = time.perf_counter() - start
    group = ErrorGroup.objects.get(pk=pages.group_id)
    with stage("figures against the entries"):
        checks = _compare(group)
    plans = {name: _plan_of(url) for name, url in _urls(group.pk)[:2]}
    stored = SyncError.objects.filter(pk__gt=mark, job=job).count()
    with connection.cursor() as cursor:  # the next run starts from the same table
        cursor.execute(f"DELETE FROM {SyncError._meta.db_table} WHERE id > %s", [mark])
    ErrorGroup.objects.filter(pk=group.pk).delete()

    exact = all(ok for _, _, _, ok in checks) and group.count == stored
    list_p95 = p95(pages.times[PAGES[0]] + pages.times[PAGES[1]])
    return "\n".join(
        [
            "## Record storm",
            "",
            f"One job of the `{mapping.name}` mapping whose {size:,} records all fail the same "
            f"way (`{MESSAGE}`, a record id and a value in each: one problem), written through "
            f"`errors.grouping.record_errors` in batches of {batch:,}, each its own transaction, "
            f"onto `{SyncError._meta.db_table}` holding {background:,} entries; meanwhile "
            "another process asks for each page in turn (Django's test client, signed in as a "
            "Sync administrator, 50 ms apart). Then the problem's figures, as the Problems "
            "page shows them, against counts made from its entries.",
            "",
            table(
                ["", "value"],
                [
                    ("entries stored", f"{stored:,}"),
                    ("time", f"{elapsed:,.1f} s"),
                    ("entries/s", f"{size / elapsed:,.0f}"),
                    ("slowest batch", ms(max(seconds) * 1000)),
                    ("median batch", ms(median(seconds) * 1000)),
                ],
            ),
            "",
            table(
                ["page during the storm", "median", "p95", "max", "requests"],
                [
                    (
                        name,
                        ms(median(pages.times[name])),
                        ms(p95(pages.times[name])),
                        ms(max(pages.times[name])),
                        f"{len(pages.times[name]):,}",
                    )
                    for name in PAGES
                    if pages.times[name]
                ],
            ),
            "",
            table(
                ["figure of the problem", "Problems page", "from the entries", "exact"],
                [
                    (what, f"{a:,}", f"{b:,}", "yes" if ok else "**no**")
                    for what, a, b, ok in checks
                ],
            ),
            "",
            f"**Errors list p95 under {TARGET_P95_MS} ms during the storm (both list pages' "
            "requests together): "
            f"{'met' if list_p95 < TARGET_P95_MS else 'not met'}** ({ms(list_p95)}); "
            f"**the Problems page exact: {'yes' if exact else 'no'}**; "
            f"{stored:,} of {size:,} entries absorbed.",
            "",
            "Where a list page's time goes, at the end of the storm (the page's query on the "
            "entries, EXPLAIN ANALYZE; the planner's statistics are those the writer gathered "
            "as the day grew (errors.partitions.note_written) and autovacuum had by then"
            f"{_statistics_note()}):",
            "",
            table(
                ["page", "plan", "rows the planner expected", "rows read", "time"],
                [
                    (name, kinds, f"{expected:,}", f"{read:,}", ms(took))
                    for name, (kinds, expected, read, took) in plans.items()
                ],
            ),  # fmt: skip
        ]
    )


def _statistics_note() -> str:
    """A server without autovacuum never gathers the new rows' statistics by itself."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        on = cursor.fetchone()[0] == "on"
    return "" if on else ", none here, as this server runs without autovacuum"


def _urls(group_id: int) -> list[tuple[str, str]]:
    from django.urls import reverse

    return list(
        zip(
            PAGES,
            [
                reverse("errors:list"),
                f"{reverse('errors:list')}?group={group_id}",
                reverse("errors:groups"),
            ],
            strict=True,
        )
    )


def _plan_of(url: str) -> tuple[str, int, int, float]:
    """The list page's query on the entries, run with EXPLAIN ANALYZE: its plan's node
    types, the rows the planner expected from the entries and those it read, and its time."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from errors.models import SyncError

    client = Client(HTTP_HOST=next(h for h in settings.ALLOWED_HOSTS if "*" not in h))
    client.force_login(User.objects.get(username="bench-admin"))
    table_name = f'"{SyncError._meta.db_table}"'
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    page = next(
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and f"FROM {table_name}" in q["sql"]
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + page)
        found = cursor.fetchone()[0][0]
    kinds, expected, read = [], 0, 0

    def walk(node: dict) -> None:
        nonlocal expected, read
        if node["Node Type"] not in kinds:
            kinds.append(node["Node Type"])
        if node.get("Relation Name", "").startswith(SyncError._meta.db_table):
            expected += int(node["Plan Rows"])
            read += int(node["Actual Rows"]) * int(node.get("Actual Loops", 1))
        for child in node.get("Plans", []):
            walk(child)

    walk(found["Plan"])
    return " → ".join(kinds[:6]), expected, read, found["Execution Time"]


def _storm(job, size: int, batch: int, pages: "Pages") -> list[float]:
    import random

    from django.utils import timezone

    from errors.grouping import record_errors
    from errors.models import Category, SyncError

    from .data import VALUES

    rng = random.Random(11)
    seconds = []
    for first in range(0, size, batch):
        now = timezone.now()
        errors = []
        for n in range(first, min(size, first + batch)):
            record = f"S{n:09d}"
            errors.append(
                SyncError(
                    created_at=now,
                    job=job,
                    mapping_id=job.mapping_id,
                    category=Category.VALIDATION,
                    source_app="Business Central",
                    source_entity=job.mapping.source_entity,
                    source_record_id=record,
                    source_url=f"https://erp.example.com/customers/{record}",
                    destination_app="Dynamics 365 Sales",
                    destination_entity=job.mapping.destination_entity,
                    message=MESSAGE.format(id=record, value=rng.choice(VALUES)),
                    detail='{"error": {"code": "0x80040237"}}',
                )
            )
        start = time.perf_counter()
        stored = record_errors(errors)
        seconds.append(time.perf_counter() - start)
        if first == 0:
            pages.watch(stored[0].group_id)
    return seconds


def _compare(group) -> list[tuple[str, int, int, bool]]:
    """The problem's figures as the Problems page reads them (errors.grouping.figures_for and
    the problem's own counts), against the same counted from its entries."""
    from django.db.models import Count, Q
    from django.utils import timezone

    from errors.grouping import figures_for
    from errors.models import ErrorGroup, Status, SyncError
    from errors.trends import TREND_DAYS

    group = ErrorGroup.objects.get(pk=group.pk)
    figures = figures_for([group])[group.pk]
    entries = SyncError.objects.filter(group_id=group.pk)
    counted = entries.aggregate(
        all=Count("pk"),
        open=Count("pk", filter=Q(status=Status.OPEN)),
        records=Count("source_record_id", distinct=True, filter=~Q(source_record_id="")),
    )
    # The figures' days are the console's (TIME_ZONE), as on the Problems page.
    zone = timezone.get_default_timezone()
    first = timezone.localdate(timezone=zone) - timedelta(days=TREND_DAYS - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    recent = entries.filter(created_at__gte=since).count()
    shown = sum(bar.count for bar in figures.trend) if figures.trend else 0
    rows = [
        ("entries (count)", group.count, counted["all"]),
        ("open entries", figures.open, counted["open"]),
        ("records affected", group.records, counted["records"]),
        (f"entries of the last {TREND_DAYS} days", shown, recent),
    ]
    return [(what, a, b, a == b) for what, a, b in rows]


class Pages:
    """Another process that asks for the pages in turn until the storm ends, from the moment
    the storm's problem exists (its entries' page needs its id)."""

    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.group = context.Value("q", 0)
        self.ready = context.Event()
        self.results = context.Queue()
        self.process = context.Process(
            target=pages_loop, args=(self.group, self.stop, self.ready, self.results)
        )
        self.times: dict[str, list[float]] = {name: [] for name in PAGES}
        self.group_id = 0

    def __enter__(self):
        self.process.start()
        if not self.ready.wait(300):
            raise RuntimeError("the process asking for the pages did not start")
        return self

    def watch(self, group_id: int) -> None:
        self.group_id = group_id
        self.group.value = group_id

    def __exit__(self, *exc):
        self.stop.set()
        self.times = self.results.get(timeout=300)
        self.process.join()


def pages_loop(group, stop, ready, results) -> None:
    from .common import setup_django

    setup_django()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client(HTTP_HOST=next(h for h in settings.ALLOWED_HOSTS if "*" not in h))
    client.force_login(User.objects.get(username="bench-admin"))
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    ready.set()
    while not stop.is_set():
        if not group.value:
            time.sleep(0.05)
            continue
        for name, url in _urls(group.value):
            start = time.perf_counter()
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            times[name].append((time.perf_counter() - start) * 1000)
            time.sleep(0.05)
    results.put(times)
