"""Problem alerts: who gets an e-mail about which problem, at most once per problem per hour,
what the message holds, and the outbox that keeps them until they are sent."""

import threading
from datetime import timedelta
from email import message_from_bytes

import pytest
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.utils import timezone

from errors import alerts
from errors.models import AlertDelivery, AlertSubscription, Category, ErrorGroup, Status
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.conftest import user_in_role
from tests.factories import make_connection, make_error, make_mapping

pytestmark = pytest.mark.django_db

SETUP_MESSAGE = "The integration user holds the System Administrator role."


@pytest.fixture(autouse=True)
def console_url(settings):
    settings.SYNC_CONSOLE_URL = "https://console.example.com"


@pytest.fixture
def queued(monkeypatch):
    """The sending task as it is queued after the entries commit (run here by the tests)."""
    calls = []
    from syncconsole.celery import app

    def send_task(name, args, countdown=None):
        assert name == "errors.send_problem_alerts"
        calls.append(1)

    monkeypatch.setattr(app, "send_task", send_task)
    return calls


@pytest.fixture
def record(django_capture_on_commit_callbacks, queued):
    """Record an entry the way the sync does, its transaction committed."""

    def record(**fields):
        with django_capture_on_commit_callbacks(execute=True):
            return make_error(**fields)

    return record


def subscribed(username: str, role: str = SYNC_ADMINISTRATORS, **choices) -> AlertSubscription:
    return AlertSubscription.objects.create(user=user_in_role(username, role), **choices)


def setup_error(**fields):
    return {
        "category": Category.INTEGRATION_USER,
        "message": SETUP_MESSAGE,
        "detail": "response body with token=abc123",
        **fields,
    }


def an_hour_passes() -> None:
    for delivery in AlertDelivery.objects.exclude(sent_at=None):
        delivery.sent_at -= timedelta(hours=1, seconds=1)
        delivery.save(update_fields=["sent_at"])


def test_a_new_problem_is_sent_to_its_subscriber(record, queued, mailoutbox):
    subscribed("ops")
    error = record(category=Category.CONFLICT, message="Both sides changed the record")

    assert queued == [1]
    assert alerts.send_pending_alerts() == 1
    (message,) = mailoutbox
    assert message.to == ["ops@example.com"]
    assert message.subject == "Sync Console: New problem: Both sides changed the record"
    assert f"https://console.example.com/errors/?group={error.group_id}" in message.body


def test_a_setup_error_is_sent_once_per_hour_however_often_it_happens(record, mailoutbox):
    subscribed("ops", new_problems=False, regressions=False)
    record(**setup_error())
    assert alerts.send_pending_alerts() == 1

    record(**setup_error())
    record(**setup_error())
    assert alerts.send_pending_alerts() == 0
    assert len(mailoutbox) == 1
    # What came within the hour waits in one row of the next window.
    assert list(AlertDelivery.objects.order_by("id").values_list("state", flat=True)) == [
        "sent",
        "pending",
    ]

    an_hour_passes()
    assert alerts.send_pending_alerts() == 1
    assert len(mailoutbox) == 2
    assert "Setup error" in mailoutbox[1].subject
    assert set(AlertDelivery.objects.values_list("state", flat=True)) == {"sent"}


def test_another_entry_of_an_open_problem_is_no_news(record, mailoutbox):
    subscribed("ops")
    record(category=Category.CONFLICT, message="Both sides changed record 1")
    alerts.send_pending_alerts()
    an_hour_passes()

    record(category=Category.CONFLICT, message="Both sides changed record 2")
    assert alerts.send_pending_alerts() == 0
    assert len(mailoutbox) == 1


def test_a_regression_within_the_hour_comes_after_the_hour(record, mailoutbox):
    subscribed("ops")
    first = record(category=Category.VALIDATION, message="Name is too long")
    alerts.send_pending_alerts()
    ErrorGroup.objects.filter(pk=first.group_id).update(status=Status.RESOLVED)

    record(category=Category.VALIDATION, message="Name is too long")
    assert alerts.send_pending_alerts() == 0
    an_hour_passes()
    assert alerts.send_pending_alerts() == 1
    assert mailoutbox[-1].subject == "Sync Console: Regression: Name is too long"


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_send_one_message(queued, mailoutbox):
    subscribed("ops")
    make_error(**setup_error())  # no surrounding transaction: written as it commits
    assert AlertDelivery.objects.get().state == "pending"
    first_claimed, first_may_commit = threading.Event(), threading.Event()
    sent = {}

    def first():
        try:
            with transaction.atomic():
                sent["first"] = alerts.send_pending_alerts()
                first_claimed.set()
                first_may_commit.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_claimed.wait(30)
        # The first one's rows are locked: the second skips them rather than wait.
        sent["second"] = alerts.send_pending_alerts()
    finally:
        first_may_commit.set()
        thread.join(30)

    assert sent == {"first": 1, "second": 0}
    assert len(mailoutbox) == 1


def test_only_subscribers_get_it(record, mailoutbox):
    subscribed("ops")
    user_in_role("other-admin", SYNC_ADMINISTRATORS)
    record(category=Category.CONFLICT)
    alerts.send_pending_alerts()
    assert [message.to for message in mailoutbox] == [["ops@example.com"]]


def test_a_sync_user_never_gets_setup_errors(record, mailoutbox):
    subscribed("ops")
    # Made without the page or the admin, which both refuse it.
    refused = subscribed("fixer", SYNC_USERS)
    with pytest.raises(ValidationError, match="Only Sync administrators"):
        refused.full_clean()

    record(**setup_error())
    record(category=Category.CONFLICT)
    alerts.send_pending_alerts()
    assert [message.to for message in mailoutbox] == [["ops@example.com"]]
    assert all("fixer@example.com" not in message.to for message in mailoutbox)


def test_subscribers_without_an_address_or_no_longer_active_get_nothing(record, mailoutbox):
    no_address = subscribed("quiet").user
    no_address.email = ""
    no_address.save()
    gone = subscribed("gone").user
    gone.is_active = False
    gone.save()
    record(category=Category.CONFLICT)
    assert alerts.send_pending_alerts() == 0
    assert mailoutbox == []


def test_events_the_subscriber_did_not_choose_are_not_sent(record, mailoutbox):
    subscribed("setup-only", new_problems=False, regressions=False)
    subscribed("regressions-only", new_problems=False, setup_errors=False)
    conflict = record(category=Category.CONFLICT, message="Both sides changed")
    assert alerts.send_pending_alerts() == 0
    assert not AlertDelivery.objects.exists()  # nobody wanted it: nothing kept

    record(**setup_error())
    ErrorGroup.objects.filter(pk=conflict.group_id).update(status=Status.RESOLVED)
    record(category=Category.CONFLICT, message="Both sides changed")
    assert alerts.send_pending_alerts() == 2
    received = {message.to[0]: message.subject for message in mailoutbox}
    assert received == {
        "setup-only@example.com": f"Sync Console: Setup error: {SETUP_MESSAGE}",
        "regressions-only@example.com": "Sync Console: Regression: Both sides changed",
    }


def test_a_subscription_for_one_mapping_or_connection_gets_only_its_problems(record, mailoutbox):
    mapping = make_mapping()
    elsewhere = make_mapping()
    subscribed("mapping-only", mapping=mapping)
    subscribed("connection-only", connection=mapping.connection)
    subscribed("other-connection", connection=make_connection())
    record(category=Category.CONFLICT, mapping=elsewhere, message="Changed on both sides")
    record(category=Category.CONFLICT, mapping=mapping, message="Changed on both sides")
    record(category=Category.CONFLICT, message="No mapping")
    alerts.send_pending_alerts()
    received = {message.to[0]: message.body for message in mailoutbox}
    assert set(received) == {"mapping-only@example.com", "connection-only@example.com"}
    for body in received.values():
        assert f"table mapping {mapping.name}" in body
        assert elsewhere.name not in body and "No mapping" not in body


def test_problems_due_together_come_in_one_message_per_subscriber(record, mailoutbox):
    subscribed("ops")
    record(category=Category.CONFLICT, message="Both sides changed")
    record(**setup_error())
    assert alerts.send_pending_alerts() == 1
    (message,) = mailoutbox
    assert message.subject == "Sync Console: 2 problems (2 new problems, 1 setup error)"
    assert "Both sides changed" in message.body and SETUP_MESSAGE in message.body


def test_a_long_list_says_how_many_more_and_links_to_them(record, mailoutbox, monkeypatch):
    monkeypatch.setattr(alerts, "PROBLEMS_PER_MESSAGE", 1)
    subscribed("ops")
    record(category=Category.CONFLICT, message="Older problem", age=timedelta(minutes=5))
    record(category=Category.CONFLICT, message="Newest problem", age=timedelta(minutes=1))
    alerts.send_pending_alerts()
    (message,) = mailoutbox
    assert message.subject == "Sync Console: 2 problems (2 new problems)"
    for text in (message.body, message.alternatives[0][0]):
        assert "Newest problem" in text and "Older problem" not in text
        assert "And 1 more problem" in text and "https://console.example.com/errors/groups/" in text


@pytest.mark.parametrize("status", [Status.IGNORED, Status.SNOOZED])
def test_ignored_and_snoozed_problems_are_not_sent(record, mailoutbox, status):
    subscribed("ops")
    set_aside = record(**setup_error())
    alerts.send_pending_alerts()
    an_hour_passes()
    ErrorGroup.objects.filter(pk=set_aside.group_id).update(
        status=status, snoozed_until=timezone.now() + timedelta(days=1)
    )
    assert record(**setup_error()).status == status
    assert alerts.send_pending_alerts() == 0
    assert len(mailoutbox) == 1


def test_the_message_tells_the_problem_its_cause_and_fix(record, mailoutbox):
    subscribed("ops")
    mapping = make_mapping(name="CUSTOMER")
    error = record(category=Category.VALIDATION, mapping=mapping, message="Name is too long")
    record(category=Category.VALIDATION, mapping=mapping, message="Name is too long")
    alerts.send_pending_alerts()
    (message,) = mailoutbox
    group = ErrorGroup.objects.get(pk=error.group_id)
    for text in (message.body, message.alternatives[0][0]):
        assert "New problem" in text and "Name is too long" in text
        assert "Validation" in text
        assert f"table mapping CUSTOMER ({mapping.connection.name})" in text
        assert "2 entries" in text
        assert f"first seen {timezone.localtime(group.first_seen):%Y-%m-%d %H:%M}" in text
        assert "refused a value it was sent" in text  # the cause
        assert "Correct the value" in text  # the fix
        assert f"https://console.example.com/errors/?group={group.pk}" in text
        assert "https://console.example.com/errors/alerts/" in text


def test_a_setup_error_is_told_by_its_title_and_remedy_only(record, mailoutbox):
    subscribed("ops")
    mapping = make_mapping(name="CUSTOMER")
    record(**setup_error(mapping=mapping))
    alerts.send_pending_alerts()
    (message,) = mailoutbox
    for text in (message.body, message.alternatives[0][0]):
        assert SETUP_MESSAGE in text
        assert "An administrator account is set as the integration user" in text
        assert "token=abc123" not in text and "response body" not in text
        assert "CUSTOMER" not in text and "entr" not in text


def test_a_hostile_title_is_escaped_in_html_and_cannot_add_headers(record, mailoutbox):
    subscribed("ops")
    title = '<script>alert("x")</script> & <a href="https://evil.example">here</a>\r\nBcc: x@evil'
    record(category=Category.VALIDATION, message=title)
    alerts.send_pending_alerts()
    (message,) = mailoutbox
    html = message.alternatives[0][0]
    assert "<script>" not in html and '<a href="https://evil.example">' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;a href=" in html
    assert '<script>alert("x")</script> &' in message.body  # plain text is shown as text
    parsed = message_from_bytes(message.message().as_bytes())
    assert parsed["Bcc"] is None and parsed["To"] == "ops@example.com"
    assert "\n" not in message.subject


def test_a_failing_mail_server_keeps_the_problems_for_the_next_run(
    record, mailoutbox, settings, unused_port
):
    subscribed("ops")
    record(**setup_error())
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", unused_port
    now = timezone.now()
    assert alerts.send_pending_alerts(now) == 0
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.sent_at) == ("pending", 1, None)
    assert delivery.last_error.startswith("ConnectionRefusedError")
    assert delivery.claim is None
    assert delivery.available_at == now + timedelta(seconds=settings.ALERT_RETRY_SECONDS)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert alerts.send_pending_alerts(now) == 0  # not before its next try
    assert alerts.send_pending_alerts(delivery.available_at) == 1
    assert SETUP_MESSAGE in mailoutbox[0].body
    assert AlertDelivery.objects.get().attempts == 2


def test_nothing_is_kept_or_queued_without_subscribers(record, queued):
    record(**setup_error())
    assert not AlertDelivery.objects.exists()
    assert queued == []


def test_nothing_is_noted_when_the_entries_roll_back(django_capture_on_commit_callbacks, queued):
    subscribed("ops")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        make_error(**setup_error())
        raise RuntimeError("the job failed")
    assert callbacks == []
    assert not AlertDelivery.objects.exists() and queued == []


def test_a_batch_of_several_times_that_reopens_a_problem_is_a_regression(
    queued, django_capture_on_commit_callbacks, mailoutbox
):
    from errors.grouping import record_errors
    from errors.models import SyncError

    subscribed("regressions-only", new_problems=False, setup_errors=False)
    first = make_error(category=Category.CONFLICT, message="Both sides changed")
    ErrorGroup.objects.filter(pk=first.group_id).update(status=Status.RESOLVED)
    now = timezone.now()
    batch = [
        SyncError(
            created_at=now - timedelta(minutes=age),
            category=Category.CONFLICT,
            message="Both sides changed",
            source_record_id=f"C{age}",
        )
        for age in (3, 1, 2)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        record_errors(batch)

    assert alerts.send_pending_alerts() == 1
    assert mailoutbox[0].subject == "Sync Console: Regression: Both sides changed"


def test_each_failure_waits_longer_and_the_last_one_gives_up(record, settings, unused_port):
    subscribed("ops")
    record(**setup_error())
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", unused_port
    settings.ALERT_MAX_ATTEMPTS = 3
    now = timezone.now()
    waits = []
    for _ in range(3):
        alerts.send_pending_alerts(now)
        delivery = AlertDelivery.objects.get()
        waits.append((delivery.available_at - now).total_seconds())
        now = delivery.available_at
    base = settings.ALERT_RETRY_SECONDS
    assert waits == [base, 2 * base, 4 * base]
    assert (delivery.state, delivery.attempts) == ("failed", 3)
    assert alerts.send_pending_alerts(now + timedelta(days=1)) == 0


def test_a_claim_whose_worker_died_is_claimed_again_after_its_lease(record, mailoutbox, settings):
    subscribed("ops")
    record(**setup_error())
    now = timezone.now()
    claim, ids = alerts.claim_deliveries(now)  # a worker that dies before it sends
    assert len(ids) == 1

    assert alerts.send_pending_alerts(now) == 0  # leased to the dead worker
    later = now + timedelta(seconds=settings.ALERT_LEASE_SECONDS)
    assert alerts.send_pending_alerts(later) == 1
    assert len(mailoutbox) == 1
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("sent", 2)

    # The dead worker's claim, were it to come back, settles nothing.
    alerts.settle(claim, ids, state=AlertDelivery.State.PENDING)
    assert AlertDelivery.objects.get().state == "sent"


def test_one_row_per_person_problem_and_window(record, mailoutbox):
    mapping = make_mapping()
    ops = subscribed("ops").user
    AlertSubscription.objects.create(user=ops, mapping=mapping)  # the same person again
    subscribed("lead")
    for _ in range(3):
        record(**setup_error(mapping=mapping))
    deliveries = AlertDelivery.objects.order_by("user__username")
    assert [(d.user.username, d.events) for d in deliveries] == [
        ("lead", ["new", "setup"]),
        ("ops", ["new", "setup"]),
    ]
    group_id = deliveries[0].group_id
    assert deliveries[0].key.startswith(f"problem:{group_id}:user:{deliveries[0].user_id}:window:")
    assert alerts.send_pending_alerts() == 2


def test_a_problem_settled_before_its_alert_goes_is_not_sent(record, mailoutbox):
    subscribed("ops")
    error = record(**setup_error())
    ErrorGroup.objects.filter(pk=error.group_id).update(status=Status.RESOLVED)
    assert alerts.send_pending_alerts() == 0
    assert AlertDelivery.objects.get().state == "skipped"
    assert mailoutbox == []


def test_settled_rows_are_forgotten_after_a_month_and_pending_ones_kept(record, mailoutbox):
    subscribed("ops")
    record(**setup_error())
    alerts.send_pending_alerts()
    record(**setup_error())  # waits for the hour
    later = timezone.now() + alerts.DELIVERIES_KEPT + timedelta(minutes=1)
    assert alerts.forget_old_deliveries(timezone.now()) == 0
    assert alerts.forget_old_deliveries(later) == 1
    assert list(AlertDelivery.objects.values_list("state", flat=True)) == ["pending"]


def test_a_subscriber_who_lost_the_role_before_it_goes_gets_nothing(record, mailoutbox):
    ops = subscribed("ops").user
    record(**setup_error())
    ops.groups.clear()
    assert alerts.send_pending_alerts() == 0
    assert AlertDelivery.objects.get().state == "skipped" and mailoutbox == []
