"""Sync throughput: customers from the demo ERP to the demo CRM, end to end through Celery
and HTTP.

The customers are loaded into the demo ERP's table with COPY; the demo apps are served by
gunicorn on a spare port and a real Celery worker runs the jobs. Each job is queued through
the console's own service (`request_sync`) and timed until it is finished. A full
synchronization runs on an empty CRM each time; a modified-records sync follows 1% of the
customers changed by SQL. The batched engine (paged reads, Dataverse's CreateMultiple /
UpdateMultiple, couplings in bulk) is compared with one request per record (batch size 1),
the engine as it was, in the same run, and the full sync with its pages shared out to two
page passes (two workers) beside the single pass.

The engine's own CPU is measured twice on the full count: the job's process CPU time
(`time.process_time`) while the apps run in gunicorn, and its split by part with the apps
served in the job's own process (bench/sync_split.py), where their time is taken out.
"""

import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from syncconsole import task_routes

from . import sync_split
from .common import RESULTS_DIR, analyze, copy_rows, median, stage, table

QUICK_CUSTOMERS, FULL_CUSTOMERS = 2_000, 100_000
# The naive full sync (several requests per record) is measured on a slice this size.
QUICK_SLICE, FULL_SLICE = 500, 2_000
CHANGED_SHARE = 0.01
# One customer in this many is in a currency the CRM lacks: refused, logged as an entry.
REFUSED_EVERY = 200
TARGET = 2_000  # records per second, full synchronization
ENGINE_CPU_GOAL = 100  # µs of the engine's own CPU a customer, full synchronization
BATCHED = {"batch_size": 500, "page_size": 1000, "page_passes": 1}
NAIVE = {"batch_size": 1, "page_size": 1000, "page_passes": 1}
PASSES = 2  # page passes of the parallel full sync, one per worker
PARALLEL = {**BATCHED, "page_passes": PASSES}
ROOT = Path(__file__).resolve().parent.parent
CITIES = ["Copenhagen", "Oslo", "Seattle", "London", "Munich", "Stockholm", "Paris"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Services:
    """gunicorn serving the demo apps and a Celery worker (more for the page passes), all on
    the bench database."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.queue = f"syncconsole-bench-{uuid.uuid4().hex[:8]}"
        self.logs = Path(tempfile.mkdtemp(prefix="sync-bench-"))
        env = {**os.environ, "CELERY_QUEUE": self.queue, "DEBUG": "0"}
        self.processes = [
            self._start(
                "gunicorn",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "syncconsole.wsgi",
                    "-b",
                    f"127.0.0.1:{self.port}",
                    "-w",
                    "2",
                    "--timeout",
                    "300",
                ],
                env,
            ),
            self._worker(0, env),
        ]

    def _worker(self, number: int, env: dict) -> subprocess.Popen:
        return self._start(
            f"worker-{number}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "syncconsole",
                "worker",
                "--pool=solo",
                "-Q",
                ",".join(task_routes.queue_names(self.queue)),
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
                f"--hostname=bench-{number}-{self.queue}@%h",
            ],
            env,
        )

    @contextmanager
    def more_workers(self, count: int):
        """`count` workers in all while this lasts, for the jobs shared out to page passes;
        one otherwise, as a job of one pass takes one (a second would only take the jobs
        the apps' change notifications queue meanwhile, and wait for the mapping's lock)."""
        env = {**os.environ, "CELERY_QUEUE": self.queue, "DEBUG": "0"}
        extra = [self._worker(number, env) for number in range(1, count)]
        try:
            self.wait_for_workers(count)
            yield
        finally:
            for process in extra:
                process.terminate()
            for process in extra:
                process.wait(timeout=60)

    def _start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_until_ready(self) -> None:
        import httpx

        from syncconsole.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/demo/erp/", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"gunicorn did not start; see {self.logs}")
        task_routes.configure(app.conf, self.queue)
        self.wait_for_workers(1)

    def wait_for_workers(self, count: int) -> None:
        from syncconsole.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=1, destination=None)
            if len([r for r in replies if self.queue in next(iter(r))]) >= count:
                return
        raise RuntimeError(f"the Celery workers did not start; see {self.logs}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _reset_demo() -> None:
    from django.apps import apps
    from django.db import connection

    # Every table of the demo apps, whatever they have grown since; the problems' figures go
    # with the problems (TRUNCATE fires no trigger, and the figure tables have no foreign key
    # to cascade through: left, they would count the entries of problems gone).
    demo_tables = [model._meta.db_table for model in apps.get_app_config("demo").get_models()]
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE errors_syncerror, errors_errorgroup, errors_groupday, errors_grouprecord, "
            "couplings_coupling, sync_syncjob, sync_tablemapping, sync_connection, "
            f"{', '.join(demo_tables)} CASCADE"
        )


def load_customers(count: int) -> int:
    """`count` ERP customers written with COPY, modified over the last day; returns how many
    are in a currency the CRM lacks."""
    from django.utils import timezone

    start = timezone.now() - timedelta(days=1)
    step = timedelta(days=1) / count
    rng = random.Random(5)  # noqa: S311 - repeatable data, not secrets
    refused = 0

    def rows():
        nonlocal refused
        for i in range(count):
            currency = (
                "SEK" if i % REFUSED_EVERY == REFUSED_EVERY - 1 else ("EUR", "USD", "DKK")[i % 3]
            )
            refused += currency == "SEK"
            yield (
                uuid.UUID(int=rng.getrandbits(128), version=4),
                f"C{i + 1:08d}",
                f"Customer {i + 1} Ltd.",
                f"office{i + 1}@customer.example",
                f"+45 {rng.randint(20000000, 99999999)}",
                CITIES[i % len(CITIES)],
                "DK",
                currency,
                f"SP{i % 5:02d}",
                "f",
                start + step * i,
            )

    copy_rows(
        "demo_erpcustomer",
        [
            "id",
            "number",
            "display_name",
            "email",
            "phone_number",
            "city",
            "country",
            "currency_code",
            "salesperson_code",
            "blocked",
            "last_modified",
        ],
        rows(),
    )
    analyze("demo_erpcustomer")
    return refused


def prepare(count: int, base_url: str):
    """The demo apps' own data with `count` customers, and a connection to them."""
    from demo.seed import create_connection, create_records

    _reset_demo()
    create_records(random.Random(3), customers=0)  # noqa: S311
    refused = load_customers(count)
    connection = create_connection(base_url)
    return connection.mappings.get(name="CUSTOMER"), refused


def use(mapping, tuning: dict) -> None:
    connection = mapping.connection
    for side in ("source", "destination"):
        getattr(connection, f"{side}_settings").update(tuning)
    connection.save()


def empty_crm(mapping) -> None:
    """A fresh CRM side: no accounts, no couplings, no entries, nothing read yet."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM errors_syncerror WHERE mapping_id = %s", [mapping.pk])
        cursor.execute("DELETE FROM errors_errorgroup WHERE mapping_id = %s", [mapping.pk])
        cursor.execute("DELETE FROM couplings_coupling WHERE mapping_id = %s", [mapping.pk])
        cursor.execute("TRUNCATE demo_crmaccount, demo_crmcontact")
    type(mapping).objects.filter(pk=mapping.pk).update(
        source_synced_until=None, destination_synced_until=None
    )
    analyze("demo_crmaccount", "couplings_coupling")


def timed_job(mapping, kind: str):
    """Seconds from queuing the job through the service until the worker finished it."""
    from sync.models import SyncJob
    from sync.services import request_sync

    start = time.perf_counter()
    job = request_sync(mapping, kind=kind, trigger=SyncJob.Trigger.USER)
    while True:
        job.refresh_from_db()
        if job.is_finished:
            break
        time.sleep(0.05)
    took = time.perf_counter() - start
    if job.status != SyncJob.Status.SUCCEEDED:
        raise RuntimeError(f"job #{job.pk} {job.status}: {job.message}")
    return took, job


def change_customers(share: float, seed: int) -> int:
    """Change `share` of the customers by SQL, with a new modified time; returns how many."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE demo_erpcustomer SET city = %s, last_modified = now() "
            "WHERE id IN (SELECT id FROM demo_erpcustomer WHERE currency_code <> 'SEK' "
            "ORDER BY md5(id::text || %s) LIMIT "
            "(SELECT ceil(count(*) * %s) FROM demo_erpcustomer))",
            [f"City {seed}", str(seed), share],
        )
        return cursor.rowcount


def full_syncs(mapping, count: int, refused: int, tuning: dict, runs: int) -> list[float]:
    from sync.models import SyncJob

    use(mapping, tuning)
    rates = []
    for _ in range(runs):
        empty_crm(mapping)
        took, job = timed_job(mapping, SyncJob.Kind.FULL)
        if (job.inserted, job.failed) != (count - refused, refused):
            raise RuntimeError(f"full sync #{job.pk}: {job.inserted} inserted, {job.failed} failed")
        rates.append(count / took)
        print(f"    full, batch {tuning['batch_size']}: {took:.1f} s, {count / took:,.0f}/s")
    return rates


def modified_syncs(mapping, tuning: dict, runs: int, seed: int) -> tuple[list[float], list[int]]:
    from sync.models import SyncJob

    use(mapping, tuning)
    rates, requests = [], []
    for run in range(runs):
        changed = change_customers(CHANGED_SHARE, seed + run)
        took, job = timed_job(mapping, SyncJob.Kind.MODIFIED)
        if job.modified != changed:
            raise RuntimeError(f"modified sync #{job.pk}: {job.modified} of {changed} written")
        rates.append(changed / took)
        requests.append(job.records_read)
        print(f"    modified, batch {tuning['batch_size']}: {changed} in {took:.2f} s")
    return rates, requests


def engine_cpu_over_http(mapping, count: int) -> tuple[float, float]:
    """A full sync run in this process (not through Celery) against the apps in gunicorn:
    (seconds, this process's CPU seconds). The apps run in other processes, so the CPU time
    is the engine's own: its Python, JSON, the HTTP client, the database client."""
    from sync import engine
    from sync.models import SyncJob
    from sync.services import create_job

    use(mapping, BATCHED)
    empty_crm(mapping)
    job = create_job(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)
    wall, cpu = time.perf_counter(), time.process_time()
    job = engine.run_job(job.pk)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if job.inserted != count - count // REFUSED_EVERY:
        raise RuntimeError(f"full sync #{job.pk}: {job.inserted} inserted, {job.message}")
    return wall, cpu


def split_in_process(mapping, base_url: str) -> sync_split.Split:
    """A full sync with the apps served in this process, each part timed (sync_split)."""
    from sync import engine
    from sync.models import SyncJob
    from sync.services import create_job

    use(mapping, BATCHED)
    empty_crm(mapping)
    job = create_job(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)
    with sync_split.split_of_run(base_url) as split:
        job = engine.run_job(job.pk)
    if job.status != SyncJob.Status.SUCCEEDED:
        raise RuntimeError(f"full sync #{job.pk} {job.status}: {job.message}")
    return split


PREVIOUS_ROW = re.compile(r"^\| full sync, ([\d,]+) customers \| ([\d,]+)/s \|", re.MULTILINE)


def previous_round(count: int) -> str:
    """The batched full sync of `count` customers as the last recorded run measured it."""
    for path in (RESULTS_DIR / "sync_throughput.md", RESULTS_DIR.parent / "RESULTS.md"):
        if not path.exists():
            continue
        for customers, rate in PREVIOUS_ROW.findall(path.read_text()):
            if int(customers.replace(",", "")) == count:
                return f"{rate}/s"
    return "not recorded"


def run(quick: bool) -> str:
    count = QUICK_CUSTOMERS if quick else FULL_CUSTOMERS
    slice_count = QUICK_SLICE if quick else FULL_SLICE
    full_runs, modified_runs, naive_full_runs = (2, 3, 1) if quick else (3, 5, 2)
    previous = previous_round(count)
    services = Services()
    try:
        services.wait_until_ready()
        with stage(f"{slice_count:,} customers: batched and one request per record"):
            mapping, refused = prepare(slice_count, services.base_url)
            small_batched = full_syncs(mapping, slice_count, refused, BATCHED, full_runs)
            small_naive = full_syncs(mapping, slice_count, refused, NAIVE, naive_full_runs)
            small_mod_batched, _ = modified_syncs(mapping, BATCHED, modified_runs, 100)
            small_mod_naive, _ = modified_syncs(mapping, NAIVE, modified_runs, 200)
        with stage(f"{count:,} customers: batched, one pass and {PASSES} page passes"):
            mapping, refused = prepare(count, services.base_url)
            big_batched = full_syncs(mapping, count, refused, BATCHED, full_runs)
            with services.more_workers(PASSES):
                big_parallel = full_syncs(mapping, count, refused, PARALLEL, full_runs)
            big_mod_batched, read = modified_syncs(mapping, BATCHED, modified_runs, 300)
            big_mod_naive, _ = modified_syncs(mapping, NAIVE, max(1, modified_runs - 2), 400)
        with stage(f"{count:,} customers: the engine's own CPU, and where the time goes"):
            http_wall, http_cpu = engine_cpu_over_http(mapping, count)
            split = split_in_process(mapping, services.base_url)
    finally:
        services.stop()

    changed_small = max(1, round(slice_count * CHANGED_SHARE))
    changed_big = max(1, round(count * CHANGED_SHARE))

    def rate(values: list[float]) -> str:
        return f"{median(values):,.0f}/s"

    def ratio(fast: list[float], slow: list[float]) -> str:
        return f"{median(fast) / median(slow):,.1f}×"

    rows = [
        (
            f"full sync, {count:,} customers",
            rate(big_batched),
            "not run (too long)",
            "—",
            len(big_batched),
        ),
        (
            f"full sync, {count:,} customers, {PASSES} page passes ({PASSES} workers)",
            rate(big_parallel),
            "not run (too long)",
            "—",
            len(big_parallel),
        ),
        (
            f"full sync, {slice_count:,} customers",
            rate(small_batched),
            rate(small_naive),
            ratio(small_batched, small_naive),
            f"{len(small_batched)} / {len(small_naive)}",
        ),
        (
            f"modified sync, {changed_big:,} of {count:,} changed",
            rate(big_mod_batched),
            rate(big_mod_naive),
            ratio(big_mod_batched, big_mod_naive),
            f"{len(big_mod_batched)} / {len(big_mod_naive)}",
        ),
        (
            f"modified sync, {changed_small:,} of {slice_count:,} changed",
            rate(small_mod_batched),
            rate(small_mod_naive),
            ratio(small_mod_batched, small_mod_naive),
            f"{len(small_mod_batched)} / {len(small_mod_naive)}",
        ),
    ]
    met = median(big_batched) >= TARGET
    # Proportional: a modified run on the big table costs per changed record about what it
    # costs on the small one.
    per_change_big = 1 / median(big_mod_batched)
    per_change_small = 1 / median(small_mod_batched)
    lines = [
        "## Sync throughput (benchmark 5)",
        "",
        f"Customers from the demo ERP to the demo CRM (the CUSTOMER mapping, bidirectional), "
        "end to end: the job is queued through `request_sync`, run by a real Celery worker "
        f"(solo pool; {PASSES} for the page passes), and the demo apps are served by "
        "gunicorn (2 workers) over HTTP on the same machine; the time runs from queuing until "
        "the job is finished, and includes the setup check, reading every record back from "
        "the CRM in the other direction, "
        f"and logging the refused records (1 customer in {REFUSED_EVERY} is in SEK, which the "
        "CRM lacks). Records/s are medians of the runs counted in the last column (batched / "
        "one request per record); each full sync starts from an empty CRM.",
        "",
        "- **batched**: pages of 1,000 read by keyset (`@odata.nextLink`) with a `$select` of "
        "the mapped fields, matches and coupled records in the CRM read with Dataverse's "
        "`Microsoft.Dynamics.CRM.In` function (about 190 values a request; `(field eq a or "
        "...)` groups on the ERP side), creates sent with Dataverse's `CreateMultiple` "
        "500 at a time (and updates without a version with `UpdateMultiple`), new "
        "couplings written with one "
        "`INSERT ... SELECT FROM unnest(...)` per batch in the transaction of the job's "
        "progress, entries through `record_errors` once per page. The accounts the job "
        "created are read back by the other direction (a full sync reads every record) but "
        "not compared: their modified time is not after the coupling's last sync.",
        "- **one request per record** (`batch_size` 1 on the connection, the engine as it "
        "was): a find and a create (or a get and an update) per record, a coupling saved per "
        f"record. At {count:,} customers a naive full sync would take too long to repeat, so "
        f"both are compared on {slice_count:,}; the modified sync is compared at both sizes.",
        "",
        table(["scenario", "batched", "one request per record", "ratio", "runs"], rows),
        "",
        f"- Target ≥ {TARGET:,} records/s for the full sync of {count:,}: "
        + ("**met**." if met else f"**not met** ({rate(big_batched)})."),
        f"- Modified sync: it reads only the changed records (`$filter` on the modified "
        f"time since the last run; {median(read):,.0f} records read per run: the "
        f"{changed_big:,} changed customers and their accounts read back, and, as the runs "
        "follow each other within seconds, the previous run's changes again through the "
        "watermark overlap, counted unchanged without a write) and touches only their "
        f"couplings: {per_change_big * 1000:.1f} ms per changed record "
        f"with {count:,} customers against {per_change_small * 1000:.1f} ms with "
        f"{slice_count:,}. Each changed account is sent as a `PATCH` of its own with "
        "`If-Match` (the version it was read with), as Dataverse's `UpdateMultiple` takes no "
        "version per record and would overwrite a change made in the CRM since the read; the "
        "previous round sent them with `UpdateMultiple` (332/s recorded then). Next: "
        "Dataverse's `$batch`, which carries each operation's own `If-Match`, up to 1,000 "
        "operations a request.",
    ]
    engine_us = http_cpu / count * 1e6
    split_engine_us = sync_split.engine_cpu(split) / count * 1e6
    parts = sync_split.rows(split, count)
    apps_cpu = next(cpu for label, cpu, _ in parts if label == sync_split.APPS)
    goal_met = engine_us < ENGINE_CPU_GOAL
    lines += [
        f"- Against the previous round: {rate(big_batched)} for the full sync of {count:,} "
        f"in one pass, {rate(big_parallel)} shared out to {PASSES} page passes "
        f"({median(big_parallel) / median(big_batched):.2f}× the single pass); the previous "
        f"round recorded {previous}.",
        "",
        f"The engine's own CPU in a full sync of {count:,} customers (one pass, batched): the "
        f"job run in the benchmark's process against the apps in gunicorn took "
        f"{http_wall:.1f} s ({count / http_wall:,.0f} records/s) and {http_cpu:.1f} s of the "
        f"process's CPU: **{engine_us:,.0f} µs a customer** (goal < {ENGINE_CPU_GOAL} µs: "
        + ("**met**" if goal_met else "**not met**")
        + "). Its split, with the apps served in the job's "
        f"own process through httpx's WSGI transport ({split.wall_total:.1f} s, "
        f"{split.cpu_total:.1f} s CPU; the engine's own CPU there {split_engine_us:,.0f} µs a "
        "customer, without a socket): each part timed on its own, CPU in the job's process "
        "and, apart, the time it waited (PostgreSQL, for the SQL parts), in µs a customer:",
        "",
        table(
            ["part", "CPU µs a customer", "waited µs a customer"],
            [(label, f"{cpu:,.1f}", f"{wait:,.1f}") for label, cpu, wait in parts],
        ),
        "",
        f"- The apps: {apps_cpu:,.0f} µs of CPU a customer in process (both directions: the "
        "ERP's pages, the CRM's look-ups, CreateMultiple and the accounts read back).",
    ]
    if not goal_met:
        top = [label for label, _, _ in parts if label != sync_split.APPS][:3]
        lines.append(
            f"- Where the engine's time goes: {', '.join(top)} lead the table above; the "
            "socket's share is the gap between the two measures "
            f"({engine_us - split_engine_us:,.0f} µs a customer)."
        )
    if median(big_batched) < TARGET:
        lines.append(
            f"- Gap to {TARGET:,}/s: the worker, both gunicorn workers and PostgreSQL share 2 "
            "cores, and the apps' CPU a customer is several times the engine's, so every "
            f"page pass added competes for the same cores: {PASSES} page passes measure the "
            "sharing's cost here, not its gain; on a machine with a core per worker and for "
            "the apps they run side by side."
        )
    lines.append(
        "- Shared machine: other benchmarks and test runs of the project may have run at the "
        "same time, so absolute figures vary; the ratios are what count."
    )
    return "\n".join(lines)
