from django.db import migrations, models

import syncconsole.encryption
from syncconsole.encryption import decrypt_columns, encrypt_columns


class Migration(migrations.Migration):
    """A webhook's client state is a shared secret: kept as a Fernet token."""

    dependencies = [("demo", "0003_record_change_and_match_indexes")]

    operations = [
        migrations.AlterField("demowebhook", "client_state", models.TextField(blank=True)),
        migrations.RunPython(
            encrypt_columns("demo", "DemoWebhook", "client_state"),
            decrypt_columns("demo", "DemoWebhook", "client_state"),
        ),
        migrations.AlterField(
            "demowebhook",
            "client_state",
            syncconsole.encryption.EncryptedTextField(blank=True),
        ),
    ]
