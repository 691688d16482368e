"""Lookups as Dataverse has them: an account's currency is the transactioncurrencyid lookup
(no currency code column on accounts) and a contact's company the parentcustomerid lookup,
to an account or a contact; Business Central's contacts have a type and a company name.

An existing account keeps its currency: the code it held becomes the lookup to the CRM
currency of that code."""

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


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0004_encrypted_client_state"),
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
    ]
