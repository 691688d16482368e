"""Severity, ownership and discussion of problems: what ranks a problem, who may assign it to
whom, the rules that assign new problems, the e-mail the assignee gets (at most one an
hour), the comments, and the audit event of each change."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from errors import ownership, services
from errors.grouping import record_errors
from errors.models import (
    AssignmentNotice,
    Category,
    ErrorGroup,
    OwnershipRule,
    ProblemComment,
    Severity,
    Status,
    SyncError,
)
from sync.models import TableMapping
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.conftest import user_in_role
from tests.factories import make_connection, make_error, make_mapping

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action
SETUP = "Principal user is missing prvReadAccount privilege for entity 'account'."


@pytest.fixture(autouse=True)
def console_url(settings):
    settings.SYNC_CONSOLE_URL = "https://console.example.com"


@pytest.fixture
def sent(monkeypatch):
    """The sending task as it is queued once the assignment commits (run by the tests)."""
    from syncconsole.celery import app

    queued = []
    monkeypatch.setattr(app, "send_task", lambda name, args, countdown=None: queued.append(name))
    return queued


def problem_of(entry: SyncError) -> ErrorGroup:
    return ErrorGroup.objects.select_related("mapping", "assigned_user", "assigned_group").get(
        pk=entry.group_id
    )


def whole_job_failure(mapping, category=Category.PERMISSION, message=SETUP) -> SyncError:
    """A setup failure of a whole job: the entry names no record."""
    return make_error(
        mapping=mapping,
        category=category,
        message=message,
        source_record_id="",
        destination_record_id="",
        source_url="",
        destination_url="",
    )


def records_failing(mapping, n: int, message: str, **fields) -> ErrorGroup:
    for i in range(n):
        make_error(mapping=mapping, message=message, source_record_id=f"R{i}", **fields)
    return ErrorGroup.objects.get(mapping=mapping, title=message)


# Severity -------------------------------------------------------------------------------


def test_a_setup_problem_of_whole_jobs_ranks_above_record_problems_then_records_then_recency():
    currency = make_mapping(name="CURRENCY")
    customers = make_mapping(name="CUSTOMER")
    blocking = problem_of(whole_job_failure(currency))
    many = records_failing(customers, 12, "The phone number is too long.")
    few = records_failing(customers, 2, "The name is too long.", age=timedelta(0))
    older_few = records_failing(customers, 2, "The city is unknown.", age=timedelta(days=2))
    ranked = list(ErrorGroup.objects.order_by("-severity", "-id"))
    assert ranked == [blocking, many, few, older_few]

    blocking.refresh_from_db()
    many.refresh_from_db()
    assert (blocking.severity_level, blocking.severity_reason) == (
        Severity.BLOCKING,
        "blocks the CURRENCY mapping",
    )
    assert (many.severity_level, many.severity_reason) == (Severity.RECORDS, "12 records")


def test_the_rank_follows_the_figures_and_the_status_as_they_change(staff_user):
    mapping = make_mapping()
    problem = records_failing(mapping, 1, "The name is too long.")
    assert problem.severity_reason == "1 record"
    records_failing(mapping, 3, "The name is too long.")  # R0 again, R1 and R2: 3 records
    problem.refresh_from_db()
    assert problem.severity_reason == "3 records"
    before = problem.severity

    services.set_group_status(problem, Status.RESOLVED, staff_user)
    problem.refresh_from_db()
    assert problem.severity_level == Severity.SET_ASIDE
    assert problem.severity < before
    assert problem.severity_reason == "resolved: stops nothing now"


def test_a_paused_mapping_says_so_and_a_setup_problem_of_records_ranks_by_its_records():
    mapping = make_mapping(name="CUSTOMER", paused_at=timezone.now())
    blocking = problem_of(whole_job_failure(mapping, Category.AUTHENTICATION, "Sign-in failed."))
    assert blocking.severity_reason == "blocks the CUSTOMER mapping (paused)"
    # A missing currency fails the records that name it: they are its records.
    currency = records_failing(
        mapping, 4, "Currency NOK does not exist in Dynamics 365 Sales.", category="currency"
    )
    assert (currency.severity_level, currency.severity_reason) == (Severity.RECORDS, "4 records")


def test_a_problem_from_before_1970_ranks_as_of_1970_whatever_its_status(staff_user):
    """Another integration may send an entry from long ago: its seconds never borrow from
    the level or the records."""
    problem = problem_of(make_error(integration="Shop", age=timedelta(days=365 * 60)))
    assert problem.last_seen.year < 1970
    assert problem.severity == Severity.RECORDS * 2**61 + 1 * 2**33
    services.set_group_status(problem, Status.IGNORED, staff_user)
    problem.refresh_from_db()
    assert (problem.severity, problem.severity_level) == (2**33, Severity.SET_ASIDE)


# Assigning ------------------------------------------------------------------------------


def test_taking_and_giving_back_a_problem_is_audited(sync_user):
    problem = problem_of(make_error(category=Category.CONFLICT))
    taken = ownership.take(problem, sync_user)
    assert (taken.assigned_user, taken.assigned_by, taken.assignee_label) == (
        sync_user,
        sync_user,
        "fixer",
    )
    event = AuditEvent.objects.get(action=Action.PROBLEM_ASSIGNED)
    assert (event.actor, event.object_id, event.summary) == (
        sync_user,
        str(problem.pk),
        "Problem assigned to fixer",
    )
    ownership.unassign(taken, sync_user)
    problem.refresh_from_db()
    assert problem.assigned_user is None
    event = AuditEvent.objects.get(action=Action.PROBLEM_UNASSIGNED)
    assert event.summary == "Problem unassigned (was fixer)"


def test_a_sync_user_assigns_to_themselves_only_and_never_takes_a_setup_problem(sync_user):
    other = user_in_role("colleague", SYNC_USERS)
    problem = problem_of(make_error(category=Category.CONFLICT))
    for to in ({"to_user": other}, {"to_group": Group.objects.get(name=SYNC_USERS)}):
        with pytest.raises(ownership.OwnershipRefused) as refused:
            ownership.assign(problem, sync_user, **to)
        assert refused.value.forbidden
    ownership.take(problem, other)
    with pytest.raises(ownership.OwnershipRefused) as refused:
        ownership.unassign(problem, sync_user)  # not theirs to give back
    assert refused.value.forbidden
    ownership.take(problem, sync_user)  # but theirs to take
    setup = problem_of(whole_job_failure(make_mapping()))
    with pytest.raises(ownership.OwnershipRefused) as refused:
        ownership.take(setup, sync_user)
    assert refused.value.forbidden
    assert AuditEvent.objects.filter(action=Action.PROBLEM_ASSIGNED).count() == 2


def test_an_administrator_assigns_to_anyone_who_may_see_the_problem(staff_user, sync_user):
    setup = problem_of(whole_job_failure(make_mapping()))
    users = Group.objects.get(name=SYNC_USERS)
    for to in ({"to_user": sync_user}, {"to_group": users}):
        with pytest.raises(ownership.OwnershipRefused, match="Sync administrator") as refused:
            ownership.assign(setup, staff_user, **to)
        assert not refused.value.forbidden
    administrators = Group.objects.get(name=SYNC_ADMINISTRATORS)
    assigned = ownership.assign(setup, staff_user, to_group=administrators)
    assert assigned.assignee_label == SYNC_ADMINISTRATORS
    conflict = problem_of(make_error(category=Category.CONFLICT))
    assert ownership.assign(conflict, staff_user, to_user=sync_user).assigned_user == sync_user
    with pytest.raises(ownership.OwnershipRefused, match="role"):
        ownership.assign(conflict, staff_user, to_group=Group.objects.create(name="Sales"))


# Ownership rules ------------------------------------------------------------------------


def rule(by, **fields) -> OwnershipRule:
    return ownership.save_rule(OwnershipRule(**fields), by)


def test_a_rule_assigns_new_problems_in_the_transaction_that_creates_them(staff_user, sync_user):
    mapping = make_mapping()
    old = problem_of(make_error(mapping=mapping, category=Category.CONFLICT, message="Old"))
    made = rule(staff_user, mapping=mapping, user=sync_user)
    assert AuditEvent.objects.filter(action=Action.OWNERSHIP_RULE_CHANGED).count() == 1

    new = problem_of(make_error(mapping=mapping, category=Category.CONFLICT, message="New"))
    assert (new.assigned_user, new.assigned_by, new.assigned_by_rule) == (sync_user, None, made)
    event = AuditEvent.objects.get(action=Action.PROBLEM_ASSIGNED)
    assert (event.actor, event.actor_label, event.object_id) == (
        None,
        f"ownership rule #{made.pk}",
        str(new.pk),
    )
    # The problem that existed keeps its owner (nobody), however many entries it gets.
    make_error(mapping=mapping, category=Category.CONFLICT, message="Old")
    old.refresh_from_db()
    assert old.assigned_user is None
    # And a problem of another mapping is none of this rule's business.
    assert problem_of(make_error(category=Category.CONFLICT)).assigned_user is None


def test_the_most_specific_rule_that_may_own_the_problem_wins(staff_user, sync_user):
    connection = make_connection()
    mapping = make_mapping(connection)
    sibling = make_mapping(connection)
    lead = user_in_role("lead", SYNC_ADMINISTRATORS)
    administrators = Group.objects.get(name=SYNC_ADMINISTRATORS)
    rule(staff_user, group=administrators)
    rule(staff_user, connection=connection, user=lead)
    rule(staff_user, mapping=mapping, user=sync_user)
    rule(staff_user, mapping=mapping, category=Category.VALIDATION, user=staff_user)

    def owner(**fields):
        return problem_of(make_error(**fields)).assignee_label

    assert owner(mapping=mapping, category=Category.VALIDATION) == "triager"
    assert owner(mapping=mapping, category=Category.CONFLICT) == "fixer"
    assert owner(mapping=sibling, category=Category.CONFLICT) == "lead"
    assert owner(category=Category.CONFLICT) == SYNC_ADMINISTRATORS
    assert owner(integration="Shop", category=Category.CONFLICT, mapping=None) == (
        SYNC_ADMINISTRATORS
    )
    # A setup problem is never given to a Sync user: the connection's rule takes it.
    assert problem_of(whole_job_failure(mapping)).assignee_label == "lead"


def test_rules_are_read_once_for_a_batch_of_new_problems(staff_user, sync_user):
    mapping = make_mapping()
    rule(staff_user, mapping=mapping, user=sync_user)

    def batch():
        return [
            SyncError(
                created_at=timezone.now(),
                mapping=mapping,
                category=Category.VALIDATION,
                message=f"Field {name} is too long.",
                source_record_id="C1",
            )
            for name in ("name", "city", "phone", "email")
        ]

    with CaptureQueriesContext(connection) as captured:
        record_errors(batch())
    rule_reads = [q for q in captured.captured_queries if "errors_ownershiprule" in q["sql"]]
    assert len(rule_reads) == 1
    assert ErrorGroup.objects.filter(assigned_user=sync_user).count() == 4
    # Entries of problems that exist read no rule at all.
    with CaptureQueriesContext(connection) as captured:
        record_errors(batch())
    assert not [q for q in captured.captured_queries if "errors_ownershiprule" in q["sql"]]


def test_a_rule_that_cannot_work_is_refused_with_its_reason(staff_user, sync_user):
    mapping = make_mapping()
    with pytest.raises(ownership.OwnershipRefused, match="cannot see setup"):
        rule(staff_user, category=Category.PERMISSION, user=sync_user)
    with pytest.raises(ownership.OwnershipRefused, match="not both"):
        rule(staff_user, connection=mapping.connection, mapping=mapping, user=sync_user)
    rule(staff_user, mapping=mapping, user=sync_user)
    with pytest.raises(ownership.OwnershipRefused, match="already"):
        rule(staff_user, mapping=mapping, user=staff_user)
    with pytest.raises(ownership.OwnershipRefused) as refused:
        rule(sync_user, user=sync_user)
    assert refused.value.forbidden
    made = OwnershipRule.objects.get()
    ownership.delete_rule(made, staff_user)
    assert not OwnershipRule.objects.exists()
    summaries = list(
        AuditEvent.objects.filter(action=Action.OWNERSHIP_RULE_CHANGED)
        .order_by("pk")
        .values_list("summary", flat=True)
    )
    assert summaries[0].startswith("Added ownership rule: Problems of table mapping")
    assert summaries[1].startswith("Deleted ownership rule")


# Telling the assignee -------------------------------------------------------------------


def an_hour_passes() -> None:
    for notice in AssignmentNotice.objects.exclude(notified_at=None):
        notice.notified_at -= timedelta(hours=1, seconds=1)
        notice.save(update_fields=["notified_at"])


def test_the_assignee_is_told_once_per_hour_with_what_came_meanwhile(
    staff_user, sync_user, sent, mailoutbox, django_capture_on_commit_callbacks
):
    first, second, third = (
        problem_of(make_error(category=Category.CONFLICT, message=f"Conflict {n}"))
        for n in ("one", "two", "three")
    )
    with django_capture_on_commit_callbacks(execute=True):
        ownership.assign(first, staff_user, to_user=sync_user)
    assert sent == ["errors.send_assignment_notices"]
    assert ownership.send_due_notices() == 1
    (message,) = mailoutbox
    assert message.to == ["fixer@example.com"]
    assert message.subject == "Sync Console: assigned to you: Conflict one"
    assert f"https://console.example.com/errors/?group={first.pk}" in message.body

    with django_capture_on_commit_callbacks(execute=True):
        ownership.assign(second, staff_user, to_user=sync_user)
        ownership.assign(third, staff_user, to_user=sync_user)
    assert ownership.send_due_notices() == 0  # within the hour: it waits
    assert len(mailoutbox) == 1
    an_hour_passes()
    assert ownership.send_due_notices() == 1
    assert mailoutbox[1].subject == "Sync Console: 2 problems assigned to you"
    assert "Conflict two" in mailoutbox[1].body and "Conflict three" in mailoutbox[1].body
    assert ownership.send_due_notices() == 0


def test_a_role_s_members_are_told_but_not_who_assigned_it_and_not_who_took_it(
    staff_user, sent, mailoutbox, django_capture_on_commit_callbacks
):
    colleague = user_in_role("colleague", SYNC_ADMINISTRATORS)
    user_in_role("gone", SYNC_ADMINISTRATORS, is_active=False)
    problem = problem_of(make_error(category=Category.CONFLICT, message="Both sides changed"))
    with django_capture_on_commit_callbacks(execute=True):
        ownership.assign(problem, staff_user, to_group=Group.objects.get(name=SYNC_ADMINISTRATORS))
    ownership.send_due_notices()
    assert [message.to for message in mailoutbox] == [["colleague@example.com"]]
    assert "Assigned to Sync administrators" in mailoutbox[0].body

    with django_capture_on_commit_callbacks(execute=True):
        ownership.take(problem_of(make_error(category=Category.CONFLICT)), colleague)
    assert not AssignmentNotice.objects.filter(user=colleague, pending_since__isnull=False)


def test_a_problem_no_longer_theirs_is_left_out_and_a_mail_failure_keeps_it_pending(
    staff_user, sync_user, sent, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    kept = problem_of(make_error(category=Category.CONFLICT, message="Kept"))
    given_back = problem_of(make_error(category=Category.CONFLICT, message="Given back"))
    with django_capture_on_commit_callbacks(execute=True):
        ownership.assign(kept, staff_user, to_user=sync_user)
        ownership.assign(given_back, staff_user, to_user=sync_user)
    ownership.unassign(given_back, staff_user)

    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):
        raise OSError("the mail server is down")

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    with pytest.raises(OSError):
        ownership.send_due_notices()
    assert AssignmentNotice.objects.get(user=sync_user).pending_since is not None
    monkeypatch.undo()
    assert ownership.send_due_notices() == 1
    assert "Kept" in mailoutbox[0].body and "Given back" not in mailoutbox[0].body


def test_a_notice_claimed_by_a_worker_that_died_is_sent_after_its_lease(
    staff_user, sync_user, sent, mailoutbox, django_capture_on_commit_callbacks, settings
):
    first, second = (
        problem_of(make_error(category=Category.CONFLICT, message=f"Conflict {n}"))
        for n in ("one", "two")
    )
    with django_capture_on_commit_callbacks(execute=True):
        ownership.assign(first, staff_user, to_user=sync_user)
    now = timezone.now()
    assert list(ownership.claim_due_notices(now)) == [sync_user.pk]  # and the worker dies
    with django_capture_on_commit_callbacks(execute=True):
        ownership.assign(second, staff_user, to_user=sync_user)

    assert ownership.send_due_notices(now) == 0  # still leased to the dead worker
    assert ownership.send_due_notices(now + timedelta(seconds=settings.ALERT_LEASE_SECONDS)) == 1
    (message,) = mailoutbox
    assert "Conflict one" in message.body and "Conflict two" in message.body
    assert AssignmentNotice.objects.get(user=sync_user).sending_until is None
    assert ownership.send_due_notices(now + timedelta(minutes=30)) == 0  # within the hour


# The discussion -------------------------------------------------------------------------


def test_a_comment_is_checked_kept_as_text_and_audited(sync_user):
    problem = problem_of(make_error(category=Category.CONFLICT))
    written = ownership.comment(problem, sync_user, "  Fixed the VAT number in the ERP.\n")
    assert (written.text, written.author, written.author_name) == (
        "Fixed the VAT number in the ERP.",
        sync_user,
        "fixer",
    )
    event = AuditEvent.objects.get(action=Action.PROBLEM_COMMENTED)
    assert event.summary == "Comment on the problem: Fixed the VAT number in the ERP."
    for text, reason in [
        ("   ", "Write something"),
        ("x" * 4001, "at most 4,000"),
        ("a\x00b", "NUL"),
        ("a\ud800b", "broken Unicode"),
        (42, "text"),
    ]:
        with pytest.raises(ownership.OwnershipRefused, match=reason):
            ownership.comment(problem, sync_user, text)
    assert ProblemComment.objects.count() == 1


def test_only_who_may_see_a_problem_comments_on_it(sync_user, plain_user, staff_user):
    setup = problem_of(whole_job_failure(make_mapping()))
    for who in (sync_user, plain_user):
        with pytest.raises(ownership.OwnershipRefused) as refused:
            ownership.comment(setup, who, "Me too")
        assert refused.value.forbidden
    ownership.comment(setup, staff_user, "Granted the privilege.")
    ownership.comment(setup, staff_user, "Checked again.")
    assert [c.text for c in ownership.comments_of(setup)] == [
        "Granted the privilege.",
        "Checked again.",
    ]


def test_a_mapping_deleted_leaves_its_problems_owned(staff_user, sync_user):
    mapping = make_mapping()
    rule(staff_user, mapping=mapping, user=sync_user)
    problem = problem_of(make_error(mapping=mapping, category=Category.CONFLICT))
    TableMapping.objects.filter(pk=mapping.pk).delete()
    problem.refresh_from_db()
    assert problem.assigned_user == sync_user and not OwnershipRule.objects.exists()


def test_the_sending_task_is_registered_and_scheduled_every_five_minutes(
    staff_user, sync_user, sent, mailoutbox, django_capture_on_commit_callbacks
):
    from django_celery_beat.models import PeriodicTask

    from errors import tasks
    from syncconsole.celery import app

    assert "errors.send_assignment_notices" in app.tasks
    scheduled = PeriodicTask.objects.get(name="Send assignment e-mails")
    assert (scheduled.task, scheduled.interval.every, scheduled.interval.period) == (
        "errors.send_assignment_notices",
        5,
        "minutes",
    )
    with django_capture_on_commit_callbacks(execute=True):
        ownership.assign(
            problem_of(make_error(category=Category.CONFLICT)), staff_user, to_user=sync_user
        )
    assert tasks.send_assignment_notices() == 1  # as the worker runs it
    assert len(mailoutbox) == 1
