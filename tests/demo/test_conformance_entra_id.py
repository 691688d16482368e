"""The demo identity provider answers as Microsoft Entra ID's token endpoint does for OAuth 2.0
client credentials, and the tokens it issues run out: both demo apps then refuse them.

Microsoft's documentation:
- "Microsoft identity platform and the OAuth 2.0 client credentials flow",
  https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
  (the request, the successful response, the error response and its fields);
- "Microsoft Entra authentication and authorization error codes",
  https://learn.microsoft.com/entra/identity-platform/reference-error-codes (the `error`
  values and the AADSTS codes: 90002, 900144, 70003, 700016, 7000218, 7000215, 70011,
  900561);
- "Authorize access to Azure Active Directory web applications using the OAuth 2.0 code grant
  flow", Error response, https://learn.microsoft.com/previous-versions/azure/active-directory/azuread-dev/v1-protocols-oauth-code
  (a protected resource's 401 with WWW-Authenticate: Bearer authorization_uri=...,
  error="invalid_token")."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from demo import security
from demo.entities import api_root
from demo.seed import INTEGRATION_PASSWORD, INTEGRATION_USER

pytestmark = pytest.mark.django_db
CRM_SCOPE = "api://demo-crm/.default"


def token_url(demo_apps, tenant: str | None = None) -> str:
    return (
        f"{demo_apps.base_url}/demo/identity/{tenant or settings.DEMO_TENANT_ID}/oauth2/v2.0/token"
    )


def ask(demo_apps, tenant: str | None = None, **form):
    defaults = {
        "grant_type": "client_credentials",
        "client_id": INTEGRATION_USER,
        "client_secret": INTEGRATION_PASSWORD,
        "scope": CRM_SCOPE,
    }
    fields = {k: v for k, v in {**defaults, **form}.items() if v is not None}
    return demo_apps.post(token_url(demo_apps, tenant), data=fields)


def test_a_token_is_answered_with_its_type_lifetime_and_value(demo_apps):
    answer = ask(demo_apps)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == security.TOKEN_LIFETIME_SECONDS == 3599
    assert isinstance(body["access_token"], str) and body["access_token"]


@pytest.mark.parametrize(
    ("tenant", "form", "status", "error", "code"),
    [
        ("contoso.onmicrosoft.com", {}, 400, "invalid_request", 90002),
        (None, {"grant_type": None}, 400, "invalid_request", 900144),
        (None, {"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        (None, {"client_id": None}, 400, "invalid_request", 900144),
        (None, {"scope": None}, 400, "invalid_request", 900144),
        (None, {"client_id": "nobody@demo-crm.example"}, 400, "unauthorized_client", 700016),
        (None, {"client_secret": None}, 401, "invalid_client", 7000218),
        (None, {"client_secret": "not-it"}, 401, "invalid_client", 7000215),
        (None, {"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_scope", 70011),
    ],
)
def test_a_refusal_is_worded_as_entra_id_words_it(demo_apps, tenant, form, status, error, code):
    answer = ask(demo_apps, tenant, **form)
    assert answer.status_code == status
    body = answer.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    first, *rest = body["error_description"].split("\r\n")
    assert first.startswith(f"AADSTS{code}: ")
    assert [line.split(":")[0] for line in rest] == ["Trace ID", "Correlation ID", "Timestamp"]
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    assert "access_token" not in body


def test_the_token_endpoint_takes_only_post(demo_apps):
    answer = demo_apps.get(token_url(demo_apps))
    assert answer.json()["error_codes"] == [900561]


@pytest.mark.parametrize(
    ("app", "scope", "client_id", "secret", "code"),
    [
        ("crm", CRM_SCOPE, INTEGRATION_USER, INTEGRATION_PASSWORD, "0x80090326"),
        (
            "erp",
            "api://demo-erp/.default",
            settings.DEMO_ERP_USER,
            settings.DEMO_ERP_PASSWORD,
            "Authentication_InvalidCredentials",
        ),
    ],
)
def test_a_token_that_ran_out_is_refused_with_401_and_a_bearer_challenge(
    demo_apps, app, scope, client_id, secret, code
):
    token = ask(demo_apps, client_id=client_id, client_secret=secret, scope=scope).json()
    url = api_root(app, demo_apps.base_url) + ("customers" if app == "erp" else "accounts")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert demo_apps.get(url, headers=headers).status_code == 200

    later = timezone.now() + timedelta(seconds=token["expires_in"] + 1)
    with time_machine.travel(later):
        refused = demo_apps.get(url, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == code
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer authorization_uri=")
    assert 'error="invalid_token"' in challenge
