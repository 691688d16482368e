"""E-mail alerts to Sync administrators about new problems, regressions and setup errors.

Recording entries writes, in the same transaction, one row of the outbox (AlertDelivery) per
subscriber and problem; once they are committed a worker is asked to send, and the schedule
drains the outbox every minute besides. A worker claims rows for a lease, sends one message per
subscriber listing every problem claimed for them, and marks the rows sent; a worker that dies
in between leaves its rows to be claimed again when the lease ends, so an alert is sent at least
once, and the rows' unique key keeps a person from getting the same problem twice within the
throttle (an hour)."""

import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from syncconsole import queue
from syncconsole.permissions import is_sync_admin

from .models import (
    SETUP_CATEGORIES,
    AlertDelivery,
    AlertEvent,
    AlertSubscription,
    ErrorGroup,
    Status,
)
from .remedies import Remedy, remedy_for

logger = logging.getLogger(__name__)

THROTTLE = timedelta(hours=1)
# Settled outbox rows are kept this long, to be read in the admin; the throttle needs an hour.
DELIVERIES_KEPT = timedelta(days=30)
SUBJECT_TITLE_LENGTH = 100
# A message is read by a person: past this, it says how many more and links to the rest.
PROBLEMS_PER_MESSAGE = 50


@dataclass(frozen=True)
class ProblemChange:
    """What recording a batch of entries did to one problem."""

    group_id: int
    status: str
    created: bool
    regressed: bool
    category: str

    @property
    def events(self) -> set[str]:
        # Ignored and snoozed problems were set aside on purpose: no alert for them.
        if self.status != Status.OPEN:
            return set()
        events: set[str] = set()
        if self.created:
            events.add(AlertEvent.NEW)
        if self.regressed:
            events.add(AlertEvent.REGRESSION)
        if self.category in SETUP_CATEGORIES:
            events.add(AlertEvent.SETUP)  # new or growing: every new entry counts
        return events


def write_alerts(changes: Iterable[ProblemChange]) -> None:
    """Called inside the transaction that records entries: the outbox rows are written with
    them (and roll back with them), and a worker is asked to send once they are committed."""
    changes = [change for change in changes if change.events]
    if changes and note_problems(changes):
        transaction.on_commit(queue_sending, robust=True)


def note_problems(changes: list[ProblemChange], now: datetime | None = None) -> int:
    """Write the outbox rows of the events some subscription asks for: one per subscriber and
    problem. Returns how many rows were written or added to."""
    subscriptions = list(
        AlertSubscription.objects.filter(user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
    )
    if not subscriptions:
        return 0
    # Alerts are for administrators: a subscriber who lost the role gets nothing.
    people = {subscription.user_id: subscription.user for subscription in subscriptions}
    admins = {pk for pk, person in people.items() if is_sync_admin(person)}
    subscriptions = [
        subscription for subscription in subscriptions if subscription.user_id in admins
    ]
    scopes = {
        pk: (mapping_id, connection_id)
        for pk, mapping_id, connection_id in ErrorGroup.objects.filter(
            pk__in=[change.group_id for change in changes]
        ).values_list("pk", "mapping_id", "mapping__connection_id")
    }
    found: defaultdict[tuple[int, int], set[str]] = defaultdict(set)
    for change in changes:
        if change.group_id not in scopes:
            continue  # deleted since
        for subscription in subscriptions:
            if subscription.covers(*scopes[change.group_id]):
                found[subscription.user_id, change.group_id] |= subscription.events & change.events
    wanted = {pair: events for pair, events in found.items() if events}
    if not wanted:
        return 0
    write_deliveries(wanted, now or timezone.now())
    return len(wanted)


def window_key(user_id: int, group_id: int, now: datetime, ahead: int = 0) -> str:
    """The outbox key: one alert per person, problem and throttle window (`ahead`: a later
    window)."""
    window = int(now.timestamp() // THROTTLE.total_seconds()) + ahead
    return f"problem:{group_id}:user:{user_id}:window:{window}"


def write_deliveries(wanted: dict[tuple[int, int], set[str]], now: datetime) -> None:
    """Insert the rows of this window, or add the events to this window's row while no worker
    has claimed it. A row already claimed or sent has its message made: what came since goes
    to the next window's row, which the sender holds back until the throttle has passed."""
    left = write_window(wanted, now, ahead=0)
    if left:
        write_window(left, now, ahead=1)


def write_window(
    wanted: dict[tuple[int, int], set[str]], now: datetime, ahead: int
) -> dict[tuple[int, int], set[str]]:
    """Returns what found its row claimed or sent."""
    table = AlertDelivery._meta.db_table
    rows = sorted(wanted.items())  # sorted: two writers lock the rows they share in one order
    values = ", ".join(["(%s, %s::bigint, %s::bigint, %s::varchar[])"] * len(rows))
    params: list[Any] = []
    for (user_id, group_id), events in rows:
        params += [window_key(user_id, group_id, now, ahead), user_id, group_id, sorted(events)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (key, user_id, group_id, events, state, created_at,
                                 available_at, attempts, last_error)
            SELECT v.key, v.user_id, v.group_id, v.events, 'pending', %s, %s, 0, ''
            FROM (VALUES {values}) AS v(key, user_id, group_id, events)
            ORDER BY v.key
            ON CONFLICT (key) DO UPDATE SET
                events = ARRAY(SELECT DISTINCT e FROM unnest({table}.events || EXCLUDED.events)
                               AS e ORDER BY e)
            WHERE {table}.state = 'pending' AND {table}.claim IS NULL
            RETURNING user_id, group_id
            """,  # noqa: S608 - the table name is ours; the values are parameters
            [now, now, *params],
        )
        written = set(cursor.fetchall())
    return {pair: events for pair, events in wanted.items() if pair not in written}


def queue_sending() -> None:
    # The queue logs a broker that is down; the schedule sends the alerts later.
    with contextlib.suppress(queue.QueueUnavailable):
        queue.send("errors.send_problem_alerts")


def claim_deliveries(now: datetime, limit: int = 500) -> tuple[uuid.UUID, list[int]]:
    """Claim the rows due for ALERT_LEASE_SECONDS, skipping those another worker holds. A row
    waits while the same person had the same problem within the throttle."""
    claim = uuid.uuid4()
    table = AlertDelivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET claim = %(claim)s, claimed_until = %(until)s,
                               attempts = attempts + 1
            WHERE id IN (
                SELECT d.id FROM {table} AS d
                WHERE d.state = 'pending' AND d.available_at <= %(now)s
                  AND (d.claimed_until IS NULL OR d.claimed_until <= %(now)s)
                  AND NOT EXISTS (
                      SELECT 1 FROM {table} AS s
                      WHERE s.user_id = d.user_id AND s.group_id = d.group_id
                        AND s.sent_at > %(throttled)s)
                ORDER BY d.available_at, d.id
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED)
            RETURNING id
            """,  # noqa: S608 - the table name is ours; the values are parameters
            {
                "claim": claim,
                "until": now + timedelta(seconds=settings.ALERT_LEASE_SECONDS),
                "now": now,
                "throttled": now - THROTTLE,
                "limit": limit,
            },
        )
        return claim, [pk for (pk,) in cursor.fetchall()]


def settle(claim: uuid.UUID, ids: list[int], **values) -> None:
    """Write what became of claimed rows, unless their lease was lost to another worker."""
    AlertDelivery.objects.filter(pk__in=ids, claim=claim).update(
        claim=None, claimed_until=None, **values
    )


def retry_delay(attempts: int) -> timedelta:
    """The wait before the next try: ALERT_RETRY_SECONDS, doubled at each failure."""
    return timedelta(seconds=settings.ALERT_RETRY_SECONDS * 2 ** max(attempts - 1, 0))


def send_pending_alerts(now: datetime | None = None) -> int:
    """Send what is due in the outbox: one message per subscriber. Returns how many messages
    were sent. A message the mail server refuses is tried again later."""
    now = now or timezone.now()
    claim, ids = claim_deliveries(now)
    if not ids:
        return 0
    deliveries = list(
        AlertDelivery.objects.filter(pk__in=ids, claim=claim)
        .select_related("user", "group__mapping__connection")
        .order_by("-group__last_seen", "-group_id")
    )
    # Checked again as it is sent: the person may no longer be an administrator (never a
    # setup error's title or remedy to anyone else), the problem may be settled.
    people = {delivery.user_id: delivery.user for delivery in deliveries}
    admins = {pk for pk, user in people.items() if user.email and is_sync_admin(user)}
    by_user: defaultdict[Any, list[AlertDelivery]] = defaultdict(list)
    unwanted = []
    for delivery in deliveries:
        if delivery.group.status != Status.OPEN or delivery.user_id not in admins:
            unwanted.append(delivery.pk)
        else:
            by_user[people[delivery.user_id]].append(delivery)
    if unwanted:
        settle(claim, unwanted, state=AlertDelivery.State.SKIPPED)
    if not by_user:
        return 0
    mail = get_connection()
    try:
        mail.open()
    except Exception as error:  # noqa: BLE001 - any failure is kept on the rows
        for owed in by_user.values():
            failed(claim, owed, error, now)
        return 0
    sent = 0
    try:
        for user, owed in by_user.items():
            problems = [
                AlertedProblem(
                    delivery.group, delivery.events, console_url(delivery.group.get_absolute_url())
                )
                for delivery in owed
            ]
            try:
                mail.send_messages([alert_message(user, problems)])
            except Exception as error:  # noqa: BLE001 - any failure is kept on the rows
                failed(claim, owed, error, now)
                continue
            settle(
                claim,
                [delivery.pk for delivery in owed],
                state=AlertDelivery.State.SENT,
                sent_at=timezone.now(),
            )
            sent += 1
    finally:
        mail.close()
    return sent


def failed(claim: uuid.UUID, deliveries: list[AlertDelivery], error: Exception, now) -> None:
    logger.warning("An alert could not be sent: %s", error)
    attempts = max(delivery.attempts for delivery in deliveries)
    given_up = attempts >= settings.ALERT_MAX_ATTEMPTS
    settle(
        claim,
        [delivery.pk for delivery in deliveries],
        last_error=f"{type(error).__name__}: {error}"[:500],
        available_at=now + retry_delay(attempts),
        state=AlertDelivery.State.FAILED if given_up else AlertDelivery.State.PENDING,
    )


def forget_old_deliveries(now: datetime | None = None) -> int:
    """Drop the outbox rows settled (sent, skipped or given up) more than DELIVERIES_KEPT ago.
    Returns how many."""
    cutoff = (now or timezone.now()) - DELIVERIES_KEPT
    deleted, _ = (
        AlertDelivery.objects.filter(created_at__lt=cutoff)
        .exclude(state=AlertDelivery.State.PENDING)
        .delete()
    )
    return deleted


@dataclass
class AlertedProblem:
    group: ErrorGroup
    events: list[str]
    url: str

    @cached_property
    def remedy(self) -> Remedy | None:
        """The cause and fix of the problem's newest entry."""
        entry = (
            self.group.errors.select_related("mapping__connection").order_by("-created_at").first()
        )
        return remedy_for(entry) if entry else None

    @property
    def event_labels(self) -> str:
        return " · ".join(AlertEvent(event).label for event in self.events)

    @property
    def is_setup_error(self) -> bool:
        return self.group.is_setup_error


def console_url(path: str) -> str:
    return settings.SYNC_CONSOLE_URL.rstrip("/") + path


def alert_message(user, problems: list[AlertedProblem]) -> EmailMultiAlternatives:
    context = {
        "user": user,
        "problems": problems[:PROBLEMS_PER_MESSAGE],
        "more": len(problems) - PROBLEMS_PER_MESSAGE,
        "problems_url": console_url(reverse("errors:groups")),
        "subscriptions_url": console_url(reverse("errors:alerts")),
        "throttle_minutes": int(THROTTLE.total_seconds() // 60),
    }
    message = EmailMultiAlternatives(
        subject=subject_for(problems),
        body=render_to_string("errors/alert_email.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("errors/alert_email.html", context), "text/html")
    return message


def subject_for(problems: list[AlertedProblem]) -> str:
    if len(problems) == 1:
        problem = problems[0]
        # Titles come from other systems: one line, so that they cannot add mail headers.
        title = " ".join(problem.group.title.split())
        if len(title) > SUBJECT_TITLE_LENGTH:
            title = title[: SUBJECT_TITLE_LENGTH - 1] + "…"
        return f"Sync Console: {problem.event_labels}: {title}"
    counts: defaultdict[str, int] = defaultdict(int)
    for problem in problems:
        for event in problem.events:
            counts[event] += 1
    parts = [
        f"{counts[event]} {AlertEvent(event).label.lower()}{'s' if counts[event] > 1 else ''}"
        for event in AlertEvent
        if counts[event]
    ]
    return f"Sync Console: {len(problems)} problems ({', '.join(parts)})"
