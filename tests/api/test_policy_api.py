"""A problem's skip policy through the API, and the coupling that says which policy skipped
it: the same service as the problem's page."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import CrmAccount
from errors.models import SyncError
from sync.models import SyncJob

pytestmark = pytest.mark.django_db


def policy(pk: int) -> str:
    return reverse("api:problem_policy", args=[pk])


@pytest.fixture
def failing(demo_apps):
    """A coupling whose record failed once; its problem."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    account = CrmAccount.objects.get(account_number="C00030")
    account.telephone = "+45 3333 4444 ext. 5555 (reception)"
    account.save()
    demo_apps.run("CUSTOMER")
    coupling = Coupling.objects.get(destination_record_id=account.pk)
    return coupling, SyncError.objects.filter(coupling=coupling).latest("created_at").group


def test_set_and_clear_a_problem_s_policy(admin_api, staff_user, failing):
    _, problem = failing
    response = admin_api.post(
        policy(problem.pk), {"skip_after_failures": 3}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["skip_after_failures"] == 3
    assert (
        admin_api.get(reverse("api:problem", args=[problem.pk])).json()["skip_after_failures"] == 3
    )
    event = AuditEvent.objects.get(action=AuditEvent.Action.PROBLEM_POLICY_CHANGED)
    assert (event.actor, event.object_id) == (staff_user, str(problem.pk))

    response = admin_api.post(
        policy(problem.pk), {"skip_after_failures": None}, content_type="application/json"
    )
    assert (response.status_code, response.json()["skip_after_failures"]) == (200, None)


@pytest.mark.parametrize("body", [{"skip_after_failures": 0}, {"skip_after_failures": 21},
                                  {"skip_after_failures": "many"}, {"other": 3},
                                  {"transient_retries": 11}, {"entry_logging": "x"}])  # fmt: skip
def test_a_policy_out_of_range_is_refused(admin_api, failing, body):
    _, problem = failing
    response = admin_api.post(policy(problem.pk), body, content_type="application/json")
    assert response.status_code == 400
    problem.refresh_from_db()
    assert problem.skip_after_failures is None


def test_only_sync_administrators_set_a_policy(user_api, failing):
    _, problem = failing
    response = user_api.post(
        policy(problem.pk), {"skip_after_failures": 3}, content_type="application/json"
    )
    assert response.status_code == 403


def test_the_coupling_says_which_policy_skipped_it(admin_api, demo_apps, failing):
    coupling, problem = failing
    mapping = demo_apps.mapping("CUSTOMER")
    listed = admin_api.get(reverse("api:mappings")).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    (row,) = [row for row in rows if row["id"] == mapping.pk]
    assert (row["skip_after_failures"], row["transient_retries"], row["retry_delay_seconds"]) == (
        2,
        2,
        None,
    )
    admin_api.post(policy(problem.pk), {"skip_after_failures": 1}, content_type="application/json")
    demo_apps.run("CUSTOMER")
    found = admin_api.get(reverse("api:coupling", args=[coupling.pk])).json()
    assert (found["is_skipped"], found["skipped_after"], found["skipped_by_problem"]) == (
        True,
        1,
        problem.pk,
    )
    assert found["skip_policy"] == f"Skipped after 1 failure (policy of problem #{problem.pk})"
