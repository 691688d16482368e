"""Root causes first: a customer in SEK cannot be created in the CRM, which lacks the
currency, and its person contact cannot be created either, for want of its company. The
contact's entry is blocked by the customer's, whose problem is the root cause; once the
currency is created and synchronized, the customer is retried by itself, then the contact."""

from dataclasses import dataclass

import pytest

from audit.models import AuditEvent
from couplings.actions import retry_unblocked
from demo import models as demo
from demo import security
from demo.seed import INTEGRATION_USER
from errors.models import ErrorGroup, Severity, Status, SyncError
from sync.models import SyncJob

from .closing import assert_closed_by, work_off_the_queue
from .test_missing_currency import add_sek_in_the_crm

pytestmark = pytest.mark.django_db


@dataclass
class Chain:
    customer: SyncError  # Currency SEK does not exist in the CRM
    contact: SyncError  # its company is not coupled and does not exist in the CRM


@pytest.fixture
def chain(demo_apps, celery_queue) -> Chain:
    sek = demo.ErpCustomer.objects.get(currency_code="SEK")
    company = demo.ErpContactBusinessRelation.objects.get(customer=sek).contact
    (number,) = demo.ErpNumberSeries.take(demo.ErpNumberSeries.CONTACTS, 1)
    demo.ErpContact.objects.create(
        number=number,
        display_name="Sven Berg",
        email="sven.berg@example.com",
        company_number=company.number,
        company_name=company.display_name,
    )
    demo_apps.run("CURRENCY", SyncJob.Kind.FULL)  # the integration user may not create any
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    demo_apps.run("CONTACT", SyncJob.Kind.FULL)
    customer = SyncError.objects.get(mapping__name="CUSTOMER", source_record_id=str(sek.pk))
    contact = SyncError.objects.get(mapping__name="CONTACT", status=Status.OPEN)
    return Chain(customer, contact)


def test_the_entries_say_what_they_are_blocked_by(chain, demo_apps):
    currency = demo.ErpCurrency.objects.get(code="SEK")
    assert chain.customer.message == (
        "Currency SEK does not exist in Dynamics 365 Sales (transactioncurrencies): add it, or "
        "synchronize CURRENCY first."
    )
    # The currency has no entry of its own (its mapping's job failed as a whole).
    assert (
        chain.customer.blocked_by_mapping_id,
        chain.customer.blocked_by_side,
        chain.customer.blocked_by_record,
        chain.customer.blocked_by_entry_id,
        chain.customer.blocked_by_group_id,
    ) == (demo_apps.mapping("CURRENCY").pk, "source", str(currency.pk), None, None)
    assert chain.contact.message.startswith("Company CT")
    assert (
        chain.contact.blocked_by_mapping_id,
        chain.contact.blocked_by_record,
        chain.contact.blocked_by_entry_id,
        chain.contact.blocked_by_group_id,
    ) == (
        demo_apps.mapping("CUSTOMER").pk,
        chain.customer.source_record_id,
        chain.customer.pk,
        chain.customer.group_id,
    )


def test_the_root_cause_comes_first_with_what_it_blocks(chain):
    root = ErrorGroup.objects.get(pk=chain.customer.group_id)
    blocked = ErrorGroup.objects.get(pk=chain.contact.group_id)
    assert (root.blocks_records, root.blocks_directly, root.blocked_by_id) == (1, 1, None)
    assert (blocked.blocks_records, blocked.blocked_by_id) == (0, root.pk)
    assert root.severity_level == Severity.ROOT_CAUSE
    assert list(ErrorGroup.objects.order_by("-severity", "-id"))[0] == root


def give_the_integration_user_the_currencies(demo_apps) -> None:
    """As the CRM's administrator does: a role that may create currencies."""
    user = demo.CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    user.roles.add(security.role_named("Integration Administrator", user.business_unit))


def run_currencies(demo_apps) -> list[SyncJob]:
    """A full synchronization of the currencies, asked for by a person, and what the worker
    does after it."""
    SyncJob.objects.create(
        mapping=demo_apps.mapping("CURRENCY"),
        kind=SyncJob.Kind.FULL,
        trigger=SyncJob.Trigger.USER,
        status=SyncJob.Status.QUEUED,
    )
    return work_off_the_queue()


def test_fixing_the_root_cause_retries_the_customer_then_the_contact(chain, demo_apps):
    add_sek_in_the_crm(demo_apps)
    give_the_integration_user_the_currencies(demo_apps)
    done = run_currencies(demo_apps)
    assert [(job.mapping.name, job.trigger, job.status) for job in done] == [
        ("CURRENCY", SyncJob.Trigger.USER, SyncJob.Status.SUCCEEDED),
        ("CUSTOMER", SyncJob.Trigger.ROOT_CAUSE, SyncJob.Status.SUCCEEDED),
        ("CONTACT", SyncJob.Trigger.ROOT_CAUSE, SyncJob.Status.SUCCEEDED),
    ]
    currencies, customers, contacts = done
    assert (customers.inserted, customers.failed, contacts.inserted, contacts.failed) == (
        1,
        0,
        1,
        0,
    )
    assert_closed_by(chain.customer, customers)
    assert_closed_by(chain.contact, contacts)
    first, second = AuditEvent.objects.filter(action=AuditEvent.Action.BLOCKED_RETRIED).order_by(
        "pk"
    )
    assert first.summary == (
        f"1 blocked record retried: job #{currencies.pk} of CURRENCY synchronized what it was "
        f"blocked by. Jobs #{customers.pk} (CUSTOMER)."
    )
    assert (first.details["job"], first.details["jobs"]) == (currencies.pk, [customers.pk])
    assert first.details["root_problems"] == [chain.customer.group_id]
    assert (second.details["job"], second.details["jobs"]) == (customers.pk, [contacts.pk])
    assert second.details["root_problems"] == [chain.customer.group_id]
    assert second.details["entries"] == [chain.contact.pk]
    root = ErrorGroup.objects.get(pk=chain.customer.group_id)
    assert (root.blocks_records, root.blocks_directly, root.status) == (0, 0, Status.RESOLVED)


def test_no_cascade_while_the_record_still_fails(chain, demo_apps):
    # The currency is created, and the customer retried; but its name was emptied in the
    # meantime, which the CRM refuses: its contact is not retried.
    sek = demo.ErpCustomer.objects.get(pk=chain.customer.source_record_id)
    sek.display_name = ""
    sek.save()
    give_the_integration_user_the_currencies(demo_apps)
    done = run_currencies(demo_apps)
    assert [(job.mapping.name, job.trigger) for job in done] == [
        ("CURRENCY", SyncJob.Trigger.USER),
        ("CUSTOMER", SyncJob.Trigger.ROOT_CAUSE),
    ]
    assert done[1].failed == 1
    chain.contact.refresh_from_db()
    assert chain.contact.status == Status.OPEN
    assert AuditEvent.objects.filter(action=AuditEvent.Action.BLOCKED_RETRIED).count() == 1


def test_a_record_is_retried_once_for_its_root_cause(chain, demo_apps):
    add_sek_in_the_crm(demo_apps)
    give_the_integration_user_the_currencies(demo_apps)
    currencies = demo_apps.run("CURRENCY", SyncJob.Kind.FULL)
    ((customers, records),) = retry_unblocked(currencies).jobs
    assert (customers.mapping.name, customers.trigger, records) == (
        "CUSTOMER",
        SyncJob.Trigger.ROOT_CAUSE,
        1,
    )
    # Its job is queued: asking again queues nothing more.
    assert retry_unblocked(currencies).jobs == []
    assert SyncJob.objects.filter(trigger=SyncJob.Trigger.ROOT_CAUSE).count() == 1
