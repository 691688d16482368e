"""A coupled record deleted on one side: someone deleted a customer's account in the CRM, and
the ERP's next change of the customer cannot be written. The Sync user checks the records,
then restores the account, deletes the customer that remains, or removes the coupling, from
the entry's page, the API or a bulk action; the entry and its problem close by themselves."""

import pytest
from django.test import Client
from django.urls import reverse

from api.models import ApiToken
from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import Category, ErrorGroup, Status, SyncError
from sync.models import SyncJob

from .closing import (
    act_on_the_problem,
    assert_closed_by,
    assert_resolved_by_person,
    run_queued_jobs,
)

pytestmark = pytest.mark.django_db
# Business Central requires If-Match on an update; "*" takes whatever version is there.
ANY_VERSION = {"If-Match": "*"}


@pytest.fixture
def deleted(demo_apps):
    """C00030's account is deleted in the CRM; its customer then changes in the ERP."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    coupling = Coupling.objects.get(mapping__name="CUSTOMER", source_record_id=str(customer.pk))
    with demo_apps.crm() as crm:
        assert crm.delete(f"accounts({coupling.destination_record_id})").status_code == 204
    with demo_apps.erp() as erp:
        erp.patch(f"customers({customer.pk})", json={"city": "Aarhus"}, headers=ANY_VERSION)
    job = demo_apps.run("CUSTOMER")
    entry = SyncError.objects.get(job=job, coupling=coupling)
    assert entry.category == Category.COUPLED_RECORD_DELETED
    return entry


def check_records(client, entry: SyncError) -> str:
    answer = client.post(
        reverse("errors:fix", args=[entry.pk]), {"action": "check_records"}, follow=True
    )
    return answer.content.decode()


def test_restore_from_the_entry_page(deleted, staff_client, celery_queue):
    # The failed write told the engine which record is gone.
    page = staff_client.get(deleted.get_absolute_url()).content.decode()
    assert "Restore the deleted record" in page and "destination record <strong>is gone" in page

    staff_client.post(reverse("errors:fix", args=[deleted.pk]), {"action": "restore"})
    (job,) = run_queued_jobs()

    assert (job.status, job.inserted, job.failed) == (SyncJob.Status.SUCCEEDED, 1, 0)
    coupling = Coupling.objects.get(pk=deleted.coupling_id)
    restored = CrmAccount.objects.get(pk=coupling.destination_record_id)
    assert (restored.account_number, restored.city) == ("C00030", "Aarhus")
    assert_closed_by(deleted, job)


def test_delete_the_remaining_record_through_the_api(deleted, staff_user):
    _, key = ApiToken.issue(staff_user, "journey")
    client = Client(headers={"Authorization": f"Bearer {key}"})
    url = reverse("api:error_fixes", args=[deleted.pk])
    checked = client.post(url, {"fix": "check_records"}, content_type="application/json")
    assert checked.json()["gone"] == {"source": 0, "destination": 1}
    offered = [fix["fix"] for fix in client.get(url).json()["fixes"]]
    assert offered == [
        "retry",
        "to_destination",
        "from_destination",
        "remove_coupling",
        "check_records",
        "restore",
        "delete_record",
    ]
    answer = client.post(url, {"fix": "delete_record"}, content_type="application/json")

    assert answer.status_code == 200, answer.content
    assert answer.json()["resolved"] == 1 and answer.json()["job"] is None
    assert not ErpCustomer.objects.filter(number="C00030").exists()
    event = assert_resolved_by_person(deleted, staff_user, AuditEvent.Action.RECORD_DELETED)
    assert event.details["record_id"] == deleted.source_record_id
    assert ErrorGroup.objects.get(pk=deleted.group_id).status == Status.RESOLVED


def test_remove_the_coupling(deleted, staff_client, staff_user):
    coupling = deleted.coupling
    assert "Gone: destination record." in check_records(staff_client, deleted)
    answer = staff_client.post(
        reverse("errors:fix", args=[deleted.pk]), {"action": "remove_coupling"}, follow=True
    )
    assert "The coupling is removed; 1 open entry resolved." in answer.content.decode()
    assert not Coupling.objects.filter(pk=coupling.pk).exists()
    assert ErpCustomer.objects.filter(number="C00030").exists()
    assert_resolved_by_person(deleted, staff_user, AuditEvent.Action.COUPLING_REMOVED)
    assert ErrorGroup.objects.get(pk=deleted.group_id).status == Status.RESOLVED


def test_a_bulk_restore_of_the_problem_when_the_coupling_was_skipped(
    deleted, demo_apps, staff_client, celery_queue
):
    """The next job fails the same way and the coupling is left out; a bulk Restore of the
    whole problem asks the apps which side is gone and restores it."""
    with demo_apps.erp() as erp:
        erp.patch(
            f"customers({deleted.source_record_id})", json={"city": "Odense"}, headers=ANY_VERSION
        )
    demo_apps.run("CUSTOMER")
    coupling = Coupling.objects.get(pk=deleted.coupling_id)
    assert coupling.is_skipped

    act_on_the_problem(staff_client, "restore", deleted.group_id)
    (job,) = run_queued_jobs()

    assert (job.inserted, job.failed) == (1, 0)
    assert CrmAccount.objects.get(account_number="C00030").city == "Odense"
    coupling.refresh_from_db()
    assert not coupling.is_skipped
    assert_closed_by(deleted, job)
    assert not SyncError.objects.filter(coupling=coupling, status=Status.OPEN).exists()
