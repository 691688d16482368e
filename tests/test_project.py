"""Project-level promises: deployment checks, the compose file, the CI script."""

import os
import subprocess
import sys
from pathlib import Path

import yaml
from django.conf import settings
from django.core.checks import run_checks

from syncconsole import task_routes

ROOT = Path(settings.BASE_DIR)


def test_deploy_check_refuses_the_built_in_secret_key(settings):
    settings.SECRET_KEY = settings.DEFAULT_SECRET_KEY
    ids = {message.id for message in run_checks(include_deployment_checks=True)}
    assert "syncconsole.E001" in ids
    settings.SECRET_KEY = "x" * 60
    ids = {message.id for message in run_checks(include_deployment_checks=True)}
    assert "syncconsole.E001" not in ids


def test_deploy_check_warns_when_alert_links_would_lead_to_localhost(settings):
    settings.SYNC_CONSOLE_URL = settings.DEFAULT_SYNC_CONSOLE_URL
    assert "syncconsole.W001" in {m.id for m in run_checks(include_deployment_checks=True)}
    settings.SYNC_CONSOLE_URL = "https://console.example.com"
    assert "syncconsole.W001" not in {m.id for m in run_checks(include_deployment_checks=True)}


def test_production_settings_pass_check_deploy():
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "SECRET_KEY": "k" * 64 + "-production-like-secret",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "console.example.com",
        "SECURE_COOKIES": "true",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SYNC_CONSOLE_URL": "https://console.example.com",
        "SYNC_CONSOLE_ENCRYPTION_KEY": "8ZkQmN0y3vQK3m1mQfJ8m0b0ZC3qz0rXG7zW9mJxkG8=",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_describes_the_production_like_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    workers = {"sync-worker": "sync", "triage-worker": "triage", "notify-worker": "notify"}
    assert set(services) == {"postgres", "redis", "web", "beat", "metrics-init", *workers}
    for name in ("web", "beat", *workers):
        service = services[name]
        assert service["build"] == "."
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:")
        assert service["environment"]["CELERY_QUEUE"] == "${CELERY_QUEUE:-syncconsole}"
    assert "gunicorn" in services["web"]["command"]
    assert "beat" in services["beat"]["command"]
    # A worker per kind of work, each on its kind's queue (scaled with --scale), and every
    # queue a task is routed to has its workers.
    consumed = set()
    for name, kind in workers.items():
        command = services[name]["command"].split()
        assert command[:4] == ["celery", "-A", "syncconsole", "worker"]
        queues = command[command.index("-Q") + 1].replace("${CELERY_QUEUE:-syncconsole}", "base")
        assert queues == task_routes.queue_name("base", kind)
        consumed.add(queues)
    assert {route["queue"] for route in task_routes.task_routes("base").values()} <= consumed
    assert (ROOT / "Dockerfile").exists()


def test_compose_checks_the_health_of_the_web_server_the_worker_and_beat():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    web = " ".join(services["web"]["healthcheck"]["test"])
    assert "urllib" in web and "http://127.0.0.1:8000/healthz" in web  # no curl in the image
    for service, kind in {
        "sync-worker": "worker",
        "triage-worker": "worker",
        "notify-worker": "worker",
        "beat": "beat",
    }.items():
        test = services[service]["healthcheck"]["test"]
        assert test == ["CMD", "python", "manage.py", "health", "--process", kind]
    # Beat runs the scheduler that writes its heartbeat, as the settings say.
    assert f"--scheduler {settings.CELERY_BEAT_SCHEDULER}" in services["beat"]["command"]


def test_ci_script_runs_make_test_against_the_machine_services():
    script = (ROOT / ".ci" / "run").read_text()
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
    assert "set -euo pipefail" in script
    assert "127.0.0.1:5432" in script and "127.0.0.1:6379" in script
    assert script.rstrip().endswith("make test")


def test_email_goes_to_the_console_with_debug_and_to_smtp_otherwise():
    def backend(**variables) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "EMAIL_BACKEND")}
        code = "from syncconsole import settings; print(settings.EMAIL_BACKEND)"
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**env, **variables},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    assert backend(DEBUG="true") == "django.core.mail.backends.console.EmailBackend"
    assert backend() == "django.core.mail.backends.smtp.EmailBackend"
    chosen = "django.core.mail.backends.filebased.EmailBackend"
    assert backend(DEBUG="true", EMAIL_BACKEND=chosen) == chosen
