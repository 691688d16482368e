"""Who owns a problem, and its discussion: assigning it to a person or a role, taking it,
giving it back, commenting on it, and the ownership rules that assign new problems as they
are created. Each change is checked here (who may do it, to whom) and written with its audit
event; the pages, the API, the Django admin and the recording of entries all call these.

The assignee is told by e-mail, throttled like the alerts (errors.alerts): at most one
message an hour per person, listing every problem assigned to them since the last one."""

import contextlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit import services as audit
from sync.models import TableMapping
from syncconsole import queue
from syncconsole.permissions import (
    ADMINISTER,
    SYNC_ADMINISTRATORS,
    SYNC_USERS,
    TRIAGE,
    is_sync_admin,
    is_sync_user,
)

from .alerts import THROTTLE, console_url
from .models import (
    COMMENT_MAX_LENGTH,
    SETUP_CATEGORIES,
    AssignmentNotice,
    ErrorGroup,
    OwnershipRule,
    ProblemComment,
)

# The roles a problem may be assigned to (their members share it).
ROLE_GROUPS = (SYNC_USERS, SYNC_ADMINISTRATORS)
SUBJECT_TITLE_LENGTH = 100
PROBLEMS_PER_MESSAGE = 50
SEE_IT = "Setup and connection problems are for Sync administrators."


class OwnershipRefused(Exception):
    """The change cannot be made as asked; `forbidden` when it is the person's role that does
    not allow it."""

    def __init__(self, message: str, *, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden


# Who may own what ------------------------------------------------------------------------


def may_see(user, problem: ErrorGroup) -> bool:
    """Whoever may see a problem may take it and comment on it."""
    return is_sync_user(user) and (not problem.is_setup_error or is_sync_admin(user))


def _check_sees(user, problem: ErrorGroup) -> None:
    if not is_sync_user(user):
        raise OwnershipRefused(
            "This needs the Sync users or Sync administrators role.", forbidden=True
        )
    if problem.is_setup_error and not is_sync_admin(user):
        raise OwnershipRefused(SEE_IT, forbidden=True)


def assignable_users() -> QuerySet:
    """The people a problem may be assigned to: active accounts of either role (superusers
    hold both)."""
    roles = Q(groups__permissions__codename__in=_codenames()) | Q(is_superuser=True)
    return get_user_model().objects.filter(roles, is_active=True).distinct().order_by("username")


def _codenames() -> list[str]:
    return [TRIAGE.split(".")[1], ADMINISTER.split(".")[1]]


def assignable_groups() -> QuerySet[Group]:
    return Group.objects.filter(name__in=ROLE_GROUPS).order_by("name")


def _sees_setup(user=None, group: Group | None = None) -> bool:
    if user is not None:
        return is_sync_admin(user)
    return group is not None and group.name == SYNC_ADMINISTRATORS


def _sees_records(user=None, group: Group | None = None) -> bool:
    if user is not None:
        return is_sync_user(user)
    return group is not None and group.name in ROLE_GROUPS


def assignee_refusal(user=None, group: Group | None = None, *, setup: bool) -> str:
    """Why this person or role cannot own a problem (of setup errors when `setup`), or ""."""
    if (user is None) == (group is None):
        return "Assign to a person or to a role, one of them."
    if not _sees_records(user, group):
        if group is not None:
            return f"Problems are assigned to a role: {' or '.join(ROLE_GROUPS)}."
        return f"{user.get_username()} is not an active Sync user or Sync administrator."
    if setup and not _sees_setup(user, group):
        who = _label(user, group)
        return (
            f"{who} cannot see setup and connection problems: assign them to a Sync administrator."
        )
    return ""


def _label(user=None, group: Group | None = None) -> str:
    if user is not None:
        return user.get_username()
    return f"{group.name} (role)" if group is not None else "nobody"


# Assigning ------------------------------------------------------------------------------


def take(problem: ErrorGroup, user) -> ErrorGroup:
    """Assign to me: anyone who may see the problem may take it."""
    return assign(problem, user, to_user=user)


def assign(problem: ErrorGroup, by, *, to_user=None, to_group: Group | None = None) -> ErrorGroup:
    """Assign the problem to a person or a role. A Sync user may assign it to themselves
    only; a Sync administrator to anyone who may see it. Returns the problem as it is now."""
    _check_sees(by, problem)
    if to_user is not None and to_user.pk != by.pk and not is_sync_admin(by):
        raise OwnershipRefused(
            "Assigning a problem to someone else needs the Sync administrators role.",
            forbidden=True,
        )
    if to_group is not None and not is_sync_admin(by):
        raise OwnershipRefused(
            "Assigning a problem to a role needs the Sync administrators role.", forbidden=True
        )
    refusal = assignee_refusal(to_user, to_group, setup=problem.is_setup_error)
    if refusal:
        raise OwnershipRefused(refusal)
    with transaction.atomic():
        locked = ErrorGroup.objects.select_for_update().get(pk=problem.pk)
        unchanged = (locked.assigned_user_id, locked.assigned_group_id) == (
            to_user.pk if to_user is not None else None,
            to_group.pk if to_group is not None else None,
        )
        if not unchanged:
            _write([locked], to_user, to_group, by=by)
            _tell_after_commit([locked.pk], to_user, to_group, besides=by)
    return _fresh(problem)


def unassign(problem: ErrorGroup, by) -> ErrorGroup:
    """Give the problem back: its assignee, or a Sync administrator."""
    _check_sees(by, problem)
    with transaction.atomic():
        locked = ErrorGroup.objects.select_for_update().get(pk=problem.pk)
        if locked.assigned_user_id is None and locked.assigned_group_id is None:
            return _fresh(problem)
        if locked.assigned_user_id != by.pk and not is_sync_admin(by):
            raise OwnershipRefused(
                "Only its assignee or a Sync administrator may unassign this problem.",
                forbidden=True,
            )
        previous = _label(locked.assigned_user, locked.assigned_group)
        ErrorGroup.objects.filter(pk=locked.pk).update(
            assigned_user=None,
            assigned_group=None,
            assigned_at=timezone.now(),
            assigned_by=audit.person(by),
            assigned_by_rule=None,
        )
        audit.record(
            audit.Action.PROBLEM_UNASSIGNED,
            f"Problem unassigned (was {previous})",
            user=by,
            target=locked,
            object_type="problem",
            details={"previous": previous},
        )
    return _fresh(problem)


def _fresh(problem: ErrorGroup) -> ErrorGroup:
    return ErrorGroup.objects.select_related("mapping", "assigned_user", "assigned_group").get(
        pk=problem.pk
    )


def _write(
    problems: list[ErrorGroup],
    user,
    group: Group | None,
    *,
    by=None,
    rule: OwnershipRule | None = None,
) -> None:
    """Assign the problems and write an audit event for each."""
    ErrorGroup.objects.filter(pk__in=[p.pk for p in problems]).update(
        assigned_user=user,
        assigned_group=group,
        assigned_at=timezone.now(),
        assigned_by=audit.person(by),
        assigned_by_rule=rule,
    )
    to = _label(user, group)
    for problem in problems:
        previous = (
            _label(problem.assigned_user, problem.assigned_group)
            if problem.assigned_user_id or problem.assigned_group_id
            else ""
        )
        audit.record(
            audit.Action.PROBLEM_ASSIGNED,
            f"Problem assigned to {to}"
            + (f" by ownership rule #{rule.pk}" if rule is not None else "")
            + (f" (was {previous})" if previous else ""),
            user=by,
            actor_label=f"ownership rule #{rule.pk}" if rule is not None else "",
            target=problem,
            object_type="problem",
            details={
                "user": user.pk if user is not None else None,
                "group": group.pk if group is not None else None,
                "rule": rule.pk if rule is not None else None,
                "previous": previous,
            },
        )


# The discussion -------------------------------------------------------------------------


def clean_comment(text: Any) -> str:
    """The comment as it is kept: plain text, trimmed, within the limit, storable."""
    if not isinstance(text, str):
        raise OwnershipRefused("A comment is text.")
    text = text.strip()
    if not text:
        raise OwnershipRefused("Write something to comment.")
    if len(text) > COMMENT_MAX_LENGTH:
        raise OwnershipRefused(
            f"A comment is at most {COMMENT_MAX_LENGTH:,} characters ({len(text):,} given)."
        )
    # PostgreSQL stores neither NUL nor a lone half of a surrogate pair.
    if "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text):
        raise OwnershipRefused("A comment cannot hold NUL characters or broken Unicode.")
    return text


def comment(problem: ErrorGroup, by, text: Any) -> ProblemComment:
    """Add to the problem's discussion: anyone who may see the problem."""
    _check_sees(by, problem)
    text = clean_comment(text)
    with transaction.atomic():
        written = ProblemComment.objects.create(
            group=problem, author=by, author_name=by.get_username()[:150], text=text
        )
        audit.record(
            audit.Action.PROBLEM_COMMENTED,
            f"Comment on the problem: {' '.join(text.split())[:200]}",
            user=by,
            target=problem,
            object_type="problem",
            details={"comment": written.pk, "length": len(text)},
        )
    return written


def comments_of(problem: ErrorGroup) -> QuerySet[ProblemComment]:
    """Its discussion, newest last."""
    return problem.comments.order_by("created_at", "id")


# Ownership rules ------------------------------------------------------------------------


def rule_problems(rule: OwnershipRule) -> list[str]:
    """What is wrong with a rule, in words for the form that made it (none: it may be saved)."""
    found = []
    if rule.connection_id and rule.mapping_id:
        found.append("Limit a rule to a connection or to a table mapping, not both.")
    setup = rule.category in SETUP_CATEGORIES
    refusal = assignee_refusal(rule.user, rule.group, setup=setup)
    if refusal:
        found.append(refusal)
    same_scope = OwnershipRule.objects.filter(
        connection=rule.connection_id, mapping=rule.mapping_id, category=rule.category
    ).exclude(pk=rule.pk)
    if same_scope.exists():
        found.append("There is a rule for this already: change that one.")
    return found


def save_rule(rule: OwnershipRule, by) -> OwnershipRule:
    """Add or change an ownership rule (Sync administrators). It assigns the problems created
    from now on; those that exist keep their owner."""
    if not is_sync_admin(by):
        raise OwnershipRefused("Ownership rules need the Sync administrators role.", forbidden=True)
    found = rule_problems(rule)
    if found:
        raise OwnershipRefused(" ".join(found))
    before = audit.snapshot(rule) if rule.pk else {}
    try:
        with transaction.atomic():
            if rule.pk is None:
                rule.created_by = audit.person(by)
            rule.save()
            changed = audit.changes(before, rule)
            if before and not changed:
                return rule
            audit.record(
                audit.Action.OWNERSHIP_RULE_CHANGED,
                f"{'Changed' if before else 'Added'} ownership rule: {rule}",
                user=by,
                target=rule,
                details={"change": "changed" if before else "added", "fields": changed},
            )
    except IntegrityError as exc:  # the same scope saved at the same moment elsewhere
        raise OwnershipRefused("There is a rule for this already: change that one.") from exc
    return rule


def delete_rule(rule: OwnershipRule, by) -> str:
    """Delete an ownership rule (Sync administrators); returns what it was."""
    if not is_sync_admin(by):
        raise OwnershipRefused("Ownership rules need the Sync administrators role.", forbidden=True)
    label = str(rule)
    with transaction.atomic():
        audit.record(
            audit.Action.OWNERSHIP_RULE_CHANGED,
            f"Deleted ownership rule: {label}",
            user=by,
            target=rule,
            details={"change": "deleted"},
        )
        rule.delete()
    return label


@dataclass
class RuleBook:
    """The ownership rules, read once for a batch of new problems: most specific first, with
    what each one's assignee may own."""

    rules: list[OwnershipRule]
    connection_of: dict[int, int] = field(default_factory=dict)  # mapping id -> connection id
    _fits: dict[tuple[int, bool], bool] = field(default_factory=dict)

    @classmethod
    def read(cls) -> "RuleBook":
        rules = sorted(
            OwnershipRule.objects.select_related("user", "group"),
            key=lambda rule: (-rule.specificity, rule.pk),
        )
        book = cls(rules)
        connections = {rule.connection_id for rule in rules if rule.connection_id}
        if connections:
            book.connection_of = dict(
                TableMapping.objects.filter(connection_id__in=connections).values_list(
                    "pk", "connection_id"
                )
            )
        return book

    def rule_for(self, mapping_id: int | None, category: str) -> OwnershipRule | None:
        setup = category in SETUP_CATEGORIES
        for rule in self.rules:
            if rule.category and rule.category != category:
                continue
            if rule.mapping_id and rule.mapping_id != mapping_id:
                continue
            if rule.connection_id and (
                mapping_id is None or self.connection_of.get(mapping_id) != rule.connection_id
            ):  # a problem of another integration has no mapping, and so no connection
                continue
            # A rule never gives a problem to someone who cannot see it: the next one may.
            if self._may_own(rule, setup):
                return rule
        return None

    def _may_own(self, rule: OwnershipRule, setup: bool) -> bool:
        key = (rule.pk, setup)
        if key not in self._fits:
            self._fits[key] = not assignee_refusal(rule.user, rule.group, setup=setup)
        return self._fits[key]


@dataclass(frozen=True)
class NewProblem:
    pk: int
    mapping_id: int | None
    category: str


def assign_new_problems(problems: Iterable[NewProblem]) -> int:
    """Apply the ownership rules to problems just created, in the transaction that created
    them (errors.grouping.record_errors). The rules are read once for the batch. Returns how
    many were assigned."""
    problems = list(problems)
    if not problems:
        return 0
    book = RuleBook.read()
    if not book.rules:
        return 0
    chosen: dict[OwnershipRule, list[ErrorGroup]] = defaultdict(list)
    for problem in problems:
        rule = book.rule_for(problem.mapping_id, problem.category)
        if rule is not None:
            chosen[rule].append(ErrorGroup(pk=problem.pk))
    for rule, assigned in chosen.items():
        _write(assigned, rule.user, rule.group, rule=rule)
        _tell_after_commit([p.pk for p in assigned], rule.user, rule.group)
    return sum(len(assigned) for assigned in chosen.values())


# Telling the assignee -------------------------------------------------------------------


def _tell_after_commit(problem_ids: list[int], user, group: Group | None, besides=None) -> None:
    """Once the assignment is committed, note it for the assignee (a role's active members),
    but not for the person who made it: they know."""
    transaction.on_commit(
        partial(
            note_assigned,
            problem_ids,
            user.pk if user is not None else None,
            group.pk if group is not None else None,
            besides.pk if besides is not None and besides.is_authenticated else None,
        ),
        robust=True,
    )


def note_assigned(
    problem_ids: list[int],
    user_id: int | None,
    group_id: int | None,
    besides: int | None = None,
    now: datetime | None = None,
) -> int:
    """Keep the problems as pending for their assignee's next e-mail and have a worker send
    what is due. Returns how many people have something pending now."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    chosen = Q(pk=user_id) if user_id is not None else Q(groups__pk=group_id)
    users = users.filter(chosen)
    recipients = sorted(set(users.values_list("pk", flat=True)) - {besides})
    if not recipients:
        return 0
    _mark_pending(recipients, sorted(problem_ids), now or timezone.now())
    with contextlib.suppress(queue.QueueUnavailable):  # the schedule sends them later
        queue.send("errors.send_assignment_notices")
    return len(recipients)


def _mark_pending(user_ids: list[int], problem_ids: list[int], now: datetime) -> None:
    table = AssignmentNotice._meta.db_table
    with connection.cursor() as cursor:
        # Sorted ids: two writers lock the rows they share in the same order.
        cursor.execute(
            f"""
            INSERT INTO {table} (user_id, events, pending_since, notified_events)
            SELECT u, %(problems)s::bigint[], %(now)s, '{{}}'
            FROM unnest(%(users)s::bigint[]) AS u
            ORDER BY u
            ON CONFLICT (user_id) DO UPDATE SET
                events = ARRAY(SELECT DISTINCT e FROM unnest({table}.events || EXCLUDED.events)
                               AS e ORDER BY e),
                pending_since = COALESCE({table}.pending_since, EXCLUDED.pending_since)
            """,  # noqa: S608 - the table name is ours; the values are parameters
            {"problems": problem_ids, "now": now, "users": user_ids},
        )


def send_due_notices(now: datetime | None = None) -> int:
    """Send the assignment e-mails that are due: one per person, at most one an hour (what is
    assigned within the hour waits for the next). Returns how many messages were sent. When
    the mail server fails, the problems stay pending for the next run; when the worker dies
    while sending, the next run after ALERT_LEASE_SECONDS sends them."""
    now = now or timezone.now()
    claimed = claim_due_notices(now)
    if not claimed:
        return 0
    try:
        messages = notice_messages(claimed)
        if messages:
            with get_connection() as mail:
                mail.send_messages(messages)
    except Exception:
        release_notices(claimed, now)
        raise
    notices_sent(claimed, now)
    return len(messages)


def claim_due_notices(now: datetime) -> dict[int, list]:
    """Take the pending rows whose last message is an hour old or more, and those a worker
    claimed and never reported sent within its lease, in one statement: of two workers
    claiming at once, the second finds them taken."""
    table = AssignmentNotice._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table}
            SET notified_events = ARRAY(
                    SELECT DISTINCT e FROM unnest(
                        events || CASE WHEN sending_until IS NULL THEN '{{}}'::bigint[]
                                       ELSE notified_events END) AS e
                    ORDER BY e),
                notified_at = %(now)s, events = '{{}}', pending_since = NULL,
                sending_until = %(lease)s
            WHERE (pending_since IS NOT NULL AND sending_until IS NULL
                   AND (notified_at IS NULL OR notified_at <= %(due)s))
               OR sending_until <= %(now)s
            RETURNING user_id, notified_events
            """,  # noqa: S608 - the table name is ours; the values are parameters
            {
                "now": now,
                "due": now - THROTTLE,
                "lease": now + timedelta(seconds=settings.ALERT_LEASE_SECONDS),
            },
        )
        return dict(cursor.fetchall())


def notices_sent(claimed: dict[int, list], claimed_at: datetime) -> None:
    """The claim is done; unless its lease ran out and another worker took it meanwhile."""
    AssignmentNotice.objects.filter(pk__in=list(claimed), notified_at=claimed_at).update(
        sending_until=None
    )


def release_notices(claimed: dict[int, list], claimed_at: datetime) -> None:
    """Put back what could not be sent, so that the next run sends it."""
    table = AssignmentNotice._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table}
            SET events = ARRAY(SELECT DISTINCT e FROM unnest(events || notified_events) AS e
                               ORDER BY e),
                pending_since = COALESCE(pending_since, notified_at),
                notified_at = NULL, notified_events = '{{}}', sending_until = NULL
            WHERE user_id = ANY(%s) AND notified_at = %s
            """,  # noqa: S608 - the table name is ours; the values are parameters
            [list(claimed), claimed_at],
        )


def notice_messages(claimed: dict[int, list]) -> list[EmailMultiAlternatives]:
    """One message per person, with the problems still theirs (or their role's) that they may
    see; nothing for an account without a role any more."""
    people = get_user_model().objects.filter(pk__in=claimed, is_active=True).exclude(email="")
    messages = []
    for person in people.prefetch_related("groups"):
        if not is_sync_user(person):
            continue
        roles = {group.pk for group in person.groups.all()}
        problems = [
            problem
            for problem in ErrorGroup.objects.filter(pk__in=claimed[person.pk])
            .select_related("mapping", "assigned_user", "assigned_group")
            .order_by("-severity", "-id")
            if (problem.assigned_user_id == person.pk or problem.assigned_group_id in roles)
            and may_see(person, problem)
        ]
        if problems:
            messages.append(notice_message(person, problems))
    return messages


def notice_message(person, problems: list[ErrorGroup]) -> EmailMultiAlternatives:
    context = {
        "person": person,
        "problems": [
            (problem, console_url(problem.get_absolute_url()))
            for problem in problems[:PROBLEMS_PER_MESSAGE]
        ],
        "more": len(problems) - PROBLEMS_PER_MESSAGE,
        "mine_url": console_url(reverse("errors:groups") + "?assigned=me"),
        "throttle_minutes": int(THROTTLE.total_seconds() // 60),
    }
    message = EmailMultiAlternatives(
        subject=notice_subject(problems),
        body=render_to_string("errors/assignment_email.txt", context),
        to=[person.email],
    )
    message.attach_alternative(
        render_to_string("errors/assignment_email.html", context), "text/html"
    )
    return message


def notice_subject(problems: list[ErrorGroup]) -> str:
    if len(problems) > 1:
        return f"Sync Console: {len(problems)} problems assigned to you"
    # Titles come from other systems: one line, so that they cannot add mail headers.
    title = " ".join(problems[0].title.split())
    if len(title) > SUBJECT_TITLE_LENGTH:
        title = title[: SUBJECT_TITLE_LENGTH - 1] + "…"
    return f"Sync Console: assigned to you: {title}"
