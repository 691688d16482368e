"""Lookups as Dataverse has them: an account's currency is the transactioncurrencyid lookup
(no currency code column on accounts) and a contact's company the parentcustomerid lookup,
to an account or a contact; Business Central's contacts have a type and a company name.

An existing account keeps its currency: the code it held becomes the lookup to the CRM
currency of that code. The demo connection's CUSTOMER and CONTACT mappings, where seed_demo made
them, move to the lookups as seed_demo now makes them."""

import django.db.models.deletion
from django.db import migrations, models


def codes_to_lookups(apps, schema_editor):
    account_model = apps.get_model("demo", "CrmAccount")
    currency_model = apps.get_model("demo", "CrmTransactionCurrency")
    for currency in currency_model.objects.all():
        account_model.objects.filter(transaction_currency_code=currency.iso_currency_code).update(
            transaction_currency=currency
        )
    # The new keys are checked now rather than at commit, so the table can be altered next.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def lookups_to_codes(apps, schema_editor):
    account_model = apps.get_model("demo", "CrmAccount")
    for account in account_model.objects.filter(transaction_currency__isnull=False).select_related(
        "transaction_currency"
    ):
        account.transaction_currency_code = account.transaction_currency.iso_currency_code
        account.save(update_fields=["transaction_currency_code"])


DEMO_CONNECTION = "Demo ERP ↔ Demo CRM"
CURRENCY_LOOKUP = {
    "source": "currencyCode",
    "destination": "transactioncurrencyid",
    "direction": "bidirectional",
    "enabled": True,
    "type": "lookup",
    "lookup": {"entity": "transactioncurrencies", "match": "isocurrencycode", "label": "Currency"},
}
COMPANY_LOOKUP = {
    "source": "companyNumber",
    "destination": "parentcustomerid_account",
    "direction": "bidirectional",
    "enabled": True,
    "type": "lookup",
    "lookup": {
        "entity": "accounts",
        "match": "accountnumber",
        "mapping": "CUSTOMER",
        "property": "_parentcustomerid_value",
        "label": "Company",
    },
}


def demo_mappings_use_lookups(apps, schema_editor):
    mapping_model = apps.get_model("sync", "TableMapping")
    mappings = mapping_model.objects.filter(connection__name=DEMO_CONNECTION)
    for mapping in mappings.filter(name="CUSTOMER"):
        kept = [
            spec
            for spec in mapping.field_mappings
            if (spec.get("source"), spec.get("destination")) != ("currencyCode", "isocurrencycode")
        ]
        if len(kept) < len(mapping.field_mappings):
            mapping.field_mappings = [*kept, CURRENCY_LOOKUP]
            mapping.save(update_fields=["field_mappings"])
    for mapping in mappings.filter(name="CONTACT"):
        if not any(spec.get("type") == "lookup" for spec in mapping.field_mappings):
            mapping.field_mappings = [*mapping.field_mappings, COMPANY_LOOKUP]
            mapping.source_filter = mapping.source_filter or "type eq 'Person'"
            mapping.save(update_fields=["field_mappings", "source_filter"])


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0005_bc_exchange_rates_and_subscriptions"),
        ("sync", "0012_bc_change_subscriptions"),
    ]

    operations = [
        migrations.AddField(
            model_name="crmaccount",
            name="transaction_currency",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="accounts",
                to="demo.crmtransactioncurrency",
            ),
        ),
        migrations.RunPython(codes_to_lookups, lookups_to_codes),
        migrations.RemoveField(
            model_name="crmaccount",
            name="transaction_currency_code",
        ),
        migrations.AddField(
            model_name="crmcontact",
            name="parent_contact",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="child_contacts",
                to="demo.crmcontact",
            ),
        ),
        migrations.AddConstraint(
            model_name="crmcontact",
            constraint=models.CheckConstraint(
                condition=models.Q(("parent_account__isnull", True))
                | models.Q(("parent_contact__isnull", True)),
                name="crm_contact_one_parent_customer",
            ),
        ),
        migrations.AddField(
            model_name="erpcontact",
            name="type",
            field=models.CharField(
                choices=[("Company", "Company"), ("Person", "Person")],
                default="Person",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="erpcontact",
            name="company_name",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.RunPython(demo_mappings_use_lookups, migrations.RunPython.noop),
    ]
