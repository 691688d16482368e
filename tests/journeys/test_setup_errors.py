"""Setup errors of the integration user, each fixed where an administrator fixes it (the
user's page in the CRM): the entry and its problem close by themselves, either when the next
job of the mapping gets past the point where it failed or when Test connection ("Check now")
finds the cause gone, whichever comes first, with an audit event that names what closed it."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from demo.models import CrmSystemUser
from demo.security import role_named
from demo.seed import INTEGRATION_USER
from errors.models import Category, ErrorGroup, Status, SyncError
from sync.models import SyncJob

pytestmark = pytest.mark.django_db
HEALTHY = {"roles": ["Integration Administrator"], "is_disabled": False,
           "password_change_required": False}  # fmt: skip

# What goes wrong, in which mapping, the entry's category and words, and the fix.
CAUSES = {
    "a missing privilege": (
        {"roles": ["Integration User"]}, "CURRENCY", Category.PERMISSION,
        "is missing prvCreateTransactionCurrency privilege",
    ),
    "a System Administrator": (
        {"roles": ["System Administrator", "Integration Administrator"]}, "CUSTOMER",
        Category.INTEGRATION_USER, "System Administrator",
    ),
    "a password to change": (
        {"password_change_required": True}, "CUSTOMER", Category.AUTHENTICATION,
        "password must be changed",
    ),
    "a disabled user": (
        {"is_disabled": True}, "CUSTOMER", Category.INTEGRATION_USER, "is disabled",
    ),
}  # fmt: skip


def edit_the_integration_user_in_the_crm(client, admin_user, **values) -> None:
    """As the CRM's administrator does, on the user's page in the CRM: the roles are those of
    the user's business unit with these names."""
    user = CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    names = values.get("roles")
    roles = (
        [role_named(name, user.business_unit).pk for name in names]
        if names is not None
        else list(user.roles.values_list("pk", flat=True))
    )
    form = {
        "full_name": user.full_name,
        "domain_name": user.domain_name,
        "business_unit": str(user.business_unit_id),
        "access_mode": str(user.access_mode),
        "roles": [str(pk) for pk in roles],
    }
    for flag in ("is_licensed", "is_disabled", "password_change_required"):
        if values.get(flag, getattr(user, flag)):
            form[flag] = "on"
    client.force_login(admin_user)
    answer = client.post(reverse("demo:record", args=["crm", "systemusers", user.pk]), form)
    assert answer.status_code == 302, answer.content.decode()[:2000]


@pytest.fixture(params=list(CAUSES))
def failed(request, demo_apps, client, admin_user):
    """The cause in place and one job of its mapping failed with an open entry."""
    breaks, mapping, category, words = CAUSES[request.param]
    edit_the_integration_user_in_the_crm(client, admin_user, **{**HEALTHY, **breaks})
    job = demo_apps.run(mapping, SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.FAILED
    entry = SyncError.objects.get(job=job)
    assert (entry.category, entry.status) == (category, Status.OPEN)
    assert words in entry.message
    edit_the_integration_user_in_the_crm(client, admin_user, **HEALTHY)  # the fix
    return entry


def assert_resolved(entry: SyncError, note: str, by=None) -> AuditEvent:
    entry.refresh_from_db()
    assert entry.status == Status.RESOLVED, entry.status_note
    assert entry.status_note == note
    assert entry.status_changed_by == by
    assert ErrorGroup.objects.get(pk=entry.group_id).status == Status.RESOLVED
    return AuditEvent.objects.filter(action=AuditEvent.Action.ENTRIES_RESOLVED).latest("pk")


def test_the_next_job_of_the_mapping_closes_it(failed, demo_apps):
    job = demo_apps.run(failed.mapping.name, SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.SUCCEEDED
    event = assert_resolved(
        failed, f"Resolved by itself: job #{job.pk} of the mapping got past this point."
    )
    assert (event.actor, event.actor_label) == (None, f"sync engine (job #{job.pk})")
    assert (event.details["ids"], event.details["job"]) == ([failed.pk], job.pk)


def test_check_now_closes_it_before_any_job(failed, demo_apps, staff_client, staff_user):
    health = reverse("sync:connection_health", args=[demo_apps.connection.pk])
    page = staff_client.post(health, follow=True).content.decode()
    assert "nothing blocks the synchronization" in page
    check = demo_apps.connection.checks.first()
    event = assert_resolved(
        failed,
        f"Resolved by itself: the setup health check #{check.pk} found the cause gone.",
        by=staff_user,  # who pressed Check now
    )
    assert event.actor == staff_user


def test_check_now_leaves_it_open_while_the_cause_is_there(demo_apps, client, admin_user,
                                                           staff_client):  # fmt: skip
    edit_the_integration_user_in_the_crm(client, admin_user, **{**HEALTHY, "is_disabled": True})
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    staff_client.post(reverse("sync:connection_health", args=[demo_apps.connection.pk]))
    assert SyncError.objects.get(job=job).status == Status.OPEN


def run_one_direction(mapping_name: str, demo_apps) -> SyncJob:
    from sync import engine
    from sync.services import create_job

    job = create_job(demo_apps.mapping(mapping_name), kind=SyncJob.Kind.FULL,
                     trigger=SyncJob.Trigger.USER, direction="from_destination")  # fmt: skip
    return engine.run_job(job.pk)


def test_a_job_of_one_direction_leaves_a_privilege_of_the_other_open(demo_apps, client, admin_user):
    # The Integration User role may read products, not create them: writing them fails.
    edit_the_integration_user_in_the_crm(
        client, admin_user, **{**HEALTHY, "roles": ["Integration User"]}
    )
    failed = SyncError.objects.get(job=demo_apps.run("ITEM-PRODUCT", SyncJob.Kind.FULL))
    assert failed.category == Category.PERMISSION, failed.message

    # Reading products from the CRM into the ERP needs only what the user holds.
    assert run_one_direction("ITEM-PRODUCT", demo_apps).status == SyncJob.Status.SUCCEEDED
    failed.refresh_from_db()
    assert failed.status == Status.OPEN


def test_a_job_of_one_direction_closes_what_any_job_checks(demo_apps, client, admin_user):
    edit_the_integration_user_in_the_crm(client, admin_user, **{**HEALTHY, "is_disabled": True})
    failed = SyncError.objects.get(job=demo_apps.run("CUSTOMER", SyncJob.Kind.FULL))
    edit_the_integration_user_in_the_crm(client, admin_user, **HEALTHY)

    job = run_one_direction("CUSTOMER", demo_apps)
    assert_resolved(
        failed, f"Resolved by itself: job #{job.pk} of the mapping got past this point."
    )
