"""Demo data made before the CRM had lookups keeps working after `migrate`: an account's
currency code becomes its currency lookup, and the demo connection's mappings move to lookups."""

import pytest

from . import migrating

pytestmark = pytest.mark.django_db(transaction=True)


def test_existing_demo_data_moves_to_lookups():
    before, after = migrating.around("_lookups")
    latest = migrating.latest()
    old = migrating.migrate(before)
    try:
        currency = old.get_model("demo", "CrmTransactionCurrency").objects.create(
            iso_currency_code="NOK", currency_name="Norwegian krone", exchange_rate=9
        )
        accounts = old.get_model("demo", "CrmAccount").objects
        accounts.create(name="Fjord AS", transaction_currency_code="NOK")
        accounts.create(name="Nowhere Ltd", transaction_currency_code="")
        link = old.get_model("sync", "Connection").objects.create(
            name="Demo ERP ↔ Demo CRM",
            source_base_url="http://erp.example/",
            destination_base_url="http://crm.example/",
        )
        mappings = old.get_model("sync", "TableMapping").objects
        for name, source, destination, fields in (
            (
                "CUSTOMER",
                "customers",
                "accounts",
                [("displayName", "name"), ("currencyCode", "isocurrencycode")],
            ),
            ("CONTACT", "contacts", "contacts", [("displayName", "fullname")]),
        ):
            mappings.create(
                connection=link,
                name=name,
                source_entity=source,
                destination_entity=destination,
                field_mappings=[{"source": s, "destination": d} for s, d in fields],
            )

        new = migrating.migrate(after)
        moved = {
            a.name: a.transaction_currency_id
            for a in new.get_model("demo", "CrmAccount").objects.all()
        }
        assert moved == {"Fjord AS": currency.pk, "Nowhere Ltd": None}
        mappings = {m.name: m for m in new.get_model("sync", "TableMapping").objects.all()}
        customer = mappings["CUSTOMER"].field_mappings
        assert [(f["source"], f["destination"], f.get("type")) for f in customer] == [
            ("displayName", "name", None),
            ("currencyCode", "transactioncurrencyid", "lookup"),
        ]
        contact = mappings["CONTACT"]
        assert contact.field_mappings[-1]["lookup"]["mapping"] == "CUSTOMER"
        assert contact.source_filter == "type eq 'Person'"
    finally:
        migrating.migrate(latest)
