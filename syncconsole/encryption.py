"""Secrets at rest: stored as Fernet tokens, read back as plain text by the ORM.

Keys come from SYNC_CONSOLE_ENCRYPTION_KEY, a comma-separated list of Fernet keys: the first
encrypts, all of them decrypt, so a new key can be put in front while the old ones still read
what they wrote (`manage.py reencrypt_secrets` then rewrites every secret with the new key).
Without the variable a key is derived from SECRET_KEY, so a fresh machine works; that derived
key also stays a decryption key once explicit keys are set, so moving to them loses nothing.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models
from django.utils.crypto import salted_hmac

KEY_VARIABLE = "SYNC_CONSOLE_ENCRYPTION_KEY"
# How a secret appears in a dump (`manage.py dumpdata`): its token behind this marker, never
# the plain text, so that a dump holds nothing the keys do not protect.
DUMP_PREFIX = "fernet:"


class SecretUnreadable(Exception):
    """A stored secret that none of the keys decrypts."""


UNREADABLE_MESSAGE = (
    f"A stored secret cannot be decrypted with the keys in {KEY_VARIABLE} (nor the one derived "
    "from SECRET_KEY). Put back the key it was encrypted with, or enter the secret again."
)


class UnreadableSecret(str):
    """A stored secret that no key decrypts, as the ORM reads it: empty wherever it could be
    shown (so a changed SECRET_KEY never breaks the pages that load its connection), written
    back unchanged when its row is saved (the right key may come back), and refused where it
    would be used to sign in."""

    token: str

    def __new__(cls, token: str):
        value = super().__new__(cls, "")
        value.token = token
        return value


def derived_key(secret_key: str) -> bytes:
    digest = salted_hmac(
        "syncconsole.encryption", "secrets at rest", secret=secret_key, algorithm="sha256"
    ).digest()
    return base64.urlsafe_b64encode(digest)


def configured_keys() -> list[str]:
    return list(getattr(settings, "SYNC_CONSOLE_ENCRYPTION_KEYS", []))


def invalid_keys() -> list[int]:
    """Positions (from 1) of the configured keys that are not Fernet keys."""
    wrong = []
    for position, key in enumerate(configured_keys(), start=1):
        try:
            Fernet(key)
        except ValueError:
            wrong.append(position)
    return wrong


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    try:
        explicit = [Fernet(key) for key in keys]
    except ValueError:
        raise SecretUnreadable(
            f"{KEY_VARIABLE} holds a value that is not a Fernet key (32 url-safe base64-encoded "
            "bytes); `manage.py check` says which."
        ) from None
    return MultiFernet([*explicit, Fernet(derived_key(secret_key))])


def fernet() -> MultiFernet:
    return _fernet(tuple(configured_keys()), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(UNREADABLE_MESSAGE) from None


class EncryptedTextField(models.TextField):
    """Plain text in Python, a Fernet token in the column. An empty value stays empty (so
    "no secret" needs no key), and the column cannot be searched: each token differs."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return decrypt(value)
        except SecretUnreadable:
            return UnreadableSecret(value)

    def value_to_string(self, obj) -> str:
        """The serializers' (dumpdata's) form: the token, as stored, behind DUMP_PREFIX."""
        value = self.value_from_object(obj)
        if not value:
            return value or ""
        token = value.token if isinstance(value, UnreadableSecret) else encrypt(value)
        return DUMP_PREFIX + token

    def to_python(self, value):
        """Reads back what value_to_string wrote (loaddata): a marked token is decrypted, or
        kept as it is when no key reads it, so that a dump loaded before its key is put back
        still keeps the secret."""
        if isinstance(value, str) and value.startswith(DUMP_PREFIX):
            token = value.removeprefix(DUMP_PREFIX)
            try:
                return decrypt(token)
            except SecretUnreadable:
                return UnreadableSecret(token)
        return super().to_python(value)

    def get_prep_value(self, value):
        if isinstance(value, UnreadableSecret):
            return value.token
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)


def encrypt_columns(app_label: str, model_name: str, *fields: str):
    """A data migration's forward step: encrypt what the columns hold in plain text. It runs
    while the fields are plain text columns, before they become EncryptedTextField."""

    def forward(apps, schema_editor):
        _rewrite(apps.get_model(app_label, model_name), fields, encrypt)

    return forward


def decrypt_columns(app_label: str, model_name: str, *fields: str):
    """The reverse: put the plain text back."""

    def backward(apps, schema_editor):
        _rewrite(apps.get_model(app_label, model_name), fields, decrypt)

    return backward


def _rewrite(model, fields, change) -> None:
    for pk, *values in model.objects.values_list("pk", *fields).iterator():
        changed = {name: change(value) for name, value in zip(fields, values, strict=True) if value}
        if changed:
            model.objects.filter(pk=pk).update(**changed)
