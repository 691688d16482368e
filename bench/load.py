"""Benchmark 6: the errors list under 50 concurrent users.

gunicorn serves the console (as in production) on a spare port, against the benchmark database
at 1,000,000 entries; wrk sends requests with a signed-in Sync administrator's session cookie.
Each scenario is measured with 50 users and, as the comparison, with one user.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .common import median, ms, p95, stage, table

ENTRIES = 1_000_000
QUICK_ENTRIES = 50_000
USERS = 50
# The machine has 2 cores and PostgreSQL runs on them too. A page is mostly Python (template
# rendering) with a few ms in PostgreSQL, so two workers per core keep both cores busy while
# one worker waits on the database, without the context switching of more processes.
WORKERS = 2 * (os.cpu_count() or 1)
DURATION_S = 20
QUICK_DURATION_S = 5
REPORT = Path(__file__).resolve().parent / "wrk_report.lua"
ROOT = Path(__file__).resolve().parent.parent


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def session_cookie() -> str:
    from django.test import Client

    from .error_list import sync_administrator

    client = Client()
    client.force_login(sync_administrator())
    return client.cookies["sessionid"].value


class Gunicorn:
    """The console under gunicorn, with an access log of each request's server time in
    seconds: what the server spent, apart from the time a request queued before a worker
    took it."""

    def __init__(self, port: int, workers: int, log: Path):
        self.log = log.open("w")
        self.access_log = log.with_suffix(".access.log")
        self.access_log.write_text("")
        env = {**os.environ, "DEBUG": "0", "DB_CONN_MAX_AGE": "600"}
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "syncconsole.wsgi",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            str(self.access_log),
            "--access-logformat",
            "%(L)s",
        ]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{port}"

    def wait_until_ready(self, cookie: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(  # noqa: S310 (our own http:// address)
            self.url + "/errors/", headers={"Cookie": cookie}
        )
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    if response.status == 200 and b"Integration Synchronization" in response.read():
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"gunicorn did not serve the list; see {self.log.name}")

    def served(self) -> list[float]:
        """The server time (ms) of every request served so far."""
        return [float(line) * 1000 for line in self.access_log.read_text().split()]

    def drain(self, quiet_s: float = 1.0, timeout: float = 120) -> None:
        """Wait until the server has served every request it accepted. wrk closes its
        connections when a run ends, but the requests already sent wait in the listen queue
        and sync workers serve each of them: a run that started now would queue behind them
        (with 50 users, some 50 requests: seconds)."""
        deadline = time.monotonic() + timeout
        size, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now_size = self.access_log.stat().st_size
            if now_size != size:
                size, since = now_size, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def wrk(url: str, cookie: str, users: int, seconds: int) -> dict:
    threads = min(users, os.cpu_count() or 1)
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{users}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-H",
            f"Cookie: {cookie}",
            "-s",
            str(REPORT),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = [raw for raw in result.stdout.splitlines() if raw.startswith("{")][-1]
    figures = json.loads(line)
    seconds_run = figures["duration_us"] / 1e6
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": figures["requests"],
        "rps": figures["requests"] / seconds_run,
        "p50": figures["p50_us"] / 1000,
        "p95": figures["p95_us"] / 1000,
        "p99": figures["p99_us"] / 1000,
        "errors": errors,
    }


def scenarios() -> list[tuple[str, str]]:
    from errors.models import SyncError
    from errors.pagination import encode_cursor

    entries = SyncError.objects.order_by("-created_at", "-pk")
    deep = entries.values("created_at", "pk")[entries.count() // 2]
    cursor = encode_cursor(deep["created_at"], deep["pk"])
    return [
        ("first page", "/errors/"),
        ("deep page (cursor from the middle)", f"/errors/?before={cursor}"),
        ("open entries of a mapping", f"/errors/?status=open&mapping={deep_mapping()}"),
        ("search: a word", "/errors/?q=exchange"),
    ]


def deep_mapping() -> int:
    from .data import bench_mappings

    return bench_mappings()[1].pk


def run(quick: bool) -> str:
    from .error_list import grow_to

    size = QUICK_ENTRIES if quick else ENTRIES
    seconds = QUICK_DURATION_S if quick else DURATION_S
    grow_to(size)
    cookie = f"sessionid={session_cookie()}"
    port = spare_port()
    log = Path(tempfile.gettempdir()) / f"bench-gunicorn-{port}.log"
    server = Gunicorn(port, WORKERS, log)
    rows = []
    results = {}
    try:
        server.wait_until_ready(cookie)
        for title, path in scenarios():
            url = server.url + path
            with stage(f"{title}: warm-up, then 1 and {USERS} users"):
                wrk(url, cookie, USERS, 2)
                server.drain()
                for users in (1, USERS):
                    before = len(server.served())
                    results[(title, users)] = figures = wrk(url, cookie, users, seconds)
                    server.drain()
                    times = server.served()[before:]
                    rows.append(
                        [
                            title,
                            users,
                            f"{figures['rps']:,.0f}",
                            ms(figures["p50"]),
                            ms(figures["p95"]),
                            ms(figures["p99"]),
                            f"{ms(median(times))} / {ms(p95(times))}",
                            f"{figures['requests']:,}",
                            figures["errors"],
                        ]
                    )
    finally:
        server.stop()

    first_1 = results[("first page", 1)]
    first_n = results[("first page", USERS)]
    errors = sum(r["errors"] for r in results.values())
    lines = [
        "## 6. Load: the errors list under 50 concurrent users",
        "",
        f"gunicorn (`syncconsole.wsgi`, {WORKERS} sync workers: the machine's {os.cpu_count()} "
        "cores run PostgreSQL too, and a page is mostly Python (its template) with a few ms "
        "in PostgreSQL, so two workers per core keep both cores busy while one waits on the "
        "database, without more processes to switch between) on a spare port, against the "
        f"benchmark database at {size:,} entries; wrk with a signed-in Sync administrator's "
        f"session cookie, {seconds} s per run after a 2 s warm-up, {USERS} concurrent "
        "connections against 1 (the comparison). Latency is wrk's, client side; the server "
        "time is gunicorn's (access log, `%(L)s`), for every request served during the run. "
        "Before each run the server is drained: it has served every request of the previous "
        "run, so that one user never queues behind fifty.",
        "",
        table(
            [
                "page",
                "users",
                "requests/s",
                "median",
                "p95",
                "p99",
                "server time: median / p95",
                "requests",
                "errors",
            ],
            rows,
        ),
        "",
        f"With {USERS} users the first page serves {first_n['rps']:,.0f} requests/s against "
        f"{first_1['rps']:,.0f} with one user ({first_n['rps'] / first_1['rps']:.1f}×: the "
        f"second core and the time a worker waits on PostgreSQL); a user then waits "
        f"{ms(first_n['p50'])} (p95 {ms(first_n['p95'])}), which is the queue of {USERS} "
        f"requests in front of {WORKERS} workers, not a slower page: {USERS} / "
        f"{first_n['rps']:,.0f} requests/s = {USERS / first_n['rps'] * 1000:,.0f} ms. "
        f"Errors over all runs: {errors}.",
        "",
    ]
    return "\n".join(lines)
