"""A lookup privilege taken away: an administrator takes Append or Append To away from the
integration user's role on the role's page in the CRM; the setup check blocks the next job of
the mapping that sets the lookup, with one permission entry naming the privilege, the table and
the fix; the administrator gives it back on the same page, and the next job of the mapping
closes the entry by itself and sets the lookups."""

import json

import pytest
from django.urls import reverse

from demo.models import CrmAccount, CrmContact, CrmRole
from demo.security import GLOBAL, role_named
from errors.models import Category, Status, SyncError
from errors.remedies import remedy_for
from sync.models import SyncJob

from .closing import assert_closed_by

pytestmark = pytest.mark.django_db

# The privilege taken away, the mapping whose lookup needs it, and how the fix names it.
CAUSES = {
    "Append To on Account": ("prvAppendToAccount", "CONTACT"),
    "Append on Contact": ("prvAppendContact", "CONTACT"),
    "Append To on Transaction Currency": ("prvAppendToTransactionCurrency", "CUSTOMER"),
}


def edit_the_role_in_the_crm(client, admin_user, role: CrmRole, privileges: dict) -> None:
    """As the CRM's administrator does, on the role's page: its copies in the other business
    units follow it."""
    form = {
        "name": role.name,
        "business_unit": str(role.business_unit_id),
        "role_template_id": "",
        "parent_root_role": str(role.parent_root_role_id),
        "privileges": json.dumps(privileges),
    }
    client.force_login(admin_user)
    answer = client.post(reverse("demo:record", args=["crm", "roles", role.pk]), form)
    assert answer.status_code == 302, answer.content.decode()[:2000]


@pytest.mark.parametrize("words", list(CAUSES))
def test_a_lookup_privilege_taken_away_and_given_back(demo_apps, client, admin_user, words):
    privilege, mapping = CAUSES[words]
    if mapping == "CONTACT":
        # The companies the contacts refer to are in the CRM already.
        assert demo_apps.run("CUSTOMER", SyncJob.Kind.FULL).status == SyncJob.Status.SUCCEEDED
    role = role_named("Integration User")
    granted = dict(role.privileges)
    assert granted[privilege] == GLOBAL
    edit_the_role_in_the_crm(
        client, admin_user, role, {k: v for k, v in granted.items() if k != privilege}
    )

    blocked = demo_apps.run(mapping, SyncJob.Kind.FULL)
    assert blocked.status == SyncJob.Status.FAILED
    assert blocked.records_read == 0  # the setup check stopped it before anything was read
    entry = SyncError.objects.get(job=blocked)
    assert (entry.category, entry.status) == (Category.PERMISSION, Status.OPEN)
    assert f"is missing {privilege} privilege" in entry.message
    assert f"mapping {mapping} needs it, so the job did not start" in entry.message
    fix = f"ive the integration user's security role {words}, at the Organization level"
    assert f"g{fix}" in entry.detail  # the setup check's finding
    assert f"G{fix}" in " ".join(remedy_for(entry).steps)  # the entry's cause and fix

    edit_the_role_in_the_crm(client, admin_user, role, granted)  # the fix
    job = demo_apps.run(mapping, SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    assert_closed_by(entry, job)
    # The lookups are set now.
    if mapping == "CONTACT":
        assert CrmContact.objects.filter(parent_account__isnull=False).count() == job.inserted > 0
    else:
        assert not CrmAccount.objects.filter(transaction_currency__isnull=True).exists()
