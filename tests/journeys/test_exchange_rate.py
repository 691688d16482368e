"""A missing exchange rate in the ERP, and what waits for it: the currency NOK cannot be
created in the CRM without its rate, so neither can the customers in NOK nor their people.
An administrator enters the rate in the ERP; then Retry on the currency's entry, a bulk Retry
of its problem or the next scheduled run creates the currency, and the next scheduled runs of
the customers and the contacts create them, every entry closing by itself."""

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from couplings.models import Coupling
from demo import security
from demo.models import (
    CrmContact,
    CrmSystemUser,
    CrmTransactionCurrency,
    ErpContact,
    ErpCurrency,
    ErpCurrencyExchangeRate,
    ErpCustomer,
)
from demo.seed import INTEGRATION_USER
from errors.models import Category, ErrorGroup, Severity, Status, SyncError
from sync.models import SyncJob
from tests.demo_apps import without_nok_in_the_crm

from .closing import act_on_the_problem, assert_closed_by, run_queued_jobs, work_off_the_queue

pytestmark = pytest.mark.django_db
FULL = SyncJob.Kind.FULL
NO_RATE = (
    "Currency Exchange Rate does not exist. Identification fields and values: Currency Code='NOK'"
)


def open_entries(mapping: str) -> list[SyncError]:
    return list(SyncError.objects.filter(mapping__name=mapping, status=Status.OPEN).order_by("pk"))


@pytest.fixture
def blocked(demo_apps):
    """The first full runs, in the mappings' order: NOK has no rate in the ERP, so CURRENCY
    cannot create it in the CRM; CUSTOMER cannot create the customers in NOK, and CONTACT
    cannot create their people."""
    without_nok_in_the_crm()
    assert not ErpCurrencyExchangeRate.objects.filter(currency_code="NOK").exists()
    assert not CrmTransactionCurrency.objects.filter(iso_currency_code="NOK").exists()
    user = CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    # May create currencies, as the seed's administrator lets it.
    user.roles.add(security.role_named("Integration Administrator", user.business_unit))
    for name in ("CURRENCY", "CUSTOMER", "CONTACT"):
        demo_apps.run(name, FULL)

    (currency,) = open_entries("CURRENCY")
    assert (currency.message, currency.category) == (NO_RATE, Category.CURRENCY)
    assert currency.source_record_id == str(ErpCurrency.objects.get(code="NOK").pk)
    assert currency.coupling is None
    nok = ErpCustomer.objects.filter(currency_code="NOK")
    customers = open_entries("CUSTOMER")
    assert {e.source_record_id for e in customers} >= {str(c.pk) for c in nok}
    assert all(
        e.message.startswith("Currency NOK does not exist in Dynamics 365 Sales")
        for e in customers
        if e.source_record_id in {str(c.pk) for c in nok}
    )
    people = ErpContact.objects.filter(
        type=ErpContact.Type.PERSON, company_number__in=company_numbers(nok)
    )
    assert people.exists()
    contacts = open_entries("CONTACT")
    assert {e.source_record_id for e in contacts} == {str(p.pk) for p in people}
    assert all("is not coupled under CUSTOMER" in e.message for e in contacts)
    return currency


def company_numbers(customers) -> list[str]:
    return [
        relation.contact.number
        for customer in customers
        for relation in customer.contact_business_relations.select_related("contact")
    ]


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


def assert_the_chain_follows(demo_apps) -> None:
    """The next scheduled runs of CUSTOMER and then CONTACT create what waited for NOK."""
    waiting = {name: open_entries(name) for name in ("CUSTOMER", "CONTACT")}
    for name in ("CUSTOMER", "CONTACT"):
        job = demo_apps.run(name)
        nok = [e for e in waiting[name] if "NOK" in e.message or name == "CONTACT"]
        assert job.inserted >= len(nok) > 0
        events = AuditEvent.objects.filter(
            action=AuditEvent.Action.ENTRIES_RESOLVED, actor_label=f"sync engine (job #{job.pk})"
        )
        recorded = {pk for event in events for pk in event.details["ids"]}
        for entry in nok:
            entry.refresh_from_db()
            assert (entry.status, entry.status_note) == (
                Status.RESOLVED,
                f"Resolved by itself: the record synchronized in job #{job.pk}.",
            )
            assert entry.pk in recorded
    coupled = set(
        Coupling.objects.filter(mapping__name="CUSTOMER").values_list("source_record_id", flat=True)
    )
    assert {str(c.pk) for c in ErpCustomer.objects.filter(currency_code="NOK")} <= coupled
    nok_people = ErpContact.objects.filter(
        type=ErpContact.Type.PERSON,
        company_number__in=company_numbers(ErpCustomer.objects.filter(currency_code="NOK")),
    )
    assert (
        CrmContact.objects.filter(
            email__in=nok_people.values_list("email", flat=True), parent_account__isnull=False
        ).count()
        == nok_people.count()
    )


def assert_nok_created(job: SyncJob, entry: SyncError) -> None:
    assert (job.status, job.inserted, job.failed) == (SyncJob.Status.SUCCEEDED, 1, 0)
    nok = CrmTransactionCurrency.objects.get(iso_currency_code="NOK")
    assert float(nok.exchange_rate) == 11.6
    assert Coupling.objects.filter(mapping__name="CURRENCY", destination_record_id=str(nok.pk))
    assert_closed_by(entry, job)


def test_retry_on_the_currency_entry(
    blocked, client, admin_user, staff_client, celery_queue, demo_apps
):
    enter_the_rate_in_the_erp(client, admin_user)
    answer = staff_client.post(reverse("errors:fix", args=[blocked.pk]), {"action": "retry"})
    assert answer.status_code == 302
    (job,) = run_queued_jobs()
    assert_nok_created(job, blocked)
    assert_the_chain_follows(demo_apps)


def test_a_bulk_retry_of_the_problem(
    blocked, client, admin_user, staff_client, celery_queue, demo_apps
):
    enter_the_rate_in_the_erp(client, admin_user)
    act_on_the_problem(staff_client, "retry", blocked.group_id)
    (job,) = run_queued_jobs()
    assert_nok_created(job, blocked)
    assert_the_chain_follows(demo_apps)


def test_the_next_scheduled_runs(blocked, client, admin_user, demo_apps):
    # Until the rate is entered, each scheduled run tries NOK again, and fails again.
    again = demo_apps.run("CURRENCY")
    assert (again.failed, again.inserted) == (1, 0)
    enter_the_rate_in_the_erp(client, admin_user)
    job = demo_apps.run("CURRENCY")
    assert_nok_created(job, blocked)
    assert_the_chain_follows(demo_apps)


def test_nobody_presses_retry_the_customers_then_their_people_follow_by_themselves(
    blocked, client, admin_user, demo_apps, celery_queue
):
    """The rate entered, the currency's next scheduled run creates NOK; the customers it
    blocked are retried by themselves, then the people those blocked, in that order."""
    customers = [e for e in open_entries("CUSTOMER") if "NOK" in e.message]
    people = open_entries("CONTACT")
    # Each waits for what it refers to; the currency's problem is the root cause of all.
    assert {e.blocked_by_group_id for e in customers} == {blocked.group_id}
    assert {e.blocked_by_entry_id for e in people} <= {e.pk for e in customers}
    root = ErrorGroup.objects.get(pk=blocked.group_id)
    assert (root.blocks_directly, root.blocks_records) == (
        len(customers),
        len(customers) + len(people),
    )
    assert root.severity_level == Severity.ROOT_CAUSE
    assert ErrorGroup.objects.order_by("-severity", "-id").first() == root

    enter_the_rate_in_the_erp(client, admin_user)
    SyncJob.objects.create(
        mapping=demo_apps.mapping("CURRENCY"),
        kind=SyncJob.Kind.MODIFIED,
        trigger=SyncJob.Trigger.SCHEDULE,
        status=SyncJob.Status.QUEUED,
    )
    done = work_off_the_queue()

    assert [(job.mapping.name, job.trigger) for job in done] == [
        ("CURRENCY", SyncJob.Trigger.SCHEDULE),
        ("CUSTOMER", SyncJob.Trigger.ROOT_CAUSE),
        ("CONTACT", SyncJob.Trigger.ROOT_CAUSE),
    ]
    currency_job, customers_job, people_job = done
    assert_nok_created(currency_job, blocked)
    assert customers_job.inserted == len(customers) and customers_job.failed == 0
    assert people_job.inserted == len(people) and people_job.failed == 0
    assert_resolved_in(customers, customers_job)
    assert_resolved_in(people, people_job)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.BLOCKED_RETRIED).count() == 2


def assert_resolved_in(entries: list[SyncError], job: SyncJob) -> None:
    """Each entry closed by itself as its record synchronized in `job`, as the audit log
    says; its problem with it."""
    events = AuditEvent.objects.filter(
        action=AuditEvent.Action.ENTRIES_RESOLVED, actor_label=f"sync engine (job #{job.pk})"
    )
    recorded = {pk for event in events for pk in event.details["ids"]}
    for entry in entries:
        entry.refresh_from_db()
        assert (entry.status, entry.status_note) == (
            Status.RESOLVED,
            f"Resolved by itself: the record synchronized in job #{job.pk}.",
        )
        assert entry.pk in recorded
        assert ErrorGroup.objects.get(pk=entry.group_id).status == Status.RESOLVED
