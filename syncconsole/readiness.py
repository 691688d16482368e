"""What /readyz checks: the database, the broker, a worker's and beat's heartbeats, and the
depth of the console's queues. Each check gives up after READYZ_CHECK_TIMEOUT seconds, and the
database's and the broker's run side by side, so that the answer comes within a couple of
seconds whatever is down. A failing check says why in a few words, never with a URL or a
password."""

import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import redis
from celery import Celery
from django.conf import settings
from kombu import Connection

from . import broker, heartbeats
from .celery import app as celery_app
from .models import ProcessHeartbeat

OK, FAILING = "ok", "failing"
# The order of the checks in the answer.
CHECKS = ("database", "broker", "queue", "worker", "beat")
# Options of Django's database settings that are not libpq's.
DJANGO_ONLY_OPTIONS = {"isolation_level", "server_side_binding", "pool", "assume_role"}
REDIS_SCHEMES = {"redis", "rediss"}
FILE_SCHEMES = {broker.SCHEME, "filesystem"}
# kombu's Redis transport keeps a queue's messages of priority 3, 6 and 9 in lists of their
# own beside the queue's (kombu.transport.redis: PRIORITY_STEPS, Channel.sep).
REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
CREDENTIALS = re.compile(r"(\w+://)[^@/\s]*@")


@dataclass
class Check:
    state: str
    ms: int = 0
    reason: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"state": self.state, "ms": self.ms, **self.figures}
        if self.state != OK:
            answer["reason"] = self.reason
        return answer


def ok(**figures: Any) -> Check:
    return Check(OK, figures=figures)


def failing(reason: str, **figures: Any) -> Check:
    return Check(FAILING, reason=reason, figures=figures)


def short(exc: BaseException) -> str:
    """An exception in a few words: its first line, credentials in a URL blanked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CREDENTIALS.sub(r"\1***@", text)[:200]


def timed(check: Callable[[], Check]) -> Check:
    started = time.monotonic()
    result = check()
    result.ms = math.ceil((time.monotonic() - started) * 1000)
    return result


# --- The database, and the heartbeats kept in it -------------------------------------------


def database_connection(timeout: float):
    """A connection of its own to the console's database, that gives up connecting and
    running a statement after `timeout` (libpq waits at least 2 seconds to connect)."""
    db = settings.DATABASES["default"]
    options = {
        key: value
        for key, value in (db.get("OPTIONS") or {}).items()
        if key not in DJANGO_ONLY_OPTIONS
    }
    options.update(
        connect_timeout=max(2, math.ceil(timeout)),
        options=f"-c statement_timeout={math.ceil(timeout * 1000)}",
        application_name="syncconsole-readyz",
    )
    connection = psycopg2.connect(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        **options,
    )
    connection.autocommit = True
    return connection


def heartbeat_check(cursor, kind: str, max_age: float) -> Check:
    age = heartbeats.newest_age(cursor, kind)
    label = dict(ProcessHeartbeat.KINDS)[kind]
    if age is None:
        return failing(f"No {label} has sent a heartbeat.")
    figures = {"age_s": round(age, 1)}
    if age > max_age:
        return failing(f"No {label} has sent a heartbeat for {age:.0f} s.", **figures)
    return ok(**figures)


def database_checks(timeout: float) -> dict[str, Check]:
    """The database answers, and a worker and beat wrote their heartbeats lately."""
    started = time.monotonic()
    try:
        connection = database_connection(timeout)
    except psycopg2.Error as exc:
        database = failing(f"The database does not answer: {short(exc)}")
        database.ms = math.ceil((time.monotonic() - started) * 1000)
        unknown = "Unknown: the database does not answer."
        return {"database": database, "worker": failing(unknown), "beat": failing(unknown)}
    connected = time.monotonic()
    try:
        with connection.cursor() as cursor:

            def select_one() -> Check:
                cursor.execute("SELECT 1")
                cursor.fetchone()
                return ok()

            def worker() -> Check:
                age = settings.READYZ_WORKER_HEARTBEAT_MAX_AGE
                return heartbeat_check(cursor, ProcessHeartbeat.WORKER, age)

            def beat() -> Check:
                return heartbeat_check(cursor, ProcessHeartbeat.BEAT, settings.READYZ_BEAT_MAX_AGE)

            results = {}
            for name, check in (("database", select_one), ("worker", worker), ("beat", beat)):
                try:
                    results[name] = timed(check)
                except psycopg2.Error as exc:
                    results[name] = failing(f"The database does not answer: {short(exc)}")
            # The database's time includes connecting.
            results["database"].ms += math.ceil((connected - started) * 1000)
            return results
    finally:
        connection.close()


# --- The broker and its queues -------------------------------------------------------------


def queue_names(app: Celery = celery_app) -> list[str]:
    """The queues the console's tasks go to: the default queue, the configured queues, and
    the queues the task routes name (/readyz and /metrics count the same ones)."""
    conf = app.conf
    names = [conf.task_default_queue]
    queues = conf.task_queues or ()
    names += [getattr(queue, "name", queue) for queue in queues]
    routes = conf.task_routes or ()
    for table in routes if isinstance(routes, list | tuple) else [routes]:
        if not isinstance(table, dict):
            continue  # a router function: where it sends a task is unknown until it runs
        for route in table.values():
            queue = route.get("queue") if isinstance(route, dict) else route
            names.append(getattr(queue, "name", queue))
    return sorted({name for name in names if isinstance(name, str) and name})


def queue_check(depth: int) -> Check:
    maximum = settings.READYZ_QUEUE_MAX_DEPTH
    if depth > maximum:
        return failing(f"{depth} messages wait in the queue (more than {maximum}).", depth=depth)
    return ok(depth=depth)


def redis_checks(url: str, timeout: float) -> dict[str, Check]:
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        try:
            ping = timed(lambda: ok() if client.ping() else failing("Redis did not answer."))
        except redis.RedisError as exc:
            return {
                "broker": failing(f"The broker does not answer: {short(exc)}"),
                "queue": failing("Unknown: the broker does not answer."),
            }

        def depth() -> Check:
            with client.pipeline(transaction=False) as pipe:
                for queue in queue_names():
                    for suffix in REDIS_PRIORITY_SUFFIXES:
                        pipe.llen(queue + suffix)
                return queue_check(sum(pipe.execute()))

        try:
            queue = timed(depth)
        except redis.RedisError as exc:
            queue = failing(f"The broker does not answer: {short(exc)}")
        return {"broker": ping, "queue": queue}
    finally:
        client.close()


def file_broker_checks(options: dict[str, Any]) -> dict[str, Check]:
    """The server-less broker of `make run`: its queue folder takes a new file, and its
    messages are counted."""
    folder = Path(options["data_folder_in"])

    def writable() -> Check:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".readyz-"):
                pass
        except OSError as exc:
            return failing(f"The broker's folder is not writable: {exc.strerror or short(exc)}")
        return ok()

    def depth() -> Check:
        endings = tuple(f".{queue}.msg" for queue in queue_names())
        try:
            return queue_check(sum(1 for name in os.listdir(folder) if name.endswith(endings)))
        except OSError as exc:
            return failing(f"The broker's folder cannot be read: {exc.strerror or short(exc)}")

    return {"broker": timed(writable), "queue": timed(depth)}


def other_broker_checks(url: str, timeout: float) -> dict[str, Check]:
    def connect() -> Check:
        try:
            with Connection(url, connect_timeout=timeout) as connection:
                connection.ensure_connection(max_retries=1, timeout=timeout)
        except Exception as exc:  # kombu raises a different kind for each transport
            return failing(f"The broker does not answer: {short(exc)}")
        return ok()

    return {"broker": timed(connect), "queue": ok(depth=None)}


def broker_checks(timeout: float) -> dict[str, Check]:
    """The broker the console sends its tasks to, and the depth of its queues there."""
    url = celery_app.conf.broker_write_url or ""
    scheme = url.partition("://")[0]
    if scheme in REDIS_SCHEMES:
        return redis_checks(url, timeout)
    if scheme in FILE_SCHEMES:
        return file_broker_checks(celery_app.conf.broker_transport_options)
    return other_broker_checks(url, timeout)


# --- All of them ---------------------------------------------------------------------------


def run_checks() -> dict[str, Check]:
    """Every check, the database's and the broker's side by side; a side that has not
    answered a second after its timeout fails as not answering."""
    timeout = settings.READYZ_CHECK_TIMEOUT
    groups = {
        "database": (database_checks, ("database", "worker", "beat")),
        "broker": (broker_checks, ("broker", "queue")),
    }
    results: dict[str, Check] = {}
    pool = ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(run, timeout) for name, (run, _) in groups.items()}
        deadline = time.monotonic() + max(2, timeout) + 1
        for name, future in futures.items():
            try:
                results.update(future.result(timeout=max(0, deadline - time.monotonic())))
            except FutureTimeout:
                for check in groups[name][1]:
                    results[check] = failing(f"No answer within {timeout:g} s.")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {name: results[name] for name in CHECKS}


def readiness() -> tuple[bool, dict[str, Any]]:
    """Whether every check passes, and the answer of /readyz."""
    checks = run_checks()
    ready = all(check.state == OK for check in checks.values())
    return ready, {
        "status": OK if ready else FAILING,
        "checks": {name: check.as_json() for name, check in checks.items()},
    }
