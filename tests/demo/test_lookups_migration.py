"""Demo data made before the CRM had lookups keeps working after `migrate`: an account's
currency code becomes its currency lookup, and the demo connection's mappings move to lookups."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def the_lookups_migration() -> tuple[list, list]:
    """The demo migrations just before and with the one that brings the lookups."""
    graph = MigrationExecutor(connection).loader.graph
    (node,) = [n for n in graph.nodes if n[0] == "demo" and n[1].endswith("_lookups")]
    before = [parent for parent in graph.node_map[node].parents if parent.key[0] == "demo"]
    return [before[0].key], [node]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "demo"]
    return executor.loader.project_state([*others, *targets]).apps


def test_existing_demo_data_moves_to_lookups():
    before, after = the_lookups_migration()
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("demo")
    old = migrate(before)
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

        new = migrate(after)
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
        migrate(latest)
