import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from syncconsole.celery import app as celery_app
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
PASSWORD = "correct-horse-battery"


def user_in_role(username: str, role: str, **extra):
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", PASSWORD, **extra
    )
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def staff_user(db):
    """A Sync administrator (staff, so the Django admin is open to them too)."""
    return user_in_role("triager", SYNC_ADMINISTRATORS, is_staff=True)


@pytest.fixture
def sync_user(db):
    """A Sync user: coupled-record errors only."""
    return user_in_role("fixer", SYNC_USERS)


@pytest.fixture
def sync_user_client(client, sync_user):
    client.force_login(sync_user)
    return client


@pytest.fixture
def plain_user(db):
    return get_user_model().objects.create_user("sales", "sales@example.com", PASSWORD)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def database_url_of_test_db() -> str:
    """The URL of the test database, for processes started by the tests."""
    from django.db import connection

    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"


class CeleryProcess:
    """A real `celery worker` or `celery beat` process on the test database."""

    def __init__(self, kind: str, queue: str, args: list[str]):
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"celery-{kind}-{queue}.log"
        self.log = self.log_path.open("w")
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "CELERY_QUEUE": queue,
            "DB_CONN_MAX_AGE": "0",
        }
        command = [sys.executable, "-m", "celery", "-A", "syncconsole", kind, *args]
        self.process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"celery never logged {text!r}:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def celery_queue():
    """A queue of this test session's own, so that other runs on the same broker never
    take its tasks; the test process sends to it too."""
    queue = f"syncconsole-test-{uuid.uuid4().hex[:10]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    yield queue
    celery_app.conf.task_default_queue = previous


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, celery_queue):
    worker = CeleryProcess(
        "worker",
        celery_queue,
        ["--pool=solo", "-Q", celery_queue, "--without-gossip", "--without-mingle",
         "--loglevel=INFO"],
    )  # fmt: skip
    try:
        worker.wait_for_log("ready.")
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def start_celery_beat(django_db_setup, celery_queue):
    """Start a real `celery beat` on the database scheduler; stopped after the test."""
    started = []

    def start() -> CeleryProcess:
        beat = CeleryProcess(
            "beat",
            celery_queue,
            ["--pidfile=", "--max-interval=1", "--loglevel=INFO",
             "--scheduler=django_celery_beat.schedulers:DatabaseScheduler"],
        )  # fmt: skip
        started.append(beat)
        beat.wait_for_log("beat: Starting")
        return beat

    yield start
    for beat in started:
        beat.stop()


def wait_until(predicate, timeout: float = 30, interval: float = 0.2, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(message or "condition not met in time")


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def demo_apps(live_server, transactional_db):
    """The demo ERP and CRM served by the live server, with a Connection to them."""
    from tests.demo_apps import start_demo_apps

    return start_demo_apps(live_server.url)
