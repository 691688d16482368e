"""Secrets at rest: encrypted in the database, readable only with the right keys, and never
shown in pages, logs, error entries or API answers."""

import base64
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import quote, quote_plus

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.test import override_settings
from django.urls import reverse

from demo.models import CrmServiceEndpoint
from errors.models import SyncError
from sync.connectors import ConnectorError
from sync.connectors.odata import ODataConnector, SideConfig
from sync.models import Connection, SyncJob
from syncconsole.encryption import UnreadableSecret
from tests.factories import make_connection, make_mapping

# Characters that change when a secret is sent in a form or a URL, or echoed inside JSON.
SECRET = 'hunter2+never/stored="in"\\clear&whole'


def spellings(secret: str) -> set[str]:
    """Every form in which an echo may carry the secret."""
    return {secret, quote_plus(secret), quote(secret, safe=""), json.dumps(secret)[1:-1]}


KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored(table: str, column: str, pk) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def stored_secret(connection: Connection, side: str = "source") -> str:
    return stored("sync_connection", f"{side}_secret", connection.pk)


@pytest.mark.django_db
def test_the_column_holds_a_token_and_the_model_the_secret():
    connection = make_connection(source_secret=SECRET, destination_secret="")
    raw = stored_secret(connection)
    assert SECRET not in raw and raw.startswith("gAAAAA")
    assert stored_secret(connection, "destination") == ""  # no secret needs no key
    assert Connection.objects.get(pk=connection.pk).source_secret == SECRET

    Connection.objects.filter(pk=connection.pk).update(destination_secret=SECRET)
    assert SECRET not in stored_secret(connection, "destination")
    assert Connection.objects.get(pk=connection.pk).destination_secret == SECRET


@pytest.mark.django_db
def test_a_webhook_key_is_encrypted_too():
    hook = CrmServiceEndpoint.objects.create(
        name="Hook", contract=8, auth_type=4, url="https://x.example/", auth_value=SECRET
    )
    assert SECRET not in stored("demo_crmserviceendpoint", "auth_value", hook.pk)
    assert CrmServiceEndpoint.objects.get(pk=hook.pk).auth_value == SECRET


@pytest.mark.django_db
def test_a_wrong_key_is_a_clear_error_not_garbage(staff_client):
    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A]):
        connection = make_connection(source_secret=SECRET)
        make_mapping(connection)
    before = stored_secret(connection)
    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_B]):
        loaded = Connection.objects.get(pk=connection.pk)
        assert isinstance(loaded.source_secret, UnreadableSecret)
        assert loaded.source_secret == ""
        # The pages that load the connection still answer.
        for name in ("errors:list", "sync:connections", "sync:mappings"):
            assert staff_client.get(reverse(name)).status_code == 200
        # Saving its row keeps the token: the right key may come back.
        loaded.name = "Renamed"
        loaded.save()
        assert stored_secret(connection) == before
        # Signing in with it is a clear sign-in failure, before any call.
        with pytest.raises(ConnectorError, match="cannot be decrypted with the keys") as raised:
            list(ODataConnector(loaded.side_config("source")).list_changes("customers", None))
        assert raised.value.is_sign_in_failure
    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A]):
        assert Connection.objects.get(pk=connection.pk).source_secret == SECRET


@pytest.mark.django_db
def test_rotation_reads_with_every_key_and_reencrypts_with_the_first():
    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A]):
        connection = make_connection(source_secret=SECRET, destination_secret="other-secret")
    before = stored_secret(connection)

    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        assert Connection.objects.get(pk=connection.pk).source_secret == SECRET
        call_command("reencrypt_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = stored_secret(connection)
    assert after != before
    assert Fernet(KEY_B).decrypt(after.encode()).decode() == SECRET

    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_B]):  # the old key retired
        fetched = Connection.objects.get(pk=connection.pk)
        assert (fetched.source_secret, fetched.destination_secret) == (SECRET, "other-secret")


@pytest.mark.django_db
def test_rotation_without_the_old_key_changes_nothing():
    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A]):
        connection = make_connection(source_secret=SECRET)
    before = stored_secret(connection)
    with (
        override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_B], SECRET_KEY="another-secret-key"),
        pytest.raises(CommandError, match="Nothing was changed"),
    ):
        call_command("reencrypt_secrets")
    assert stored_secret(connection) == before


@pytest.mark.django_db
def test_the_key_derived_from_secret_key_still_reads_after_an_explicit_key_is_set():
    connection = make_connection(source_secret=SECRET)  # no explicit key: derived one
    with override_settings(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A]):
        call_command("reencrypt_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert Connection.objects.get(pk=connection.pk).source_secret == SECRET
    assert Fernet(KEY_A).decrypt(stored_secret(connection).encode()).decode() == SECRET


def check_ids(**overrides) -> set[str]:
    with override_settings(**overrides):
        return {message.id for message in run_checks(include_deployment_checks=True)}


def test_deploy_checks_want_an_explicit_valid_key():
    assert "syncconsole.E004" in check_ids(DEBUG=False, SYNC_CONSOLE_ENCRYPTION_KEYS=[])
    assert "syncconsole.E004" not in check_ids(DEBUG=False, SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A])
    assert "syncconsole.E004" not in check_ids(DEBUG=True, SYNC_CONSOLE_ENCRYPTION_KEYS=[])
    assert "syncconsole.E003" in check_ids(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A, "not-a-key"])
    assert "syncconsole.E003" not in check_ids(SYNC_CONSOLE_ENCRYPTION_KEYS=[KEY_A, KEY_B])


@pytest.mark.django_db
def test_the_admin_change_form_never_renders_a_secret_and_blank_keeps_it(client, superuser):
    connection = make_connection(source_secret=SECRET, destination_secret=SECRET)
    client.force_login(superuser)
    url = reverse("admin:sync_connection_change", args=[connection.pk])
    page = client.get(url).content.decode()
    assert SECRET not in page and 'type="password"' in page
    form = {
        **{f.name: getattr(connection, f.name) for f in Connection._meta.concrete_fields},
        "source_settings": "{}",
        "destination_settings": "{}",
        "is_enabled": "on",
        "source_secret": "",
        "destination_secret": "replaced-secret",
        "mappings-TOTAL_FORMS": "0",
        "mappings-INITIAL_FORMS": "0",
    }
    del form["id"], form["created_at"]
    assert client.post(url, form).status_code == 302
    connection.refresh_from_db()
    assert (connection.source_secret, connection.destination_secret) == (SECRET, "replaced-secret")
    assert "replaced-secret" not in stored_secret(connection, "destination")


def wrong_password(demo_apps) -> str:
    demo_apps.connection.destination_secret = wrong = "wrong-password-0451"
    demo_apps.connection.save()
    return wrong


def test_a_failed_sign_in_never_writes_the_secret_to_logs_or_entries(demo_apps, caplog):
    wrong = wrong_password(demo_apps)
    right = demo_apps.connection.source_secret
    with caplog.at_level(logging.DEBUG):
        job = demo_apps.run("CUSTOMER")
    assert job.status == SyncJob.Status.FAILED
    entries = list(SyncError.objects.filter(job=job))
    assert entries
    text = caplog.text + job.message
    text += "".join(f"{e.message}{e.detail}{json.dumps(e.sent_values)}" for e in entries)
    assert "AADSTS7000215: Invalid client secret provided." in text
    for secret in (wrong, right):
        assert secret not in text


def test_connection_pages_and_api_answers_never_show_secrets(demo_apps, staff_client):
    from tests.api.conftest import token_client

    connection = demo_apps.connection
    secrets = [connection.source_secret, connection.destination_secret]
    pages = [
        staff_client.get(reverse("sync:connections")),
        staff_client.get(reverse("sync:connection_health", args=[connection.pk])),
        staff_client.post(reverse("sync:connection_health", args=[connection.pk]), follow=True),
    ]
    api = token_client(connection_admin(staff_client))
    pages += [
        api.get(reverse("api:connections")),
        api.post(
            reverse("api:connection_check", args=[connection.pk]),
            "{}",
            content_type="application/json",
        ),
    ]
    for page in pages:
        assert page.status_code in (200, 201)
        for secret in secrets:
            assert secret and secret not in page.content.decode()


def connection_admin(client):
    from django.contrib.auth import get_user

    return get_user(client)


class EchoingApp(BaseHTTPRequestHandler):
    """An app that answers every request with a 401 quoting all it was sent, headers and
    body: hostile, or merely verbose, it must not get the secret into an entry."""

    def _echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        message = f"Refused Authorization: {self.headers.get('Authorization')} body: {body}"
        payload = json.dumps({"error": {"code": "Unauthorized", "message": message}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _echo

    def log_message(self, *args):
        pass


@pytest.fixture
def echoing_app():
    server = HTTPServer(("127.0.0.1", 0), EchoingApp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("auth_method", "options"),
    [("basic", {}), ("bearer", {}), ("oauth2", {"token_url": "token"})],
)
def test_an_app_echoing_the_credentials_never_gets_them_into_an_error(
    echoing_app, auth_method, options, caplog
):
    if options:
        options = {"token_url": echoing_app + options["token_url"]}
    config = SideConfig(
        app_name="Echo",
        base_url=echoing_app,
        auth_method=auth_method,
        username="integration",
        secret=SECRET,
        options=options,
        max_retries=0,
    )
    assert SECRET not in repr(config)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectorError) as raised:
        list(ODataConnector(config).list_changes("customers", None))
    error = raised.value
    assert "Refused" in error.message and "[secret]" in error.message + error.detail
    for text in (error.message, error.detail, str(error), caplog.text):
        for spelling in spellings(SECRET):
            assert spelling not in text
        assert "aW50ZWdyYXRpb246" not in text  # base64 of "integration:", the Basic form


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("auth_method", ["basic", "bearer"])
def test_a_job_against_an_echoing_app_stores_no_secret(echoing_app, auth_method, caplog):
    from sync import engine
    from sync.services import create_job

    connection = make_connection(
        source_base_url=echoing_app,
        destination_base_url=echoing_app,
        source_username="erp-user",
        source_secret=SECRET,
        destination_username="crm-user",
        destination_secret=SECRET,
        source_settings={"max_retries": 0},
        destination_settings={"max_retries": 0},
        auth_method=auth_method,
    )
    mapping = make_mapping(connection)
    job = create_job(mapping, kind=SyncJob.Kind.MODIFIED, trigger=SyncJob.Trigger.USER)
    with caplog.at_level(logging.DEBUG):
        job = engine.run_job(job.pk)
    assert job.status == SyncJob.Status.FAILED
    entries = list(SyncError.objects.filter(job=job))
    assert entries and any("Refused" in e.message + e.detail for e in entries)
    stored = caplog.text + job.message
    stored += "".join(f"{e.message}{e.detail}{json.dumps(e.sent_values)}" for e in entries)
    for user in ("erp-user", "crm-user"):
        assert base64.b64encode(f"{user}:{SECRET}".encode()).decode() not in stored
    for spelling in spellings(SECRET):
        assert spelling not in stored
