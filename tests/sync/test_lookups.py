"""Lookup field mappings against the demo apps, both ways: customers with their currencies
(currencyCode <-> the account's transactioncurrencyid) and contacts with their companies
(companyNumber <-> the contact's parentcustomerid account), resolved a page at a time."""

import pytest
from django.core.exceptions import ValidationError

from couplings.models import Coupling
from demo.models import (
    CrmAccount,
    CrmContact,
    CrmTransactionCurrency,
    ErpContact,
    ErpCustomer,
)
from errors.models import Category, SyncError
from sync import engine
from sync.connectors import RemoteRecord, connector_for
from sync.fields import FROM_DESTINATION, TO_DESTINATION, field_mapping_problems, field_pairs
from sync.lookups import LookupFailed, Lookups
from sync.models import SyncJob, TableMapping
from sync.services import create_job

pytestmark = pytest.mark.django_db


def run(demo_apps, name: str, kind=SyncJob.Kind.MODIFIED) -> tuple[SyncJob, dict[str, list[str]]]:
    """Run a job of the mapping; returns it with the requests each app was sent."""
    sent: dict[str, list[str]] = {"source": [], "destination": []}
    connectors = {}
    for side in sent:
        connectors[side] = connector_for(demo_apps.connection, side)
        connectors[side].client.event_hooks["request"] = [
            lambda request, side=side: sent[side].append(
                f"{request.method} {request.url.path.rsplit('/', 1)[-1]}"
            )
        ]
    job = create_job(demo_apps.mapping(name), kind=kind, trigger=SyncJob.Trigger.USER)
    job = engine.run_job(job.pk, **connectors)
    for connector in connectors.values():
        connector.close()
    return job, sent


def coupled_account(customer: ErpCustomer) -> CrmAccount:
    coupling = Coupling.objects.get(mapping__name="CUSTOMER", source_record_id=str(customer.pk))
    return CrmAccount.objects.get(pk=coupling.destination_record_id)


def coupled_contact(contact: ErpContact) -> CrmContact:
    coupling = Coupling.objects.get(mapping__name="CONTACT", source_record_id=str(contact.pk))
    return CrmContact.objects.get(pk=coupling.destination_record_id)


def people() -> list[ErpContact]:
    return list(ErpContact.objects.filter(type=ErpContact.Type.PERSON).order_by("number"))


def test_customers_and_their_currencies_synchronize_both_ways(demo_apps):
    job, sent = run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    assert job.failed == 1  # the customer in SEK, which the CRM does not have
    # The twelve customers' currencies in one request, not one per customer.
    assert sent["destination"].count("GET transactioncurrencies") == 1
    for customer in ErpCustomer.objects.exclude(currency_code="SEK"):
        account = coupled_account(customer)
        assert account.transaction_currency.iso_currency_code == customer.currency_code

    # In the ERP, a customer moves to US dollars: the account's lookup follows.
    customer = ErpCustomer.objects.filter(currency_code="EUR").order_by("number").first()
    customer.currency_code = "USD"
    customer.save()
    job, _ = run(demo_apps, "CUSTOMER")
    assert (job.modified, job.failed) == (1, 0)
    usd = CrmTransactionCurrency.objects.get(iso_currency_code="USD")
    assert coupled_account(customer).transaction_currency == usd

    # In the CRM, an account moves to Danish kroner: the customer's code follows.
    account = coupled_account(ErpCustomer.objects.get(number="C00020"))
    dkk = CrmTransactionCurrency.objects.get(iso_currency_code="DKK")
    with demo_apps.crm() as crm:
        answer = crm.patch(
            f"accounts({account.pk})",
            json={"transactioncurrencyid@odata.bind": f"/transactioncurrencies({dkk.pk})"},
            headers={"If-Match": "*"},
        )
    assert answer.status_code == 204
    job, sent = run(demo_apps, "CUSTOMER")
    assert (job.modified, job.failed) == (1, 0)
    assert ErpCustomer.objects.get(number="C00020").currency_code == "DKK"
    assert sent["destination"].count("GET transactioncurrencies") == 1  # its code, by its id

    # Everything in step: a run writes nothing back and forth.
    job, _ = run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    assert (job.modified, job.inserted, job.failed) == (0, 0, 1)


def test_contacts_and_their_companies_synchronize_both_ways(demo_apps):
    run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    job, sent = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    persons = people()
    # The people only (the company contacts are their customers), and all their companies.
    assert (job.inserted, job.failed) == (len(persons), 0)
    assert not Coupling.objects.filter(
        mapping__name="CONTACT",
        source_record_id__in=[
            str(pk) for pk in ErpContact.objects.filter(type="Company").values_list("pk", flat=True)
        ],
    ).exists()
    # The companies' customers in one request; they were coupled, so no account is asked for.
    assert sent["source"].count("GET customers") == 1
    assert "GET accounts" not in sent["destination"]
    for person in persons:
        customer = ErpCustomer.objects.get(number=person.company_number)
        assert coupled_contact(person).parent_account == coupled_account(customer)

    # In the CRM, a contact changes company: the ERP contact's company number follows.
    moving = persons[0]
    new_company = ErpCustomer.objects.get(number=persons[1].company_number)
    its_account = f"/accounts({coupled_account(new_company).pk})"
    with demo_apps.crm() as crm:
        answer = crm.patch(
            f"contacts({coupled_contact(moving).pk})",
            json={"parentcustomerid_account@odata.bind": its_account},
            headers={"If-Match": "*"},
        )
        assert answer.status_code == 204
        # And a person is added in the CRM, at a company: created in the ERP at its company.
        newcomer = crm.post(
            "contacts",
            json={
                "fullname": "Kari Nordmann",
                "emailaddress1": "kari@example.com",
                "parentcustomerid_account@odata.bind": its_account,
            },
        )
        assert newcomer.status_code == 204
    job, _ = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    assert (job.inserted, job.modified, job.failed) == (1, 1, 0)
    moving.refresh_from_db()
    assert (moving.company_number, moving.company_name) == (
        new_company.number,
        new_company.display_name,
    )
    kari = ErpContact.objects.get(email="kari@example.com")
    assert (kari.type, kari.company_number) == ("Person", new_company.number)

    # In the ERP, a contact leaves its company: the CRM contact's parent customer is cleared.
    moving.company_number = ""
    moving.save()
    job, _ = run(demo_apps, "CONTACT")
    assert (job.modified, job.failed) == (1, 0)
    assert coupled_contact(moving).parent_account is None


def test_a_company_not_coupled_is_found_by_its_account_number(demo_apps):
    """Before CUSTOMER ran, the one account the CRM already has is found by its number; the
    other companies are not in the CRM, and their people fail with a clear entry."""
    (known,) = CrmAccount.objects.exclude(account_number="")
    job, sent = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    at_known = [p for p in people() if p.company_number == known.account_number]
    assert at_known and job.inserted == len(at_known)
    assert coupled_contact(at_known[0]).parent_account == known
    assert sent["destination"].count("GET accounts") == 1  # every company in one request

    entries = SyncError.objects.filter(job=job)
    assert entries.count() == job.failed == len(people()) - len(at_known)
    entry = entries.order_by("source_record_id").first()
    person = ErpContact.objects.get(pk=entry.source_record_id)
    assert entry.category == Category.VALIDATION
    assert entry.message == (
        f"Company {person.company_number} does not exist in Dynamics 365 Sales (accounts): add "
        "it, or synchronize CUSTOMER first."
    )
    # One cause, one problem to triage: companies the CRM does not have (yet).
    assert len({e.group_id for e in entries}) == 1


def test_customers_missing_the_same_currency_are_one_problem(demo_apps):
    ErpCustomer.objects.filter(number__in=["C00030", "C00050"]).update(currency_code="SEK")
    job, sent = run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    entries = list(SyncError.objects.filter(job=job))
    assert len(entries) == job.failed == 3
    assert {e.category for e in entries} == {Category.CURRENCY}
    assert len({e.group_id for e in entries}) == 1
    assert {e.coupling for e in entries} == {None}
    # SEK was looked up once for all three, and none of them was sent.
    assert sent["destination"].count("GET transactioncurrencies") == 1
    assert not CrmAccount.objects.filter(account_number__in=["C00030", "C00050"]).exists()


def test_a_contact_whose_parent_customer_is_a_contact_is_refused_clearly(demo_apps):
    run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    person = people()[0]
    contact = coupled_contact(person)
    manager = CrmContact.objects.create(full_name="Ola Nordmann")
    with demo_apps.crm() as crm:
        crm.patch(
            f"contacts({contact.pk})",
            json={"parentcustomerid_contact@odata.bind": f"/contacts({manager.pk})"},
            headers={"If-Match": "*"},
        )
    job, _ = run(demo_apps, "CONTACT")
    entry = SyncError.objects.get(job=job, source_record_id=str(contact.pk))
    assert entry.category == Category.VALIDATION
    assert entry.message.startswith(
        "The parentcustomerid of this record is a contact, not an account: Business Central "
        "can only take accounts records in companyNumber."
    )
    person.refresh_from_db()
    assert person.company_number  # left as it was


def test_lookup_field_mappings_are_checked_before_they_are_saved(demo_apps):
    lookup = {
        "source": "currencyCode",
        "destination": "transactioncurrencyid",
        "type": "lookup",
        "lookup": {"entity": "transactioncurrencies", "match": "isocurrencycode"},
    }
    assert field_mapping_problems([lookup]) == []
    (pair,) = field_pairs([lookup], TO_DESTINATION)
    assert (pair.read, pair.write, pair.held_field) == (
        "currencyCode",
        "transactioncurrencyid@odata.bind",
        "_transactioncurrencyid_value",
    )
    assert field_mapping_problems([{**lookup, "type": "link"}]) == [
        "Field mapping 1: type must be one of value, lookup."
    ]
    assert field_mapping_problems([{**lookup, "lookup": {"entity": "x"}, "constant": 1}]) == [
        "Field mapping 1: a lookup names the table it refers to and that table's field holding "
        "the code (entity and match).",
        "Field mapping 1: a lookup takes no constant.",
    ]
    assert field_mapping_problems([{**lookup, "lookup": {**lookup["lookup"], "colour": 1}}]) == [
        "Field mapping 1: unknown lookup setting colour."
    ]

    mapping = demo_apps.mapping("CONTACT")
    mapping.field_mappings[-1]["lookup"]["mapping"] = "CUSTOMERS"
    with pytest.raises(ValidationError) as refused:
        mapping.clean()
    assert "the lookup goes through CUSTOMERS, which is not a table mapping" in str(refused.value)
    assert TableMapping.objects.get(pk=mapping.pk).field_mappings[-1]["lookup"]["mapping"] == (
        "CUSTOMER"
    )


def test_a_lookup_property_that_is_not_a_record_id_fails_its_record_without_a_request(
    demo_apps,
):
    mapping = demo_apps.mapping("CUSTOMER")
    pairs = field_pairs(mapping.field_mappings, FROM_DESTINATION)
    (pair,) = [p for p in pairs if p.lookup]
    with (
        connector_for(demo_apps.connection, "source") as erp,
        connector_for(demo_apps.connection, "destination") as crm,
    ):
        sent: list[str] = []
        crm.client.event_hooks["request"] = [lambda request: sent.append(str(request.url))]
        lookups = Lookups(mapping, FROM_DESTINATION, erp, crm, pairs)
        hostile = RemoteRecord("a1", None, {"_transactioncurrencyid_value": "1) or (1"})
        with pytest.raises(LookupFailed, match="is not a record id"):
            lookups.value(pair, hostile)
        empty = RemoteRecord("a2", None, {"_transactioncurrencyid_value": None})
        assert lookups.value(pair, empty) == ""
    assert sent == []
