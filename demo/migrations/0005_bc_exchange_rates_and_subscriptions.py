"""Business Central keeps a currency's rates apart from the currency (the currency exchange
rates, each from a starting date), and takes webhook subscriptions through its API."""

import datetime
import uuid

from django.db import migrations, models

import syncconsole.encryption

# The rate a currency had is kept as its rate from this date on.
SINCE = datetime.date(2020, 1, 1)


def rates_apart(apps, schema_editor):
    currency = apps.get_model("demo", "ErpCurrency")
    rate = apps.get_model("demo", "ErpCurrencyExchangeRate")
    rate.objects.bulk_create(
        rate(
            currency_code=code,
            starting_date=SINCE,
            exchange_rate_amount=amount,
            relational_exchange_rate_amount=1,
        )
        for code, amount in currency.objects.exclude(exchange_rate=None).values_list(
            "code", "exchange_rate"
        )
    )


def rates_back(apps, schema_editor):
    currency = apps.get_model("demo", "ErpCurrency")
    rate = apps.get_model("demo", "ErpCurrencyExchangeRate")
    for row in rate.objects.order_by("starting_date"):
        currency.objects.filter(code=row.currency_code).update(
            exchange_rate=row.exchange_rate_amount / row.relational_exchange_rate_amount
        )


class Migration(migrations.Migration):
    dependencies = [("demo", "0004_encrypted_client_state")]

    operations = [
        migrations.CreateModel(
            name="ErpCurrencyExchangeRate",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("currency_code", models.CharField(max_length=10)),
                ("starting_date", models.DateField()),
                (
                    "exchange_rate_amount",
                    models.DecimalField(decimal_places=6, default=1, max_digits=18),
                ),
                ("relational_currency_code", models.CharField(blank=True, max_length=10)),
                (
                    "relational_exchange_rate_amount",
                    models.DecimalField(decimal_places=6, default=1, max_digits=18),
                ),
                ("last_modified", models.DateTimeField(auto_now=True, db_index=True)),
            ],
            options={
                "indexes": [models.Index(fields=["last_modified", "id"], name="erp_rate_changes")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("currency_code", "starting_date"),
                        name="erp_rate_per_currency_and_date",
                    )
                ],
            },
        ),
        migrations.RunPython(rates_apart, rates_back),
        migrations.RemoveField(model_name="erpcurrency", name="exchange_rate"),
        migrations.CreateModel(
            name="ErpSubscription",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("subscription_id", models.CharField(max_length=32, unique=True)),
                ("notification_url", models.URLField(max_length=2048)),
                ("resource", models.CharField(max_length=500)),
                ("entity", models.CharField(db_index=True, max_length=50)),
                ("client_state", syncconsole.encryption.EncryptedTextField(blank=True)),
                ("user_id", models.UUIDField()),
                ("expiration", models.DateTimeField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_modified", models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
