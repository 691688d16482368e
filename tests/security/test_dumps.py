"""Dumps (`manage.py dumpdata`) carry secrets as the tokens the database holds, never in plain
text, and `manage.py loaddata` gives them back readable with the same keys."""

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import override_settings

from api.models import ApiToken
from demo.models import CrmServiceEndpoint
from sync.models import Connection
from syncconsole.encryption import DUMP_PREFIX, UnreadableSecret
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import user_in_role
from tests.factories import make_connection

SECRET = 'hunter2+never/dumped="in"\\clear'
KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def dump(*labels: str) -> str:
    out = io.StringIO()
    call_command("dumpdata", *labels, "--indent=1", stdout=out)
    return out.getvalue()


def load(text: str, tmp_path) -> None:
    path = tmp_path / "dump.json"
    path.write_text(text)
    call_command("loaddata", str(path), verbosity=0)


@pytest.mark.django_db(transaction=True)
@override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A])
def test_a_dump_holds_no_plain_secret_and_loads_back_readable(tmp_path):
    connection = make_connection(source_secret=SECRET, destination_secret="")
    CrmServiceEndpoint.objects.create(
        name="Hook", contract=8, auth_type=4, url="https://x.example/", auth_value=SECRET
    )
    _, key = ApiToken.issue(user_in_role("ops", SYNC_ADMINISTRATORS), "script")

    # API tokens are kept as hashes only: the key is in no dump.
    assert key not in dump("auth.user", "api.apitoken")
    text = dump("sync.connection", "demo.crmserviceendpoint")
    assert SECRET not in text
    assert json.dumps(SECRET)[1:-1] not in text
    fields = next(row["fields"] for row in json.loads(text) if row["model"] == "sync.connection")
    assert fields["source_secret"].startswith(DUMP_PREFIX + "gAAAAA")
    assert fields["destination_secret"] == ""

    call_command("flush", "--no-input", verbosity=0)
    assert not Connection.objects.exists()
    load(text, tmp_path)

    loaded = Connection.objects.get(pk=connection.pk)
    assert loaded.source_secret == SECRET
    assert loaded.destination_secret == ""
    assert CrmServiceEndpoint.objects.get().auth_value == SECRET


@pytest.mark.django_db(transaction=True)
def test_a_dump_loaded_before_its_key_keeps_the_secret_until_the_key_comes_back(tmp_path):
    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A]):
        connection = make_connection(source_secret=SECRET)
        text = dump("sync.connection")
    call_command("flush", "--no-input", verbosity=0)

    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_B]):
        load(text, tmp_path)
        unreadable = Connection.objects.get(pk=connection.pk).source_secret
        assert isinstance(unreadable, UnreadableSecret) and unreadable == ""
    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        assert Connection.objects.get(pk=connection.pk).source_secret == SECRET
