"""Who may do what in the demo apps: sign-in checks and the CRM's security model.

The CRM keeps security as Dataverse does: business units, security roles (a role of the root
business unit is copied into every other one, with the same role template and pointing back at
it), teams whose members hold the team's roles too, and users with roles of their own. A role
grants each of its privileges at an access level; a user holds every privilege of its roles and
of its teams' roles; a role made from the System Administrator template grants them all, at the
Organization level. A missing privilege is a 403 naming the principal user and the privilege,
a sign-in problem is a 401 with its reason.

Two checks decide whether a user may act on a record ("How access to a record is
determined"): the privilege check (the user holds the privilege, at any level) and then the
access check (a level at which it holds it reaches the record: the user owns the record, or the
record's business unit is within that level's reach from the role's business unit). The demo
makes the access check for Append and Append To, which setting a lookup needs on both records;
the other privileges it checks as held."""

import base64
import binascii
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils.crypto import constant_time_compare

from .models import CrmBusinessUnit, CrmRole, CrmSystemUser, CrmTeam

# The role template of Dataverse's System Administrator role: the same in every environment,
# whatever the role is called there. Business Central's Test Connection recognizes it by it.
SYSTEM_ADMINISTRATOR_TEMPLATE = uuid.UUID("627090ff-40a3-4053-8790-584edc5be201")
# Business Central's integration solution installs its two roles with these ids in the root
# business unit of every environment (their copies elsewhere point back at them).
INTEGRATION_ADMINISTRATOR_ROLE = uuid.UUID("8c8d4f51-a72b-e511-80d9-3863bb349780")
INTEGRATION_USER_ROLE = uuid.UUID("6f960e32-a72b-e511-80d9-3863bb349780")
ROOT_BUSINESS_UNIT = "demo-crm"

# Privilege names as Dataverse spells them: prv<Verb><Entity>.
ENTITY_PRIVILEGE_NAMES = {
    "accounts": "Account",
    "contacts": "Contact",
    "products": "Product",
    "transactioncurrencies": "TransactionCurrency",
    "systemusers": "User",
    "roles": "Role",
    "teams": "Team",
}
VERBS = {"GET": "Read", "POST": "Create", "PATCH": "Write", "DELETE": "Delete"}
# Setting a lookup needs Append on the record that gets it and Append To on the record it
# refers to ("Security concepts in Microsoft Dataverse").
APPEND, APPEND_TO = "Append", "AppendTo"
# The access right an access check names for each (the AccessRights enumeration).
ACCESS_RIGHTS = {APPEND: "AppendAccess", APPEND_TO: "AppendToAccess"}

# The access levels, narrowest first, as RetrieveUserPrivileges names them (PrivilegeDepth):
# the records the user owns; the role's business unit; it and the business units below it;
# the whole organization.
BASIC, LOCAL, DEEP, GLOBAL = "Basic", "Local", "Deep", "Global"
DEPTHS = (BASIC, LOCAL, DEEP, GLOBAL)
# Tables the organization owns: their records have no owner, and a privilege on them is held
# at the Organization level or not at all.
ORGANIZATION_OWNED = frozenset({"products", "transactioncurrencies"})


def _all(*verbs: str, on: tuple[str, ...]) -> set[str]:
    return {f"prv{verb}{ENTITY_PRIVILEGE_NAMES[e]}" for verb in verbs for e in on}


def at(depth: str, names: Iterable[str]) -> dict[str, str]:
    """The privileges `names`, each at the access level `depth`."""
    return dict.fromkeys(sorted(names), depth)


# Every role may read users, roles and teams, as a user needs to see who it is.
SECURITY_READ = _all("Read", on=("systemusers", "roles", "teams"))


@dataclass(frozen=True)
class RoleSpec:
    """A security role the demo CRM starts with: its privileges at their access levels."""

    name: str
    privileges: Mapping[str, str]
    role_id: uuid.UUID | None = None
    template: uuid.UUID | None = None


STANDARD_ROLES = (
    RoleSpec("System Administrator", {}, template=SYSTEM_ADMINISTRATOR_TEMPLATE),
    RoleSpec(
        "Integration Administrator",
        at(GLOBAL, _all(
            "Read", "Create", "Write", "Delete", APPEND, APPEND_TO,
            on=("accounts", "contacts", "products", "transactioncurrencies"),
        ) | SECURITY_READ),
        role_id=INTEGRATION_ADMINISTRATOR_ROLE,
    ),
    # The narrower role: it cannot write products or currencies, nor delete anything. It may
    # set the lookups of the default mappings: an account's currency, a contact's company.
    RoleSpec(
        "Integration User",
        at(GLOBAL, _all("Read", "Create", "Write", APPEND, APPEND_TO, on=("accounts", "contacts"))
           | _all("Read", APPEND_TO, on=("transactioncurrencies",))
           | _all("Read", on=("products",)) | SECURITY_READ),
        role_id=INTEGRATION_USER_ROLE,
    ),
    # A salesperson reads them all, but links only the accounts and contacts it owns.
    RoleSpec(
        "Salesperson",
        at(GLOBAL, _all("Read", "Write", on=("accounts", "contacts")) | {"prvReadProduct"}
           | SECURITY_READ)
        | at(BASIC, _all(APPEND, APPEND_TO, on=("accounts", "contacts"))),
    ),
)  # fmt: skip


class AuthFailure(Exception):
    def __init__(self, message: str, code: str = "0x80090326", *, bearer: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        # Refused an access token (rather than a user name and password): the answer's
        # WWW-Authenticate names the bearer scheme and invalid_token (RFC 6750 section 3).
        self.bearer = bearer


def privilege_for(entity: str, method: str) -> str:
    return privilege_named(VERBS[method], entity)


def privilege_named(verb: str, entity: str) -> str:
    """Dataverse's name of the privilege to `verb` (Read, ..., Append, AppendTo) `entity`."""
    return f"prv{verb}{ENTITY_PRIVILEGE_NAMES[entity]}"


def held_roles(user: CrmSystemUser) -> list[CrmRole]:
    """The user's security roles: its own and those of the teams it is a member of."""
    return list(CrmRole.objects.filter(Q(users=user) | Q(teams__members=user)).distinct())


def is_administrator(roles: list[CrmRole]) -> bool:
    return any(role.role_template_id == SYSTEM_ADMINISTRATOR_TEMPLATE for role in roles)


def grants(role: CrmRole) -> dict[str, str]:
    """What a role grants: privilege name -> access level. A role keeps them as a JSON object;
    a list of names (as roles were kept before access levels) grants each at the
    Organization level, and anything else on a role's page grants nothing."""
    held = role.privileges
    if isinstance(held, list):
        return at(GLOBAL, (name for name in held if isinstance(name, str)))
    if isinstance(held, dict):
        return {name: depth for name, depth in held.items() if depth in DEPTHS}
    return {}


def privileges_of(user: CrmSystemUser, roles: list[CrmRole] | None = None) -> set[str] | None:
    """The user's privileges, through its roles and its teams' roles, at any level; None
    means all of them (a role made from the System Administrator template)."""
    depths = depths_of(user, roles)
    return None if depths is None else set(depths)


def depths_of(user: CrmSystemUser, roles: list[CrmRole] | None = None) -> dict[str, str] | None:
    """The deepest level at which the user holds each of its privileges; None means every
    privilege at the Organization level (the System Administrator template)."""
    roles = held_roles(user) if roles is None else roles
    if is_administrator(roles):
        return None
    deepest: dict[str, str] = {}
    for role in roles:
        for name, depth in grants(role).items():
            if name not in deepest or DEPTHS.index(depth) > DEPTHS.index(deepest[name]):
                deepest[name] = depth
    return deepest


def all_privileges() -> set[str]:
    return {
        privilege_named(verb, entity)
        for entity in ENTITY_PRIVILEGE_NAMES
        for verb in (*VERBS.values(), APPEND, APPEND_TO)
    }


# -- the access check ---------------------------------------------------------------------------
def owning_business_unit_id(record) -> uuid.UUID:
    """The business unit a record belongs to: its owner's. A record without an owner (the
    demo data, written to the tables directly) belongs to the root business unit."""
    owner = getattr(record, "owner", None)
    if owner is not None and owner.business_unit_id is not None:
        return owner.business_unit_id
    return root_business_unit().pk


def _within(unit_id: uuid.UUID | None, top_id: uuid.UUID) -> bool:
    """Whether the business unit `unit_id` is `top_id` or one below it."""
    seen: set[uuid.UUID] = set()
    while unit_id is not None and unit_id not in seen:
        if unit_id == top_id:
            return True
        seen.add(unit_id)
        unit_id = (
            CrmBusinessUnit.objects.filter(pk=unit_id).values_list("parent_id", flat=True).first()
        )
    return False


def reaches(user: CrmSystemUser, privilege: str, entity: str, record, roles: list[CrmRole]) -> bool:
    """The access check, once the privilege check passed: whether one of the user's roles
    grants `privilege` at a level that reaches `record` of `entity`. The owner of a record
    has access at any level, so Basic reaches the user's own records and no others (the demo's
    records are owned by users, never by teams); Local reaches the records of the role's
    business unit, Deep those of it and the units below it, Global every record, as does any
    level on a table the organization owns."""
    if is_administrator(roles) or entity in ORGANIZATION_OWNED:
        return True
    if getattr(record, "owner_id", None) == user.pk:
        return True
    levels = [(grants(role).get(privilege), role.business_unit_id) for role in roles]
    if any(depth == GLOBAL for depth, _ in levels):
        return True
    narrower = [(depth, unit) for depth, unit in levels if depth in (LOCAL, DEEP)]
    if not narrower:
        return False
    owning = owning_business_unit_id(record)
    return any(
        owning == unit if depth == LOCAL else _within(owning, unit) for depth, unit in narrower
    )


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


# -- the organization's security, as an administrator sets it up --------------------------------
def root_business_unit() -> CrmBusinessUnit:
    return CrmBusinessUnit.objects.get(parent__isnull=True)


@transaction.atomic
def create_business_unit(name: str, parent: CrmBusinessUnit | None = None) -> CrmBusinessUnit:
    """A business unit with its default team, and, below the root, a copy of every root role
    (as Dataverse makes them)."""
    unit = CrmBusinessUnit.objects.create(name=name, parent=parent)
    CrmTeam.objects.create(name=name, business_unit=unit, is_default=True)
    if parent is not None:
        for role in CrmRole.objects.filter(business_unit__parent__isnull=True):
            _copy(role, unit)
    return unit


def _copy(role: CrmRole, unit: CrmBusinessUnit) -> CrmRole:
    # Saved one by one, each announced to the roles' subscribers as its save is.
    return CrmRole.objects.create(
        name=role.name,
        business_unit=unit,
        role_template_id=role.role_template_id,
        parent_root_role=role,
        privileges=role.privileges,
    )


def _root_role(
    root: CrmBusinessUnit,
    name: str,
    privileges: Mapping[str, str] | Iterable[str],
    role_id: uuid.UUID | None,
    template: uuid.UUID | None,
) -> CrmRole:
    """A role of the root business unit, pointing at itself, not yet saved."""
    if template == SYSTEM_ADMINISTRATOR_TEMPLATE:
        privileges = all_privileges()
    granted = dict(privileges) if isinstance(privileges, Mapping) else at(GLOBAL, privileges)
    role = CrmRole(
        id=role_id or uuid.uuid4(),
        name=name,
        business_unit=root,
        role_template_id=template,
        privileges=dict(sorted(granted.items())),
    )
    role.parent_root_role = role
    return role


@transaction.atomic
def create_role(
    name: str,
    privileges: Mapping[str, str] | Iterable[str],
    *,
    role_id: uuid.UUID | None = None,
    template: uuid.UUID | None = None,
) -> CrmRole:
    """A role of the root business unit, copied into every other business unit: its
    privileges at their access levels, or their names alone (each at the Organization
    level)."""
    role = _root_role(root_business_unit(), name, privileges, role_id, template)
    role.save()
    for unit in CrmBusinessUnit.objects.exclude(pk=role.business_unit_id):
        _copy(role, unit)
    return role


@transaction.atomic
def install_security() -> CrmBusinessUnit:
    """The root business unit and the roles the demo CRM starts with (Business Central's
    integration solution installed), the roles in one statement, announced to no one (the
    caller announces them): no other business unit exists yet to copy them into."""
    root = create_business_unit(ROOT_BUSINESS_UNIT)
    CrmRole.objects.bulk_create(
        _root_role(root, spec.name, spec.privileges, spec.role_id, spec.template)
        for spec in STANDARD_ROLES
    )
    return root


def role_named(name: str, business_unit: CrmBusinessUnit | None = None) -> CrmRole:
    """The role of that name in a business unit (the root one by default)."""
    return CrmRole.objects.get(name=name, business_unit=business_unit or root_business_unit())


@transaction.atomic
def add_users(placed: Iterable[tuple[CrmSystemUser, CrmBusinessUnit, tuple[str, ...]]]) -> None:
    """New users, each placed in its business unit (and so in that unit's default team) with
    the roles of that unit it is given, in five statements, announced to no one (the caller
    announces them)."""
    placed = list(placed)
    for user, unit, _ in placed:
        user.business_unit = unit
    CrmSystemUser.objects.bulk_create(user for user, _, _ in placed)
    units = {unit.pk for _, unit, _ in placed}
    teams = dict(
        CrmTeam.objects.filter(business_unit__in=units, is_default=True).values_list(
            "business_unit_id", "pk"
        )
    )
    roles = {
        (unit_id, name): pk
        for pk, unit_id, name in CrmRole.objects.filter(business_unit__in=units).values_list(
            "pk", "business_unit_id", "name"
        )
    }
    CrmTeam.members.through.objects.bulk_create(
        CrmTeam.members.through(crmteam_id=teams[unit.pk], crmsystemuser_id=user.pk)
        for user, unit, _ in placed
    )
    CrmSystemUser.roles.through.objects.bulk_create(
        CrmSystemUser.roles.through(crmsystemuser_id=user.pk, crmrole_id=roles[unit.pk, name])
        for user, unit, names in placed
        for name in names
    )
