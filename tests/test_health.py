"""/healthz (the process answers: open to all, nothing else looked at) and /readyz (each
check of what the console needs, for the monitoring networks or token), the heartbeats they
read, and `manage.py health`. The fault tests stop the real parts under a running console:
tests/reliability/test_readiness.py."""

import json
import os
import socket
import uuid
from datetime import timedelta

import pytest
import redis
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F
from django.test import Client
from django.urls import reverse
from kombu import Queue

from syncconsole import broker, heartbeats, readiness
from syncconsole.celery import app as celery_app
from syncconsole.models import ProcessHeartbeat

SECRET = "hunter2-never-shown"
CHECKS = ["database", "broker", "queue", "worker", "beat"]


def heartbeat(kind: str, name: str, age: float = 0) -> None:
    heartbeats.record(kind, name)
    if age:
        ProcessHeartbeat.objects.filter(kind=kind, name=name).update(
            seen_at=F("seen_at") - timedelta(seconds=age)
        )


@pytest.fixture
def celery_conf():
    """Set Celery settings for the test (`celery_conf(name=value, ...)`); put back after."""
    conf = celery_app.conf
    saved: dict = {}

    def change(**values) -> None:
        for name, value in values.items():
            saved.setdefault(name, getattr(conf, name))
            setattr(conf, name, value)

    yield change
    for name, value in saved.items():
        setattr(conf, name, value)


@pytest.fixture
def file_broker(tmp_path, celery_conf):
    """The console's tasks go to the server-less broker in `tmp_path`, queue `files-...`."""
    options = broker.transport_options(tmp_path)
    celery_conf(
        broker_write_url=f"{broker.SCHEME}://",
        broker_transport_options=options,
        task_default_queue=f"files-{uuid.uuid4().hex[:8]}",
    )
    return options


# --- /healthz ------------------------------------------------------------------------------


def test_healthz_answers_without_the_database_a_session_or_a_known_host(settings):
    # Not marked django_db: any query would fail the test.
    settings.ALLOWED_HOSTS = ["console.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    answer = Client(HTTP_HOST="127.0.0.1").get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert answer["Content-Type"] == "application/json"
    assert "no-cache" in answer["Cache-Control"]
    assert not answer.cookies
    assert reverse("healthz") == "/healthz"


def test_healthz_answers_head_too():
    assert Client().get("/healthz").status_code == 200
    assert Client().head("/healthz").status_code == 200


def test_healthz_only_reads():
    assert Client().post("/healthz").status_code == 405


# --- Who may read /readyz ------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_is_refused_off_the_monitoring_networks(settings):
    settings.MONITORING_NETWORKS = ["10.0.0.0/8"]
    answer = Client().get("/readyz", REMOTE_ADDR="192.0.2.7")
    assert answer.status_code == 403
    assert "checks" not in answer.content.decode()
    assert not answer.cookies


@pytest.mark.django_db(transaction=True)
def test_readyz_answers_the_token_from_anywhere(settings):
    settings.MONITORING_NETWORKS = []
    settings.MONITORING_TOKEN = "monitoring-token-1"
    client = Client(REMOTE_ADDR="192.0.2.7")
    assert client.get("/readyz").status_code == 403
    answer = client.get("/readyz", HTTP_AUTHORIZATION="Bearer monitoring-token-1")
    assert answer.status_code in (200, 503)
    assert set(answer.json()["checks"]) == set(CHECKS)
    assert not answer.cookies
    assert client.post("/readyz", HTTP_AUTHORIZATION="Bearer monitoring-token-1").status_code == 405


@pytest.mark.django_db
def test_readyz_is_not_redirected_to_sign_in_nor_to_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    answer = Client().get("/readyz", REMOTE_ADDR="192.0.2.7")
    assert answer.status_code == 403  # neither 301 to https nor 302 to the sign-in page


# --- The answer ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_readyz_is_green_with_every_part_up_and_says_so_in_json(file_broker):
    heartbeat(ProcessHeartbeat.WORKER, "worker-1@host")
    heartbeat(ProcessHeartbeat.BEAT, "beat@host")
    answer = Client().get("/readyz")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "ok"
    assert list(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["state"] == "ok", (name, check)
        assert isinstance(check["ms"], int) and check["ms"] >= 0
        assert "reason" not in check
    assert body["checks"]["queue"]["depth"] == 0
    assert body["checks"]["worker"]["age_s"] < 60
    assert answer["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db(transaction=True)
def test_readyz_is_red_without_a_worker_or_beat_heartbeat(file_broker):
    answer = Client().get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "failing"
    assert body["checks"]["worker"] == {
        "state": "failing",
        "ms": body["checks"]["worker"]["ms"],
        "reason": "No Celery worker has sent a heartbeat.",
    }
    assert body["checks"]["beat"]["reason"] == "No Celery beat has sent a heartbeat."
    assert body["checks"]["database"]["state"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_older_than_its_maximum_age_is_failing(settings, file_broker):
    settings.READYZ_WORKER_HEARTBEAT_MAX_AGE = 60
    settings.READYZ_BEAT_MAX_AGE = 120
    heartbeat(ProcessHeartbeat.WORKER, "old@host", age=90)
    heartbeat(ProcessHeartbeat.BEAT, "beat@host", age=90)
    checks = Client().get("/readyz").json()["checks"]
    assert checks["worker"]["state"] == "failing"
    assert checks["worker"]["reason"] == "No Celery worker has sent a heartbeat for 90 s."
    assert checks["beat"]["state"] == "ok"  # within beat's two intervals
    # One worker beating is enough.
    heartbeat(ProcessHeartbeat.WORKER, "new@host")
    assert Client().get("/readyz").json()["checks"]["worker"]["state"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_the_file_broker_counts_its_messages_against_the_maximum(settings, file_broker):
    settings.READYZ_QUEUE_MAX_DEPTH = 2
    heartbeat(ProcessHeartbeat.WORKER, "w@host")
    heartbeat(ProcessHeartbeat.BEAT, "beat@host")
    folder = file_broker["data_folder_in"]
    queue = celery_app.conf.task_default_queue
    for number in range(3):
        with open(os.path.join(folder, f"{number}_m.{queue}.msg"), "w") as message:
            message.write("{}")
    # Another queue's messages and a message being written do not count.
    open(os.path.join(folder, f"9_m.other-{queue}.msg"), "w").close()
    open(os.path.join(folder, f".9_m.{queue}.msg.part"), "w").close()
    answer = Client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["queue"] == {
        "state": "failing",
        "ms": answer.json()["checks"]["queue"]["ms"],
        "depth": 3,
        "reason": "3 messages wait in the queue (more than 2).",
    }
    os.remove(os.path.join(folder, f"0_m.{queue}.msg"))
    assert Client().get("/readyz").status_code == 200


def test_a_file_broker_whose_folder_is_gone_is_failing(tmp_path):
    options = broker.transport_options(tmp_path)
    (tmp_path / "queue").rmdir()
    checks = readiness.file_broker_checks(options)
    assert checks["broker"].state == "failing"
    assert checks["broker"].reason.startswith("The broker's folder is not writable")
    assert checks["queue"].state == "failing"


def test_the_queues_are_the_default_the_configured_and_the_routed_ones(celery_conf):
    celery_conf(task_default_queue="syncconsole")
    celery_conf(task_queues=[Queue("syncconsole"), Queue("alerts")])
    celery_conf(
        task_routes={"errors.cleanup": {"queue": "cleanup"}, "sync.run_sync_job": "jobs", "x": {}}
    )
    assert readiness.queue_names() == ["alerts", "cleanup", "jobs", "syncconsole"]
    celery_conf(task_queues=None)
    celery_conf(task_routes=None)
    assert readiness.queue_names() == ["syncconsole"]


# --- The broker and the database, down -----------------------------------------------------


def test_a_redis_that_does_not_answer_is_failing_without_its_password(unused_port):
    url = f"redis://:{SECRET}@127.0.0.1:{unused_port}/0"
    checks = readiness.redis_checks(url, timeout=0.5)
    assert checks["broker"].state == "failing"
    assert checks["broker"].reason.startswith("The broker does not answer")
    assert checks["queue"].reason == "Unknown: the broker does not answer."
    assert SECRET not in json.dumps({n: c.as_json() for n, c in checks.items()})


@pytest.mark.django_db(transaction=True)
def test_readyz_never_shows_the_broker_or_database_url(
    settings, monkeypatch, celery_conf, unused_port
):
    celery_conf(broker_write_url=f"redis://:{SECRET}@127.0.0.1:{unused_port}")
    database = {**settings.DATABASES["default"], "PASSWORD": SECRET, "PORT": str(unused_port)}
    monkeypatch.setitem(settings.DATABASES, "default", database)
    answer = Client().get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert {name: check["state"] for name, check in body["checks"].items()} == dict.fromkeys(
        CHECKS, "failing"
    )
    assert body["checks"]["database"]["reason"].startswith("The database does not answer")
    assert body["checks"]["worker"]["reason"] == "Unknown: the database does not answer."
    assert SECRET not in answer.content.decode()
    assert "redis://" not in answer.content.decode()
    assert "postgresql://" not in answer.content.decode()


def test_short_reasons_blank_credentials():
    error = ValueError(f"cannot reach amqp://guest:{SECRET}@rabbit:5672//\nmore lines")
    assert readiness.short(error) == "cannot reach amqp://***@rabbit:5672//"


@pytest.fixture
def redis_broker(settings):
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis"):
        pytest.skip("the console's broker is not a Redis here (CELERY_BROKER_URL)")
    return url


@pytest.mark.django_db(transaction=True)
def test_redis_queue_depth_counts_every_priority_of_every_queue(
    settings, celery_conf, redis_broker
):
    settings.READYZ_QUEUE_MAX_DEPTH = 3
    queue = f"readyz-{uuid.uuid4().hex[:8]}"
    celery_conf(broker_write_url=redis_broker)
    celery_conf(task_default_queue=queue)
    celery_conf(task_routes={"x": {"queue": f"{queue}-2"}})
    client = redis.Redis.from_url(redis_broker)
    keys = [queue, f"{queue}\x06\x163", f"{queue}-2"]
    try:
        client.lpush(keys[0], "a", "b")
        client.lpush(keys[1], "c")
        checks = readiness.broker_checks(timeout=1)
        assert (checks["broker"].state, checks["queue"].state) == ("ok", "ok")
        assert checks["queue"].figures == {"depth": 3}
        client.lpush(keys[2], "d")
        checks = readiness.broker_checks(timeout=1)
        assert checks["queue"].state == "failing"
        assert checks["queue"].reason == "4 messages wait in the queue (more than 3)."
    finally:
        client.delete(*keys)
        client.close()


# --- Heartbeats ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_heartbeat_moves_one_row_on_and_removes_processes_gone_for_long(settings):
    settings.PROCESS_HEARTBEAT_FORGET_AFTER = 3600
    heartbeat(ProcessHeartbeat.WORKER, "gone@old-host", age=7200)
    heartbeat(ProcessHeartbeat.WORKER, "w@host")
    heartbeat(ProcessHeartbeat.WORKER, "w@host")
    heartbeat(ProcessHeartbeat.BEAT, "beat@host")
    assert sorted(ProcessHeartbeat.objects.values_list("kind", "name")) == [
        ("beat", "beat@host"),
        ("worker", "w@host"),
    ]
    with pytest.raises(ValueError):
        heartbeats.record("web", "x")


@pytest.mark.django_db
def test_the_newest_age_of_one_host_only():
    heartbeat(ProcessHeartbeat.WORKER, "a@host_1", age=100)
    heartbeat(ProcessHeartbeat.WORKER, "b@hostx1", age=10)
    with connection.cursor() as cursor:
        assert heartbeats.newest_age(cursor, ProcessHeartbeat.WORKER) < 100
        # "_" is no wildcard: hostx1 is not host_1.
        assert heartbeats.newest_age(cursor, ProcessHeartbeat.WORKER, host="host_1") >= 100
        assert heartbeats.newest_age(cursor, ProcessHeartbeat.BEAT) is None


@pytest.mark.django_db(transaction=True)
def test_the_health_command_checks_this_machine_s_process(settings):
    host = socket.gethostname()
    with pytest.raises(CommandError, match=f"No worker on {host} has sent a heartbeat"):
        call_command("health", process="worker")
    heartbeat(ProcessHeartbeat.WORKER, "w@another-machine")
    with pytest.raises(CommandError) as refused:
        call_command("health", process="worker")
    assert refused.value.returncode == 1
    heartbeat(ProcessHeartbeat.WORKER, f"celery@{host}")
    call_command("health", process="worker")
    heartbeat(ProcessHeartbeat.BEAT, heartbeats.beat_name(), age=500)
    with pytest.raises(CommandError, match="has sent no heartbeat for 500 s"):
        call_command("health", process="beat")


def test_heartbeats_must_come_more_often_than_readyz_expects(settings):
    settings.PROCESS_HEARTBEAT_SECONDS = 15
    assert "syncconsole.E007" not in [message.id for message in run_checks()]
    settings.READYZ_WORKER_HEARTBEAT_MAX_AGE = 10
    assert "syncconsole.E007" in [message.id for message in run_checks()]
