import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import override_settings
from django.test.client import ClientHandler
from django.test.signals import setting_changed
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from errors import partitions
from sync import engine as sync_engine
from syncconsole import task_routes, web_server
from syncconsole.celery import app as celery_app
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.demo_apps import IN_PROCESS_URL, in_process, start_demo_apps
from tests.template_db import ensure_template

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
PASSWORD = "correct-horse-battery"
# The database DATABASE_URL names; the tests run on a test database of their own.
CONFIGURED_DATABASE = settings.DATABASES["default"]["NAME"]


def pytest_configure(config):
    """Each test database is a copy of one migrated template (tests/template_db.py), built
    by the first run after the migrations change; SYNC_TEST_TEMPLATE=0 migrates each test
    database from scratch instead.

    The Celery workers the tests start skip Django's system checks at their start (a second
    of CPU each, for some forty workers a run): tests/test_project.py and
    tests/security/test_production_settings.py run the checks themselves."""
    os.environ.setdefault("CELERY_SKIP_CHECKS", "1")
    if os.environ.get("SYNC_TEST_TEMPLATE", "1") == "0":
        return
    database = settings.DATABASES["default"]
    template = ensure_template(database, Path(settings.BASE_DIR))
    database.setdefault("TEST", {})["TEMPLATE"] = template


class QuickPasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 at one iteration: the stored hash names its own iteration count, so the web
    servers and workers that the tests start verify it with Django's stock hasher."""

    iterations = 1


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashes():
    """Each user the tests make costs no 0.3 s of key stretching."""
    with override_settings(PASSWORD_HASHERS=["tests.conftest.QuickPasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def one_middleware_chain_per_process():
    """Every test client of the process serves through one middleware chain, as a web
    server's process does. Django's test client loads the middleware anew for each client
    (WhiteNoise alone reads the details of every static file then, some 13 ms), thousands of
    times a run. A setting a test changes (override_settings, the settings fixture) loads it
    again, as middleware reads its settings when it is made."""
    load = ClientHandler.load_middleware
    loaded: dict[bool, tuple] = {}

    def load_once(self, is_async=False):
        if is_async not in loaded:
            load(self, is_async)
            loaded[is_async] = tuple(getattr(self, name) for name in CHAIN)
        for name, value in zip(CHAIN, loaded[is_async], strict=True):
            setattr(self, name, value)

    def forget(**kwargs):
        loaded.clear()

    setting_changed.connect(forget, weak=False)
    ClientHandler.load_middleware = load_once
    try:
        yield
    finally:
        ClientHandler.load_middleware = load
        setting_changed.disconnect(forget)


# What BaseHandler.load_middleware makes: the same for every handler of the same settings.
CHAIN = (
    "_view_middleware",
    "_template_response_middleware",
    "_exception_middleware",
    "_middleware_chain",
)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database commits without waiting for its write-ahead log to reach the disk
    (synchronous_commit off, for every session on it: the test process's, and the workers',
    beat's and web servers' that the tests start). A crash of the shared server could lose
    the last commits of a test run, nothing a test relies on; each commit is a few
    milliseconds quicker, and the suite commits hundreds of thousands of times."""
    from django.db import connection

    if connection.settings_dict["NAME"] == CONFIGURED_DATABASE:
        # No test of the session needs a database, so none was set up: the connection names
        # the configured one, maybe someone's own, which is none of the tests' business.
        yield
        return
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
            cursor.execute("SET synchronous_commit = off")
        keep_the_days_a_deployment_keeps()
    yield


def keep_the_days_a_deployment_keeps() -> None:
    """The entries' day partitions of a deployment whose scheduled clean-up and partition
    task have run: the retention's days and the days ahead. The first migration makes a
    month of them, and every partition adds to the planning of each query of the entries
    (a page planned in 4 ms over forty empty ones, in 0.7 ms over a few). A test that writes
    an older day gets its partition as the console makes it, on the write."""
    today = partitions.day_of(timezone.now())
    first = today - timedelta(days=settings.SYNC_ERROR_RETENTION_DAYS + 1)
    for day in partitions.partition_days():
        if day < first:
            partitions.drop_day(day)
    partitions.drop_empty_days_after(partitions.window(today)[1])


# What the flush's post_migrate handlers would write back at once, the same rows every time
# (each app's content types and model permissions): kept, so that the handlers find them
# there and write nothing. No test makes or changes either.
KEPT_BY_FLUSH = {"django_content_type", "auth_permission"}


@pytest.fixture(scope="session", autouse=True)
def quick_flush(django_db_setup, django_db_blocker):
    """A test on committed data ends by emptying every table. Django empties them with one
    TRUNCATE of all the tables, which costs about a second here (a new file for each table and
    each of the entries' day partitions); DELETE costs a few milliseconds on the few rows a
    test leaves. Triggers and foreign-key checks are held off meanwhile
    (session_replication_role, for the transaction only), so that the figures' triggers do
    not write rows back while their tables are emptied; the content types and permissions
    stay (KEPT_BY_FLUSH), and the statements go in one round trip: 69 ms a flush instead of
    124. Only a superuser may hold the triggers off: for any other, Django's TRUNCATE stays."""
    from django.db import connection
    from django.db.backends.postgresql.operations import DatabaseOperations

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        superuser = bool(cursor.fetchone()[0])
    if not superuser:
        yield
        return
    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        quoted = [self.quote_name(table) for table in tables if table not in KEPT_BY_FLUSH]
        # One round trip: the statements go to the server as one string.
        return [
            ";\n".join(
                ["SET LOCAL session_replication_role = replica"]
                + [f"DELETE FROM {table}" for table in quoted]  # noqa: S608 - own tables, quoted
            )
        ]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = truncate


def user_in_role(username: str, role: str, **extra):
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", PASSWORD, **extra
    )
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture(autouse=True)
def no_access_tokens_kept():
    """Each test signs in afresh: the access tokens a process keeps are not shared between
    tests."""
    from sync.connectors.signin import TOKENS

    TOKENS.clear()
    yield
    TOKENS.clear()


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

    node = ""  # a worker's name, for the remote control

    def __init__(self, kind: str, queue: str, args: list[str], name: str = ""):
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"celery-{name or kind}-{queue}.log"
        self.log = self.log_path.open("w")
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "CELERY_QUEUE": queue,
            "DB_CONN_MAX_AGE": "0",
            # Its heartbeat once, at its start (the end of the test that started it empties
            # the table): the tests of /readyz decide themselves which heartbeats there are,
            # and a session's worker beating beside them every 15 s would change their answer.
            "PROCESS_HEARTBEAT_SECONDS": "3600",
            "READYZ_WORKER_HEARTBEAT_MAX_AGE": "7200",
            "READYZ_BEAT_MAX_AGE": "7200",
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
    with private_queues(queue):
        yield queue


@contextmanager
def private_queues(base: str):
    """The test process sends each task to its kind's queue named after `base` (as a console
    whose CELERY_QUEUE is `base`), then to the settings' queues again."""
    conf = celery_app.conf
    previous = conf.task_default_queue, conf.task_routes
    task_routes.configure(conf, base)
    try:
        yield
    finally:
        conf.update(task_default_queue=previous[0], task_routes=previous[1])


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, celery_queue):
    worker = CeleryProcess(
        "worker",
        celery_queue,
        [
            "--pool=solo",
            "-Q",
            ",".join(task_routes.queue_names(celery_queue)),
            f"--hostname={celery_queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
    )
    worker.node = f"{celery_queue}@{socket.gethostname()}"
    try:
        worker.wait_for_log("ready.")
        yield worker
    finally:
        worker.stop()


def worker_is_idle(node: str) -> bool:
    """Whether the worker runs no task now (tasks waiting for their countdown do not count)."""
    # A solo-pool worker answers only between tasks: no answer is a busy worker.
    # The one reply asked for ends the wait (without a limit, every ask waited its timeout).
    inspect = celery_app.control.inspect(destination=[node], timeout=0.25, limit=1)
    replies = inspect.active() or {}
    return not any(replies.values()) and node in replies


@pytest.fixture(autouse=True)
def worker_done_before_the_database_is_emptied(request):
    """A test that used the worker ends when the worker is idle: a job still writing while
    the test database is emptied (TRUNCATE) would deadlock with it."""
    if "celery_worker" not in request.fixturenames:
        yield
        return
    # Asked for first, so that the database is emptied after this fixture's end.
    request.getfixturevalue("_django_db_helper")
    worker = request.getfixturevalue("celery_worker")
    yield
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not worker_is_idle(worker.node):
        time.sleep(0.2)


@pytest.fixture
def start_celery_beat(django_db_setup, celery_queue):
    """Start a real `celery beat` on the console's scheduler (the database scheduler that
    writes beat's heartbeat); stopped after the test."""
    started = []

    def start() -> CeleryProcess:
        beat = CeleryProcess(
            "beat",
            celery_queue,
            [
                "--pidfile=",
                "--max-interval=1",
                "--loglevel=INFO",
                f"--scheduler={settings.CELERY_BEAT_SCHEDULER}",
            ],
        )
        started.append(beat)
        beat.wait_for_log("beat: Starting")
        return beat

    yield start
    for beat in started:
        beat.stop()


@pytest.fixture
def midday():
    """The clock pinned to noon today (ticking on), for a test whose arithmetic in days and
    hours must not cross midnight whatever the time it runs at."""
    noon = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    with time_machine.travel(noon, tick=True):
        yield noon


def wait_until(predicate, timeout: float = 30, interval: float = 0.2, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(message or "condition not met in time")


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, on the server that `make run` uses too
    (syncconsole.web_server): without Nagle's delay, which cost some 40 ms an answer."""
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    server = LiveServer(addr, start=False)
    server.thread.server_class = web_server.ThreadedWSGIServer
    server.start()
    yield server
    server.stop()


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# What makes a test reach the demo apps over real HTTP: markers, and the fixtures of other
# processes and threads, which can only see what is committed.
OVER_HTTP_MARKERS = {"over_http", "faults", "worker", "browser"}
OTHER_PROCESSES = {"celery_worker", "start_celery_beat", "processes", "live_server", "page"}


def reaches_demo_apps_over_http(item: pytest.Item) -> bool:
    """A test whose demo apps must be served over real HTTP: one that is about HTTP itself
    (marked `over_http`), that starts other processes (a Celery worker or beat, a browser,
    the fault tests' servers), or that commits what it writes."""
    marked = {mark.name for mark in item.iter_markers()}
    db = item.get_closest_marker("django_db")
    committing = db is not None and db.kwargs.get("transaction", False)
    others = set(item.fixturenames) & OTHER_PROCESSES
    return bool(marked & OVER_HTTP_MARKERS or others) or committing


@pytest.hookimpl(tryfirst=True)  # before pytest-django orders transactional tests last
def pytest_collection_modifyitems(items):
    for item in items:
        if "demo_apps" in item.fixturenames and reaches_demo_apps_over_http(item):
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture
def demo_apps(request):
    """The demo ERP and CRM with a Connection to them. Reached in process, inside the test's
    rolled-back transaction, unless the test needs them over real HTTP (a live server)."""
    if reaches_demo_apps_over_http(request.node):
        yield start_demo_apps(request.getfixturevalue("live_server").url)
        return
    request.getfixturevalue("db")
    with in_process() as mounts:
        yield start_demo_apps(IN_PROCESS_URL, mounts)


@pytest.fixture
def uncoupled_not_retried(monkeypatch):
    """Scheduled runs leave alone the records whose create failed (the demo's customer in
    SEK): for tests of what happens to coupled records, whose counts it would add to.
    tests/sync/test_exchange_rates.py and the exchange-rate journeys test that they are
    tried again."""
    monkeypatch.setattr(sync_engine, "UNCOUPLED_RETRIES_PER_RUN", 0)
