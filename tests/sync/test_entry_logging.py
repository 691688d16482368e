"""The logging policy: every failed attempt of a record is an entry of its own (the default,
as the anchor logs them), or its open entry counts the attempts; per mapping, with a problem's
own policy in its place where it sets one."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import CrmAccount
from errors import policies
from errors.models import EntryLogging, ErrorGroup, Status, SyncError
from sync.models import SyncJob
from tests.api.conftest import token_client
from tests.sync.test_skip_policy import TOO_LONG, break_record

# The demo apps lack SEK in the CRM: a scheduled run would try its customer again too.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]


def set_mapping(demo_apps, **policy):
    mapping = demo_apps.mapping("CUSTOMER")
    for name, value in policy.items():
        setattr(mapping, name, value)
    mapping.save()
    return mapping


def fail(demo_apps) -> SyncJob:
    job = demo_apps.run("CUSTOMER")
    assert job.failed == 1, job.message
    return job


def entries_of(coupling: Coupling) -> list[SyncError]:
    return list(SyncError.objects.filter(coupling=coupling).order_by("created_at", "id"))


def test_by_default_every_attempt_is_an_entry(demo_apps):
    coupling = break_record(demo_apps)
    set_mapping(demo_apps, skip_after_failures=5)
    for _ in range(3):
        fail(demo_apps)
    entries = entries_of(coupling)
    assert [entry.attempts for entry in entries] == [1, 1, 1]
    assert entries[0].group.seen_total == 3


def test_once_with_a_count_keeps_one_entry_that_counts_the_attempts(demo_apps):
    coupling = break_record(demo_apps)
    set_mapping(demo_apps, skip_after_failures=5, entry_logging=EntryLogging.ONCE)
    jobs = [fail(demo_apps) for _ in range(4)]
    (entry,) = entries_of(coupling)
    assert (entry.attempts, entry.job_id, entry.last_attempt_job_id) == (4, jobs[0].pk, jobs[-1].pk)
    assert entry.status == Status.OPEN
    assert entry.last_attempt_at > entry.created_at
    problem = entry.group
    assert (problem.count, problem.seen_total) == (1, 4)
    assert problem.last_seen == entry.last_attempt_at
    # The fifth failure skips the coupling: the skip note is the latest attempt's message.
    fail(demo_apps)
    (entry,) = entries_of(coupling)
    assert entry.attempts == 5
    assert "will be skipped" in entry.message
    coupling.refresh_from_db()
    assert coupling.is_skipped


def test_a_resolved_entry_is_not_counted_on(demo_apps):
    coupling = break_record(demo_apps)
    set_mapping(demo_apps, skip_after_failures=5, entry_logging=EntryLogging.ONCE)
    fail(demo_apps)
    fail(demo_apps)
    account = CrmAccount.objects.get(pk=coupling.destination_record_id)
    account.telephone = "+45 3333 4444"
    account.save()
    assert demo_apps.run("CUSTOMER").failed == 0
    (first,) = entries_of(coupling)
    assert (first.status, first.attempts) == (Status.RESOLVED, 2)
    account.telephone = TOO_LONG
    account.save()
    fail(demo_apps)
    first_again, second = entries_of(coupling)
    assert (first_again.attempts, second.attempts, second.status) == (2, 1, Status.OPEN)


def test_a_problem_s_policy_wins_over_the_mapping_s_and_can_be_cleared(demo_apps, staff_user):
    coupling = break_record(demo_apps)
    set_mapping(demo_apps, skip_after_failures=10)
    fail(demo_apps)
    problem = entries_of(coupling)[0].group
    policies.set_entry_logging(problem, staff_user, EntryLogging.ONCE)
    fail(demo_apps)
    fail(demo_apps)
    assert [entry.attempts for entry in entries_of(coupling)] == [3]
    policies.set_entry_logging(problem, staff_user, "")
    fail(demo_apps)
    assert [entry.attempts for entry in entries_of(coupling)] == [3, 1]
    set_it, cleared = AuditEvent.objects.filter(
        action=AuditEvent.Action.PROBLEM_POLICY_CHANGED
    ).order_by("id")
    assert set_it.summary == "Logging policy of the problem: one entry with a count of attempts"
    assert (set_it.actor, set_it.object_id) == (staff_user, str(problem.pk))
    assert cleared.details == {"entry_logging": "", "previous": "once"}


def test_the_service_refuses_an_unknown_policy(demo_apps, staff_user):
    coupling = break_record(demo_apps)
    fail(demo_apps)
    problem = entries_of(coupling)[0].group
    with pytest.raises(policies.PolicyRefused, match="every_attempt, once"):
        policies.set_entry_logging(problem, staff_user, "sometimes")
    problem.refresh_from_db()
    assert problem.entry_logging == ""
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PROBLEM_POLICY_CHANGED).exists()


def test_pages_set_and_show_the_policy(demo_apps, staff_client):
    coupling = break_record(demo_apps)
    mapping = set_mapping(demo_apps, skip_after_failures=5)
    fail(demo_apps)
    problem = entries_of(coupling)[0].group
    page = reverse("errors:list") + f"?group={problem.pk}"
    shown = staff_client.get(page).content.decode()
    assert "An entry for every attempt (policy of the CUSTOMER mapping)" in shown
    answer = staff_client.post(
        reverse("errors:group_policy", args=[problem.pk]),
        {"skip_after_failures": "", "entry_logging": "once"},
        follow=True,
    )
    assert "one entry with a count of attempts" in answer.content.decode()
    problem.refresh_from_db()
    assert (problem.entry_logging, problem.skip_after_failures) == ("once", None)
    shown = staff_client.get(page).content.decode()
    assert "One entry with a count of attempts (this problem's policy)" in shown
    fail(demo_apps)
    (entry,) = entries_of(coupling)
    shown = staff_client.get(reverse("errors:detail", args=[entry.pk])).content.decode()
    assert 'id="attempts"><strong>2</strong> failed attempts' in shown
    listed = staff_client.get(reverse("errors:list")).content.decode()
    assert 'title="2 failed attempts counted on this entry">×2</span>' in listed
    # A value the choices do not have is refused with a message, and nothing changes.
    answer = staff_client.post(
        reverse("errors:group_policy", args=[problem.pk]), {"entry_logging": "x"}, follow=True
    )
    assert "Log entries by one of" in answer.content.decode()
    # The mapping's page shows its policies.
    shown = staff_client.get(reverse("sync:mapping_health", args=[mapping.pk])).content.decode()
    assert "A coupling after 5 identical failures in a row" in shown
    assert 'id="policy-logging">An entry for every attempt' in shown


def test_the_api_sets_the_policy_and_shows_the_attempts(demo_apps, staff_user):
    api = token_client(staff_user)
    coupling = break_record(demo_apps)
    set_mapping(demo_apps, skip_after_failures=5)
    fail(demo_apps)
    problem = entries_of(coupling)[0].group
    url = reverse("api:problem_policy", args=[problem.pk])

    def post(body):
        return api.post(url, body, content_type="application/json")

    assert post({"entry_logging": "sometimes"}).status_code == 400
    assert api.post(url, "", content_type="application/json").status_code == 400  # no body
    # Nothing sent, nothing changed.
    assert post({}).json()["entry_logging"] == ""
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PROBLEM_POLICY_CHANGED).exists()
    answer = post({"entry_logging": "once"})
    assert answer.status_code == 200, answer.content
    assert (answer.json()["entry_logging"], answer.json()["skip_after_failures"]) == ("once", None)
    fail(demo_apps)
    (entry,) = entries_of(coupling)
    shown = api.get(reverse("api:error", args=[entry.pk])).json()
    assert (shown["attempts"], shown["last_attempt_job_id"]) == (2, entry.last_attempt_job_id)
    mappings = api.get(reverse("api:mappings")).json()
    assert {m["name"]: m["entry_logging"] for m in mappings}["CUSTOMER"] == "every_attempt"
    assert ErrorGroup.objects.get(pk=problem.pk).entry_logging == "once"


def test_the_problem_s_page_and_the_api_set_its_retry_policy(demo_apps, staff_client, staff_user):
    coupling = break_record(demo_apps)
    fail(demo_apps)
    problem = entries_of(coupling)[0].group
    page = reverse("errors:list") + f"?group={problem.pk}"
    shown = staff_client.get(page).content.decode()
    assert "2 later runs try the record again before it is logged" in shown
    assert "(policy of the CUSTOMER mapping)" in shown
    staff_client.post(
        reverse("errors:group_policy", args=[problem.pk]),
        {"transient_retries": "5", "retry_delay_seconds": "120"},
    )
    problem.refresh_from_db()
    assert (problem.transient_retries, problem.retry_delay_seconds) == (5, 120)
    shown = staff_client.get(page).content.decode()
    assert "5 later runs try the record again before it is logged, the first after 120 s" in shown
    refused = staff_client.post(
        reverse("errors:group_policy", args=[problem.pk]),
        {"transient_retries": "many", "retry_delay_seconds": ""},
        follow=True,
    )
    assert "Automatic retries: a whole number" in refused.content.decode()
    api = token_client(staff_user)
    answer = api.post(
        reverse("api:problem_policy", args=[problem.pk]),
        {"retry_delay_seconds": None},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    assert (answer.json()["transient_retries"], answer.json()["retry_delay_seconds"]) == (5, None)
    too_many = api.post(
        reverse("api:problem_policy", args=[problem.pk]),
        {"transient_retries": 11},
        content_type="application/json",
    )
    assert too_many.status_code == 400


def test_a_job_s_page_leads_to_the_entries_it_attempted_again(demo_apps, staff_client):
    """The job's failures counted on an earlier job's entry are no entry of its own: its page
    names them beside its own errors, and the list finds them by that job."""
    coupling = break_record(demo_apps)
    set_mapping(demo_apps, skip_after_failures=5, entry_logging=EntryLogging.ONCE)
    first, later = fail(demo_apps), fail(demo_apps)
    (entry,) = entries_of(coupling)
    page = staff_client.get(reverse("sync:job", args=[later.pk])).content.decode()
    assert (
        f'href="/errors/?attempted_in={later.pk}">1 entry of earlier jobs attempted again' in page
    )
    listed = staff_client.get(reverse("errors:list"), {"attempted_in": later.pk}).content.decode()
    assert f'href="/errors/{entry.pk}/"' in listed
    assert (
        f'href="/errors/{entry.pk}/"'
        not in staff_client.get(reverse("errors:list"), {"job": later.pk}).content.decode()
    )
    # The first job wrote the entry: nothing of an earlier job was attempted again in it.
    page = staff_client.get(reverse("sync:job", args=[first.pk])).content.decode()
    assert 'id="attempted-again"' not in page
