"""Who may do what in the demo apps: sign-in checks and the CRM's security roles.

The CRM answers like Dataverse: a missing privilege is a 403 naming the principal user and the
privilege, a sign-in problem is a 401 with its reason."""

import base64
import binascii
import uuid

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare

from .models import CrmSystemUser

ADMIN_ROLE = "System Administrator"
INTEGRATION_ROLES = ("Integration Administrator", "Integration User")

# Privilege names as Dataverse spells them: prv<Verb><Entity>.
ENTITY_PRIVILEGE_NAMES = {
    "accounts": "Account",
    "contacts": "Contact",
    "products": "Product",
    "transactioncurrencies": "TransactionCurrency",
    "systemusers": "User",
}
VERBS = {"GET": "Read", "POST": "Create", "PATCH": "Write", "DELETE": "Delete"}


def _all(*verbs: str, on: tuple[str, ...]) -> set[str]:
    return {f"prv{verb}{ENTITY_PRIVILEGE_NAMES[e]}" for verb in verbs for e in on}


ROLE_PRIVILEGES: dict[str, set[str]] = {
    "Integration Administrator": _all(
        "Read", "Create", "Write", "Delete",
        on=("accounts", "contacts", "products", "transactioncurrencies"),
    ) | {"prvReadUser"},
    # The narrower role: it cannot write products or currencies, nor delete anything.
    "Integration User": _all("Read", "Create", "Write", on=("accounts", "contacts"))
    | _all("Read", on=("products", "transactioncurrencies", "systemusers")),
    "Salesperson": _all("Read", "Write", on=("accounts", "contacts")) | {"prvReadProduct"},
}  # fmt: skip


class AuthFailure(Exception):
    def __init__(self, message: str, code: str = "0x80090326", *, bearer: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        # Refused an access token (rather than a user name and password): the answer's
        # WWW-Authenticate names the bearer scheme and invalid_token (RFC 6750 section 3).
        self.bearer = bearer


def privilege_for(entity: str, method: str) -> str:
    return f"prv{VERBS[method]}{ENTITY_PRIVILEGE_NAMES[entity]}"


def privileges_of(user: CrmSystemUser) -> set[str] | None:
    """The user's privileges; None means all of them (System Administrator)."""
    if ADMIN_ROLE in user.roles:
        return None
    granted: set[str] = set()
    for role in user.roles:
        granted |= ROLE_PRIVILEGES.get(role, set())
    return granted


def all_privileges() -> set[str]:
    return {privilege_for(entity, method) for entity in ENTITY_PRIVILEGE_NAMES for method in VERBS}


def privilege_id(privilege: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"demo-crm/privilege/{privilege}")


def basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


ACCESS_SALT = "demo.identity.access"
# An access token's lifetime, as Microsoft Entra ID gives it (expires_in: 3599 in its
# documentation's example): after it, both apps refuse the token with 401.
TOKEN_LIFETIME_SECONDS = 3599


def erp_credentials_valid(user: str, password: str) -> bool:
    return constant_time_compare(user, settings.DEMO_ERP_USER) and constant_time_compare(
        password, settings.DEMO_ERP_PASSWORD
    )


def crm_user_with(domain_name: str, password: str) -> CrmSystemUser | None:
    user = CrmSystemUser.objects.filter(domain_name__iexact=domain_name).first()
    if user is None or not user.password or not constant_time_compare(password, user.password):
        return None
    return user


def issue_token(app: str, subject: str) -> str:
    """An access token of the demo identity provider for one app (its audience)."""
    return signing.dumps({"aud": app, "sub": subject}, salt=ACCESS_SALT)


# What each app answers for a token it refuses: Business Central's code for credentials it
# rejects ("Error Codes", Authentication_InvalidCredentials), Dataverse's for a failed sign-in.
TOKEN_REFUSED_CODES = {"erp": "Authentication_InvalidCredentials", "crm": "0x80090326"}


def _token_subject(header: str, app: str) -> str | None:
    """The subject of a valid bearer token for `app`; None when the header holds no token."""
    if not header.lower().startswith("bearer "):
        return None
    code = TOKEN_REFUSED_CODES[app]
    try:
        claims = signing.loads(header[7:].strip(), salt=ACCESS_SALT, max_age=TOKEN_LIFETIME_SECONDS)
    except signing.SignatureExpired:
        raise AuthFailure("The access token has expired.", code, bearer=True) from None
    except signing.BadSignature:
        raise AuthFailure("The access token is invalid.", code, bearer=True) from None
    if claims.get("aud") != app:
        raise AuthFailure("The access token was issued for another application.", code, bearer=True)
    return str(claims.get("sub", ""))


def authenticate_erp(header: str) -> str:
    subject = _token_subject(header, "erp")
    if subject is not None:
        if not constant_time_compare(subject, settings.DEMO_ERP_USER):
            raise AuthFailure(
                "The server has rejected the client credentials.",
                TOKEN_REFUSED_CODES["erp"],
                bearer=True,
            )
        return subject
    credentials = basic_credentials(header)
    if credentials is None:
        raise AuthFailure("Authentication is required.", "Unauthorized")
    if not erp_credentials_valid(*credentials):
        raise AuthFailure("The server has rejected the client credentials.", "Unauthorized")
    return credentials[0]


def authenticate_crm(header: str) -> CrmSystemUser:
    subject = _token_subject(header, "crm")
    if subject is not None:
        user = CrmSystemUser.objects.filter(domain_name__iexact=subject).first()
        if user is None:
            raise AuthFailure("The access token names no user of this organization.", bearer=True)
    else:
        credentials = basic_credentials(header)
        if credentials is None:
            raise AuthFailure("Authentication is required.")
        user = crm_user_with(*credentials)
        if user is None:
            raise AuthFailure("The user name or password is incorrect.")
    if user.password_change_required:
        raise AuthFailure(
            "The user's password must be changed at next sign-in before it can be used.",
            "0x80090327",
        )
    if user.is_disabled:
        raise AuthFailure(f"The user {user.domain_name} is disabled.", "0x8004d24b")
    return user
