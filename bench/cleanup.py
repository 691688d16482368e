"""Benchmark 4: deleting the entries older than 7 days out of 10,000,000 (half of them).

The clean-up runs through its real path (request_cleanup -> run_cleanup): whole day
partitions are detached and dropped, only the day that straddles the cut-off is deleted row
by row; the stale records of the dropped days are then purged as the background task does,
timed on its own. The naive way is one big DELETE of the same rows, on the same data: it runs
first, inside a transaction that is rolled back, so both see the same table. Meanwhile
another process times the errors list page, and another watches the longest transaction of
the deleting connection in pg_stat_activity.

The generated data is kept in a template database (the benchmark database's name with
`_cleanup_<entries>`): a later run copies it back instead of generating it again."""

import multiprocessing
import os
import time

from .common import median, ms, p95, stage, table

# BENCH_CLEANUP_ENTRIES runs it at another scale (the result says which).
FULL, QUICK = int(os.environ.get("BENCH_CLEANUP_ENTRIES", 10_000_000)), 200_000
TARGET_ROWS_PER_S = 400_000
TARGET_TRANSACTION_MS = 250


class Watch:
    """While it runs: the list page's server time, and the age of the watched connection's
    open transaction, sampled every few milliseconds. Each is measured by a process of its
    own, so that neither competes with the clean-up for this process's interpreter lock (a
    clean-up of many short batches would otherwise wait for it after every statement)."""

    def __init__(self, pid: int):
        context = multiprocessing.get_context("spawn")
        self.pages: list[float] = []
        self.longest_transaction = 0.0
        self.longest_statement = ""
        self.stop = context.Event()
        self.results = context.Queue()
        self.ready = [context.Event(), context.Event()]
        self.processes = [
            context.Process(target=pages_loop, args=(self.stop, self.ready[0], self.results)),
            context.Process(
                target=transaction_loop, args=(pid, self.stop, self.ready[1], self.results)
            ),
        ]

    def __enter__(self):
        for process in self.processes:
            process.start()
        for ready in self.ready:
            if not ready.wait(300):
                raise RuntimeError("a watching process did not start")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for _ in self.processes:
            kind, value = self.results.get(timeout=300)
            if kind == "pages":
                self.pages = value
            else:
                self.longest_transaction, self.longest_statement = value
        for process in self.processes:
            process.join()


def pages_loop(stop, ready, results) -> None:
    from .common import setup_django

    setup_django()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    client = Client(HTTP_HOST=next(h for h in settings.ALLOWED_HOSTS if "*" not in h))
    client.force_login(User.objects.get(username="bench-admin"))
    url = reverse("errors:list")
    pages = []
    ready.set()
    while not stop.is_set():
        start = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        pages.append((time.perf_counter() - start) * 1000)
        time.sleep(0.05)
    results.put(("pages", pages))


def transaction_loop(pid: int, stop, ready, results) -> None:
    from .common import setup_django

    setup_django()
    from django.db import connection

    longest, statement = 0.0, ""
    with connection.cursor() as cursor:
        ready.set()
        while not stop.is_set():
            cursor.execute(
                "SELECT EXTRACT(EPOCH FROM clock_timestamp() - xact_start) * 1000, query "
                "FROM pg_stat_activity WHERE pid = %s AND xact_start IS NOT NULL",
                [pid],
            )
            row = cursor.fetchone()
            if row and row[0] is not None and float(row[0]) > longest:
                longest, statement = float(row[0]), " ".join(row[1].split())[:120]
            time.sleep(0.005)
    results.put(("transactions", (longest, statement)))


def entries_size() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(relid)), 0) "
            "FROM pg_partition_tree('errors_syncerror')"
        )
        return int(cursor.fetchone()[0])


def mb(size: int) -> str:
    return f"{size / 1024 / 1024:,.0f} MB"


def _admin(sql: str) -> None:
    import psycopg2
    from django.db import connections

    connections.close_all()
    settings = connections["default"].settings_dict
    admin = psycopg2.connect(
        dbname="postgres",
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql)
    admin.close()


def _template_exists(name: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def prepared_data(count: int) -> str:
    """The entries of this scale in the benchmark database: copied from the template made
    by an earlier run, or generated (and kept as the template). Says which."""
    from django.core.management import call_command
    from django.db import connection

    from .common import analyze
    from .data import clear_errors, generate_errors

    bench = connection.settings_dict["NAME"]
    template = f"{bench}_cleanup_{count}"
    if _template_exists(template):
        with stage(f"copying {count:,} entries back from {template}"):
            _admin(f'DROP DATABASE "{bench}"')
            _admin(f'CREATE DATABASE "{bench}" TEMPLATE "{template}"')
            # The template may predate the code's latest migrations.
            call_command("migrate", verbosity=0, interactive=False)
        return "copied from the data generated by an earlier run"
    with stage(f"generating {count:,} entries over 14 days"):
        clear_errors()
        generate_errors(count, days=14)
        analyze("errors_syncerror", "errors_groupday", "errors_grouprecord")
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    with stage(f"keeping them as {template}"):
        _admin(f'CREATE DATABASE "{template}" TEMPLATE "{bench}"')
    return "generated by this run"


def run(quick: bool) -> str:
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from errors import partitions, services
    from errors.models import SyncError, SyncErrorCleanup

    count = QUICK if quick else FULL
    origin = prepared_data(count)
    # After the data: a copy of the template replaces the whole database.
    User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    size_before = entries_size()
    cutoff = services.cleanup_cutoff(7)
    old = SyncError.objects.filter(created_at__lt=cutoff).count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]

    straddling = SyncError.objects.filter(
        created_at__lt=cutoff,
        created_at__gte=partitions.day_bounds(partitions.day_of(cutoff))[0],
    ).count()
    with stage("the list page with nothing else running"), Watch(pid) as quiet:
        time.sleep(3)

    with stage("naive: one DELETE of the same rows (rolled back)"), Watch(pid) as naive_watch:
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM errors_syncerror WHERE created_at < %s", [cutoff])
            naive_deleted = cursor.rowcount
            naive_seconds = time.perf_counter() - start
            transaction.set_rollback(True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE errors_syncerror")

    with stage("the clean-up (request_cleanup, run_cleanup)"), Watch(pid) as watch:
        start = time.perf_counter()
        cleanup = services.request_cleanup(
            days=7, trigger=SyncErrorCleanup.Trigger.COMMAND, run_in_background=False
        )
        seconds = time.perf_counter() - start
    with stage("the background purge of the dropped days' records"), Watch(pid) as purge_watch:
        start = time.perf_counter()
        purged = partitions.purge_stale_records()
        purge_seconds = time.perf_counter() - start
    size_after = entries_size()
    left_old = SyncError.objects.filter(created_at__lt=cleanup.cutoff).count()

    def rate(rows: int, took: float) -> str:
        return f"{rows / took:,.0f}"

    def pages(values: list[float]) -> str:
        if not values:
            return "–"
        return f"{ms(median(values))} / {ms(p95(values))} / {ms(max(values))} ({len(values)})"

    rows = [
        (
            "clean-up (day partitions dropped)",
            f"{cleanup.deleted_count:,}",
            f"{seconds:,.1f} s",
            rate(cleanup.deleted_count, seconds),
            ms(watch.longest_transaction),
            pages(watch.pages),
        ),
        (
            "then, in the background: stale problem records purged",
            f"{purged:,} records",
            f"{purge_seconds:,.1f} s",
            rate(purged, purge_seconds),
            ms(purge_watch.longest_transaction),
            pages(purge_watch.pages),
        ),
        (
            "naive: one big DELETE",
            f"{naive_deleted:,}",
            f"{naive_seconds:,.1f} s",
            rate(naive_deleted, naive_seconds),
            ms(naive_watch.longest_transaction),
            pages(naive_watch.pages),
        ),
    ]
    rate_met = cleanup.deleted_count / seconds >= TARGET_ROWS_PER_S
    lock_met = (
        max(watch.longest_transaction, purge_watch.longest_transaction) < TARGET_TRANSACTION_MS
    )
    return "\n\n".join(
        [
            "## Clean-up",
            f"{count:,} entries over 14 days ({origin}), {old:,} older than 7 days, "
            f"{straddling:,} of them on the day that straddles the cut-off (deleted row by "
            "row; the other days are dropped whole). The clean-up runs "
            "through `request_cleanup` and `run_cleanup` (state "
            f"`{cleanup.state}`, {left_old} old entries left). Longest transaction: the "
            "deleting connection's open transaction, sampled every 5 ms in pg_stat_activity. "
            "List page: server time of `GET /errors/` from another process during the deletion "
            "(median / p95 / max (requests)); with nothing else running: "
            f"{pages(quiet.pages)}.",
            table(
                ["way", "deleted", "total", "rows/s", "longest transaction", "list page during it"],
                rows,
            ),
            "Statement running when the clean-up's longest transaction was seen: "
            f"`{watch.longest_statement}`; the purge's: `{purge_watch.longest_statement}`.",
            f"Ratio (total time): **{naive_seconds / seconds:,.1f}×** faster than one DELETE.",
            f"Entries table with its indexes (all partitions): {mb(size_before)} before, "
            f"{mb(size_after)} after the clean-up.",
            f"Target >= {TARGET_ROWS_PER_S:,} rows/s: **{'met' if rate_met else 'not met'}**; "
            f"longest transaction < {TARGET_TRANSACTION_MS} ms: "
            f"**{'met' if lock_met else 'not met'}**.",
            *([] if rate_met and lock_met else [GAP_AND_PLAN]),
        ]
    )


GAP_AND_PLAN = """Where the time goes, and the plan. Dropping a whole day reads no row: its entries
leave the problems' figures through the day figures, in a transaction of a few milliseconds.
What costs is row-level work: the day that straddles the cut-off, deleted along its time index in
batches paced to about 100 ms so that the list stays usable (each batch moves the problems'
figures through the statement-level triggers), and, in the background, the purge of the dropped
days' problem records (one row per problem and record). The longest transactions were seen at
`COMMIT`: the flush of a batch's WAL, which a paced batch size cannot see coming. The plan, in
order of what it saves:

1. The scheduled clean-up cuts at the start of a day (keeping at most one day more than the
   retention), so it only drops whole days: no row-level delete and no commit of a large batch.
   The console's *Delete Entries Older than 7 Days* keeps its exact cut-off.
2. The problems' record rows partitioned by the day of their record's latest entry, like the
   entries, so that the purge drops them with their day instead of deleting them row by row.
3. Pace on the commit too: count the WAL a batch writes (`pg_current_wal_lsn()` before and
   after) and size the next batch by it, so no commit flushes more than about 100 ms of it."""
