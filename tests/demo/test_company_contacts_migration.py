"""Demo data made while company contacts were numbered like their customers keeps working after
`migrate`: each becomes its customer's company contact by a business relation, numbered from
the contacts' series, its people following it; the demo connection's lookups follow the
relations. Going back restores the old numbers."""

import pytest

from . import migrating

pytestmark = pytest.mark.django_db(transaction=True)

CURRENCY_LOOKUP = {
    "source": "currencyCode",
    "destination": "transactioncurrencyid",
    "type": "lookup",
    "lookup": {"entity": "transactioncurrencies", "match": "isocurrencycode"},
}
COMPANY_LOOKUP = {
    "source": "companyNumber",
    "destination": "parentcustomerid_account",
    "type": "lookup",
    "lookup": {"entity": "accounts", "match": "accountnumber", "mapping": "CUSTOMER"},
}


def test_existing_company_contacts_become_their_customers_by_a_business_relation():
    before, after = migrating.around("_company_contacts")
    latest = migrating.latest()
    old = migrating.migrate(before)
    try:
        customers = old.get_model("demo", "ErpCustomer").objects
        contacts = old.get_model("demo", "ErpContact").objects
        for number, name in (("C00010", "Fabrikam"), ("C00020", "Contoso")):
            customers.create(number=number, display_name=name)
            contacts.create(
                number=number,
                type="Company",
                display_name=name,
                company_number=number,
                company_name=name,
            )
        # A company that is no customer, a contact holding the series' first number already,
        # and people at each company.
        contacts.create(number="PROSPECT", type="Company", display_name="Nordlys AS")
        contacts.create(number="CT000001", display_name="Ola Nordmann", company_number="C00020")
        contacts.create(number="CT00002", display_name="Kari Nordmann", company_number="C00010")
        link = old.get_model("sync", "Connection").objects.create(
            name="Demo ERP ↔ Demo CRM",
            source_base_url="http://erp.example/",
            destination_base_url="http://crm.example/",
        )
        mappings = old.get_model("sync", "TableMapping").objects
        for name, source, destination, lookup in (
            ("CUSTOMER", "customers", "accounts", CURRENCY_LOOKUP),
            ("CONTACT", "contacts", "contacts", COMPANY_LOOKUP),
        ):
            mappings.create(
                connection=link,
                name=name,
                source_entity=source,
                destination_entity=destination,
                field_mappings=[{"source": "displayName", "destination": "name"}, lookup],
            )

        new = migrating.migrate(after)
        contacts = new.get_model("demo", "ErpContact").objects
        numbers = dict(contacts.values_list("display_name", "number"))
        assert numbers == {
            "Fabrikam": "CT000002",
            "Contoso": "CT000003",
            "Nordlys AS": "PROSPECT",
            "Ola Nordmann": "CT000001",
            "Kari Nordmann": "CT00002",
        }
        companies = dict(contacts.values_list("display_name", "company_number"))
        assert companies["Fabrikam"] == "CT000002"  # a company contact is its own company
        assert companies["Kari Nordmann"] == "CT000002"
        assert companies["Ola Nordmann"] == "CT000003"
        relations = new.get_model("demo", "ErpContactBusinessRelation").objects
        assert set(relations.values_list("contact__number", "customer__number")) == {
            ("CT000002", "C00010"),
            ("CT000003", "C00020"),
        }
        series = new.get_model("demo", "ErpNumberSeries").objects.get(code="CONT")
        assert series.last_number_used == "CT000003"
        mappings = {
            m.name: m.field_mappings[-1]["lookup"]
            for m in new.get_model("sync", "TableMapping").objects.all()
        }
        assert mappings["CUSTOMER"]["blank"] == "local currency"
        assert mappings["CONTACT"]["via"] == "company contact"

        back = migrating.migrate(before)
        contacts = back.get_model("demo", "ErpContact").objects
        assert dict(contacts.values_list("display_name", "company_number")) == {
            "Fabrikam": "C00010",
            "Contoso": "C00020",
            "Nordlys AS": "",
            "Ola Nordmann": "C00020",
            "Kari Nordmann": "C00010",
        }
        lookups = [
            m.field_mappings[-1]["lookup"]
            for m in back.get_model("sync", "TableMapping").objects.all()
        ]
        assert not any("via" in lookup or "blank" in lookup for lookup in lookups)
    finally:
        migrating.migrate(latest)
