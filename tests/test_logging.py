"""Structured logs: the format chosen by the settings, JSON lines that parse, and the
context every line of a sync job carries."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync.models import SyncJob
from syncconsole import logs
from syncconsole.celery import app as celery_app
from tests.conftest import CeleryProcess

ROOT = Path(__file__).resolve().parent.parent


def log_format(**variables: str) -> tuple[str, str]:
    """settings.LOG_FORMAT in a fresh process with these variables, and what a line logged
    there looks like on stderr."""
    names = ("DEBUG", "LOG_FORMAT", "ALLOWED_HOSTS")
    env = {k: v for k, v in os.environ.items() if k not in names}
    # The settings and the logging Django configures from them, without the apps.
    code = (
        "import logging.config; from syncconsole import settings; "
        "logging.config.dictConfig(settings.LOGGING); print(settings.LOG_FORMAT); "
        "logging.getLogger('sync.engine').warning('hello %s', 1)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, **variables},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip(), result.stderr.strip().splitlines()[-1]


def test_json_beyond_this_machine_and_readable_text_otherwise():
    served = {"ALLOWED_HOSTS": "console.example.com"}
    chosen, line = log_format(**served)
    assert chosen == "json"
    assert json.loads(line) | {"timestamp": "t"} == {
        "event": "hello 1",
        "level": "warning",
        "logger": "sync.engine",
        "timestamp": "t",
    }

    chosen, line = log_format()
    assert chosen == "text"
    assert "hello 1" in line and "[sync.engine]" in line
    assert log_format(DEBUG="true", **served)[0] == "text"
    assert log_format(LOG_FORMAT="json")[0] == "json"


def test_an_unknown_format_is_refused():
    with pytest.raises(subprocess.CalledProcessError) as refused:
        log_format(LOG_FORMAT="xml")
    assert "LOG_FORMAT must be json or text, not 'xml'." in refused.value.stderr


@pytest.fixture
def json_lines():
    """What the root logger writes in the JSON format while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_every_line_of_a_job_names_the_job_its_mapping_and_connection(demo_apps, json_lines):
    mapping = demo_apps.mapping("CUSTOMER")
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)

    lines = [line for line in json_lines() if line["logger"].startswith("sync.")]
    story = [line["event"] for line in lines]
    assert story[0] == "Job started: Full synchronization, Bidirectional, trigger User."
    assert "Read 12 customers records from Business Central." in story
    assert story[-1].startswith("Job succeeded: 23 read, 10 inserted")
    for line in lines:
        assert line["job_id"] == job.pk
        assert (line["mapping_id"], line["mapping"]) == (mapping.pk, "CUSTOMER")
        assert (line["connection_id"], line["connection"]) == (
            mapping.connection_id,
            mapping.connection.name,
        )
    # Cleared when the job ends.
    logging.getLogger("sync.engine").info("after")
    assert "job_id" not in json_lines()[-1]
    assert logs.context() == {}


def test_a_celery_task_s_lines_carry_its_name_and_id(json_lines):
    class Task:
        name = "sync.run_sync_job"

    logs.task_started(task_id="t-1", task=Task())
    logging.getLogger("sync.tasks").info("inside")
    logs.task_ended()
    logging.getLogger("sync.tasks").info("outside")

    inside, outside = json_lines()[-2:]
    assert (inside["task"], inside["task_id"]) == ("sync.run_sync_job", "t-1")
    assert "task" not in outside and "task_id" not in outside


def logged(process: CeleryProcess) -> list[dict]:
    """The process's log lines; Celery's start-up banner, printed rather than logged, left
    out."""
    lines = process.log_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.worker
# Committing: what the worker and beat write (their heartbeats, the task's work) is emptied
# after the test, not left to the tests after it.
@pytest.mark.django_db(transaction=True)
def test_the_worker_and_beat_log_json_lines(celery_queue, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    queue = f"{celery_queue}-json"
    worker = CeleryProcess("worker", queue, ["--pool=solo", "-Q", queue, "--without-gossip"])
    beat = CeleryProcess("beat", queue, ["--pidfile=", "--max-interval=1"])
    try:
        worker.wait_for_log("ready.")
        beat.wait_for_log("beat: Starting")
        celery_app.send_task("sync.delete_expired_jobs", queue=queue)
        worker.wait_for_log("succeeded")
    finally:
        worker.stop()
        beat.stop()

    events = {(line["logger"], line["event"].split("[")[0]) for line in logged(worker)}
    assert ("celery.app.trace", "Task sync.delete_expired_jobs") in events
    assert any(event.endswith(" ready.") for _, event in events)
    for text in ("ready.", "succeeded", "received"):
        assert not [
            line
            for line in worker.log_path.read_text().splitlines()
            if text in line and not line.startswith("{")
        ]
    assert any(line["event"] == "beat: Starting..." for line in logged(beat))


def test_a_quieter_log_level_still_lets_a_job_keep_its_info_lines():
    config = logs.logging_config("json", "WARNING")
    assert config["handlers"]["console"]["level"] == logging.WARNING
    assert config["handlers"]["job"]["level"] == "INFO"
    assert config["root"]["level"] == logging.INFO
    assert logs.logging_config("text", "debug")["root"]["level"] == logging.DEBUG
    with pytest.raises(ValueError, match="LOG_LEVEL must be"):
        logs.logging_config("text", "LOUD")


@pytest.fixture
def console_lines():
    """What the configured console handler writes, while the test runs."""
    [handler] = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    stream = io.StringIO()
    before = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(before)


def read_and_clear(stream: io.StringIO) -> str:
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return text


@pytest.mark.django_db
@pytest.mark.urls("tests.raising_urls")
def test_a_refused_request_is_one_line_and_a_server_error_keeps_its_traceback(
    client, plain_user, settings, console_lines
):
    settings.DEBUG = False
    client.raise_request_exception = False
    client.force_login(plain_user)
    read_and_clear(console_lines)

    assert client.get("/errors/").status_code == 403
    refused = read_and_clear(console_lines)
    assert "Forbidden" in refused and "/errors/" in refused
    assert "Traceback" not in refused and "PermissionDenied" not in refused

    assert client.get("/boom/").status_code == 500
    failed = read_and_clear(console_lines)
    assert "Internal Server Error: /boom/" in failed
    # Python's own layout, once.
    assert failed.count("Traceback (most recent call last):") == 1
    assert "RuntimeError: a bug" in failed
