"""Rewrite every stored secret under the first key of SYNC_CONSOLE_ENCRYPTION_KEY."""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from syncconsole.encryption import (
    UNREADABLE_MESSAGE,
    EncryptedTextField,
    SecretUnreadable,
    UnreadableSecret,
)


def encrypted_fields():
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            yield model, names


def reencrypt_all() -> int:
    """Every secret is read (decrypted by whichever key wrote it) and written back, which
    encrypts it with the first key. All or nothing: one unreadable secret changes nothing."""
    count = 0
    with transaction.atomic():
        for model, names in encrypted_fields():
            rows = model.objects.select_for_update().values_list("pk", *names)
            for pk, *values in rows:
                if any(isinstance(value, UnreadableSecret) for value in values):
                    raise SecretUnreadable(UNREADABLE_MESSAGE)
                secrets = {n: v for n, v in zip(names, values, strict=True) if v}
                if secrets:
                    model.objects.filter(pk=pk).update(**secrets)
                    count += len(secrets)
    return count


class Command(BaseCommand):
    help = (
        "Encrypt every stored secret again with the first key of SYNC_CONSOLE_ENCRYPTION_KEY, "
        "after putting a new key in front; then the old keys can be removed."
    )

    def handle(self, *args, **options):
        try:
            count = reencrypt_all()
        except SecretUnreadable as error:
            raise CommandError(f"Nothing was changed. {error}") from None
        self.stdout.write(f"{count} secrets encrypted with the first key.")
