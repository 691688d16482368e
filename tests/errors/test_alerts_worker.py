"""Problem alerts sent by real Celery workers through a real SMTP server (aiosmtpd), also when
a worker dies in the middle of sending."""

import asyncio
import signal
import threading
import uuid
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as email_policy

import pytest
from aiosmtpd.controller import Controller

from errors import tasks
from errors.models import AlertDelivery, AlertSubscription, Category
from syncconsole import task_routes
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import CeleryProcess, private_queues, user_in_role, wait_until
from tests.factories import make_error

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class Inbox:
    def __init__(self):
        self.messages = []
        # While `holding` is set, a message is held unanswered until `released` is set, and
        # then refused: its sender never hears that it was accepted.
        self.holding, self.held, self.released = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )

    async def handle_DATA(self, server, session, envelope):
        if self.holding.is_set():
            self.held.set()
            while not self.released.is_set():
                await asyncio.sleep(0.05)
            return "451 Requested action aborted: try again later"
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
def mailing_worker(mailing_workers):
    """A worker of its own whose mail goes to the test's SMTP server."""
    return mailing_workers()


@pytest.fixture
def mailing_workers(django_db_setup, smtp_server, monkeypatch):
    """Start workers of their own, on one queue, whose mail goes to the test's SMTP server."""
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
    workers: list[CeleryProcess] = []

    def start() -> CeleryProcess:
        # Each its own log (named after the label); all of them consume the same queues.
        label = queue if not workers else f"{queue}-{len(workers)}"
        worker = CeleryProcess(
            "worker",
            label,
            [
                "--pool=solo",
                "-Q",
                queues,
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
        )
        workers.append(worker)
        worker.wait_for_log("ready.")
        return worker

    try:
        with private_queues(queue):
            yield start
    finally:
        for worker in workers:
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
    assert AlertDelivery.objects.filter(state="pending").count() == 1  # waits for the hour

    sent = AlertDelivery.objects.get(state="sent")
    sent.sent_at -= timedelta(hours=1)
    sent.save(update_fields=["sent_at"])
    tasks.send_problem_alerts.delay()  # as the schedule does every minute
    wait_until(lambda: len(inbox.messages) == 2, timeout=60, message=log())
    assert inbox.messages[1][1]["Subject"].strip().startswith("Sync Console: Setup error: ")


@pytest.mark.faults  # it kills a worker of its own
def test_an_alert_claimed_by_a_worker_killed_while_sending_is_sent_once_by_another(
    mailing_workers, smtp_server, monkeypatch
):
    inbox, _ = smtp_server
    # The workers: a short lease, which the test waits out, and a mail server given time.
    for name, value in {"ALERT_LEASE_SECONDS": "1", "EMAIL_TIMEOUT": "300"}.items():
        monkeypatch.setenv(name, value)
    AlertSubscription.objects.create(user=user_in_role("ops", SYNC_ADMINISTRATORS))
    setup = {"category": Category.AUTHENTICATION, "message": "The client secret has expired."}
    first = mailing_workers()
    inbox.holding.set()

    make_error(**setup)  # committed at once: the first worker claims the row and sends
    assert inbox.held.wait(60), first.log_path.read_text()
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("pending", 1)
    assert delivery.claim is not None
    first.process.send_signal(signal.SIGKILL)  # between its claim and the mail server's answer
    first.process.wait(30)
    inbox.holding.clear()
    inbox.released.set()

    second = mailing_workers()

    def delivered() -> bool:
        if not inbox.messages:
            tasks.send_problem_alerts.delay()  # as the schedule does every minute
        return len(inbox.messages) == 1

    wait_until(delivered, timeout=60, interval=0.5, message=second.log_path.read_text())
    ((recipients, message),) = inbox.messages
    assert recipients == ["ops@example.com"]
    assert message["Subject"].strip().endswith("The client secret has expired.")
    wait_until(lambda: AlertDelivery.objects.get().state == "sent", timeout=30)
    delivery = AlertDelivery.objects.get()
    assert delivery.attempts == 2 and delivery.claim is None

    # Within the hour: the same person does not get it again, however often the worker runs.
    runs = sending_runs(second)
    make_error(**setup)
    tasks.send_problem_alerts.delay()
    wait_until(lambda: sending_runs(second) >= runs + 2, timeout=60)
    assert len(inbox.messages) == 1
    assert AlertDelivery.objects.filter(state="pending").count() == 1
