"""make run's preparation: the database migrated and the accounts made, wherever the data
folder stands."""

import os
from io import StringIO

import pytest
from django.contrib.auth import get_user_model

from syncconsole import broker, heartbeats, task_routes
from syncconsole.celery import app as celery_app
from syncconsole.management.commands.runconsole import Command, process_commands, process_env
from syncconsole.models import ProcessHeartbeat


@pytest.mark.django_db
def test_the_accounts_are_made_when_no_data_folder_exists_yet(settings, tmp_path, monkeypatch):
    # With DATABASE_URL and CELERY_BROKER_URL set, neither the embedded database nor the
    # file broker has made the folder.
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    settings.DATA_DIR = tmp_path / "not-made-yet"
    out = StringIO()

    Command(stdout=out).prepare()

    admin = (settings.DATA_DIR / "admin-credentials.txt").read_text().split("\n")
    user = (settings.DATA_DIR / "user-credentials.txt").read_text().split("\n")
    assert get_user_model().objects.get(username=admin[0]).check_password(admin[1])
    assert get_user_model().objects.get(username=user[0]).check_password(user[1])
    assert f"Sign in as {admin[0]} / {admin[1]}" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_console_says_when_readyz_is_green_or_what_still_fails(tmp_path):
    conf = celery_app.conf
    saved = conf.broker_write_url, conf.broker_transport_options
    conf.broker_write_url = f"{broker.SCHEME}://"
    conf.broker_transport_options = broker.transport_options(tmp_path)
    try:
        out, err = StringIO(), StringIO()
        assert not Command(stdout=out, stderr=err).report_readiness(last_look=False)
        assert out.getvalue() == err.getvalue() == ""
        assert Command(stdout=out, stderr=err).report_readiness(last_look=True)
        assert "Not ready (/readyz): worker: No Celery worker has sent a heartbeat.; beat:" in (
            err.getvalue()
        )
        heartbeats.record(ProcessHeartbeat.WORKER, "celery@here")
        heartbeats.record(ProcessHeartbeat.BEAT, "beat@here")
        assert Command(stdout=out, stderr=err).report_readiness(last_look=False)
        assert "Ready: every check of /readyz passes." in out.getvalue()
    finally:
        conf.broker_write_url, conf.broker_transport_options = saved


def test_the_processes_share_an_emptied_metrics_directory(settings, tmp_path, monkeypatch):
    # Set here only so that monkeypatch takes it away again; runconsole sets it by default.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    settings.DATA_DIR = tmp_path
    stale = tmp_path / "metrics" / "counter_host-123.db"
    stale.parent.mkdir()
    stale.write_bytes(b"from an earlier run")

    figures = Command(stdout=StringIO()).prepare_metrics_dir()

    assert figures == tmp_path / "metrics"
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(figures)
    assert figures.is_dir() and not list(figures.iterdir())


def test_the_worker_of_make_run_takes_every_kind_of_work(settings):
    settings.TASK_QUEUES = task_routes.queue_names("local")
    worker = process_commands("127.0.0.1:8000")["worker"]
    assert worker[worker.index("-Q") + 1] == "local.sync,local.triage,local.notify"


def test_the_development_server_closes_its_connections_after_each_request(monkeypatch):
    """Its threads, one per request, would each leave a persistent connection open."""
    monkeypatch.setenv("DB_CONN_MAX_AGE", "60")
    assert process_env("web")["DB_CONN_MAX_AGE"] == "0"
    assert process_env("worker")["DB_CONN_MAX_AGE"] == "60"
