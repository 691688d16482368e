"""E-mail alerts to Sync administrators about new problems, regressions and setup errors.

Recording entries notes, once they are committed, what happened to the problems someone
subscribed to; a worker sends what is due: at most one alert per problem per hour, however many
workers record it, and one message per subscriber listing every problem due at that moment."""

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, models, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from syncconsole import queue
from syncconsole.permissions import is_sync_admin

from .models import (
    SETUP_CATEGORIES,
    AlertEvent,
    AlertSubscription,
    ErrorGroup,
    ProblemAlert,
    Status,
)
from .remedies import Remedy, remedy_for

logger = logging.getLogger(__name__)

THROTTLE = timedelta(hours=1)
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


def notify_after_commit(changes: Iterable[ProblemChange]) -> None:
    """Called inside the transaction that records entries: the alerts are noted only once the
    entries are committed, and a failure there never undoes the entries."""
    changes = [change for change in changes if change.events]
    if changes:
        transaction.on_commit(partial(note_problems, changes), robust=True)


def note_problems(changes: list[ProblemChange], now: datetime | None = None) -> int:
    """Keep the events some subscription asks for as pending on their problems, and have a
    worker send what is due. Returns how many problems have something pending now."""
    subscriptions = list(AlertSubscription.objects.all())
    if not subscriptions:
        return 0
    scopes = {
        pk: (mapping_id, connection_id)
        for pk, mapping_id, connection_id in ErrorGroup.objects.filter(
            pk__in=[change.group_id for change in changes]
        ).values_list("pk", "mapping_id", "mapping__connection_id")
    }
    wanted: dict[int, list[str]] = {}
    for change in changes:
        if change.group_id not in scopes:
            continue  # deleted since
        events = {
            event
            for subscription in subscriptions
            if subscription.covers(*scopes[change.group_id])
            for event in subscription.events & change.events
        }
        if events:
            wanted[change.group_id] = sorted(events)
    if not wanted:
        return 0
    mark_pending(wanted, now or timezone.now())
    queue_sending()
    return len(wanted)


def mark_pending(events: dict[int, list[str]], now: datetime) -> None:
    table = ProblemAlert._meta.db_table
    values = ", ".join(["(%s::bigint, %s::varchar[])"] * len(events))
    params: list[Any] = []
    for pk in sorted(events):  # sorted: two writers lock the rows they share in the same order
        params += [pk, events[pk]]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (group_id, events, pending_since, notified_events)
            SELECT v.id, v.events, %s, '{{}}'
            FROM (VALUES {values}) AS v(id, events)
            JOIN {ErrorGroup._meta.db_table} AS g ON g.id = v.id
            ORDER BY v.id
            ON CONFLICT (group_id) DO UPDATE SET
                events = ARRAY(SELECT DISTINCT e FROM unnest({table}.events || EXCLUDED.events)
                               AS e ORDER BY e),
                pending_since = COALESCE({table}.pending_since, EXCLUDED.pending_since)
            """,  # noqa: S608 - the table names are ours; the values are parameters
            [now, *params],
        )


def queue_sending() -> None:
    # The queue logs a broker that is down; the schedule sends the alerts later.
    with contextlib.suppress(queue.QueueUnavailable):
        queue.send("errors.send_problem_alerts")


def claim_due(now: datetime, model: type[models.Model] = ProblemAlert) -> dict[int, list]:
    """Take the pending rows whose last message is an hour old or more, and mark them sent
    now, in one statement: of two workers claiming at once, the second finds them taken.
    `model` is ProblemAlert (per problem) or another table of the same columns (events,
    pending_since, notified_at, notified_events) keyed by its primary key."""
    table, key = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table}
            SET notified_at = %(now)s, notified_events = events, events = '{{}}',
                pending_since = NULL
            WHERE pending_since IS NOT NULL
              AND (notified_at IS NULL OR notified_at <= %(due)s)
            RETURNING {key}, notified_events
            """,  # noqa: S608 - the table and column names are ours; the values are parameters
            {"now": now, "due": now - THROTTLE},
        )
        return dict(cursor.fetchall())


def release(
    claimed: dict[int, list], claimed_at: datetime, model: type[models.Model] = ProblemAlert
) -> None:
    """Put back what could not be sent, so that the next run sends it."""
    table, key = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table}
            SET events = ARRAY(SELECT DISTINCT e FROM unnest(events || notified_events) AS e
                               ORDER BY e),
                pending_since = COALESCE(pending_since, notified_at),
                notified_at = NULL, notified_events = '{{}}'
            WHERE {key} = ANY(%s) AND notified_at = %s
            """,  # noqa: S608 - the table and column names are ours; the values are parameters
            [list(claimed), claimed_at],
        )


def send_claimed(
    model: type[models.Model],
    now: datetime,
    messages_for: Callable[[dict[int, list]], list[EmailMultiAlternatives]],
) -> int:
    """Claim what is due in `model`'s table, send the messages made of it on one connection,
    and put it back when the mail server fails. Returns how many messages were sent."""
    claimed = claim_due(now, model)
    if not claimed:
        return 0
    try:
        messages = messages_for(claimed)
        if messages:
            with get_connection() as mail:
                mail.send_messages(messages)
    except Exception:
        release(claimed, now, model)
        raise
    return len(messages)


def send_pending_alerts(now: datetime | None = None) -> int:
    """Send what is due: one message per subscriber. Returns how many messages were sent.
    When the mail server fails, the problems stay pending for the next run."""
    return send_claimed(ProblemAlert, now or timezone.now(), alert_messages)


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


def alert_messages(claimed: dict[int, list[str]]) -> list[EmailMultiAlternatives]:
    groups = (
        ErrorGroup.objects.filter(pk__in=claimed, status=Status.OPEN)
        .select_related("mapping__connection")
        .order_by("-last_seen", "-id")
    )
    problems = [
        AlertedProblem(group, claimed[group.pk], console_url(group.get_absolute_url()))
        for group in groups
    ]
    if not problems:
        return []
    subscriptions = defaultdict(list)
    for subscription in (
        AlertSubscription.objects.filter(user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
    ):
        subscriptions[subscription.user].append(subscription)
    messages = []
    for user, chosen in subscriptions.items():
        # Alerts are for administrators; a subscriber who lost the role gets nothing, and so
        # never a setup error's title or remedy.
        if not is_sync_admin(user):
            continue
        wanted = [problem for problem in problems if wants(chosen, problem)]
        if wanted:
            messages.append(alert_message(user, wanted))
    return messages


def wants(subscriptions: list[AlertSubscription], problem: AlertedProblem) -> bool:
    mapping = problem.group.mapping
    return any(
        subscription.covers(problem.group.mapping_id, mapping.connection_id if mapping else None)
        and subscription.events & set(problem.events)
        for subscription in subscriptions
    )


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
