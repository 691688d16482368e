"""Who may do what in the demo apps: sign-in checks and the CRM's security roles.

The CRM answers like Dataverse: a missing privilege is a 403 naming the principal user and the
privilege, a sign-in problem is a 401 with its reason."""

import base64
import binascii
import uuid

from django.conf import settings
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
    def __init__(self, message: str, code: str = "0x80090326"):
        super().__init__(message)
        self.message = message
        self.code = code


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


def authenticate_erp(header: str) -> str:
    credentials = basic_credentials(header)
    if credentials is None:
        raise AuthFailure("Authentication is required.", "Unauthorized")
    user, password = credentials
    if not (
        constant_time_compare(user, settings.DEMO_ERP_USER)
        and constant_time_compare(password, settings.DEMO_ERP_PASSWORD)
    ):
        raise AuthFailure("The server has rejected the client credentials.", "Unauthorized")
    return user


def authenticate_crm(header: str) -> CrmSystemUser:
    credentials = basic_credentials(header)
    if credentials is None:
        raise AuthFailure("Authentication is required.")
    domain_name, password = credentials
    user = CrmSystemUser.objects.filter(domain_name__iexact=domain_name).first()
    if user is None or not user.password or not constant_time_compare(password, user.password):
        raise AuthFailure("The user name or password is incorrect.")
    if user.password_change_required:
        raise AuthFailure(
            "The user's password must be changed at next sign-in before it can be used.",
            "0x80090327",
        )
    if user.is_disabled:
        raise AuthFailure(f"The user {user.domain_name} is disabled.", "0x8004d24b")
    return user
