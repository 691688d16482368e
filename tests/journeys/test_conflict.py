"""A conflict: a customer changed in both apps since they last synchronized, so the engine
writes neither. The Sync user decides which side wins with Synchronize, on the entry's page,
through the API or for the whole problem; the entry and its problem close by themselves."""

import pytest
from django.test import Client
from django.urls import reverse

from api.models import ApiToken
from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import Category, SyncError
from sync.models import SyncJob

from .closing import act_on_the_problem, assert_closed_by, run_queued_jobs

pytestmark = pytest.mark.django_db
# Business Central requires If-Match on an update; "*" takes whatever version is there.
ANY_VERSION = {"If-Match": "*"}


@pytest.fixture
def conflict(demo_apps):
    """C00030 changed in the CRM (Bergen) and in the ERP (Malmö) since the last sync."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    coupling = Coupling.objects.get(mapping__name="CUSTOMER", source_record_id=str(customer.pk))
    with demo_apps.crm() as crm:
        crm.patch(f"accounts({coupling.destination_record_id})", json={"address1_city": "Bergen"})
    with demo_apps.erp() as erp:
        erp.patch(f"customers({customer.pk})", json={"city": "Malmö"}, headers=ANY_VERSION)
    job = demo_apps.run("CUSTOMER")
    entry = SyncError.objects.get(job=job, coupling=coupling)
    assert entry.category == Category.CONFLICT
    return entry


def cities(entry: SyncError) -> tuple[str, str]:
    coupling = Coupling.objects.get(pk=entry.coupling_id)
    return (
        ErpCustomer.objects.get(pk=coupling.source_record_id).city,
        CrmAccount.objects.get(pk=coupling.destination_record_id).city,
    )


def test_the_crm_wins_from_the_entry_page(conflict, staff_client, celery_queue):
    page = staff_client.get(conflict.get_absolute_url()).content.decode()
    assert "Synchronize Dynamics 365 Sales → Business Central" in page
    staff_client.post(reverse("errors:fix", args=[conflict.pk]), {"action": "from_destination"})
    (job,) = run_queued_jobs()
    assert (job.direction, job.overwrite, job.modified, job.failed) == (
        "from_destination",
        True,
        1,
        0,
    )
    assert cities(conflict) == ("Bergen", "Bergen")
    assert_closed_by(conflict, job)


def test_the_erp_wins_through_the_api(conflict, sync_user):
    _, key = ApiToken.issue(sync_user, "journey")
    client = Client(headers={"Authorization": f"Bearer {key}"})
    answer = client.post(
        reverse("api:error_fixes", args=[conflict.pk]),
        {"fix": "to_destination"},
        content_type="application/json",
    )
    assert answer.status_code == 202, answer.content
    (job,) = run_queued_jobs()
    assert answer.json()["job"] == job.pk
    assert cities(conflict) == ("Malmö", "Malmö")
    assert_closed_by(conflict, job)


def test_retry_keeps_it_open_while_both_sides_still_differ(conflict, staff_client, celery_queue):
    """Retry goes by the mapping's rules, which do not pick a side: the conflict stays."""
    staff_client.post(reverse("errors:fix", args=[conflict.pk]), {"action": "retry"})
    (job,) = run_queued_jobs()
    assert job.failed == 1
    conflict.refresh_from_db()
    assert conflict.status == "open"
    assert cities(conflict) == ("Malmö", "Bergen")


def test_a_skipped_conflict_settled_for_the_whole_problem(
    conflict, demo_apps, staff_client, celery_queue
):
    """The conflict fails the next job too and its coupling is left out; Synchronize for
    the whole problem takes it back and settles it."""
    demo_apps.run("CUSTOMER")
    coupling = Coupling.objects.get(pk=conflict.coupling_id)
    assert coupling.is_skipped

    act_on_the_problem(staff_client, "to_destination", conflict.group_id)
    (job,) = run_queued_jobs()

    assert cities(conflict) == ("Malmö", "Malmö")
    coupling.refresh_from_db()
    assert not coupling.is_skipped
    assert_closed_by(conflict, job)
    assert not SyncError.objects.filter(coupling=coupling, status="open").exists()
