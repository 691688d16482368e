"""Signing in with OAuth 2.0 client credentials at Microsoft Entra ID, as Business Central
online and Dataverse expect ("Microsoft identity platform and the OAuth 2.0 client
credentials flow",
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow): a POST
of `grant_type=client_credentials`, `client_id`, `client_secret` and `scope` (the resource's
application ID URI with `/.default`) to `<authority>/oauth2/v2.0/token`, answered with
`token_type`, `expires_in` (seconds) and `access_token`.

An access token is kept, per token endpoint, client, scope and secret, in the process, and
asked for again a margin before it runs out, so that a call never goes out with a token
about to expire; a 401 renews it once more."""

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .base import ConnectorError

ENTRA_AUTHORITY_HOST = "https://login.microsoftonline.com"
TOKEN_PATH = "/oauth2/v2.0/token"  # noqa: S105 - an address, not a password
# Business Central online's API host: its API root names the tenant after /v2.0/ when it
# does not go through the signed-in user's own ("API endpoint structure",
# https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/api-endpoint-structure).
BUSINESS_CENTRAL_HOST = "api.businesscentral.dynamics.com"
# A tenant in an address: a GUID, or a domain name (contoso.onmicrosoft.com).
TENANT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
# A token is renewed this long before it runs out (at most half its lifetime).
RENEW_MARGIN_SECONDS = 300.0
# How long a token whose answer gave no lifetime is used.
UNKNOWN_LIFETIME_SECONDS = 300.0


def default_scope(base_url: str) -> str:
    """The scope of an app's API from its address: the origin with `/.default`, which is
    the application ID URI of Business Central online
    (`https://api.businesscentral.dynamics.com/.default`) and of a Dataverse environment
    (`https://<org>.crm.dynamics.com/.default`)."""
    url = httpx.URL(base_url)
    if not url.scheme or not url.host:
        return ""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}/.default"


def default_authority(base_url: str) -> str:
    """The Microsoft Entra authority of an app whose address names its tenant (a Business
    Central online API root `https://api.businesscentral.dynamics.com/v2.0/<tenant>/
    <environment>/api/...`); "" when the address does not say."""
    url = httpx.URL(base_url)
    if url.host.lower() != BUSINESS_CENTRAL_HOST:
        return ""
    parts = [part for part in url.path.split("/") if part]
    # v2.0 / <tenant> / <environment> / api / ...
    if len(parts) >= 4 and parts[0] == "v2.0" and parts[3] == "api" and TENANT.fullmatch(parts[1]):
        return f"{ENTRA_AUTHORITY_HOST}/{parts[1]}"
    return ""


def token_endpoint(authority: str) -> str:
    """The token endpoint of an authority (`https://login.microsoftonline.com/<tenant>`)."""
    return authority.rstrip("/") + TOKEN_PATH if authority else ""


@dataclass
class Token:
    value: str
    renew_at: float  # seconds since the epoch


class TokenCache:
    """The access tokens of this process, each until a margin before it runs out."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(token_url: str, client_id: str, scope: str, secret: str) -> tuple[str, ...]:
        # The secret is part of the key (a replaced secret asks for a new token), hashed so
        # that it is not kept in the clear a second time.
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return (token_url, client_id, scope, digest)

    def get(self, key: tuple[str, ...]) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is None or time.time() >= token.renew_at:
                return None
            return token.value

    def put(self, key: tuple[str, ...], value: str, lifetime: float) -> None:
        margin = min(RENEW_MARGIN_SECONDS, lifetime / 2)
        with self._lock:
            self._tokens[key] = Token(value, time.time() + lifetime - margin)

    def forget(self, key: tuple[str, ...], value: str | None = None) -> None:
        """Drop the token (only if it is still `value`, when given: another connector may
        have renewed it already)."""
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and (value is None or token.value == value):
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()


def read_token(body: dict[str, Any], app_name: str) -> tuple[str, float]:
    """The access token and its lifetime in seconds from a token endpoint's answer, checked:
    an answer without a usable token is refused with a message that says what is wrong."""
    token = body.get("access_token")
    if not isinstance(token, str) or not token.strip() or len(token) > 16384:
        raise ConnectorError(
            f"The sign-in for {app_name} answered without an access token.",
            detail=f"Fields of the answer: {', '.join(sorted(map(str, body)))[:500]}",
        )
    kind = body.get("token_type", "Bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise ConnectorError(
            f"The sign-in for {app_name} answered with a token of type {str(kind)[:40]!r}, "
            "not Bearer."
        )
    lifetime = body.get("expires_in")
    if lifetime is None:
        return token, UNKNOWN_LIFETIME_SECONDS
    try:
        # Entra's v2.0 endpoint answers a number; its v1.0 endpoint answered a string.
        seconds = float(str(lifetime)) if not isinstance(lifetime, bool) else -1.0
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 7 * 24 * 3600:
        raise ConnectorError(
            f"The sign-in for {app_name} answered with an expires_in that is not a number of "
            f"seconds: {str(lifetime)[:40]!r}."
        )
    return token, seconds
