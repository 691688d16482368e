"""/metrics: who may read it, every figure after a real job of the demo apps and a real
clean-up, a scrape's queries that do not grow with the data, a database that cannot be reached,
and the figures of two processes added up in multiprocess mode."""

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from gunicorn.app.base import Application
from prometheus_client.parser import text_string_to_metric_families

from errors import services as cleanups
from errors.models import Category, SyncErrorCleanup
from overview.monitoring import DatabaseFigures
from sync import engine
from sync.models import SyncJob
from sync.services import create_job
from syncconsole import metrics
from syncconsole.celery import app as celery_app
from syncconsole.settings import BASE_DIR
from tests.conftest import CeleryProcess, wait_until
from tests.factories import make_error

pytestmark = pytest.mark.django_db
FULL = SyncJob.Kind.FULL

# Every figure /metrics exports, by the family name prometheus_client's parser gives it.
PROCESS_FIGURES = {
    "syncconsole_jobs_finished",
    "syncconsole_records_read",
    "syncconsole_records_written",
    "syncconsole_job_duration_seconds",
    "syncconsole_cleanup_duration_seconds",
    "syncconsole_cleanup_deleted_entries",
    "syncconsole_http_request_duration_seconds",
}
SCRAPED_FIGURES = {
    "syncconsole_open_entries",
    "syncconsole_open_problems",
    "syncconsole_skipped_couplings",
    "syncconsole_lag_seconds",
    "syncconsole_mapping_never_succeeded",
    "syncconsole_jobs",
    "syncconsole_queue_messages",
    "syncconsole_scrape_up",
}


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """/metrics read as Prometheus reads it: {family: {(sample name, labels...): value}}."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    families: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        samples = families.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return families


def value(families, family: str, sample: str | None = None, **labels) -> float:
    return families[family].get((sample or family, *sorted(labels.items())), 0.0)


def test_only_monitoring_networks_or_the_token_may_read_it(client, settings):
    settings.MONITORING_TOKEN = "scrape-token-for-tests"
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    token = {"HTTP_AUTHORIZATION": "Bearer scrape-token-for-tests"}
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", **token).status_code == 200
    assert client.post("/metrics").status_code == 405


def test_every_figure_after_a_real_job_and_a_clean_up(client, demo_apps):
    before = scrape(client)
    job = demo_apps.run("CUSTOMER", FULL)
    assert job.status == SyncJob.Status.SUCCEEDED
    make_error(age=timedelta(days=40), category=Category.CONFLICT)
    cleanup = cleanups.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.COMMAND)
    assert cleanup.state == SyncErrorCleanup.State.DONE and cleanup.deleted_count == 1
    client.get("/errors/groups/")  # anonymous: sent to sign in

    after = scrape(client)
    assert set(after) >= PROCESS_FIGURES | SCRAPED_FIGURES

    def grew(family, sample=None, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    assert grew("syncconsole_jobs_finished", "syncconsole_jobs_finished_total",
                mapping="CUSTOMER", status="succeeded") == 1  # fmt: skip
    assert grew("syncconsole_records_read", "syncconsole_records_read_total",
                mapping="CUSTOMER") == job.records_read  # fmt: skip
    assert grew("syncconsole_records_written", "syncconsole_records_written_total",
                mapping="CUSTOMER") == job.inserted + job.modified + job.deleted  # fmt: skip
    assert grew("syncconsole_job_duration_seconds", "syncconsole_job_duration_seconds_count",
                mapping="CUSTOMER") == 1  # fmt: skip
    assert grew("syncconsole_cleanup_duration_seconds",
                "syncconsole_cleanup_duration_seconds_count", outcome="done") == 1  # fmt: skip
    assert grew("syncconsole_cleanup_deleted_entries",
                "syncconsole_cleanup_deleted_entries_total") == 1  # fmt: skip
    assert grew("syncconsole_http_request_duration_seconds",
                "syncconsole_http_request_duration_seconds_count",
                view="errors:groups", status="3xx") == 1  # fmt: skip
    assert grew("syncconsole_http_request_duration_seconds",
                "syncconsole_http_request_duration_seconds_count",
                view="metrics", status="2xx") == 1  # fmt: skip

    # Read from the database: the job's currency failure is one open entry of one problem.
    assert value(after, "syncconsole_open_entries", category="currency") == 1
    assert value(after, "syncconsole_open_problems", severity="records") == 1
    assert value(after, "syncconsole_jobs", status="succeeded") == 1
    assert value(after, "syncconsole_skipped_couplings", mapping="CUSTOMER") == 0
    assert 0 <= value(after, "syncconsole_lag_seconds", mapping="CUSTOMER") < 3600
    assert value(after, "syncconsole_mapping_never_succeeded", mapping="CUSTOMER") == 0
    assert value(after, "syncconsole_mapping_never_succeeded", mapping="CONTACT") == 1
    queue = celery_app.conf.task_default_queue
    assert ("syncconsole_queue_messages", ("queue", queue)) in after["syncconsole_queue_messages"]
    assert value(after, "syncconsole_scrape_up", source="database") == 1
    assert value(after, "syncconsole_scrape_up", source="broker") == 1


def test_a_scrape_reads_a_fixed_number_of_queries_whatever_the_data(demo_apps):
    figures = DatabaseFigures()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            list(figures.collect())
        return len(captured)

    few = queries()
    demo_apps.run("CUSTOMER", FULL)
    demo_apps.run("CURRENCY", FULL)
    for n in range(30):
        make_error(category=Category.CONFLICT, message=f"Conflict {n % 3}")
    assert queries() == few == 5


@pytest.mark.django_db(transaction=True)
def test_a_database_that_cannot_be_reached_leaves_metrics_answering(unused_port):
    db = connections["default"]
    port = db.settings_dict["PORT"]
    db.close()
    db.settings_dict["PORT"] = str(unused_port)  # nothing listens there: connection refused
    try:
        families = list(DatabaseFigures().collect())
    finally:
        db.close()
        db.settings_dict["PORT"] = port
    by_name = {family.name: family for family in families}
    assert "syncconsole_open_entries" not in by_name
    up = {s.labels["source"]: s.value for s in by_name["syncconsole_scrape_up"].samples}
    assert up == {"database": 0, "broker": 1}


COUNT_A_JOB = """
from syncconsole import metrics
metrics.job_finished("CUSTOMER", "succeeded", 2.0, read=5, written=2)
"""


def test_figures_of_several_processes_are_added_up(client, tmp_path, monkeypatch):
    """Two real processes in multiprocess mode write their figures to the directory; the
    scrape adds them up."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    processes = [
        subprocess.Popen([sys.executable, "-c", COUNT_A_JOB], cwd=BASE_DIR, env=env)
        for _ in range(2)
    ]
    assert [process.wait(timeout=60) for process in processes] == [0, 0]
    assert len(list(Path(tmp_path).glob("counter_*.db"))) == 2
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    families = scrape(client)
    labels = {"mapping": "CUSTOMER", "status": "succeeded"}
    assert value(families, "syncconsole_jobs_finished", "syncconsole_jobs_finished_total",
                 **labels) == 2  # fmt: skip
    assert value(families, "syncconsole_records_read", "syncconsole_records_read_total",
                 mapping="CUSTOMER") == 10  # fmt: skip
    assert value(families, "syncconsole_job_duration_seconds",
                 "syncconsole_job_duration_seconds_sum", mapping="CUSTOMER") == 4.0  # fmt: skip
    # The figures read at the scrape are there too.
    assert value(families, "syncconsole_scrape_up", source="database") == 1


MONITORING = BASE_DIR / "docs" / "operations" / "monitoring"


def referenced_figures(expression: str) -> set[str]:
    """The syncconsole_ figures a PromQL expression names, as their families."""
    names = set(re.findall(r"\bsyncconsole_[a-z_]+", expression))
    return {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in names}


def test_the_dashboard_and_alert_rules_parse_and_use_only_exported_figures(client):
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    rules = yaml.safe_load((MONITORING / "alert-rules.yml").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions += [r["expr"] for group in rules["groups"] for r in group["rules"]]
    used = set().union(*(referenced_figures(e) for e in expressions))
    assert used, "no figure referenced"
    exported = set(scrape(client)) | PROCESS_FIGURES
    assert used <= exported, used - exported


def test_the_depth_of_every_queue_the_app_names(client):
    """Tasks waiting on the broker, in the default queue and in a queue a route names (queues
    of this test's own, which no worker reads)."""
    own = f"syncconsole-metrics-{uuid.uuid4().hex[:8]}"
    routed = f"{own}-routed"
    default, routes = celery_app.conf.task_default_queue, celery_app.conf.get("task_routes")
    celery_app.conf.task_default_queue = own
    celery_app.conf.task_routes = {"errors.send_alerts": {"queue": routed}}
    try:
        celery_app.send_task("sync.run_sync_job", args=(0,), queue=own)
        celery_app.send_task("sync.run_sync_job", args=(0,), queue=own)
        celery_app.send_task("errors.send_alerts", queue=routed)
        families = scrape(client)
    finally:
        celery_app.conf.task_default_queue, celery_app.conf.task_routes = default, routes
        with celery_app.connection_for_write() as connection:
            for name in (own, routed):
                connection.default_channel.queue_purge(name)
    assert value(families, "syncconsole_queue_messages", queue=own) == 2
    assert value(families, "syncconsole_queue_messages", queue=routed) == 1


def test_a_worker_serves_its_figures_on_its_own_port(unused_port):
    server = metrics.serve_worker_metrics(unused_port, "127.0.0.1")
    try:
        metrics.job_finished("ITEM", "failed", 1.0, read=3, written=0)
        body = httpx.get(f"http://127.0.0.1:{unused_port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    assert 'syncconsole_jobs_finished_total{mapping="ITEM",status="failed"}' in body
    # The figures read from the database are /metrics' alone.
    assert "syncconsole_open_entries" not in body


def test_gunicorn_reads_its_settings_file_and_marks_exited_workers_dead(tmp_path, monkeypatch):
    """gunicorn.conf.py, read from the working directory, has a child_exit that removes the
    live figures of the worker that exited (named by host and pid) from the directory."""
    config = Application.get_config_from_filename(None, str(BASE_DIR / "gunicorn.conf.py"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    worker = SimpleNamespace(pid=4242)
    live = tmp_path / f"gauge_livesum_{socket.gethostname().replace('_', '-')}-4242.db"
    other = tmp_path / f"gauge_livesum_{socket.gethostname().replace('_', '-')}-4243.db"
    live.write_bytes(b"")
    other.write_bytes(b"")
    config["child_exit"](None, worker)
    assert not live.exists() and other.exists()


def test_a_job_left_running_by_a_dead_worker_is_counted_interrupted(client, demo_apps):
    mapping = demo_apps.mapping("CURRENCY")
    dead = create_job(mapping, kind=FULL, trigger=SyncJob.Trigger.USER)
    SyncJob.objects.filter(pk=dead.pk).update(status=SyncJob.Status.RUNNING)
    labels = {"mapping": "CURRENCY", "status": "interrupted"}
    sample = ("syncconsole_jobs_finished", "syncconsole_jobs_finished_total")
    before = value(scrape(client), *sample, **labels)

    job = SyncJob.objects.create(mapping=mapping, kind=FULL, trigger=SyncJob.Trigger.USER)
    engine.run_job(job.pk)

    dead.refresh_from_db()
    assert dead.status == SyncJob.Status.INTERRUPTED
    assert value(scrape(client), *sample, **labels) == before + 1


@pytest.mark.worker
def test_a_celery_workers_jobs_reach_the_web_servers_metrics(client, demo_apps, tmp_path,
                                                            monkeypatch):  # fmt: skip
    """A real prefork worker in multiprocess mode: the job its child process runs is in the
    shared directory, and /metrics, in another process, serves it."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    queue = f"syncconsole-metrics-{uuid.uuid4().hex[:8]}"
    options = ["--pool=prefork", "--concurrency=1", "--without-gossip", "--without-mingle"]
    worker = CeleryProcess(
        "worker", queue, [*options, "-Q", queue, f"--hostname={queue}@%h", "--loglevel=INFO"]
    )
    try:
        worker.wait_for_log("ready.")
        job = create_job(demo_apps.mapping("CUSTOMER"), kind=FULL, trigger=SyncJob.Trigger.USER)
        celery_app.send_task("sync.run_sync_job", args=(job.pk,), queue=queue)
        wait_until(lambda: SyncJob.objects.get(pk=job.pk).is_finished, timeout=60,
                   message="the worker never finished the job")  # fmt: skip
    finally:
        worker.stop()
    job.refresh_from_db()
    families = scrape(client)
    labels = {"mapping": "CUSTOMER", "status": job.status}
    assert value(families, "syncconsole_jobs_finished", "syncconsole_jobs_finished_total",
                 **labels) == 1  # fmt: skip
    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    assert value(families, "syncconsole_records_read", "syncconsole_records_read_total",
                 mapping="CUSTOMER") == job.records_read  # fmt: skip
