"""What the setup check reads of the Dataverse integration user, and how it judges it, the way
Business Central's own Test Connection does: the System Administrator role is recognized by its
role template, the integration roles by the ids Business Central's integration solution gives
them (a business unit's copy of a role points back at it), roles held through the user's teams
count, and the user must be enabled, with an access mode an integration may use and, unless it
is non-interactive, a license. Role names are the organization's own, in its language, and are
only shown."""

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .base import ConnectorError, SetupFinding

# The role template of Dataverse's System Administrator role, the same in every environment.
SYSTEM_ADMINISTRATOR_TEMPLATE = "627090ff-40a3-4053-8790-584edc5be201"
# The roles Business Central's integration solutions install, with the same ids in every
# environment: Integration Administrator and Integration User (Dynamics 365 Sales), and the
# integration role of the Dataverse base integration.
INTEGRATION_ROLE_IDS = (
    "8c8d4f51-a72b-e511-80d9-3863bb349780",
    "6f960e32-a72b-e511-80d9-3863bb349780",
    "a2b18661-9ff5-e911-a812-000d3a0b9028",
)
# systemuser.accessmode: what kind of user it is.
ACCESS_MODES = {
    0: "Read-Write",
    1: "Administrative",
    2: "Read",
    3: "Support User",
    4: "Non-interactive",
    5: "Delegated Admin",
}
READ_WRITE, NON_INTERACTIVE = 0, 4
# The levels at which a role grants a privilege (PrivilegeDepth), narrowest first, and what a
# security role's page calls them.
LEVELS = {
    "Basic": "User",
    "Local": "Business Unit",
    "Deep": "Parent: Child Business Units",
    "Global": "Organization",
}
# A privilege's name: prv<Verb><Table> (prvAppendToAccount); and how a role's page names a verb.
PRIVILEGE = re.compile(
    r"prv(?P<verb>AppendTo|Append|Create|Read|Write|Delete|Assign|Share)(?P<table>\w+)"
)
VERB_WORDS = {"AppendTo": "Append To"}
ROLE_COLUMNS = "name,_roletemplateid_value,_parentrootroleid_value"
SHOWN_ROLES = 20  # roles named in a finding; an app may answer with any number

Get = Callable[[str, dict[str, str]], dict[str, Any]]


def in_function(field_name: str, values: Iterable[Any]) -> str:
    """Dataverse's In query function: PropertyValues is a JSON array of strings, so a value
    with an apostrophe or a double quote needs no OData quoting."""
    return in_condition(field_name, [json_string(value) for value in values])


def in_condition(field_name: str, terms: list[str]) -> str:
    """The In function of values already written as JSON strings (`json_string`)."""
    return (
        f"Microsoft.Dynamics.CRM.In(PropertyName='{field_name}',PropertyValues=[{','.join(terms)}])"
    )


def json_string(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def privilege_words(privilege: str) -> str:
    """A privilege as a security role's page shows it: prvAppendToAccount is "Append To on
    Account", prvReadTransactionCurrency "Read on Transaction Currency"."""
    found = PRIVILEGE.fullmatch(privilege)
    if found is None:
        return privilege
    table = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", found["table"])
    return f"{VERB_WORDS.get(found['verb'], found['verb'])} on {table}"


def level_words(depth: str) -> str:
    """How a security role's page names an access level: Basic is "User"."""
    return LEVELS.get(depth, depth)


def deepest_levels(rows: list[Any]) -> dict[str, str]:
    """RetrieveUserPrivileges' RolePrivileges as privilege -> the deepest level the user holds
    it at (one row for each role that grants it); "" where no level is given."""
    order = list(LEVELS)

    def rank(depth: str) -> int:
        return order.index(depth) if depth in order else -1

    held: dict[str, str] = {}
    for row in rows:
        if not isinstance(row, dict) or "PrivilegeName" not in row:
            continue
        name, depth = str(row["PrivilegeName"]), str(row.get("Depth") or "")
        if name not in held or rank(depth) > rank(held[name]):
            held[name] = depth
    return held


def _guid(value: Any) -> str:
    return str(value or "").strip("{}").lower()


@dataclass(frozen=True)
class HeldRole:
    """A security role the user holds, directly or through a team."""

    id: str
    name: str
    template_id: str
    root_id: str
    team: str = ""

    def shown(self) -> str:
        return f"{self.name} (through team {self.team})" if self.team else self.name


@dataclass
class IntegrationUser:
    id: str
    disabled: bool = False
    access_mode: int | None = None
    licensed: bool | None = None
    roles: list[HeldRole] = field(default_factory=list)


def _rows(body: Any, key: str, app_name: str, what: str) -> list[dict[str, Any]]:
    rows = body.get(key) if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise ConnectorError(
            f"{app_name} answered without a list of {what}.", detail=str(body)[:2000]
        )
    return [row for row in rows if isinstance(row, dict)]


def _roles(rows: list[dict[str, Any]], key: str, team: str = "") -> list[HeldRole]:
    return [
        HeldRole(
            id=_guid(row.get(key)),
            name=str(row.get("name") or row.get(key) or "?")[:200],
            template_id=_guid(row.get("_roletemplateid_value")),
            root_id=_guid(row.get("_parentrootroleid_value")),
            team=team,
        )
        for row in rows
    ]


def read_user(get: Get, base_url: str, user_id: str, app_name: str) -> IntegrationUser:
    """The user's status and its roles, its own and its teams': one request for the user with
    its roles (`$expand` of systemuserroles_association), and one for its teams with theirs
    (teammembership_association with `$expand` of teamroles_association), as Dataverse does
    not nest `$expand` on many-to-many relationships."""
    user_url = f"{base_url}systemusers({quote(user_id, safe='')})"
    body = get(
        user_url,
        {
            "$select": "fullname,isdisabled,accessmode,islicensed",
            "$expand": f"systemuserroles_association($select={ROLE_COLUMNS})",
        },
    )
    access_mode = body.get("accessmode")
    licensed = body.get("islicensed")
    user = IntegrationUser(
        id=user_id,
        disabled=body.get("isdisabled") is True,
        access_mode=access_mode if type(access_mode) is int else None,
        licensed=licensed if isinstance(licensed, bool) else None,
        roles=_roles(_rows(body, "systemuserroles_association", app_name, "roles"), "roleid"),
    )
    teams = get(
        f"{user_url}/teammembership_association",
        {"$select": "name", "$expand": f"teamroles_association($select={ROLE_COLUMNS})"},
    )
    for team in _rows(teams, "value", app_name, "teams"):
        rows = _rows(team, "teamroles_association", app_name, "roles")
        user.roles += _roles(rows, "roleid", team=str(team.get("name") or team.get("teamid")))
    return user


def installed_roles(get: Get, base_url: str, role_ids: list[str], app_name: str) -> list[str]:
    """The names of those roles that exist in the app, in the order of `role_ids`."""
    if not role_ids:
        return []
    body = get(
        f"{base_url}roles",
        {"$select": "name", "$filter": in_function("roleid", role_ids)},
    )
    names = {
        _guid(row.get("roleid")): str(row.get("name") or "")
        for row in _rows(body, "value", app_name, "roles")
    }
    return [names[role_id] for role_id in role_ids if names.get(role_id)]


def either(names: list[str]) -> str:
    return " or ".join(names)


def user_findings(
    app_name: str,
    user: IntegrationUser,
    *,
    admin_template: str,
    integration_role_ids: list[str],
    installed: Callable[[], list[str]],
) -> list[SetupFinding]:
    """Whether the integration user may run the integration, as Business Central checks it."""
    if user.disabled:
        return [
            SetupFinding(
                "user_disabled",
                "error",
                f"The integration user is disabled in {app_name}.",
                f"In {app_name}, enable the integration user (and check its license).",
            )
        ]
    findings = _status_findings(app_name, user)
    if not user.roles:
        try:
            wanted = either(installed())
        except ConnectorError:
            wanted = ""  # a user without roles may not read them: the remedy says it plainly
        return findings + [
            SetupFinding(
                "no_roles",
                "error",
                "The integration user is enabled but has no security roles, directly or "
                "through a team, so it may not read or write anything.",
                f"In {app_name}, assign the {wanted} role to the integration user."
                if wanted
                else f"In {app_name}, assign the integration user a security role, directly or "
                "through a team: Business Central's Integration Administrator or Integration "
                "User role where its integration solution is installed, or a role that holds "
                "the privileges the mappings need.",
            )
        ]
    shown = sorted({role.shown() for role in user.roles})
    named = ", ".join(shown[:SHOWN_ROLES])
    if len(shown) > SHOWN_ROLES:
        named += f" and {len(shown) - SHOWN_ROLES} more"
    findings.append(
        SetupFinding("roles", "ok", f"The integration user is enabled and has roles: {named}.")
    )
    admin = next((role for role in user.roles if role.template_id == admin_template), None)
    if admin is not None:
        also = "" if admin.name == "System Administrator" else f" ('{admin.name}' here)"
        findings.append(
            SetupFinding(
                "admin_user",
                "error",
                f"The integration user holds the System Administrator role{also}"
                + (f" through team {admin.team}." if admin.team else "."),
                "Use a dedicated integration user without the System Administrator role, "
                "directly or through a team.",
            )
        )
    else:
        findings.append(
            SetupFinding("admin_user", "ok", "The integration user is not an administrator.")
        )
    return findings + _integration_role_findings(app_name, user, integration_role_ids, installed)


def _status_findings(app_name: str, user: IntegrationUser) -> list[SetupFinding]:
    mode = user.access_mode
    if mode is None:
        return []
    label = ACCESS_MODES.get(mode, str(mode))
    if mode not in (READ_WRITE, NON_INTERACTIVE):
        return [
            SetupFinding(
                "access_mode",
                "error",
                f"The integration user's access mode is {label}: an integration user must be "
                "Read-Write or Non-interactive.",
                f"In {app_name}, set the integration user's access mode to Non-interactive "
                "(or Read-Write).",
            )
        ]
    findings = [
        SetupFinding("access_mode", "ok", f"The integration user's access mode is {label}.")
    ]
    if user.licensed is False and mode != NON_INTERACTIVE:
        findings.append(
            SetupFinding(
                "user_unlicensed",
                "error",
                f"The integration user has no license in {app_name}; only a Non-interactive "
                "user works without one.",
                f"In {app_name}, assign the integration user a license, or make it a "
                "Non-interactive user.",
            )
        )
    return findings


def _integration_role_findings(
    app_name: str,
    user: IntegrationUser,
    integration_role_ids: list[str],
    installed: Callable[[], list[str]],
) -> list[SetupFinding]:
    wanted = set(integration_role_ids)
    held = sorted(
        {role.shown() for role in user.roles if role.id in wanted or role.root_id in wanted}
    )
    if held:
        return [
            SetupFinding(
                "integration_role",
                "ok",
                f"The integration user holds the {' and '.join(held)} role.",
            )
        ]
    try:
        names = installed()
    except ConnectorError as error:
        return [
            SetupFinding(
                "roles",
                "error",
                f"The integration roles of {app_name} could not be read: {error.message}",
                "Give the integration user a role that may read security roles (prvReadRole).",
                error=error,
            )
        ]
    if not names:
        # As Business Central does: without its integration solution there is no such role
        # to require.
        return [
            SetupFinding(
                "integration_role",
                "ok",
                f"{app_name} has no integration role (Business Central's integration solution "
                "is not installed there), so none is required.",
            )
        ]
    return [
        SetupFinding(
            "no_integration_role",
            "error",
            f"The integration user has none of the integration roles ({', '.join(names)}).",
            f"In {app_name}, assign the {either(names)} role to the integration user, directly "
            "or through a team.",
        )
    ]
