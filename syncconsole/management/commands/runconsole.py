"""`make run`: migrate, make sure an administrator and demo data exist, then run the web
server, a Celery worker and Celery beat together until Ctrl-C."""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.checks import Tags
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS

from sync.models import Connection
from syncconsole.metrics import MULTIPROC_ENV, clean_multiproc_dir
from syncconsole.permissions import SYNC_USERS
from syncconsole.readiness import readiness

# How long after the start the console may take to turn /readyz green before it says what
# is still failing, and how often it looks meanwhile (seconds).
READY_WITHIN = 90
READY_LOOK_EVERY = 2


class Command(BaseCommand):
    help = "Run the console with its worker and beat, for local use and demos."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("RUN_ADDR", "127.0.0.1:8000"))
        parser.add_argument("--no-demo", action="store_true", help="Do not load demo data.")

    def handle(self, *args, addr: str, no_demo: bool, **options):
        self.prepare()
        load_demo = not no_demo and not Connection.objects.exists()
        self.run_processes(addr, load_demo)

    def prepare(self) -> None:
        """The database migrated and the two accounts there, with their passwords shown."""
        # The checks of the database (such as its time zone, syncconsole.E005) first, as
        # `manage.py migrate` runs them; a call_command skips them.
        self.check(tags=[Tags.database], databases=[DEFAULT_DB_ALIAS])
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database is migrated.")
        # Only the embedded database and the file broker make the folder; an external
        # DATABASE_URL and CELERY_BROKER_URL leave it to the account files.
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        self.ensure_administrator()

    def ensure_administrator(self) -> None:
        User = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "admin@example.com")
        credentials = settings.DATA_DIR / "admin-credentials.txt"
        if not User.objects.filter(username=username).exists():
            if not password:
                password = secrets.token_urlsafe(12)
                credentials.write_text(f"{username}\n{password}\n")
                credentials.chmod(0o600)
            User.objects.create_superuser(username=username, email=email, password=password)
            self.stdout.write(self.style.SUCCESS(f"Created the administrator account {username}."))
        if password is None and credentials.exists():
            stored_user, password = credentials.read_text().split("\n")[:2]
            username = stored_user or username
        shown = password if password else "(the password you chose)"
        self.stdout.write(self.style.SUCCESS(f"Sign in as {username} / {shown}"))
        self.ensure_sync_user()

    def ensure_sync_user(self) -> None:
        """A second account in the Sync users role, to see the console as an ordinary user."""
        User = get_user_model()
        credentials = settings.DATA_DIR / "user-credentials.txt"
        if not User.objects.filter(username="user").exists():
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(username="user", password=password)
            user.groups.add(Group.objects.get(name=SYNC_USERS))
            credentials.write_text(f"user\n{password}\n")
            credentials.chmod(0o600)
        if credentials.exists():
            username, password = credentials.read_text().split("\n")[:2]
            self.stdout.write(f"Sign in as {username} / {password} to work as a Sync user")

    def load_demo(self, addr: str) -> None:
        """Seed the demo once the web server answers: its jobs talk to the demo apps over HTTP."""
        base_url = f"http://{addr}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base_url}/accounts/login/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        self.stdout.write(
            "Loading demo data (once): running real sync jobs between the demo apps..."
        )
        call_command("seed_demo", base_url=base_url)

    def report_readiness(self, *, last_look: bool) -> bool:
        """Say once that /readyz is green (the database, the broker, the queue, a worker's and
        beat's heartbeats), or at the last look what still fails; whether it was said."""
        ready, answer = readiness()
        if ready:
            self.stdout.write(self.style.SUCCESS("Ready: every check of /readyz passes."))
            return True
        if last_look:
            failing = [
                f"{name}: {check['reason']}"
                for name, check in answer["checks"].items()
                if check["state"] != "ok"
            ]
            self.stderr.write("Not ready (/readyz): " + "; ".join(failing))
            return True
        return False

    def prepare_metrics_dir(self) -> Path:
        """The web server and the worker write their figures to one directory, which /metrics
        adds up (docs/operations/metrics.md): DATA_DIR/metrics unless PROMETHEUS_MULTIPROC_DIR
        names another, emptied first, as prometheus_client asks. The processes started after
        inherit it."""
        figures = Path(os.environ.setdefault(MULTIPROC_ENV, str(settings.DATA_DIR / "metrics")))
        clean_multiproc_dir(figures)
        return figures

    def run_processes(self, addr: str, load_demo: bool) -> None:
        commands = process_commands(addr)
        self.prepare_metrics_dir()
        # In development alerts are printed by the worker instead of sent, unless configured.
        os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
        # Readable lines for a person at a terminal, unless LOG_FORMAT says otherwise.
        os.environ.setdefault("LOG_FORMAT", "text")
        processes = {
            name: subprocess.Popen(command, cwd=settings.BASE_DIR, env=process_env(name))
            for name, command in commands.items()
        }
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            if load_demo:
                self.load_demo(addr)
            self.stdout.write(
                self.style.SUCCESS(f"Sync Console runs on http://{addr}/ (Ctrl-C stops)")
            )
            ready_by = time.monotonic() + READY_WITHIN
            next_look, told = time.monotonic(), False
            while not stopping:
                ended = [name for name, proc in processes.items() if proc.poll() is not None]
                if ended:
                    self.stderr.write(f"{', '.join(ended)} stopped; stopping the rest.")
                    break
                if not told and time.monotonic() >= next_look:
                    told = self.report_readiness(last_look=time.monotonic() >= ready_by)
                    next_look = time.monotonic() + READY_LOOK_EVERY
                time.sleep(0.5)
        finally:
            for proc in processes.values():
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + 15
            for proc in processes.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.stdout.write("Stopped.")


# Django's development server answers each request in a thread of its own, and a thread's
# persistent connection (DB_CONN_MAX_AGE) stays open after the thread ends, until a garbage
# collection: under the soak run (bench/soak.py) the web server's idle connections piled up
# to 50 before one. Its connections close at the end of each request instead.
WEB_SERVER_ENV = {"DB_CONN_MAX_AGE": "0"}


def process_env(name: str) -> dict[str, str]:
    """The environment of the process `name` of process_commands."""
    return {**os.environ, **(WEB_SERVER_ENV if name == "web" else {})}


def process_commands(addr: str) -> dict[str, list[str]]:
    """The web server, the worker and beat that `make run` starts."""
    python = sys.executable
    manage = str(settings.BASE_DIR / "manage.py")
    return {
        "web": [python, manage, "runserver", addr, "--noreload"],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "syncconsole",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            # One light worker takes every kind of work (sync, triage, notify); a
            # deployment runs a worker per kind (docs/operations/deployment.md).
            "-Q",
            ",".join(settings.TASK_QUEUES),
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "syncconsole",
            "beat",
            "--loglevel",
            "INFO",
            "--pidfile=",
            "--scheduler",
            settings.CELERY_BEAT_SCHEDULER,
        ],
    }
