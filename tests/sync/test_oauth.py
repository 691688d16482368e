"""Signing in with OAuth 2.0 client credentials or a bearer token, as real tenants do, against
the demo identity provider."""

import pytest

from demo.models import CrmAccount
from errors.models import Category, SyncError
from sync.connectors import ConnectorError, connector_for
from sync.models import Connection, SyncJob

pytestmark = pytest.mark.django_db
SCOPES = {"source": "api://demo-erp/.default", "destination": "api://demo-crm/.default"}


def use_oauth2(demo_apps) -> Connection:
    connection = demo_apps.connection
    connection.auth_method = Connection.AuthMethod.OAUTH2
    for side, scope in SCOPES.items():
        getattr(connection, f"{side}_settings").update(
            {"token_url": f"{demo_apps.base_url}/demo/identity/oauth2/v2.0/token", "scope": scope}
        )
    connection.save()
    return connection


def test_a_job_signs_in_with_client_credentials(demo_apps):
    use_oauth2(demo_apps)
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    assert (job.status, job.inserted, job.failed) == (SyncJob.Status.SUCCEEDED, 10, 1)
    assert CrmAccount.objects.count() == 11


def test_a_wrong_client_secret_is_one_authentication_error_without_the_secret(demo_apps):
    connection = use_oauth2(demo_apps)
    connection.destination_secret = "not-the-secret-0451"
    connection.save()
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.AUTHENTICATION)
    assert error.message == "AADSTS7000215: Invalid client secret provided."
    assert "not-the-secret-0451" not in error.detail + error.message


def test_an_expired_token_is_renewed_once(demo_apps):
    connector = connector_for(use_oauth2(demo_apps), "destination")
    connector._token = "expired-token"
    assert connector.find("accounts", "accountnumber", "C00020")
    assert connector._token != "expired-token"


def test_a_token_for_one_app_does_not_open_the_other(demo_apps):
    token_url = f"{demo_apps.base_url}/demo/identity/oauth2/v2.0/token"
    connection = demo_apps.connection
    answer = demo_apps.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "scope": SCOPES["source"],
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


def test_the_token_endpoint_answers_like_entra_id(demo_apps):
    token_url = f"{demo_apps.base_url}/demo/identity/oauth2/v2.0/token"
    wrong_grant = demo_apps.post(token_url, data={"grant_type": "password"})
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "unsupported_grant_type")
    wrong_scope = demo_apps.post(token_url, data={"grant_type": "client_credentials", "scope": "x"})
    assert (wrong_scope.status_code, wrong_scope.json()["error"]) == (400, "invalid_scope")
    assert demo_apps.get(token_url).status_code == 405
