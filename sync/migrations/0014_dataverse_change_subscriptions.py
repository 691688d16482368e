"""A Dataverse side's change notifications are kept too: its webhook and the steps of each table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0013_entra_sign_in_and_throttling"),
    ]

    operations = [
        migrations.AddField(
            model_name="changesubscription",
            name="endpoint_id",
            field=models.CharField(
                blank=True,
                help_text="Dataverse: the side's webhook (service endpoint).",
                max_length=100,
            ),
        ),
        migrations.AddField(
            model_name="changesubscription",
            name="step_ids",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Dataverse: the steps registered for this table on the webhook, by message.",
            ),
        ),
    ]
