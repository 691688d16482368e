"""Production settings: `check --deploy` passes with the documented variables, the secure
defaults switch on by themselves once the console answers other hosts with DEBUG off, and
the built-in SECRET_KEY stops it from starting there; a bare machine still runs it."""

import json
import os
import secrets
import string
import subprocess
import sys

import pytest
from django.conf import settings

from tests.conftest import database_url_of_test_db

ROOT = settings.BASE_DIR
# What the machine's environment may hold that would change the outcome.
OURS = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SECURE_COOKIES",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SYNC_CONSOLE_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DJANGO_SETTINGS_MODULE",
    "SYNC_CONSOLE_ENCRYPTION_KEY",
}


def random_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + string.punctuation.replace("'", "")
    return "".join(secrets.choice(alphabet) for _ in range(50))


def run(args: list[str], tmp_path, **variables) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update(SYNC_CONSOLE_DATA_DIR=str(tmp_path), **variables)
    # The suite's own server: without one named, the settings would start an embedded server
    # of their own in tmp_path and leave it running.
    env.setdefault("DATABASE_URL", database_url_of_test_db())
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def settings_under(tmp_path, **variables) -> dict:
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SAMESITE",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "SECURE_REFERRER_POLICY",
        "SESSION_COOKIE_HTTPONLY",
        "X_FRAME_OPTIONS",
    ]
    code = f"import json; from syncconsole import settings as s; print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"  # noqa: E501
    result = run(["-c", code], tmp_path, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


PRODUCTION = {
    "DEBUG": "0",
    "SECURE_COOKIES": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "ALLOWED_HOSTS": "console.example.com",
    # Links in alert e-mails: without it `check --deploy` warns (syncconsole.W001).
    "SYNC_CONSOLE_URL": "https://console.example.com",
    # Connection secrets: without an explicit key `check --deploy` fails (syncconsole.E004).
    "SYNC_CONSOLE_ENCRYPTION_KEY": "rBPlFzq0wlwd1o9ExTAMPLE-KEY-FOR-TESTS-ONLY0=",
}


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        SECRET_KEY=random_secret_key(),
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_passes_without_naming_the_secure_switches(tmp_path):
    """Secure cookies and HSTS are the defaults of a console served beyond this machine."""
    variables = {
        k: v for k, v in PRODUCTION.items() if k not in ("SECURE_COOKIES", "SECURE_HSTS_SECONDS")
    }
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        SECRET_KEY=random_secret_key(),
        **variables,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_secure_defaults_when_served_beyond_this_machine(tmp_path):
    served = settings_under(tmp_path, DEBUG="0", ALLOWED_HOSTS="console.example.com")
    assert served == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SESSION_COOKIE_HTTPONLY": True,
        "X_FRAME_OPTIONS": "DENY",
    }
    # Turned off explicitly, e.g. behind a proxy that speaks plain HTTP on a private network.
    off = settings_under(
        tmp_path,
        DEBUG="0",
        ALLOWED_HOSTS="console.example.com",
        SECURE_COOKIES="0",
        SECURE_HSTS_SECONDS="0",
    )
    assert not off["SESSION_COOKIE_SECURE"] and off["SECURE_HSTS_SECONDS"] == 0


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"DEBUG": "1", "ALLOWED_HOSTS": "console.example.com"},
        {"DEBUG": "0", "ALLOWED_HOSTS": "localhost,127.0.0.1"},
    ],
)
def test_local_runs_keep_plain_http_cookies(tmp_path, variables):
    """`make run` on http://127.0.0.1:8000, the tests, docker compose on localhost."""
    local = settings_under(tmp_path, **variables)
    assert not local["SESSION_COOKIE_SECURE"] and local["SECURE_HSTS_SECONDS"] == 0


def test_the_built_in_secret_key_stops_a_console_served_beyond_this_machine(tmp_path):
    result = run(["manage.py", "check"], tmp_path, DEBUG="0", ALLOWED_HOSTS="console.example.com")
    assert result.returncode != 0
    assert "syncconsole.E002" in result.stderr
    # Not a silent default: the server does not start either.
    result = run(
        ["manage.py", "runserver", "--noreload", "127.0.0.1:0"],
        tmp_path,
        DEBUG="0",
        ALLOWED_HOSTS="console.example.com",
    )
    assert result.returncode != 0 and "syncconsole.E002" in result.stderr


def test_a_bare_machine_passes_the_checks(tmp_path):
    """`make run` sets nothing: the checks it runs first must pass."""
    result = run(["manage.py", "check"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(
        ["manage.py", "check"],
        tmp_path,
        SECRET_KEY=random_secret_key(),
        DEBUG="0",
        ALLOWED_HOSTS="console.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
