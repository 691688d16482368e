"""Coupled Data Synchronization Errors: skipped couplings, Retry, Retry All, Find for Deleted."""

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import SyncError
from sync.models import SyncJob
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db
TOO_LONG = "+45 3333 4444 ext. 5555 (reception)"


def skip(demo_apps, *numbers: str) -> list[Coupling]:
    """Make the couplings of these customers fail twice in a row, so they are skipped."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    accounts = CrmAccount.objects.filter(account_number__in=numbers)
    for account in accounts:
        account.telephone = TOO_LONG
        account.save()
    demo_apps.run("CUSTOMER")
    demo_apps.run("CUSTOMER")
    skipped = list(Coupling.objects.filter(is_skipped=True).order_by("pk"))
    assert len(skipped) == len(numbers)
    return skipped


def test_the_page_lists_skipped_couplings_with_their_error_and_records(demo_apps, staff_client):
    (coupling,) = skip(demo_apps, "C00030")
    page = staff_client.get(reverse("sync:skipped")).content.decode()
    assert "Coupled Data Synchronization Errors" in page
    assert f'data-coupling="{coupling.pk}"' in page
    assert "Phone No. must not exceed 30 characters." in page
    assert f"/demo/erp/customers/{coupling.source_record_id}/" in page
    assert f"/demo/crm/accounts/{coupling.destination_record_id}/" in page
    assert page.count("data-coupling=") == 1


def test_retry_takes_the_fixed_records_back_and_synchronizes_them_in_the_worker(
    demo_apps, staff_client, celery_worker
):
    fixed, still_broken = skip(demo_apps, "C00030", "C00050")
    CrmAccount.objects.filter(pk=fixed.destination_record_id).update(telephone="+45 3333 4444")

    response = staff_client.post(
        reverse("sync:skipped_action"),
        {"action": "retry", "coupling": [fixed.pk]},
        follow=True,
    )
    job = SyncJob.objects.get(kind=SyncJob.Kind.COUPLED)
    assert f"job #{job.pk}" in response.content.decode()
    assert (job.trigger, job.coupling_ids) == (SyncJob.Trigger.RETRY, [fixed.pk])

    def finished():
        job.refresh_from_db()
        return job.is_finished

    wait_until(finished, timeout=60, message=celery_worker.log_path.read_text())
    assert (job.status, job.modified, job.failed) == (SyncJob.Status.SUCCEEDED, 1, 0)
    assert ErpCustomer.objects.get(pk=fixed.source_record_id).phone_number == "+45 3333 4444"
    fixed.refresh_from_db()
    still_broken.refresh_from_db()
    assert (fixed.is_skipped, still_broken.is_skipped) == (False, True)
    # Its entries resolved themselves; the other coupling's are still open.
    assert set(SyncError.objects.filter(coupling=fixed).values_list("status", flat=True)) == {
        "resolved"
    }
    assert set(
        SyncError.objects.filter(coupling=still_broken).values_list("status", flat=True)
    ) == {"open"}


def test_retry_all_of_a_mapping_takes_every_skipped_coupling(
    demo_apps, staff_client, celery_worker
):
    skipped = skip(demo_apps, "C00030", "C00050")
    mapping = demo_apps.mapping("CUSTOMER")
    staff_client.post(
        reverse("sync:skipped_action"), {"action": "retry_all", "mapping": mapping.pk}
    )
    job = SyncJob.objects.get(kind=SyncJob.Kind.COUPLED)
    assert sorted(job.coupling_ids) == sorted(c.pk for c in skipped)

    def finished():
        job.refresh_from_db()
        return job.is_finished

    wait_until(finished, timeout=60, message=celery_worker.log_path.read_text())
    # Nothing was fixed: both fail again, once, and are not skipped yet.
    assert (job.failed, job.skipped) == (2, 0)
    assert not Coupling.objects.filter(is_skipped=True).exists()


def test_find_for_deleted_marks_which_side_is_gone(demo_apps, staff_client):
    gone, kept = skip(demo_apps, "C00030", "C00050")
    CrmAccount.objects.filter(pk=gone.destination_record_id).delete()
    response = staff_client.post(
        reverse("sync:skipped_action"),
        {"action": "find_deleted", "coupling": [gone.pk, kept.pk]},
        follow=True,
    )
    assert "0 gone in the source app, 1 gone in the destination app" in response.content.decode()
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert (gone.source_exists, gone.destination_exists) == (True, False)
    assert (kept.source_exists, kept.destination_exists) == (True, True)
    assert "deleted</span>" in staff_client.get(reverse("sync:skipped")).content.decode()


def test_actions_need_a_choice_a_selection_and_staff(demo_apps, staff_client, client, plain_user):
    (coupling,) = skip(demo_apps, "C00030")
    url = reverse("sync:skipped_action")
    nothing = staff_client.post(url, {"action": "retry"}, follow=True).content.decode()
    assert "Choose at least one skipped coupling." in nothing
    wrong = staff_client.post(url, {"action": "explode"}, follow=True).content.decode()
    assert "Choose Retry, Retry All or Find for Deleted." in wrong
    assert staff_client.get(url).status_code == 405
    client.force_login(plain_user)
    assert client.post(url, {"action": "retry", "coupling": [coupling.pk]}).status_code == 403
    assert client.get(reverse("sync:skipped")).status_code == 403
    assert not SyncJob.objects.filter(kind=SyncJob.Kind.COUPLED).exists()
