"""Benchmark 1: the errors list at 100k, 1M and 10M entries.

The server time of the real view (request, filters, keyset page, total, template) for the first
page, a page deep in the list, each filter and the search, measured at each size as the same
table grows by appending; beside it the naive way: Django's Paginator (OFFSET) for the same deep
page, and COUNT(*) of the table.
"""

import os
from dataclasses import dataclass
from datetime import timedelta

from .common import analyze, median, ms, p95, sample, stage, table

SIZES = [100_000, 1_000_000, 10_000_000]
QUICK_SIZES = [20_000, 50_000]
RUNS = 15
QUICK_RUNS = 5
NAIVE_RUNS = 3
# This round's target: p95 < 50 ms at every size (the previous round's was 100 ms at 10,000,000).
TARGETS_MS = {1_000_000: 50, 10_000_000: 50}
# The previous round's p95 at 10,000,000 entries (2026-11-25, the same machine's two cores),
# shown beside this run's.
PREVIOUS_P95_10M = {
    "first page": 20.9,
    "deep page (middle of the table)": 22.3,
    "category": 21.1,
    "status": 25.1,
    "mapping": 22.2,
    "connection": 30.0,
    "group": 23.1,
    "job": 26.2,
    "date range (one day)": 15.6,
    "date range (a week), deep page": 19.3,
    "search: a word": 40.4,
    "search: another word": 39.7,
    "search: a record id": 44.0,
    "category + status + mapping": 69.8,
    "keyset deep page, queries only (page + estimated total)": 9.4,
    "OFFSET deep page, queries only (Paginator: COUNT(*) + OFFSET)": 4724.2,
    "COUNT(*) of the table": 236.3,
}
# A job's entries: a job that failed on this many records.
JOB_ENTRIES = 2_000


@dataclass(frozen=True)
class Case:
    title: str
    query: str


def sync_administrator():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from syncconsole.permissions import SYNC_ADMINISTRATORS

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True}
    )
    user.groups.add(Group.objects.get(name=SYNC_ADMINISTRATORS))
    return user


def entry_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM errors_syncerror")
        return cursor.fetchone()[0]


def grow_to(size: int) -> None:
    """Append entries until the table holds `size` (emptied first when it holds more)."""
    from errors import partitions

    from .data import clear_errors, generate_errors

    current = entry_count()
    if current > size:
        clear_errors()
        current = 0
    if current < size:
        with stage(f"appending {size - current:,} entries"):
            generate_errors(size - current, seed=size)
    # The day partitions as the scheduled task keeps them (the days ahead, none past them).
    partitions.create_partitions_ahead()
    with stage("vacuum analyze"):
        analyze("errors_syncerror", "errors_errorgroup")


def job_with_entries() -> int:
    """A job that logged the newest JOB_ENTRIES entries written by the generator."""
    from django.db import connection

    from errors.models import SyncError
    from sync.models import SyncJob

    from .data import bench_mappings

    newest = SyncError.objects.order_by("-pk").values_list("pk", flat=True).first()
    job = SyncJob.objects.create(mapping=bench_mappings()[0])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE errors_syncerror SET job_id = %s WHERE id > %s",
            [job.pk, newest - JOB_ENTRIES],
        )
    return job.pk


def cases() -> list[Case]:
    from errors.models import SyncError
    from errors.pagination import encode_cursor

    from .data import bench_mappings

    entries = SyncError.objects.order_by("-created_at", "-pk")
    middle = entries.count() // 2
    deep = entries.values("created_at", "pk")[middle]
    cursor = encode_cursor(deep["created_at"], deep["pk"])
    newest = entries.values("created_at", "source_record_id", "group_id", "mapping_id").first()
    mapping = bench_mappings()[2]
    job = job_with_entries()
    day = (newest["created_at"] - timedelta(days=10)).date().isoformat()
    week_from = (newest["created_at"] - timedelta(days=20)).date().isoformat()
    return [
        Case("first page", ""),
        Case("deep page (middle of the table)", f"before={cursor}"),
        Case("category", "category=currency"),
        Case("status", "status=ignored"),
        Case("mapping", f"mapping={mapping.pk}"),
        Case("connection", f"connection={mapping.connection_id}"),
        Case("group", f"group={newest['group_id']}"),
        Case("job", f"job={job}"),
        Case("date range (one day)", f"created_after={day}&created_before={day}"),
        Case(
            "date range (a week), deep page",
            f"created_after={week_from}&created_before={day}&before={cursor}",
        ),
        Case("search: a word", "q=exchange"),
        Case("search: another word", "q=Fabrikam"),
        Case("search: a record id", f"q={newest['source_record_id']}"),
        Case(
            "category + status + mapping", f"category=validation&status=open&mapping={mapping.pk}"
        ),
    ]


def view_times(client, case: Case, runs: int) -> list[float]:
    def request():
        response = client.get("/errors/?" + case.query if case.query else "/errors/")
        assert response.status_code == 200, (case, response.status_code)

    return sample(request, runs)


def naive_times(deep_cursor: str, runs: int) -> dict[str, list[float]]:
    """The deep page's queries alone: keyset (page and total) against Django's Paginator
    (COUNT(*) and OFFSET); and COUNT(*) of the table."""
    from django.core.paginator import Paginator

    from errors.models import SyncError
    from errors.pagination import estimated_total, keyset_page

    entries = SyncError.objects.select_related("mapping", "job").order_by("-created_at", "-id")

    def keyset():
        page = keyset_page(entries, size=50, before=deep_cursor)
        estimated_total(entries, page=page)

    def offset_page():
        paginator = Paginator(entries, 50)
        list(paginator.page(paginator.num_pages // 2).object_list)

    return {
        "keyset deep page, queries only (page + estimated total)": sample(keyset, runs),
        "OFFSET deep page, queries only (Paginator: COUNT(*) + OFFSET)": sample(offset_page, runs),
        "COUNT(*) of the table": sample(lambda: SyncError.objects.count(), runs),
    }


def sizes_asked() -> list[int]:
    """BENCH_LIST_SIZES=100000,1000000 measures at those sizes only (the table grows to each)."""
    raw = os.environ.get("BENCH_LIST_SIZES", "")
    return sorted(int(size) for size in raw.split(",") if size.strip())


def run(quick: bool) -> str:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")  # a host in ALLOWED_HOSTS
    client.force_login(sync_administrator())
    sizes = QUICK_SIZES if quick else sizes_asked() or SIZES
    runs = QUICK_RUNS if quick else RUNS
    naive_runs = 2 if quick else NAIVE_RUNS
    results: dict[int, dict[str, list[float]]] = {}
    titles: list[str] = []
    for size in sizes:
        grow_to(size)
        with stage(f"measuring at {size:,}"):
            results[size] = {}
            size_cases = cases()
            for case in size_cases:
                results[size][case.title] = view_times(client, case, runs)
            deep_cursor = size_cases[1].query.removeprefix("before=")
            results[size].update(naive_times(deep_cursor, naive_runs))
        titles = list(results[size])

    headers = ["case"] + [f"{size:,}: median / p95" for size in sizes]
    headers.append("10,000,000: the previous round's p95")
    rows = [
        [title]
        + [f"{ms(median(results[s][title]))} / {ms(p95(results[s][title]))}" for s in sizes]
        + [ms(PREVIOUS_P95_10M[title]) if title in PREVIOUS_P95_10M else "—"]
        for title in titles
    ]
    verdicts = []
    for size, limit in TARGETS_MS.items():
        if size not in results:
            continue
        view = {
            t: v
            for t, v in results[size].items()
            if not t.startswith(("keyset", "OFFSET", "COUNT"))
        }
        worst_title, worst = max(view.items(), key=lambda item: p95(item[1]))
        met = p95(worst) < limit
        verdicts.append(
            f"- {size:,} entries: the slowest case is **{worst_title}**, p95 {ms(p95(worst))}; "
            f"target p95 < {limit} ms: **{'met' if met else 'not met'}**."
        )
    last = sizes[-1]
    keyset = median(results[last]["keyset deep page, queries only (page + estimated total)"])
    offset = median(results[last]["OFFSET deep page, queries only (Paginator: COUNT(*) + OFFSET)"])
    count = median(results[last]["COUNT(*) of the table"])
    first_page = median(results[last]["first page"])
    return "\n".join(
        [
            "## 1. Errors list",
            "",
            "Server time of `GET /errors/` through Django's test client as a signed-in Sync "
            "administrator: URL resolving, middleware, session, filters, the keyset page of 50 "
            "entries, the total (the planner's estimate, counted exactly up to 1,000 when it is "
            "under 10,000) and the rows "
            f"(median / p95 of {runs} requests after one warm-up, per case). The same table grows "
            "by appending (COPY, bench/data.py: 30 days of entries, 6 mappings, 54 groups, 80% "
            "open; the day partitions as the scheduled task keeps them), measured at each size "
            f"of this run ({', '.join(f'{size:,}' for size in sizes)}). The deep page follows "
            "a cursor from the middle of the "
            f"table; the job filter is a job with {JOB_ENTRIES:,} entries; the searched words are "
            "in about 11% (exchange) and 7% (Fabrikam) of the messages.",
            "",
            table(headers, rows),
            "",
            f"Naive comparison at {last:,} entries (queries only, median of {naive_runs}): the "
            f"same deep page with Django's Paginator (COUNT(*) and OFFSET) takes {ms(offset)} "
            f"against {ms(keyset)} with the keyset cursor and the estimated total "
            f"(**{offset / keyset:,.0f}×**); COUNT(*) of the table alone takes {ms(count)}, "
            f"{count / first_page:,.1f}× a whole first page with its template.",
            "",
            *verdicts,
            "",
        ]
    )
