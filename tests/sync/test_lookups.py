"""Lookup field mappings against the demo apps, both ways: customers with their currencies
(currencyCode <-> the account's transactioncurrencyid, a blank code being the local currency)
and contacts with their companies (companyNumber, the number of a company contact, <-> the
contact's parentcustomerid account, through the contact's business relation to its customer),
resolved a page at a time."""

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from couplings.models import Coupling
from demo.models import (
    CrmAccount,
    CrmContact,
    CrmTransactionCurrency,
    ErpContact,
    ErpContactBusinessRelation,
    ErpCustomer,
)
from errors.models import Category, SyncError
from sync import engine
from sync.connectors import RemoteRecord, connector_for
from sync.fields import FROM_DESTINATION, TO_DESTINATION, field_mapping_problems, field_pairs
from sync.lookups import LookupFailed, Lookups
from sync.models import SyncJob, TableMapping
from sync.services import create_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]

LCY = settings.DEMO_ERP_LOCAL_CURRENCY


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


def customer_of(person: ErpContact) -> ErpCustomer:
    """The customer a person works for: its company contact's business relation names it."""
    return ErpContactBusinessRelation.objects.get(contact__number=person.company_number).customer


def company_contact_of(customer: ErpCustomer) -> ErpContact:
    return ErpContactBusinessRelation.objects.get(customer=customer).contact


def patch_in_crm(demo_apps, path: str, values: dict) -> None:
    with demo_apps.crm() as crm:
        answer = crm.patch(path, json=values, headers={"If-Match": "*"})
    assert answer.status_code == 204, answer.text


def currency_bind(code: str) -> dict:
    currency = CrmTransactionCurrency.objects.get(iso_currency_code=code)
    return {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({currency.pk})"}


def test_customers_and_their_currencies_synchronize_both_ways(demo_apps):
    job, sent = run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    assert job.failed == 1  # the customer in SEK, which the CRM does not have
    # The twelve customers' currencies in one request, not one per customer; the local
    # currency, which the blank codes stand for, read once.
    assert sent["destination"].count("GET transactioncurrencies") == 1
    assert sent["source"].count("GET generalLedgerSetup") == 1
    for customer in ErpCustomer.objects.exclude(currency_code="SEK"):
        account = coupled_account(customer)
        assert account.transaction_currency.iso_currency_code == customer.currency_code or LCY

    # In the ERP, a customer in the local currency moves to US dollars: the lookup follows.
    customer = ErpCustomer.objects.filter(currency_code="").order_by("number").first()
    customer.currency_code = "USD"
    customer.save()
    job, _ = run(demo_apps, "CUSTOMER")
    assert (job.modified, job.failed) == (1, 0)
    usd = CrmTransactionCurrency.objects.get(iso_currency_code="USD")
    assert coupled_account(customer).transaction_currency == usd

    # In the CRM, an account moves to Danish kroner: the customer's code follows.
    account = coupled_account(ErpCustomer.objects.get(number="C00020"))
    patch_in_crm(demo_apps, f"accounts({account.pk})", currency_bind("DKK"))
    job, sent = run(demo_apps, "CUSTOMER")
    assert (job.modified, job.failed) == (1, 0)
    assert ErpCustomer.objects.get(number="C00020").currency_code == "DKK"
    assert sent["destination"].count("GET transactioncurrencies") == 1  # its code, by its id

    # Everything in step: a run writes nothing back and forth.
    job, _ = run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    assert (job.modified, job.inserted, job.failed) == (0, 0, 1)


def test_a_customer_in_the_local_currency_keeps_a_blank_code_both_ways(demo_apps):
    run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    in_lcy = ErpCustomer.objects.filter(currency_code="").order_by("number")
    assert in_lcy.count() == 2
    for customer in in_lcy:
        assert coupled_account(customer).transaction_currency.iso_currency_code == LCY

    # In the CRM, an account in Danish kroner moves to the local currency: the customer is
    # then kept as Business Central keeps customers in LCY, with a blank code.
    moving = ErpCustomer.objects.get(number="C00030")
    assert moving.currency_code == "DKK"
    patch_in_crm(demo_apps, f"accounts({coupled_account(moving).pk})", currency_bind(LCY))
    job, _ = run(demo_apps, "CUSTOMER")
    assert (job.modified, job.failed) == (1, 0)
    moving.refresh_from_db()
    assert moving.currency_code == ""

    # The round trip is over: the next runs see blank and the local currency as the same.
    for kind in (SyncJob.Kind.MODIFIED, SyncJob.Kind.FULL):
        job, _ = run(demo_apps, "CUSTOMER", kind)
        assert (job.modified, job.inserted) == (0, 0), kind
    assert coupled_account(moving).transaction_currency.iso_currency_code == LCY

    # A customer that names the local currency by its code is in step with its account too:
    # neither the code nor the lookup is written back and forth.
    named = in_lcy.first()
    ErpCustomer.objects.filter(pk=named.pk).update(currency_code=LCY, last_modified=timezone.now())
    job, _ = run(demo_apps, "CUSTOMER")
    assert (job.modified, job.failed) == (0, 0)
    patch_in_crm(demo_apps, f"accounts({coupled_account(named).pk})", {"address1_city": "Vejle"})
    job, _ = run(demo_apps, "CUSTOMER")
    assert (job.modified, job.failed) == (1, 0)  # the city only
    named.refresh_from_db()
    assert (named.city, named.currency_code) == ("Vejle", LCY)


def test_a_blank_code_fails_clearly_when_the_local_currency_is_not_known(demo_apps):
    demo_apps.connection.source_settings["local_currency_entity"] = ""
    demo_apps.connection.save()
    job, _ = run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    entries = SyncError.objects.filter(job=job, message__startswith="A blank")
    assert entries.count() == ErpCustomer.objects.filter(currency_code="").count() == 2
    assert {e.category for e in entries} == {Category.CURRENCY}
    assert entries.first().message == (
        "A blank currencyCode stands for the local currency of Business Central, which it does "
        "not say: set local_currency (e.g. EUR) in the source settings of the connection."
    )

    demo_apps.connection.source_settings["local_currency"] = LCY
    demo_apps.connection.save()
    job, _ = run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    assert (job.inserted, job.failed) == (2, 1)  # only SEK left


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
    # The company contacts with their business relations in one request (the people read
    # first are the other one); their customers were coupled, so no customer or account is
    # asked for.
    assert sent["source"].count("GET contacts") == 2
    assert "GET customers" not in sent["source"]
    assert "GET accounts" not in sent["destination"]
    for person in persons:
        assert person.company_number.startswith("CT")
        assert coupled_contact(person).parent_account == coupled_account(customer_of(person))

    # In the CRM, a contact changes company: the ERP contact's company number follows, the
    # number of the new customer's company contact.
    moving, other = persons[0], persons[1]
    new_company = customer_of(other)
    its_account = f"/accounts({coupled_account(new_company).pk})"
    patch_in_crm(
        demo_apps,
        f"contacts({coupled_contact(moving).pk})",
        {"parentcustomerid_account@odata.bind": its_account},
    )
    with demo_apps.crm() as crm:
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
    job, sent = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    assert (job.inserted, job.modified, job.failed) == (1, 1, 0)
    # The accounts' customers, with their company contacts, in one request.
    assert sent["source"].count("GET customers") == 1
    moving.refresh_from_db()
    company = company_contact_of(new_company)
    assert (moving.company_number, moving.company_name) == (company.number, company.display_name)
    assert moving.company_number == other.company_number
    kari = ErpContact.objects.get(email="kari@example.com")
    assert (kari.type, kari.company_number) == ("Person", company.number)
    assert kari.number.startswith("CT")  # from the contacts' number series

    # Everything in step: nothing is written back and forth.
    job, _ = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    assert (job.inserted, job.modified, job.failed) == (0, 0, 0)

    # In the ERP, a contact leaves its company: the CRM contact's parent customer is cleared.
    moving.company_number = ""
    moving.save()
    job, _ = run(demo_apps, "CONTACT")
    assert (job.modified, job.failed) == (1, 0)
    assert coupled_contact(moving).parent_account is None


def test_a_company_whose_customer_is_not_coupled_is_found_by_its_account_number(demo_apps):
    """Before CUSTOMER ran, the one account the CRM already has is found by its customer's
    number; the other customers are not in the CRM, and their people fail with a clear
    entry."""
    (known,) = CrmAccount.objects.exclude(account_number="")
    job, sent = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    at_known = [p for p in people() if customer_of(p).number == known.account_number]
    assert at_known and job.inserted == len(at_known)
    assert coupled_contact(at_known[0]).parent_account == known
    # Every company in three requests: the company contacts, their customers' numbers, and
    # the accounts with those numbers.
    assert sent["source"].count("GET contacts") == 2  # the people, then their companies
    assert sent["source"].count("GET customers") == 1
    assert sent["destination"].count("GET accounts") == 1

    entries = SyncError.objects.filter(job=job)
    assert entries.count() == job.failed == len(people()) - len(at_known)
    entry = entries.order_by("source_record_id").first()
    person = ErpContact.objects.get(pk=entry.source_record_id)
    assert entry.category == Category.VALIDATION
    assert entry.message == (
        f"Company {person.company_number} (customer {customer_of(person).number}) is not "
        "coupled under CUSTOMER and does not exist in Dynamics 365 Sales (accounts): add it, or "
        "synchronize CUSTOMER first."
    )
    assert "contactsInformation" in entry.detail
    # One cause, one problem to triage: companies the CRM does not have (yet).
    assert len({e.group_id for e in entries}) == 1


def test_a_company_contact_that_is_no_customer_fails_clearly(demo_apps):
    run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    with demo_apps.erp() as erp:
        prospect = erp.post("contacts", json={"type": "Company", "displayName": "Nordlys AS"})
        assert prospect.status_code == 201, prospect.text
        number = prospect.json()["number"]
        for name, company in (("Ola Nordmann", number), ("Per Hansen", "CT999999")):
            answer = erp.post("contacts", json={"displayName": name, "companyNumber": company})
            assert answer.status_code == 201, answer.text
    job, _ = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    assert job.failed == 2
    messages = dict(SyncError.objects.filter(job=job).values_list("source_record_id", "message"))
    ola = ErpContact.objects.get(display_name="Ola Nordmann")
    per = ErpContact.objects.get(display_name="Per Hansen")
    assert messages[str(ola.pk)] == (
        f"Company {number} is not a customer in Business Central: the contact has no business "
        "relation to a customer. Link it to its customer in Business Central (or create the "
        "customer from the contact), or change the record's companyNumber."
    )
    assert messages[str(per.pk)] == (
        "Company CT999999 does not exist in Business Central (contacts): add the company "
        "contact, or change the record's companyNumber."
    )
    assert not CrmContact.objects.filter(full_name__in=["Ola Nordmann", "Per Hansen"]).exists()


def test_a_parent_account_whose_customer_has_no_company_contact_fails_clearly(demo_apps):
    run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    first, second = people()[:2]
    lost = customer_of(second)
    ErpContactBusinessRelation.objects.filter(customer=lost).delete()
    patch_in_crm(
        demo_apps,
        f"contacts({coupled_contact(first).pk})",
        {"parentcustomerid_account@odata.bind": f"/accounts({coupled_account(lost).pk})"},
    )
    # A prospect: an account of the CRM only, without an account number.
    prospect = CrmAccount.objects.create(name="Prospect: Nordlys Cycling")
    third = people()[2]
    patch_in_crm(
        demo_apps,
        f"contacts({coupled_contact(third).pk})",
        {"parentcustomerid_account@odata.bind": f"/accounts({prospect.pk})"},
    )
    job, _ = run(demo_apps, "CONTACT")
    assert job.failed == 2
    entries = {e.source_record_id: e for e in SyncError.objects.filter(job=job)}
    lost_account = coupled_account(lost)
    assert entries[str(coupled_contact(first).pk)].message == (
        f"Company {lost_account.pk} is customer {lost.number}, which has no company contact in "
        "Business Central: create the contact from the customer in Business Central."
    )
    assert entries[str(coupled_contact(third).pk)].message == (
        f"Company {prospect.pk} in Dynamics 365 Sales (accounts) is not coupled under CUSTOMER "
        "and has no accountnumber: Business Central cannot refer to it until it has."
    )
    for person in (first, third):
        old = person.company_number
        person.refresh_from_db()
        assert person.company_number == old  # left as it was


def test_a_parent_account_coupled_to_a_customer_gone_from_the_erp_fails_clearly(demo_apps):
    run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    person = people()[0]
    gone = customer_of(person)
    account = coupled_account(gone)
    ErpCustomer.objects.filter(pk=gone.pk).delete()  # its company contact remains
    patch_in_crm(demo_apps, f"contacts({coupled_contact(person).pk})", {"fullname": "Ana L."})
    mapping = demo_apps.mapping("CONTACT")
    mapping.direction = TableMapping.Direction.FROM_DESTINATION
    mapping.save()
    job, _ = run(demo_apps, "CONTACT")
    (entry,) = SyncError.objects.filter(job=job)
    assert entry.message == (
        f"Company {account.pk} is coupled under CUSTOMER to customer {gone.pk}, which does not "
        "exist in Business Central any more: synchronize CUSTOMER first."
    )


def test_a_parent_account_not_coupled_is_found_by_its_customer_number(demo_apps):
    """An account the CRM had before CUSTOMER coupled it names its customer by its account
    number: the person gets that customer's company contact."""
    (known,) = CrmAccount.objects.exclude(account_number="")
    customer = ErpCustomer.objects.get(number=known.account_number)
    with demo_apps.crm() as crm:
        answer = crm.post(
            "contacts",
            json={
                "fullname": "Kari Nordmann",
                "emailaddress1": "kari@example.com",
                "parentcustomerid_account@odata.bind": f"/accounts({known.pk})",
            },
        )
        assert answer.status_code == 204
    mapping = demo_apps.mapping("CONTACT")
    mapping.direction = TableMapping.Direction.FROM_DESTINATION
    mapping.save()
    job, sent = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    assert (job.inserted, job.failed) == (1, 0)
    assert sent["destination"].count("GET accounts") == 1
    assert sent["source"].count("GET customers") == 1
    kari = ErpContact.objects.get(email="kari@example.com")
    assert kari.company_number == company_contact_of(customer).number


def test_a_contact_whose_parent_customer_is_a_contact_is_refused_clearly(demo_apps):
    run(demo_apps, "CUSTOMER", SyncJob.Kind.FULL)
    run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    person = people()[0]
    contact = coupled_contact(person)
    manager = CrmContact.objects.create(full_name="Ola Nordmann")
    patch_in_crm(
        demo_apps,
        f"contacts({contact.pk})",
        {"parentcustomerid_contact@odata.bind": f"/contacts({manager.pk})"},
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
        "Field mapping 1: type must be one of value, lookup, exchange rate."
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


def test_the_settings_that_follow_business_centrals_relations_are_checked(demo_apps):
    currency = demo_apps.mapping("CUSTOMER").field_mappings[-1]
    company = demo_apps.mapping("CONTACT").field_mappings[-1]
    assert (currency["lookup"]["blank"], company["lookup"]["via"]) == (
        "local currency",
        "company contact",
    )
    assert field_mapping_problems([currency, company]) == []

    def problems(spec: dict, **settings) -> list[str]:
        return field_mapping_problems([{**spec, "lookup": {**spec["lookup"], **settings}}])

    assert problems(company, via="customer number") == [
        "Field mapping 1: lookup via must be company contact: the code is then the number of a "
        "Business Central company contact, which stands for the customer it has a business "
        "relation with."
    ]
    assert problems(company, mapping="") == [
        "Field mapping 1: a lookup via the company contact goes through the table mapping of "
        "the customers: name it in mapping (e.g. CUSTOMER)."
    ]
    assert problems(currency, blank="none") == [
        "Field mapping 1: lookup blank must be local currency: a blank code then stands for "
        "the ERP's local currency."
    ]
    assert problems(company, blank="local currency") == [
        "Field mapping 1: a lookup via the company contact takes no blank: a blank code is no "
        "company."
    ]
    assert problems(company, via=1) == ["Field mapping 1: lookup via must be text."]


def test_a_lookup_via_the_company_contact_to_a_table_without_contacts_fails_clearly(demo_apps):
    items = demo_apps.mapping("ITEM-PRODUCT")
    mapping = demo_apps.mapping("CONTACT")
    mapping.field_mappings[-1]["lookup"]["mapping"] = items.name
    mapping.save()
    job, _ = run(demo_apps, "CONTACT", SyncJob.Kind.FULL)
    assert job.failed == len(people())
    entry = SyncError.objects.filter(job=job).first()
    assert entry.message == (
        "The lookup of companyNumber goes via the company contact to the items of ITEM-PRODUCT, "
        "which Business Central does not relate contacts to (only customers, vendors): correct "
        "the field mapping."
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
