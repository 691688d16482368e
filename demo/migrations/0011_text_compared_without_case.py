"""Dataverse compares text without regard to case: the demo CRM's match fields are indexed
in upper case, as its queries compare them."""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0010_company_contacts"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="crmaccount",
            name="crm_account_number",
        ),
        migrations.RemoveIndex(
            model_name="crmcontact",
            name="crm_contact_email",
        ),
        migrations.RemoveIndex(
            model_name="crmproduct",
            name="crm_product_number",
        ),
        migrations.AddIndex(
            model_name="crmaccount",
            index=models.Index(
                django.db.models.functions.text.Upper("account_number"), name="crm_account_number"
            ),
        ),
        migrations.AddIndex(
            model_name="crmcontact",
            index=models.Index(
                django.db.models.functions.text.Upper("email"), name="crm_contact_email"
            ),
        ),
        migrations.AddIndex(
            model_name="crmproduct",
            index=models.Index(
                django.db.models.functions.text.Upper("product_number"), name="crm_product_number"
            ),
        ),
    ]
