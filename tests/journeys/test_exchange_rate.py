"""A missing exchange rate in the ERP: the CRM's change of a NOK customer is refused until
an administrator enters the rate in the ERP; then Retry, a bulk Retry, Retry All on the
skipped records or the next scheduled job writes it, and the entries close by themselves."""

import pytest
from django.urls import reverse
from django.utils import timezone

from couplings.models import Coupling
from demo.models import ErpCurrency, ErpCurrencyExchangeRate, ErpCustomer
from errors.models import Status, SyncError
from sync.models import SyncJob

from .closing import act_on_the_problem, assert_closed_by, run_queued_jobs

pytestmark = pytest.mark.django_db
FULL = SyncJob.Kind.FULL


@pytest.fixture
def refused(demo_apps):
    """Two jobs in a row refused the CRM's change of a NOK customer: its coupling is
    skipped, with an open entry, and the next job passed it by."""
    assert not ErpCurrencyExchangeRate.objects.filter(currency_code="NOK").exists()
    demo_apps.run("CUSTOMER", FULL)
    nok = ErpCustomer.objects.filter(currency_code="NOK").order_by("number").first()
    coupling = Coupling.objects.get(mapping__name="CUSTOMER", source_record_id=str(nok.pk))
    with demo_apps.crm() as crm:
        crm.patch(f"accounts({coupling.destination_record_id})", json={"address1_city": "Tromsø"})
    for _ in range(2):
        demo_apps.run("CUSTOMER")
    # The scheduled runs after that pass it by.
    demo_apps.run("CUSTOMER")
    coupling.refresh_from_db()
    assert coupling.is_skipped
    assert coupling.last_result_from_destination == Coupling.Result.SKIPPED
    entry = SyncError.objects.filter(coupling=coupling, status=Status.OPEN).latest("pk")
    assert "Currency Exchange Rate does not exist" in entry.message
    return entry


def enter_the_rate_in_the_erp(client, admin_user) -> None:
    """As an administrator does, on the currency's page in the ERP: an exchange rate from
    today on."""
    currency = ErpCurrency.objects.get(code="NOK")
    client.force_login(admin_user)
    page = reverse("demo:erp_add_exchange_rate", args=[currency.pk])
    answer = client.post(page, {"starting_date": timezone.localdate().isoformat(),
                                "exchange_rate_amount": "11.6",
                                "relational_exchange_rate_amount": "1"})  # fmt: skip
    assert answer.status_code == 302, answer.content
    assert ErpCurrencyExchangeRate.objects.filter(currency_code="NOK").exists()


def test_retry_on_the_entry(refused, client, admin_user, staff_client, celery_queue):
    enter_the_rate_in_the_erp(client, admin_user)
    answer = staff_client.post(reverse("errors:fix", args=[refused.pk]), {"action": "retry"})
    assert answer.status_code == 302
    (job,) = run_queued_jobs()
    assert (job.status, job.failed) == (SyncJob.Status.SUCCEEDED, 0)
    assert_closed_by(refused, job)


def test_the_next_scheduled_job(refused, client, admin_user, demo_apps):
    enter_the_rate_in_the_erp(client, admin_user)
    Coupling.objects.filter(pk=refused.coupling_id).update(is_skipped=False)  # Retry All
    job = demo_apps.run("CUSTOMER")
    assert job.failed == 0
    assert_closed_by(refused, job)


def test_a_bulk_retry_of_the_problem(refused, client, admin_user, staff_client, celery_queue):
    enter_the_rate_in_the_erp(client, admin_user)
    act_on_the_problem(staff_client, "retry", refused.group_id)
    (job,) = run_queued_jobs()
    assert job.failed == 0
    assert_closed_by(refused, job)


def test_retry_all_on_the_skipped_records(refused, client, admin_user, staff_client, celery_queue):
    enter_the_rate_in_the_erp(client, admin_user)
    staff_client.post(
        reverse("sync:skipped_action"), {"action": "retry_all", "mapping": refused.mapping_id}
    )
    (job,) = run_queued_jobs()
    assert job.failed == 0
    assert_closed_by(refused, job)
