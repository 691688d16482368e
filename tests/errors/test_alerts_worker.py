"""Problem alerts sent by a real Celery worker through a real SMTP server (aiosmtpd)."""

import uuid
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as email_policy

import pytest
from aiosmtpd.controller import Controller

from errors import tasks
from errors.models import AlertSubscription, Category, ProblemAlert
from syncconsole import task_routes
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import CeleryProcess, private_queues, user_in_role, wait_until
from tests.factories import make_error

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=email_policy)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(unused_port):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=unused_port)
    controller.start()
    yield inbox, unused_port
    controller.stop()


@pytest.fixture
def mailing_worker(django_db_setup, smtp_server, monkeypatch):
    """A worker of its own whose mail goes to the test's SMTP server."""
    _, port = smtp_server
    for name, value in {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "DEFAULT_FROM_EMAIL": "alerts@console.example.com",
        "SYNC_CONSOLE_URL": "https://console.example.com",
    }.items():
        monkeypatch.setenv(name, value)
    queue = f"syncconsole-alerts-{uuid.uuid4().hex[:10]}"
    queues = ",".join(task_routes.queue_names(queue))
    worker = CeleryProcess(
        "worker",
        queue,
        ["--pool=solo", "-Q", queues, "--without-gossip", "--without-mingle", "--loglevel=INFO"],
    )
    try:
        with private_queues(queue):
            worker.wait_for_log("ready.")
            yield worker
    finally:
        worker.stop()


def sending_runs(worker: CeleryProcess) -> int:
    log = worker.log_path.read_text()
    return sum(
        1
        for line in log.splitlines()
        if "errors.send_problem_alerts[" in line and "succeeded" in line
    )


def test_a_setup_error_is_mailed_by_the_worker_once_per_hour(mailing_worker, smtp_server):
    inbox, _ = smtp_server
    AlertSubscription.objects.create(user=user_in_role("ops", SYNC_ADMINISTRATORS))
    log = mailing_worker.log_path.read_text
    setup = {
        "category": Category.AUTHENTICATION,
        "message": "The password of the integration user must be changed.",
    }

    error = make_error(**setup)  # committed at once: the task is queued
    wait_until(lambda: len(inbox.messages) == 1, timeout=60, message=log())
    recipients, message = inbox.messages[0]
    assert recipients == ["ops@example.com"]
    assert message["From"] == "alerts@console.example.com"
    # A long encoded subject is folded onto the next line: the parser keeps the fold's space.
    assert message["Subject"].strip() == (
        "Sync Console: New problem · Setup error: "
        "The password of the integration user must be changed."
    )
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = f"https://console.example.com/errors/?group={error.group_id}"
    assert link in text and link in html

    make_error(**setup)  # within the hour: the worker runs and sends nothing
    wait_until(lambda: sending_runs(mailing_worker) == 2, timeout=60, message=log())
    assert len(inbox.messages) == 1
    alert = ProblemAlert.objects.get()
    assert alert.pending_since is not None

    alert.notified_at -= timedelta(hours=1)
    alert.save(update_fields=["notified_at"])
    tasks.send_problem_alerts.delay()  # as the schedule does every five minutes
    wait_until(lambda: len(inbox.messages) == 2, timeout=60, message=log())
    assert inbox.messages[1][1]["Subject"].strip().startswith("Sync Console: Setup error: ")
