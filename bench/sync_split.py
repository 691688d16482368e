"""Where a full sync's time goes, with the demo apps' time taken out.

The job runs in this process, and the demo apps are served in this process too, through
httpx's WSGI transport, so that one clock sees both. Each part of the work is timed
exclusively (a part called inside another is charged to itself, not to the caller), in wall
time and in this process's CPU time (`time.process_time`):

- the apps: everything inside the WSGI application (Django serving the demo ERP and CRM, their
  own SQL included);
- JSON: decoding the apps' answers and encoding the requests' bodies;
- the HTTP client: httpx building requests and reading answers, outside the apps and JSON;
- SQL, by table (couplings, entries, the job's progress, the rest): the client's CPU (Django's
  cursor, psycopg2) and, apart, the time spent waiting for PostgreSQL (wall minus CPU);
- entries (Python): errors.grouping's own code, outside its SQL;
- the engine's Python: everything else the job's process does.

The engine's own CPU is the process's CPU minus the apps'. PostgreSQL's work runs in its own
processes and is reported as the wait, not as the engine's CPU."""

import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

APPS = "the apps (demo ERP and CRM, in process)"
JSON = "JSON decode and encode"
HTTP = "HTTP client (httpx, outside the apps)"
ENTRIES = "entries (errors.grouping, Python)"
ENGINE = "engine Python (sync/, couplings/, Django ORM)"
SQL_TABLES = [
    ("couplings SQL", re.compile(r"couplings_coupling")),
    ("entries SQL", re.compile(r"errors_")),
    ("job progress SQL", re.compile(r"sync_syncjob")),
]
OTHER_SQL = "other SQL (mappings, lease, edits, rules)"


@dataclass
class Part:
    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0


@dataclass
class Split:
    """Exclusive time per part: a stack of the parts being run, each switch charging the time
    since the last one to the part on top."""

    parts: dict[str, Part] = field(default_factory=dict)
    stack: list[str] = field(default_factory=lambda: [ENGINE])
    wall_mark: float = 0.0
    cpu_mark: float = 0.0
    wall_total: float = 0.0
    cpu_total: float = 0.0

    def _charge(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        part = self.parts.setdefault(self.stack[-1], Part())
        part.wall += wall - self.wall_mark
        part.cpu += cpu - self.cpu_mark
        self.wall_mark, self.cpu_mark = wall, cpu

    @contextmanager
    def running(self, label: str):
        if self.stack[-1] == APPS:
            yield  # everything the apps do is theirs
            return
        self._charge()
        self.stack.append(label)
        self.parts.setdefault(label, Part()).calls += 1
        try:
            yield
        finally:
            self._charge()
            self.stack.pop()

    @contextmanager
    def measuring(self):
        self.wall_mark, self.cpu_mark = time.perf_counter(), time.process_time()
        wall0, cpu0 = self.wall_mark, self.cpu_mark
        try:
            yield
        finally:
            self._charge()
            self.wall_total = time.perf_counter() - wall0
            self.cpu_total = time.process_time() - cpu0

    def wrap(self, label: str | Callable[..., str], function: Callable) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            name = label(*args, **kwargs) if callable(label) else label
            with self.running(name):
                return function(*args, **kwargs)

        return call

    def sql(self, execute, sql, params, many, context):
        label = next((name for name, table in SQL_TABLES if table.search(sql)), OTHER_SQL)
        with self.running(label):
            return execute(sql, params, many, context)


def rows(split: Split, records: int) -> list[tuple[str, float, float]]:
    """(part, CPU µs a record, wait µs a record) for each part, the apps last; SQL parts wait
    for PostgreSQL (wall minus CPU)."""
    out = []
    for label, part in sorted(split.parts.items(), key=lambda item: -item[1].cpu):
        if label == APPS:
            continue
        wait = max(0.0, part.wall - part.cpu)
        out.append((label, part.cpu / records * 1e6, wait / records * 1e6))
    apps = split.parts.get(APPS, Part())
    out.append((APPS, apps.cpu / records * 1e6, max(0.0, apps.wall - apps.cpu) / records * 1e6))
    return out


def engine_cpu(split: Split) -> float:
    """The job process's CPU seconds, the apps' taken out."""
    return split.cpu_total - split.parts.get(APPS, Part()).cpu


@contextmanager
def split_of_run(base_url: str):
    """While this lasts, connectors reach `base_url` in process and every part is timed;
    yields the Split."""
    import httpx
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.db import connection as db_connection

    from errors import grouping
    from sync import engine
    from sync.connectors import odata

    split = Split()
    handler = WSGIHandler()

    def app(environ, start_response):
        # The apps share this thread's database connection: Django must not close it at the
        # end of each request (as its test client does).
        response = handler(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            response.close()

    patches = [
        (httpx.WSGITransport, "handle_request", APPS),
        (httpx.Response, "json", JSON),
        (httpx._content, "json_dumps", JSON),
        (httpx.Client, "request", HTTP),
        (grouping, "record_errors", ENTRIES),
        (grouping, "record_attempts", ENTRIES),
        (engine, "record_errors", ENTRIES),
        (engine, "record_attempts", ENTRIES),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, label in patches:
        setattr(owner, name, split.wrap(label, getattr(owner, name)))
    odata.TRANSPORTS[base_url] = httpx.WSGITransport(app=app)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with db_connection.execute_wrapper(split.sql), split.measuring():
            yield split
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        odata.TRANSPORTS.pop(base_url, None)
        for owner, name, original in originals:
            setattr(owner, name, original)
