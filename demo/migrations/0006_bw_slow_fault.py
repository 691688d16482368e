"""A demo fault that answers slowly but answers, for the self-sizing bulk writes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0005_bc_exchange_rates_and_subscriptions"),
    ]

    operations = [
        migrations.AlterField(
            model_name="demofault",
            name="mode",
            field=models.CharField(
                choices=[
                    ("timeout", "Answer too late (timeout)"),
                    ("slow", "Answer slowly, but answer"),
                    ("server_error", "500 Internal Server Error"),
                    ("unavailable", "503 Service Unavailable"),
                    ("throttle", "429 Too Many Requests"),
                    ("garbage", "Answer with broken JSON"),
                ],
                max_length=20,
            ),
        ),
    ]
