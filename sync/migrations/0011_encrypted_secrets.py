from django.db import migrations, models

import syncconsole.encryption
from syncconsole.encryption import decrypt_columns, encrypt_columns

SECRETS = ("source_secret", "destination_secret")
HELP = "Password, token or client secret; encrypted, never shown."


class Migration(migrations.Migration):
    """Connection secrets become Fernet tokens: the columns widen to text, the stored
    secrets are encrypted, then the fields read and write through the keys."""

    dependencies = [("sync", "0010_reconciliation")]

    operations = [
        *(
            migrations.AlterField("connection", name, models.TextField(blank=True, help_text=HELP))
            for name in SECRETS
        ),
        migrations.RunPython(
            encrypt_columns("sync", "Connection", *SECRETS),
            decrypt_columns("sync", "Connection", *SECRETS),
        ),
        *(
            migrations.AlterField(
                "connection",
                name,
                syncconsole.encryption.EncryptedTextField(blank=True, help_text=HELP),
            )
            for name in SECRETS
        ),
    ]
