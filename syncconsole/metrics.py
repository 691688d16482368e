"""The figures each process counts as things happen, exported at /metrics in Prometheus' text
format: jobs and their records, clean-ups, and the console's requests. The figures read from
the database at scrape time are overview.monitoring's.

With PROMETHEUS_MULTIPROC_DIR set, every process (gunicorn's workers, Celery's workers) writes
its figures to a file of its own in that directory and /metrics adds them up, so that one scrape
of the web server shows the figures of every process of its host. Labels name mappings, views
and outcomes, never records: their number stays small."""

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiproc_dir() -> Path | None:
    """The shared directory of multiprocess mode, or None for figures kept in memory."""
    path = os.environ.get(MULTIPROC_ENV, "")
    return Path(path) if path else None


def process_identifier() -> str:
    """Host and process id: the processes of several containers may share one directory (the
    docker compose volume) and have the same pids. No underscore, which the file names of
    prometheus_client use as their separator."""
    return f"{socket.gethostname()}-{os.getpid()}".replace("_", "-")


# Counters start at 0 with the process: Prometheus' rate() needs no _created series.
disable_created_metrics()
if multiproc_dir() is not None:
    # Before any figure below is made: each makes its value with values.ValueClass.
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)


def clean_multiproc_dir(path: Path) -> None:
    """Empty the directory before the processes that share it start, as prometheus_client
    asks: files of processes of an earlier run would otherwise be added to the figures."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit: forget a worker process's live gauges (counters stay summed)."""
    path = multiproc_dir()
    if path is not None:
        multiprocess.mark_process_dead(f"{socket.gethostname()}-{pid}".replace("_", "-"), path)


# A job lasts from seconds (a few modified records) to an hour (a first full run).
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))
CLEANUP_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, float("inf"))

JOBS_FINISHED = Counter(
    "syncconsole_jobs_finished",
    "Sync jobs finished, by table mapping and status (succeeded, failed, interrupted).",
    ["mapping", "status"],
)
RECORDS_READ = Counter(
    "syncconsole_records_read", "Records read by the sync jobs, by table mapping.", ["mapping"]
)
RECORDS_WRITTEN = Counter(
    "syncconsole_records_written",
    "Records the sync jobs wrote (inserted, modified or deleted), by table mapping.",
    ["mapping"],
)
JOB_DURATION = Histogram(
    "syncconsole_job_duration_seconds",
    "How long sync jobs ran, from start to end, by table mapping.",
    ["mapping"],
    buckets=JOB_BUCKETS,
)
CLEANUP_DURATION = Histogram(
    "syncconsole_cleanup_duration_seconds",
    "How long clean-ups of sync error entries ran, by outcome (done, failed).",
    ["outcome"],
    buckets=CLEANUP_BUCKETS,
)
CLEANUP_DELETED = Counter(
    "syncconsole_cleanup_deleted_entries", "Sync error entries deleted by clean-ups."
)
REQUEST_DURATION = Histogram(
    "syncconsole_http_request_duration_seconds",
    "How long the console took to answer, by view (its URL name) and status class.",
    ["view", "status"],
)


def job_finished(mapping: str, status: str, seconds: float | None, read: int, written: int) -> None:
    """Count a job that ended (sync.engine, the one place a job ends)."""
    JOBS_FINISHED.labels(mapping, status).inc()
    RECORDS_READ.labels(mapping).inc(read)
    RECORDS_WRITTEN.labels(mapping).inc(written)
    if seconds is not None:
        JOB_DURATION.labels(mapping).observe(max(seconds, 0.0))


def jobs_ended_unseen(mapping: str, status: str, jobs: int) -> None:
    """Count jobs whose end nobody saw (their worker died): no duration, no records."""
    if jobs:
        JOBS_FINISHED.labels(mapping, status).inc(jobs)


def cleanup_deleted(entries: int) -> None:
    CLEANUP_DELETED.inc(entries)


def cleanup_finished(outcome: str, seconds: float) -> None:
    CLEANUP_DURATION.labels(outcome).observe(max(seconds, 0.0))


class RequestMetricsMiddleware:
    """Time every request, labelled with the URL name of its view ("unmatched" when no URL
    matched) and the class of its status (2xx, 4xx...)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else "") or "unmatched"
        status = f"{response.status_code // 100}xx"
        REQUEST_DURATION.labels(view, status).observe(time.perf_counter() - started)
        return response


def process_registry() -> CollectorRegistry:
    """The figures counted by processes: of every process of this host sharing the
    multiprocess directory, else of this process alone."""
    path = multiproc_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))
    return registry


def exposition(*collectors: Collector) -> bytes:
    """The text exposition: the processes' figures, then those of `collectors` (read at
    scrape time)."""
    scraped = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        scraped.register(collector)
    return generate_latest(process_registry()) + generate_latest(scraped)


CONTENT_TYPE = CONTENT_TYPE_LATEST


def serve_worker_metrics(port: int, addr: str) -> WSGIServer:
    """A worker on a host without the web server serves its processes' figures itself
    (prometheus_client's HTTP server, in a thread of the worker's main process)."""
    server, _ = start_http_server(port, addr=addr, registry=process_registry())
    return server
