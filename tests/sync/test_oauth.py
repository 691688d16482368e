"""Signing in with OAuth 2.0 client credentials at Microsoft Entra ID, as Business Central
online and Dataverse expect, against the demo identity provider: the default for new
connections, the token kept and renewed a margin before it runs out (and once more after a
401), the authority and scope of each side derived from its API address where it can be."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.signals import request_started
from django.utils import timezone

from demo import security
from demo.models import CrmAccount
from demo.seed import demo_authority
from errors.models import Category, SyncError
from sync.connectors import ConnectorError, connector_for
from sync.connectors.signin import (
    TOKENS,
    default_authority,
    default_scope,
    read_token,
)
from sync.health import check_connection
from sync.models import Connection, SyncJob

pytestmark = pytest.mark.django_db
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BC_ROOT = f"https://api.businesscentral.dynamics.com/v2.0/{TENANT}/production/api/v2.0/"
DATAVERSE_ROOT = "https://contoso.crm.dynamics.com/api/data/v9.2/"


@pytest.fixture
def token_requests():
    """The token requests the demo identity provider answers during the test."""
    seen: list[str] = []

    def count(sender, environ, **kwargs):
        if environ.get("PATH_INFO", "").endswith("/oauth2/v2.0/token"):
            seen.append(environ["PATH_INFO"])

    request_started.connect(count)
    yield seen
    request_started.disconnect(count)


def test_a_new_connection_signs_in_with_oauth_client_credentials():
    assert Connection().auth_method == Connection.AuthMethod.OAUTH2


def test_the_demo_connection_signs_in_with_client_credentials(demo_apps, token_requests):
    connection = demo_apps.connection
    assert connection.auth_method == Connection.AuthMethod.OAUTH2
    assert connection.source_authority == demo_authority(demo_apps.base_url)
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    assert (job.status, job.inserted, job.failed) == (SyncJob.Status.SUCCEEDED, 10, 1)
    assert CrmAccount.objects.count() == 11
    # One token per app for the whole job, however many calls it made.
    assert len(token_requests) == 2


def test_user_name_and_password_stay_an_explicit_choice_for_business_central_on_premises(
    demo_apps, token_requests
):
    connection = demo_apps.connection
    connection.auth_method = Connection.AuthMethod.BASIC
    connection.save()
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    assert (job.status, job.inserted) == (SyncJob.Status.SUCCEEDED, 10)
    assert token_requests == []


def test_a_wrong_client_secret_is_one_authentication_error_without_the_secret(demo_apps):
    connection = demo_apps.connection
    connection.destination_secret = "not-the-secret-0451"
    connection.save()
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.AUTHENTICATION)
    # Entra's words, without the trace and correlation ids that follow them.
    assert error.message.startswith("AADSTS7000215: Invalid client secret provided.")
    assert "Trace ID" not in error.message and "Trace ID" in error.detail
    assert "not-the-secret-0451" not in error.detail + error.message


def test_an_unknown_client_is_a_sign_in_finding_that_says_what_to_check(demo_apps):
    connection = demo_apps.connection
    connection.destination_username = "nobody@demo-crm.example"
    connection.save()
    findings = check_connection(connection)
    finding = next(f for f in findings if f.code == "sign_in" and f.severity == "error")
    assert finding.message.startswith("AADSTS700016: Application with identifier")
    assert "client ID" in finding.remedy


def test_the_token_is_kept_and_asked_for_again_a_margin_before_it_runs_out(
    demo_apps, token_requests
):
    connector = connector_for(demo_apps.connection, "destination")
    assert connector.find("accounts", "accountnumber", "C00020")
    assert connector.find("accounts", "accountnumber", "C00030") == []
    assert len(token_requests) == 1
    first = connector._token

    # Still valid at the app, but within the margin: a new token before the call.
    later = timezone.now() + timedelta(seconds=security.TOKEN_LIFETIME_SECONDS - 120)
    with time_machine.travel(later, tick=True):
        assert connector.find("accounts", "accountnumber", "C00020")
    assert len(token_requests) == 2
    assert connector._token != first


def test_an_expired_token_is_refused_by_the_app_and_renewed_once(demo_apps, token_requests):
    connection = demo_apps.connection
    connector = connector_for(connection, "destination")
    # A token issued more than its lifetime ago, still kept (as by a process whose clock
    # and the app's disagree).
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        stale = security.issue_token("crm", connection.destination_username)
    TOKENS.put(connector._token_key(), stale, lifetime=3599)

    assert connector.find("accounts", "accountnumber", "C00020")
    assert len(token_requests) == 1  # the 401, then one new token
    assert connector._token != stale


def test_a_token_for_one_app_does_not_open_the_other(demo_apps):
    connection = demo_apps.connection
    answer = demo_apps.post(
        connection.side_config("source").token_url,
        data={
            "grant_type": "client_credentials",
            "scope": connection.source_scope,
            "client_id": connection.source_username,
            "client_secret": connection.source_secret,
        },
    ).json()
    connection.auth_method = Connection.AuthMethod.BEARER
    connection.source_secret = connection.destination_secret = answer["access_token"]
    assert answer["token_type"] == "Bearer"

    erp = connector_for(connection, "source")
    assert erp.find("customers", "number", "C00020")
    with pytest.raises(ConnectorError) as refused:
        connector_for(connection, "destination").find("accounts", "accountnumber", "C00020")
    assert refused.value.status == 401
    assert "issued for another application" in refused.value.message


def test_the_scope_is_taken_from_the_api_address():
    assert default_scope(BC_ROOT + "companies(1)/") == (
        "https://api.businesscentral.dynamics.com/.default"
    )
    assert default_scope(DATAVERSE_ROOT) == "https://contoso.crm.dynamics.com/.default"
    assert default_scope("http://127.0.0.1:8000/demo/crm/api/data/v9.2/") == (
        "http://127.0.0.1:8000/.default"
    )


def test_the_authority_is_taken_from_a_business_central_address_that_names_its_tenant():
    assert default_authority(BC_ROOT) == f"https://login.microsoftonline.com/{TENANT}"
    by_domain = "https://api.businesscentral.dynamics.com/v2.0/contoso.com/sandbox/api/v2.0/"
    assert default_authority(by_domain) == "https://login.microsoftonline.com/contoso.com"
    # The signed-in user's own tenant, and Dataverse, do not say.
    assert (
        default_authority("https://api.businesscentral.dynamics.com/v2.0/production/api/v2.0/")
        == ""
    )
    assert default_authority(DATAVERSE_ROOT) == ""


def test_a_side_whose_authority_is_unknown_is_refused_by_the_form():
    connection = Connection(
        name="Contoso",
        source_base_url=BC_ROOT,
        destination_base_url=DATAVERSE_ROOT,
        auth_method=Connection.AuthMethod.OAUTH2,
    )
    with pytest.raises(ValidationError) as refused:
        connection.clean()
    assert set(refused.value.message_dict) == {"destination_authority"}
    connection.destination_authority = f"https://login.microsoftonline.com/{TENANT}"
    connection.clean()
    config = connection.side_config("destination")
    assert config.token_url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert config.token_scope == "https://contoso.crm.dynamics.com/.default"
    # Basic authentication needs no authority.
    Connection(destination_base_url=DATAVERSE_ROOT, auth_method="basic").clean()


def test_a_connection_without_an_authority_fails_to_sign_in_with_a_clear_message(demo_apps):
    connection = demo_apps.connection
    connection.destination_authority = ""
    with pytest.raises(ConnectorError) as refused:
        connector_for(connection, "destination").find("accounts", "accountnumber", "C00020")
    assert refused.value.is_sign_in_failure
    assert "names no Microsoft Entra authority" in refused.value.message


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"token_type": "Bearer", "expires_in": 3599}, "without an access token"),
        ({"access_token": "x", "token_type": "mac", "expires_in": 60}, "not Bearer"),
        ({"access_token": "x", "expires_in": "soon"}, "not a number of seconds"),
        ({"access_token": "x", "expires_in": -5}, "not a number of seconds"),
    ],
)
def test_a_token_answer_that_is_not_usable_is_refused_with_a_clear_message(answer, words):
    with pytest.raises(ConnectorError) as refused:
        read_token(answer, "Dynamics 365 Sales")
    assert words in refused.value.message


def test_a_token_answer_gives_the_token_and_its_lifetime():
    assert read_token({"access_token": "abc", "expires_in": 3599}, "ERP") == ("abc", 3599)
    assert read_token({"access_token": "abc", "expires_in": "3599"}, "ERP") == ("abc", 3599)


def test_oauth_settings_kept_in_the_json_settings_move_to_their_fields():
    from importlib import import_module

    from django.apps import apps

    from tests.factories import make_connection

    migration = import_module("sync.migrations.0013_entra_sign_in_and_throttling")
    connection = make_connection(
        source_authority="",
        destination_authority="",
        source_secret="kept-as-it-is",
        source_settings={
            "token_url": f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
            "scope": "https://api.businesscentral.dynamics.com/.default",
            "page_size": 200,
        },
        destination_settings={"token_url": "https://idp.example.com/token"},
    )
    migration.settings_to_fields(apps, None)
    connection.refresh_from_db()
    assert connection.source_authority == f"https://login.microsoftonline.com/{TENANT}"
    assert connection.source_scope == "https://api.businesscentral.dynamics.com/.default"
    assert connection.source_settings == {"page_size": 200}
    # Another identity provider's token URL stays a setting.
    assert connection.destination_settings == {"token_url": "https://idp.example.com/token"}
    assert connection.source_secret == "kept-as-it-is"
