"""The soak run (`make soak`): `make run`'s stack (runconsole: the web server with the demo
apps, a Celery worker and beat) for SOAK_MINUTES minutes (30 by default) under steady work, to
see whether anything grows that should stay flat.

The work: a sync job every minute (the demo mappings in turn), entries posted to
`POST /api/v1/ingest/` with an API token all along, and a clean-up of every entry (handed to
the worker, on the triage queue) every five minutes. Every minute it records the resident
memory of every process of the stack, the PostgreSQL connections to its database, the depth
of each queue and the size of every table.

At the end it writes bench/results/soak-<date>.json (every sample) and the section of
bench/RESULTS.md (bench/results/soak.md), saying for each series whether it stayed flat: the
mean of the last third of the run against the middle third's (the first third is the warm-up),
and the slope over those two thirds. A run shorter than QUICK_BELOW minutes only checks the
script: it writes to bench/results/quick/ and never touches RESULTS.md.

It runs on a database of its own (the configured database's name with `_soak` appended, made
afresh each run) and needs a Redis broker (CELERY_BROKER_URL), on which it uses queues of its
own (`syncconsole-soak-<random>.*`).
"""

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SOAK_DB_SUFFIX = "_soak"
QUICK_BELOW = 10  # minutes
STARTS = 3  # attempts at starting the stack
CLEANUP_EVERY = 5  # minutes
INGEST_BATCH = 20  # entries per request
INGEST_PAUSE = 2.0  # seconds between two requests
INTEGRATION = "Soak ↔ ERP"
# What counts as flat: the last third's mean within this share of the middle third's, or
# within the series' own floor (a few connections or messages, a few megabytes).
FLAT_SHARE = 0.10
MB = 1024 * 1024
FLOORS = {"rss": 5 * MB, "connections": 2, "queue": 5, "table": 1 * MB, "entries": 500}


# The configured database, whose server the soak's database goes on (read before the run
# points DATABASE_URL at its own).
CONFIGURED_DATABASE_URL = os.environ.get("DATABASE_URL", "")
# The soak's mappings are numbered from here: the key of a mapping's advisory lock is its id
# (sync/engine.py), and pg_locks lists the locks of every database on the server, so a
# neighbour's test that looks up a lock's holder without naming its database could find
# (and end) the soak's worker session instead of its own, small-numbered one.
FIRST_MAPPING_ID = 1_000_000


def soak_database_url() -> tuple[str, str]:
    """The soak's database URL (made afresh) and its name."""
    url = CONFIGURED_DATABASE_URL
    if not url:
        from syncconsole.embedded_db import ensure_running

        url = ensure_running(ROOT / ".data")
    parts = urlsplit(url)
    name = (parts.path.lstrip("/") or "postgres") + SOAK_DB_SUFFIX
    import psycopg2
    from psycopg2 import sql

    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()
    return urlunsplit(parts._replace(path="/" + name)), name


class Stack:
    """`manage.py runconsole` and the processes it starts, on the soak's database and queues."""

    def __init__(self, env: dict[str, str], port: int, workdir: Path):
        self.addr = f"127.0.0.1:{port}"
        self.base_url = f"http://{self.addr}"
        self.log_path = workdir / "runconsole.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runconsole", "--addr", self.addr],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_ready(self, timeout: float = 900) -> None:
        """Until runconsole says it runs (after migrating and seeding the demo data)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Sync Console runs on" in self.log_path.read_text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(1)
        raise RuntimeError(f"runconsole did not start; see {self.log_path}")

    def processes(self) -> dict[str, int]:
        """Each process of the stack by a stable label: runconsole, web, worker, worker
        child N, beat."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
        labels: dict[str, int] = {"runconsole": self.process.pid}
        for pid in sorted(children.get(self.process.pid, [])):
            command = _cmdline(pid)
            if "runserver" in command:
                labels["web"] = pid
            elif "beat" in command:
                labels["beat"] = pid
            elif "worker" in command:
                labels["worker"] = pid
                for n, child in enumerate(sorted(children.get(pid, [])), start=1):
                    labels[f"worker child {n}"] = child
        return labels

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def migrate_apart(env: dict[str, str], database_url: str) -> None:
    """Migrate the soak's database (runconsole then finds nothing to do) and number its
    mappings from FIRST_MAPPING_ID, before the demo data makes them."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('sync_tablemapping', 'id'), %s, false)",
            [FIRST_MAPPING_ID],
        )
    connection.close()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Ingestion(threading.Thread):
    """Posts INGEST_BATCH entries to the ingestion API every INGEST_PAUSE seconds until
    stopped, counting what was stored and what failed."""

    def __init__(self, base_url: str, key: str):
        super().__init__(daemon=True)
        self.url = f"{base_url}/api/v1/ingest/"
        self.key = key
        self.stopping = threading.Event()
        self.stored = 0
        self.failed = 0
        self.last_failure = ""

    def run(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.key}"}
        n = 0
        with httpx.Client(headers=headers, timeout=30) as client:
            while not self.stopping.is_set():
                batch = []
                for _ in range(INGEST_BATCH):
                    n += 1
                    batch.append(_entry(n))
                try:
                    answer = client.post(self.url, json=batch)
                    if answer.status_code == 201:
                        self.stored += answer.json()["stored"]
                    else:
                        self.failed += 1
                        self.last_failure = f"{answer.status_code} {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    self.failed += 1
                    self.last_failure = str(exc)
                self.stopping.wait(INGEST_PAUSE)


def _entry(n: int) -> dict:
    order = n % 500  # a few hundred records, failing again and again as real ones do
    return {
        "integration": INTEGRATION,
        "category": "validation" if n % 3 else "connection",
        "message": f"Order SO-{order} could not be posted: item {order % 40}00 has no stock",
        "detail": f"Attempt {n}",
        "source_app": "Shop",
        "source_entity": "orders",
        "source_record_id": f"SO-{order}",
        "destination_app": "ERP",
        "destination_entity": "salesOrders",
    }


def sample(stack: Stack, database: str, queues: list[str], broker) -> dict:
    """One minute's figures."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = 'idle') FROM pg_stat_activity "
            "WHERE datname = %s",
            [database],
        )
        connections, idle = cursor.fetchone()
        cursor.execute(
            "SELECT c.relname, CASE WHEN c.relkind = 'p' THEN (SELECT "
            "coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t) "
            "ELSE pg_total_relation_size(c.oid) END FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        )
        tables = {name: int(size) for name, size in cursor.fetchall()}
        cursor.execute("SELECT pg_database_size(%s)", [database])
        database_size = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM errors_syncerror")
        entries = cursor.fetchone()[0]
        cursor.execute("SELECT status, count(*) FROM sync_syncjob GROUP BY status")
        jobs = dict(cursor.fetchall())
    processes = stack.processes()
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rss": {label: rss_bytes(pid) for label, pid in processes.items()},
        "pids": processes,
        "connections": connections,
        "idle_connections": idle,
        "queues": {name: queue_depth(broker, name) for name in queues},
        "tables": tables,
        "database_size": database_size,
        "entries": entries,
        "jobs": jobs,
        "load": os.getloadavg()[0],
    }


def queue_depth(broker, queue: str) -> int:
    """Messages waiting in a Redis queue: kombu keeps one list per priority step."""
    keys = [queue] + [f"{queue}\x06\x16{step}" for step in (3, 6, 9)]
    return sum(broker.llen(key) for key in keys)


def verdict(values: list[float], floor: float) -> dict:
    """Whether a series stayed flat: the last third's mean against the middle third's, and
    the least-squares slope (per hour) over those two thirds."""
    third = len(values) // 3
    middle, last = values[third : 2 * third], values[2 * third :]
    if not middle or not last:
        return {"flat": None, "middle": None, "last": None, "slope_per_hour": None}
    middle_mean, last_mean = statistics.fmean(middle), statistics.fmean(last)
    window = values[third:]
    minutes = list(range(third, third + len(window)))
    slope = statistics.linear_regression(minutes, window).slope * 60 if len(window) > 1 else 0.0
    allowed = max(abs(middle_mean) * FLAT_SHARE, floor)
    return {
        "flat": abs(last_mean - middle_mean) <= allowed,
        "middle": middle_mean,
        "last": last_mean,
        "change": (last_mean - middle_mean) / middle_mean if middle_mean else None,
        "slope_per_hour": slope,
    }


def series(samples: list[dict]) -> dict[str, tuple[str, list[float]]]:
    """Every series judged, by name: (its kind, for the floor and the unit; its values)."""
    out: dict[str, tuple[str, list[float]]] = {}
    labels = sorted({label for s in samples for label in s["rss"]}, key=_process_order)
    for label in labels:
        values = [s["rss"].get(label) for s in samples]
        if all(v is not None for v in values):
            out[f"RSS {label}"] = ("rss", [float(v) for v in values])
    out["RSS of the stack"] = (
        "rss",
        [float(sum(v for v in s["rss"].values() if v)) for s in samples],
    )
    out["PostgreSQL connections"] = ("connections", [float(s["connections"]) for s in samples])
    for queue in samples[0]["queues"]:
        out[f"queue {queue.rsplit('.', 1)[1]}"] = (
            "queue",
            [float(s["queues"][queue]) for s in samples],
        )
    out["entries"] = ("entries", [float(s["entries"]) for s in samples])
    out["database size"] = ("table", [float(s["database_size"]) for s in samples])
    biggest = sorted(samples[-1]["tables"], key=lambda t: -samples[-1]["tables"][t])[:8]
    for name in biggest:
        out[f"table {name}"] = ("table", [float(s["tables"].get(name, 0)) for s in samples])
    return out


def _process_order(label: str) -> tuple[int, str]:
    order = ["runconsole", "web", "worker", "beat"]
    head = label.split(" child")[0]
    return (order.index(head) if head in order else len(order), label)


def _figure(kind: str, value: float | None) -> str:
    if value is None:
        return "–"
    if kind in ("rss", "table"):
        return f"{value / MB:,.1f} MB"
    return f"{value:,.1f}"


def report(result: dict) -> str:
    """The section of RESULTS.md."""
    rows = []
    for name, judged in result["verdicts"].items():
        kind = judged["kind"]
        flat = {
            True: "flat",
            False: "**grows**" if (judged["last"] or 0) > (judged["middle"] or 0) else "**falls**",
            None: "–",
        }[judged["flat"]]
        change = f"{judged['change']:+.1%}" if judged.get("change") is not None else "–"
        rows.append(
            f"| {name} | {_figure(kind, judged['first'])} | {_figure(kind, judged['middle'])} | "
            f"{_figure(kind, judged['last'])} | {change} | "
            f"{_figure(kind, judged['slope_per_hour'])}/h | {flat} |"
        )
    work = result["work"]
    jobs = work["jobs"]
    not_flat = [name for name, j in result["verdicts"].items() if j["flat"] is False]
    lines = [
        "## Soak run",
        "",
        f"`make run`'s stack (runconsole: the web server with the demo apps, one Celery worker "
        f"of concurrency 2 consuming the sync, triage and notify queues, beat) for "
        f"{result['minutes']} minutes on PostgreSQL and Redis, with a sync job of a demo "
        f"mapping every minute, {INGEST_BATCH} entries posted to `POST /api/v1/ingest/` every "
        f"{INGEST_PAUSE:g} s and a clean-up of every entry (in the worker) every "
        f"{CLEANUP_EVERY} minutes. One sample a minute ({len(result['samples'])} in all): the "
        f"resident memory (RSS) of each process, the connections to the database "
        f"(`pg_stat_activity`, the sampler's own included), the messages waiting in each queue "
        f"and the size of each table (with its indexes and partitions).",
        "",
        f"Work done: {jobs['requested'] + jobs['refused']} jobs asked for, one a minute "
        f"({jobs['refused']} of them refused: the mapping's job before was still running); "
        f"{jobs['finished']} jobs finished in all, with beat's scheduled runs and the retries "
        f"({jobs['by_status']}); {work['ingested']:,} entries ingested in "
        f"{work['ingest_requests']:,} requests ({work['ingest_failures']} failed); "
        f"{work['cleanups']} clean-ups, {work['cleaned']:,} entries deleted.",
        "",
        "A series is flat when the mean of the run's last third is within "
        f"{FLAT_SHARE:.0%} of the middle third's (or within a small floor: "
        f"{FLOORS['rss'] // MB} MB of memory, {FLOORS['connections']} connections, "
        f"{FLOORS['queue']} messages, {FLOORS['table'] // MB} MB of table, "
        f"{FLOORS['entries']} entries); the first third is the warm-up. The slope is the "
        "least-squares fit over the last two thirds, per hour. The entries and the tables "
        "rise and fall with the clean-ups (a saw-tooth), so their means are what compares.",
        "",
        "| series | first sample | middle third (mean) | last third (mean) | change | slope "
        "| verdict |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        ("Every series stayed flat." if not not_flat else f"Not flat: {', '.join(not_flat)}."),
        "",
        f"The machine is shared with other work (2 cores): load average over the run "
        f"{result['load']['mean']:.1f} on average, {result['load']['max']:.1f} at most; the "
        f"figures of memory and sizes do not depend on it, the pace of the work does.",
        "",
        f"Every sample: `bench/results/{result['json_name']}`.",
    ]
    return "\n".join(lines)


def run(minutes: int) -> dict:
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not broker_url.startswith("redis"):
        raise SystemExit("The soak run needs a Redis broker: set CELERY_BROKER_URL=redis://...")
    for attempt in range(1, STARTS + 1):
        try:
            stack, database, base, workdir = start_stack(minutes)
            break
        except RuntimeError as failed:
            if attempt == STARTS:
                raise
            print(f"soak: {failed}; starting again on a new database", flush=True)
    try:
        return _soak(stack, minutes, database, base, broker_url, workdir)
    finally:
        stack.stop()


def start_stack(minutes: int) -> tuple[Stack, str, str, Path]:
    """runconsole on a new database and queues of its own, once it runs; RuntimeError when
    it stops first (seeding the demo data over a shared server may lose its connection)."""
    database_url, database = soak_database_url()
    base = f"syncconsole-soak-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="sync-soak-"))
    password = secrets.token_urlsafe(12)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_QUEUE": base,
        "DEBUG": "0",
        "SYNC_CONSOLE_DATA_DIR": str(workdir / "data"),
        "DJANGO_SUPERUSER_PASSWORD": password,
        # runconsole's lines reach its log as they are written (it says when it is ready).
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(
        {"DATABASE_URL": database_url, "CELERY_QUEUE": base, "DEBUG": "0"}
        | {"DJANGO_SETTINGS_MODULE": "syncconsole.settings"}
    )
    port = _free_port()
    print(f"soak: {minutes} minutes on {database}, queues {base}.*, logs in {workdir}", flush=True)
    migrate_apart(env, database_url)
    stack = Stack(env, port, workdir)
    try:
        stack.wait_until_ready()
    except BaseException:
        stack.stop()
        raise
    return stack, database, base, workdir


def _soak(
    stack: Stack, minutes: int, database: str, base: str, broker_url: str, workdir: Path
) -> dict:
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db.models import Count, Sum

    from api.models import ApiToken
    from errors.models import SyncErrorCleanup
    from errors.services import request_cleanup
    from sync.models import SyncJob, TableMapping
    from sync.services import request_sync

    broker = redis.Redis.from_url(broker_url)
    admin = get_user_model().objects.get(username="admin")
    _, key = ApiToken.issue(admin, "soak run", integration=INTEGRATION, issued_through="soak run")
    mappings = list(TableMapping.objects.order_by("pk"))
    # What the demo data did before (weeks of history) is left out of the run's figures.
    jobs_before = SyncJob.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    cleanups_before = (
        SyncErrorCleanup.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    )
    ingestion = Ingestion(stack.base_url, key)
    ingestion.start()
    samples: list[dict] = []
    requested = refused = cleanups = 0
    started = time.monotonic()
    try:
        for minute in range(minutes + 1):
            if minute < minutes:
                mapping = mappings[minute % len(mappings)]
                try:
                    request_sync(mapping, kind=SyncJob.Kind.FULL, trigger=SyncJob.Trigger.USER)
                    requested += 1
                except Exception as exc:  # a refusal is a figure of the run, not its end
                    refused += 1
                    print(f"soak: minute {minute}: job refused: {exc}", flush=True)
                if minute and minute % CLEANUP_EVERY == 0:
                    request_cleanup(
                        days=0, trigger=SyncErrorCleanup.Trigger.SCHEDULE, run_in_background=True
                    )
                    cleanups += 1
            samples.append(sample(stack, database, settings.TASK_QUEUES, broker))
            last = samples[-1]
            stack_rss = sum(v for v in last["rss"].values() if v)
            print(
                f"soak: minute {minute}: stack RSS {stack_rss / MB:,.0f} MB, "
                f"{last['connections']} connections, queues {list(last['queues'].values())}, "
                f"{last['entries']:,} entries, ingested {ingestion.stored:,}",
                flush=True,
            )
            if stack.process.poll() is not None:
                raise RuntimeError(f"runconsole stopped; see {stack.log_path}")
            if minute < minutes:
                next_minute = started + 60 * (minute + 1)
                time.sleep(max(0.0, next_minute - time.monotonic()))
    finally:
        ingestion.stopping.set()
        ingestion.join(timeout=60)
    cleaned = (
        SyncErrorCleanup.objects.filter(pk__gt=cleanups_before).aggregate(n=Sum("deleted_count"))[
            "n"
        ]
        or 0
    )
    by_status = dict(
        SyncJob.objects.filter(pk__gt=jobs_before)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    finished = sum(n for status, n in by_status.items() if status not in ("queued", "running"))
    loads = [s["load"] for s in samples]
    result = {
        "minutes": minutes,
        "started_at": samples[0]["at"],
        "ended_at": samples[-1]["at"],
        "machine": "",
        "work": {
            "jobs": {
                "requested": requested,
                "refused": refused,
                "finished": finished,
                "by_status": ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())),
            },
            "ingested": ingestion.stored,
            "ingest_requests": ingestion.stored // INGEST_BATCH + ingestion.failed,
            "ingest_failures": ingestion.failed,
            "last_ingest_failure": ingestion.last_failure,
            "cleanups": cleanups,
            "cleaned": cleaned,
        },
        "load": {"mean": statistics.fmean(loads), "max": max(loads)},
        "samples": samples,
        "logs": str(workdir),
    }
    verdicts = {}
    for name, (kind, values) in series(samples).items():
        verdicts[name] = {"kind": kind, "first": values[0], **verdict(values, FLOORS[kind])}
    result["verdicts"] = verdicts
    return result


def _interrupted(number, frame):
    raise SystemExit(f"soak: stopped by signal {number}")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument(
        "--report",
        metavar="JSON",
        type=Path,
        help="write the section again from a run's samples (bench/results/soak-<date>.json)",
    )
    args = parser.parse_args(argv)
    if args.report:
        publish(json.loads(args.report.read_text()))
        return 0
    # Stopped with SIGTERM (or SIGINT, which a shell ignores in a background job), the run
    # still stops its stack.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _interrupted)
    minutes = int(os.environ.get("SOAK_MINUTES", "30"))
    if minutes < 1:
        raise SystemExit("SOAK_MINUTES must be 1 or more")
    start = time.perf_counter()
    result = run(minutes)
    from bench.common import machine

    result["machine"] = machine()
    result["took_seconds"] = round(time.perf_counter() - start)
    quick = minutes < QUICK_BELOW
    result["json_name"] = f"{'quick/' if quick else ''}soak-{datetime.now(UTC):%Y-%m-%d}.json"
    path = RESULTS_DIR / result["json_name"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    publish(result)
    return 0


def publish(result: dict) -> None:
    """soak.md (in quick/ for a short run) and, after a full run, RESULTS.md."""
    quick = result["json_name"].startswith("quick/")
    out = RESULTS_DIR / "quick" if quick else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    body = report(result)
    ended = datetime.fromisoformat(result["ended_at"])
    took = result.get("took_seconds")
    if took is None:  # a run recorded before its length was
        took = (ended - datetime.fromisoformat(result["started_at"])).total_seconds()
        length = f"its samples span {took:,.0f} s"
    else:
        length = f"the run took {took:,.0f} s, starting the stack included"
    (out / "soak.md").write_text(
        f"{body}\n\n_Run {ended:%Y-%m-%d %H:%M} UTC on {result['machine']}; {length}._\n"
    )
    print(body, flush=True)
    if not quick:
        from bench.__main__ import assemble

        assemble()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
