"""A demo fault that answers slowly but answers, for the self-sizing bulk writes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0008_security_model"),
    ]

    operations = [
        migrations.AlterField(
            model_name="demofault",
            name="mode",
            field=models.CharField(
                choices=[
                    ("timeout", "Answer too late (504 Gateway Timeout)"),
                    ("request_timeout", "408 Request Timeout (operation timeout)"),
                    ("slow", "Answer slowly, but answer"),
                    ("server_error", "500 Internal Server Error"),
                    ("unavailable", "503 Service Unavailable"),
                    ("throttle", "429 Too Many Requests (number of requests)"),
                    ("throttle_time", "429 Too Many Requests (execution time)"),
                    ("throttle_concurrency", "429 Too Many Requests (concurrent requests)"),
                    ("garbage", "Answer with broken JSON"),
                ],
                max_length=20,
            ),
        ),
    ]
