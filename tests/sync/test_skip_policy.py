"""Skip policies: how many identical failures in a row skip a coupling, per mapping, and per
problem where one sets its own; and the skipped coupling says which policy skipped it."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import CrmAccount
from errors import policies
from errors.models import ErrorGroup, SyncError
from sync.models import SyncJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]
TOO_LONG = "+45 3333 4444 ext. 5555 (reception)"


def break_record(demo_apps, number: str = "C00030") -> Coupling:
    """Couple the customers, then give one account a phone number the ERP refuses: each job
    from then on fails it the same way."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    account = CrmAccount.objects.get(account_number=number)
    account.telephone = TOO_LONG
    account.save()
    return Coupling.objects.get(destination_record_id=account.pk)


def fail_once(demo_apps, coupling: Coupling) -> Coupling:
    job = demo_apps.run("CUSTOMER")
    assert job.failed == 1, job.message
    coupling.refresh_from_db()
    return coupling


def problem_of(coupling: Coupling) -> ErrorGroup:
    return SyncError.objects.filter(coupling=coupling).latest("created_at").group


def test_the_default_policy_skips_after_the_same_failure_in_two_jobs(demo_apps):
    coupling = break_record(demo_apps)
    assert demo_apps.mapping("CUSTOMER").skip_after_failures == 2
    assert not fail_once(demo_apps, coupling).is_skipped
    coupling = fail_once(demo_apps, coupling)
    assert (coupling.is_skipped, coupling.skipped_after, coupling.skipped_by_problem) == (
        True,
        2,
        None,
    )


def test_a_mapping_with_threshold_five_skips_only_after_the_fifth_identical_failure(demo_apps):
    mapping = demo_apps.mapping("CUSTOMER")
    mapping.skip_after_failures = 5
    mapping.save()
    coupling = break_record(demo_apps)
    for failures in range(1, 5):
        coupling = fail_once(demo_apps, coupling)
        assert (coupling.failure_count, coupling.is_skipped) == (failures, False)
    coupling = fail_once(demo_apps, coupling)
    assert (coupling.failure_count, coupling.is_skipped) == (5, True)
    assert coupling.skip_policy == (
        "Skipped after 5 identical failures (policy of the CUSTOMER mapping)"
    )
    # Skipped, the record is left out of the next job.
    job = demo_apps.run("CUSTOMER")
    assert job.failed == 0
    assert job.skipped > 0


def test_a_problem_s_override_of_three_wins_over_the_mapping_s_five(demo_apps, staff_user):
    mapping = demo_apps.mapping("CUSTOMER")
    mapping.skip_after_failures = 5
    mapping.save()
    coupling = break_record(demo_apps)
    coupling = fail_once(demo_apps, coupling)
    problem = problem_of(coupling)
    policies.set_skip_after(problem, staff_user, 3)
    assert not fail_once(demo_apps, coupling).is_skipped
    coupling = fail_once(demo_apps, coupling)
    assert (coupling.failure_count, coupling.is_skipped) == (3, True)
    assert (coupling.skipped_after, coupling.skipped_by_problem) == (3, problem.pk)
    assert coupling.skip_policy == (
        f"Skipped after 3 identical failures (policy of problem #{problem.pk})"
    )


def test_a_problem_s_override_may_skip_sooner_than_the_mapping_s_default(demo_apps, staff_user):
    coupling = break_record(demo_apps)
    fail_once(demo_apps, coupling)
    problem = problem_of(coupling)
    policies.set_skip_after(problem, staff_user, 20)
    for _ in range(3):
        coupling = fail_once(demo_apps, coupling)
    assert (coupling.failure_count, coupling.is_skipped) == (4, False)


def test_setting_and_clearing_the_override_is_audited(demo_apps, staff_user):
    coupling = break_record(demo_apps)
    fail_once(demo_apps, coupling)
    problem = problem_of(coupling)
    problem = policies.set_skip_after(problem, staff_user, 3)
    assert problem.skip_after_failures == 3
    problem = policies.set_skip_after(problem, staff_user, None)
    assert problem.skip_after_failures is None
    set_it, cleared = AuditEvent.objects.filter(
        action=AuditEvent.Action.PROBLEM_POLICY_CHANGED
    ).order_by("id")
    assert (set_it.actor, set_it.object_type, set_it.object_id) == (
        staff_user,
        "problem",
        str(problem.pk),
    )
    assert set_it.summary == "Skip policy of the problem: after 3 identical failures"
    assert set_it.details == {"skip_after_failures": 3, "previous": None}
    assert cleared.details == {"skip_after_failures": None, "previous": 3}
    # The same value again changes nothing, and records nothing.
    policies.set_skip_after(problem, staff_user, None)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PROBLEM_POLICY_CHANGED).count() == 2


@pytest.mark.parametrize("failures", [0, 21, -1, True, "3"])
def test_the_service_refuses_a_threshold_out_of_range(demo_apps, staff_user, failures):
    coupling = break_record(demo_apps)
    fail_once(demo_apps, coupling)
    problem = problem_of(coupling)
    with pytest.raises(policies.PolicyRefused, match="from 1 to 20"):
        policies.set_skip_after(problem, staff_user, failures)
    problem.refresh_from_db()
    assert problem.skip_after_failures is None
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PROBLEM_POLICY_CHANGED).exists()


def test_the_problem_s_page_sets_the_override_and_the_skipped_page_names_it(
    demo_apps, staff_client
):
    coupling = break_record(demo_apps)
    fail_once(demo_apps, coupling)
    problem = problem_of(coupling)
    page = reverse("errors:list") + f"?group={problem.pk}"
    shown = staff_client.get(page).content.decode()
    assert "policy of the CUSTOMER mapping" in shown
    assert reverse("errors:group_policy", args=[problem.pk]) in shown

    refused = staff_client.post(
        reverse("errors:group_policy", args=[problem.pk]),
        {"skip_after_failures": "25", "next": page},
        follow=True,
    )
    assert "from 1 to 20" in refused.content.decode()
    response = staff_client.post(
        reverse("errors:group_policy", args=[problem.pk]),
        {"skip_after_failures": "1", "next": page},
        follow=True,
    )
    assert "skipped after 1 identical failures in a row" in response.content.decode()
    problem.refresh_from_db()
    assert problem.skip_after_failures == 1

    coupling = fail_once(demo_apps, coupling)
    assert coupling.is_skipped
    skipped = staff_client.get(reverse("sync:skipped")).content.decode()
    assert f"Skipped after 1 failure (policy of problem #{problem.pk})" in skipped


def test_a_sync_user_may_not_set_a_problem_s_policy(demo_apps, sync_user_client):
    coupling = break_record(demo_apps)
    fail_once(demo_apps, coupling)
    problem = problem_of(coupling)
    shown = sync_user_client.get(reverse("errors:list") + f"?group={problem.pk}").content.decode()
    assert "policy of the CUSTOMER mapping" in shown
    assert reverse("errors:group_policy", args=[problem.pk]) not in shown
    response = sync_user_client.post(
        reverse("errors:group_policy", args=[problem.pk]), {"skip_after_failures": "3"}
    )
    assert response.status_code == 403
    problem.refresh_from_db()
    assert problem.skip_after_failures is None


def test_retry_forgets_the_policy_that_skipped_the_coupling(demo_apps, staff_client):
    coupling = break_record(demo_apps)
    fail_once(demo_apps, coupling)
    coupling = fail_once(demo_apps, coupling)
    assert coupling.skipped_after == 2
    staff_client.post(
        reverse("sync:skipped_action"), {"action": "retry", "coupling": [coupling.pk]}
    )
    coupling.refresh_from_db()
    assert (coupling.is_skipped, coupling.skipped_after, coupling.skip_policy) == (False, None, "")
