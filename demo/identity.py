"""The demo identity provider: Microsoft Entra ID's token endpoint for OAuth 2.0 client
credentials, `POST /demo/identity/<tenant>/oauth2/v2.0/token`, as "Microsoft identity platform
and the OAuth 2.0 client credentials flow" documents it
(https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):

- the request is a form with `grant_type=client_credentials`, `client_id`, `client_secret`
  and `scope` (the resource's application ID URI with `/.default`);
- a token is answered with `token_type` (Bearer), `expires_in` (seconds) and `access_token`;
- a refusal with `error`, `error_description` (starting with its AADSTS code, followed by the
  trace id, correlation id and time), `error_codes`, `timestamp`, `trace_id`,
  `correlation_id` and `error_uri`, under the codes and words of "Microsoft Entra
  authentication and authorization error codes"
  (https://learn.microsoft.com/entra/identity-platform/reference-error-codes): 400
  invalid_request (AADSTS90002 unknown tenant, AADSTS900144 missing parameter), 400
  unsupported_grant_type (AADSTS70003), 400 unauthorized_client (AADSTS700016 unknown
  application), 400 invalid_scope (AADSTS70011), 401 invalid_client (AADSTS7000215 wrong
  secret, AADSTS7000218 no secret).

The demo's applications are its apps' API users: the ERP's integration client
(DEMO_ERP_USER) and the CRM's users, each with its password as client secret. Its resources
are the two apps, by the scopes in SCOPES."""

import uuid

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import security
from .models import CrmSystemUser

SCOPES = {"api://demo-erp/.default": "erp", "api://demo-crm/.default": "crm"}


def _refusal(status: int, error: str, code: int, description: str) -> JsonResponse:
    """A refusal as Microsoft Entra ID words it."""
    now = timezone.now().strftime("%Y-%m-%d %H:%M:%SZ")
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    return JsonResponse(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {now}",
            "error_codes": [code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
        status=status,
    )


def _missing(name: str) -> JsonResponse:
    return _refusal(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _registered(client_id: str) -> bool:
    return client_id == settings.DEMO_ERP_USER or (
        CrmSystemUser.objects.filter(domain_name__iexact=client_id).exclude(password="").exists()
    )


@csrf_exempt
def token(request: HttpRequest, tenant: str) -> JsonResponse:
    if request.method != "POST":
        return _refusal(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests. Received a "
            f"{(request.method or '')[:10]} request.",
        )
    if tenant.lower() != settings.DEMO_TENANT_ID.lower():
        return _refusal(
            400,
            "invalid_request",
            90002,
            f"Tenant '{tenant[:100]}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    form = request.POST
    grant_type = form.get("grant_type", "")
    if not grant_type:
        return _missing("grant_type")
    if grant_type != "client_credentials":
        return _refusal(
            400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
        )
    client_id = form.get("client_id", "")
    if not client_id:
        return _missing("client_id")
    scope = form.get("scope", "")
    if not scope:
        return _missing("scope")
    if not _registered(client_id):
        return _refusal(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id[:100]}' was not found in the directory "
            f"'{tenant}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You may "
            "have sent your authentication request to the wrong tenant.",
        )
    secret = form.get("client_secret", "")
    if not secret:
        return _refusal(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    valid = security.erp_credentials_valid(client_id, secret) or (
        security.crm_user_with(client_id, secret) is not None
    )
    if not valid:
        return _refusal(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            f"client secret value, not the client secret ID, for a secret added to app "
            f"'{client_id[:100]}'.",
        )
    app = SCOPES.get(scope)
    if app is None:
        return _refusal(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope "
            f"{scope[:200]} is not valid.",
        )
    return JsonResponse(
        {
            "token_type": "Bearer",
            "expires_in": security.TOKEN_LIFETIME_SECONDS,
            "access_token": security.issue_token(app, client_id),
        }
    )
