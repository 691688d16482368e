"""The setup health check of a Connection: what an administrator must fix before records can
synchronize (the address, the integration user, its roles and privileges, the currencies).

`check_connection` asks both apps; `job_blockers` is the part the engine runs before each job,
for one mapping in the direction the job runs."""

import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from errors.links import safe_link
from errors.models import Category
from errors.services import resolve_setup_checked

from .connectors import Connector, ConnectorError, ODataConnector, connector_for
from .connectors.currencies import currency_table, has_rate
from .connectors.dataverse import LEVELS, level_words, privilege_words
from .fields import TO_DESTINATION, LookupSpec, field_pairs
from .models import Connection, ConnectionCheck, TableMapping

ERROR, WARNING, OK = "error", "warning", "ok"
# An ISO 4217 currency code: three letters.
ISO_CURRENCY = re.compile(r"[A-Z]{3}")
SEVERITIES = (ERROR, WARNING, OK)
SIDES = ("source", "destination")

# Findings that make every record of a job fail the same way: a job does not start with one.
BLOCKING_CODES = {
    "address",
    "unreachable",
    "timeout",
    "app_error",
    "sign_in",
    "password_change_required",
    "user_disabled",
    "access_mode",
    "user_unlicensed",
    "roles",
    "no_roles",
    "admin_user",
    "no_integration_role",
}
CATEGORIES = {
    "address": Category.CONNECTION,
    "unreachable": Category.CONNECTION,
    "timeout": Category.CONNECTION,
    "app_error": Category.CONNECTION,
    "sign_in": Category.AUTHENTICATION,
    "password_change_required": Category.AUTHENTICATION,
    "user_disabled": Category.INTEGRATION_USER,
    "access_mode": Category.INTEGRATION_USER,
    "user_unlicensed": Category.INTEGRATION_USER,
    "roles": Category.INTEGRATION_USER,
    "no_roles": Category.INTEGRATION_USER,
    "admin_user": Category.INTEGRATION_USER,
    "no_integration_role": Category.INTEGRATION_USER,
    "missing_privilege": Category.PERMISSION,
    "privilege_level": Category.PERMISSION,
    "local_currency_missing": Category.CURRENCY,
    "currency_missing": Category.CURRENCY,
    "exchange_rate_missing": Category.CURRENCY,
}
VERB_PURPOSE = {
    "Read": "read {entity}",
    "Create": "create {entity}",
    "Write": "update {entity}",
    "Delete": "delete a remaining {entity} record (Delete the remaining record)",
}
# The privileges that setting a lookup needs besides Create and Write: Append on the table that
# gets it, Append To on the table it refers to ("Security concepts in Microsoft Dataverse").
APPEND, APPEND_TO = "Append", "AppendTo"
# The level at which a privilege reaches every record, whoever owns it.
ORGANIZATION = "Global"
# What a mapping needs: a verb (Read, ..., AppendTo) on a table, and what for in words.
Need = tuple[str, str, str]


@dataclass(frozen=True)
class Finding:
    """One result of the check: a stable `code`, a severity (error / warning / ok), what was
    found in plain words, the remedy, and which side and app it is about."""

    code: str
    severity: str
    message: str
    remedy: str = ""
    side: str = ""  # "source", "destination", or "" for the connection as a whole
    app: str = ""
    link: str = ""  # the record page in the app where it is fixed, when there is one
    link_app: str = ""  # the app the link opens, when it is not `app`
    mapping: str = ""
    entity: str = ""
    privilege: str = ""
    error: ConnectorError | None = field(default=None, compare=False, repr=False)

    @property
    def blocks_jobs(self) -> bool:
        return self.severity == ERROR and (
            self.code in BLOCKING_CODES or self.code == "missing_privilege"
        )

    @property
    def category(self) -> str:
        return CATEGORIES.get(self.code, Category.OTHER)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("error")
        return data


def _from_setup(connector: Connector, side: str, findings) -> list[Finding]:
    return [
        Finding(
            f.code,
            f.severity,
            f.message,
            f.remedy,
            side=side,
            app=connector.app_name,
            error=f.error,
        )
        for f in findings
    ]


def _writes_to(direction: str, side: str) -> bool:
    if direction == TableMapping.Direction.BIDIRECTIONAL:
        return True
    written = "destination" if direction == TableMapping.Direction.TO_DESTINATION else "source"
    return side == written


def needed_verbs(mapping: TableMapping, side: str, direction: str | None = None) -> list[str]:
    """What the integration user must be allowed to do on the mapping's entity on `side`:
    read always; create and write where the mapping (or a job in `direction`) writes; for the
    whole check, delete too, since a fix may delete a remaining record on either side."""
    verbs = ["Read"]
    if _writes_to(direction or mapping.direction, side):
        verbs += ["Create", "Write"]
    if direction is None:
        verbs.append("Delete")
    return verbs


def _lookup_words(lookup: LookupSpec, written: str) -> str:
    named = f"the {lookup.label} lookup" if lookup.label else "the lookup"
    return f"{named} of {written} ({lookup.navigation})"


def lookup_needs(mapping: TableMapping, side: str, direction: str | None = None) -> list[Need]:
    """What the lookups the mapping (or a job in `direction`) writes to `side` need besides
    Create and Write, as (verb, table, purpose): Append on the mapping's table, and Append To
    on each table a lookup refers to."""
    if side != "destination" or not _writes_to(direction or mapping.direction, side):
        return []
    written = mapping.destination_entity
    lookups = [
        pair.lookup
        for pair in field_pairs(mapping.field_mappings, TO_DESTINATION)
        if pair.lookup is not None
    ]
    if not lookups:
        return []
    needs = [(APPEND, written, "set " + " and ".join(_lookup_words(x, written) for x in lookups))]
    for entity in sorted({lookup.entity for lookup in lookups}):
        setting = " and ".join(_lookup_words(x, written) for x in lookups if x.entity == entity)
        needs.append((APPEND_TO, entity, f"set {setting} to {entity} records"))
    return needs


def _needs(mapping: TableMapping, side: str, direction: str | None) -> Iterator[Need]:
    entity = getattr(mapping, f"{side}_entity")
    for verb in needed_verbs(mapping, side, direction):
        yield verb, entity, VERB_PURPOSE[verb].format(entity=entity)
    yield from lookup_needs(mapping, side, direction)


def _missing(
    connector: Connector, side: str, mapping: TableMapping, need: Need, privilege: str
) -> Finding:
    verb, entity, purpose = need
    app = connector.app_name
    message = f"The integration user is missing the {privilege} privilege"
    if verb in (APPEND, APPEND_TO):
        words = privilege_words(privilege)
        message += f" ({words})"
        remedy = (
            f"In {app}, give the integration user's security role {words}, at the "
            "Organization level, or assign it a role that has it (the Integration "
            "Administrator role does)."
        )
    else:
        remedy = (
            f"In {app}, assign the integration user a security role that holds {privilege} "
            "(the Integration Administrator role does), or add the privilege to its role."
        )
    return Finding(
        "missing_privilege",
        # Without delete only one fix fails; without the others every record does.
        WARNING if verb == "Delete" else ERROR,
        f"{message}: mapping {mapping.name} needs it to {purpose} in {app}.",
        remedy,
        side=side,
        app=app,
        mapping=mapping.name,
        entity=entity,
        privilege=privilege,
    )


def _shallow(
    connector: Connector, side: str, mapping: TableMapping, need: Need, privilege: str, depth: str
) -> Finding:
    """Append and Append To held at a level that reaches only some records: a lookup to a
    record outside its reach fails that record ("How access to a record is determined")."""
    _, entity, purpose = need
    app, words, level = connector.app_name, privilege_words(privilege), level_words(depth)
    return Finding(
        "privilege_level",
        WARNING,
        f"The integration user holds {privilege} ({words}) at the {level} level only: mapping "
        f"{mapping.name} needs it to {purpose} in {app}, and a record outside that level's "
        "reach fails.",
        f"In {app}, set {words} to the Organization level in the integration user's security role.",
        side=side,
        app=app,
        mapping=mapping.name,
        entity=entity,
        privilege=privilege,
    )


def privilege_findings(
    connector: Connector,
    side: str,
    mappings: list[TableMapping],
    privileges: Mapping[str, str],
    *,
    direction: str | None = None,
) -> list[Finding]:
    """One finding per privilege a mapping needs on its entity (and, for its lookups, on the
    tables they refer to) and the user lacks; a warning for Append and Append To held at a
    level that does not reach every record."""
    findings = []
    for mapping in mappings:
        for need in _needs(mapping, side, direction):
            verb, entity, _ = need
            privilege = connector.privilege_name(verb, entity)
            if not privilege:
                continue
            if privilege not in privileges:
                findings.append(_missing(connector, side, mapping, need, privilege))
                continue
            depth = privileges[privilege]
            if verb in (APPEND, APPEND_TO) and depth in LEVELS and depth != ORGANIZATION:
                findings.append(_shallow(connector, side, mapping, need, privilege, depth))
    return findings


def check_side(
    connector: Connector,
    side: str,
    mappings: list[TableMapping],
    *,
    direction: str | None = None,
    every_check: bool = True,
) -> list[Finding]:
    """The address, the integration user, and the privileges the mappings need on one side."""
    setup = connector.setup_findings() if every_check else connector.check_setup()
    findings = _from_setup(connector, side, setup)
    if any(f.blocks_jobs for f in findings) or not any(f.code == "sign_in" for f in findings):
        return findings
    try:
        privileges = connector.user_privileges()
    except ConnectorError as error:
        return findings + [
            Finding(
                "privileges_unknown",
                WARNING,
                f"The integration user's privileges could not be read: {error.message}",
                "Give the integration user a role that may read users (prvReadUser), then "
                "check again.",
                side=side,
                app=connector.app_name,
            )
        ]
    if privileges is None:
        return findings
    missing = privilege_findings(connector, side, mappings, privileges, direction=direction)
    if every_check and not any(f.severity == ERROR for f in missing):
        findings.append(
            Finding(
                "privileges",
                OK,
                "The integration user holds every privilege the enabled mappings need to "
                "read, create and update records and to set their lookups.",
                side=side,
                app=connector.app_name,
            )
        )
    return findings + missing


# -- currencies -----------------------------------------------------------------------------
def currency_findings(
    connection: Connection, connectors: dict[str, ODataConnector]
) -> list[Finding]:
    """The local currency exists on the other side, and every currency used on one side has
    an exchange rate on both."""
    findings: list[Finding] = []
    tables: dict[str, dict[str, tuple[str, Any]]] = {}
    for side, connector in connectors.items():
        entity = connector.config.option("currency_entity")
        if not entity:
            continue
        try:
            tables[side] = currency_table(connector)
        except ConnectorError as error:
            findings.append(
                Finding(
                    "currencies_unreadable",
                    WARNING,
                    f"The currencies of {connector.app_name} could not be read: {error.message}",
                    f"Let the integration user read {entity} in {connector.app_name}.",
                    side=side,
                    app=connector.app_name,
                    entity=entity,
                )
            )
    if len(tables) < 2:
        return findings

    # The local currency belongs to the side that keeps it (the ERP's general ledger setup).
    lcy_side = next(
        (
            s
            for s, c in connectors.items()
            if c.config.option("local_currency_entity") or c.config.options.get("local_currency")
        ),
        "source",
    )
    other_of = {"source": "destination", "destination": "source"}
    lcy_other = other_of[lcy_side]
    owner, holder = connectors[lcy_side], connectors[lcy_other]
    try:
        lcy = owner.local_currency().strip().upper()
    except ConnectorError as error:
        lcy = ""
        findings.append(
            Finding(
                "local_currency_unknown",
                WARNING,
                f"The local currency of {owner.app_name} could not be read: {error.message}",
                f"Set local_currency (e.g. EUR) in the {lcy_side} settings of the connection.",
                side=lcy_side,
                app=owner.app_name,
            )
        )
    read = not any(f.code == "local_currency_unknown" for f in findings) and bool(
        owner.config.option("local_currency_entity") or owner.config.options.get("local_currency")
    )
    if read and (not lcy or lcy not in tables[lcy_other]):
        # As Business Central's own Test Connection checks it: the local currency code of
        # the general ledger setup must be the ISO currency code of a currency of the other
        # app.
        iso = bool(ISO_CURRENCY.fullmatch(lcy))
        findings.append(
            Finding(
                "local_currency_missing",
                ERROR,
                f"The local currency code {lcy or '(empty)'} of {owner.app_name} does not "
                f"match any ISO currency code in the currency table of {holder.app_name}.",
                (
                    f"In {holder.app_name}, add a currency whose ISO currency code is {lcy} "
                    f"(exchange rate 1 to the base currency as {owner.app_name} keeps it)"
                    if iso
                    else f"In {owner.app_name}, set the local currency code of the general "
                    "ledger setup to an ISO 4217 code (three letters, such as EUR), and add "
                    f"that currency in {holder.app_name}"
                )
                + "; records in the local currency fail until it matches.",
                side=lcy_other if iso else lcy_side,
                app=holder.app_name if iso else owner.app_name,
                entity=lcy,
            )
        )
    elif lcy:
        findings.append(
            Finding(
                "local_currency",
                OK,
                f"The local currency {lcy} exists in {holder.app_name}.",
                side=lcy_other,
                app=holder.app_name,
            )
        )

    problems = []
    codes = sorted(set(tables["source"]) | set(tables["destination"]))
    for code in codes:
        for side in SIDES:
            connector, other = connectors[side], connectors[other_of[side]]
            entity = connector.config.option("currency_entity")
            if code not in tables[side]:
                if code == lcy:
                    continue  # reported above, or the ERP's LCY needs no currency record
                other_id = tables[other_of[side]][code][0]
                problems.append(
                    Finding(
                        "currency_missing",
                        WARNING,
                        f"{connector.app_name} has no currency {code}, which "
                        f"{other.app_name} uses.",
                        f"In {connector.app_name}, add the currency {code} with its exchange "
                        f"rate. Until then, records in {code} fail when written to "
                        f"{connector.app_name}; other records are unaffected.",
                        side=side,
                        app=connector.app_name,
                        entity=code,
                        # The currency as the other app has it, to add it alike.
                        link=safe_link(
                            other.record_url(other.config.option("currency_entity"), other_id)
                        )
                        or "",
                        link_app=other.app_name,
                    )
                )
                continue
            record_id, rate = tables[side][code]
            if side == lcy_side and code == lcy:
                continue  # the local currency is the ERP's measure; it has no rate to itself
            if not has_rate(rate):
                problems.append(
                    Finding(
                        "exchange_rate_missing",
                        WARNING,
                        f"{connector.app_name} has no exchange rate for {code}.",
                        f"In {connector.app_name}, open the currency {code} and enter its "
                        f"exchange rate. Until then, records in {code} fail when written to "
                        f"{connector.app_name}; other records are unaffected.",
                        side=side,
                        app=connector.app_name,
                        entity=code,
                        link=safe_link(connector.record_url(entity, record_id)) or "",
                    )
                )
    if not problems:
        findings.append(
            Finding(
                "currencies",
                OK,
                "Every currency exists with an exchange rate in both apps.",
            )
        )
    return findings + problems


# -- the whole connection -------------------------------------------------------------------
def _order(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def check_connection(connection: Connection) -> list[Finding]:
    """Ask both apps what is wrong with this connection's setup; errors first."""
    mappings = list(connection.mappings.filter(is_enabled=True))
    findings: list[Finding] = []
    connectors = {side: connector_for(connection, side) for side in SIDES}
    try:
        signed_in = True
        for side, connector in connectors.items():
            side_findings = check_side(connector, side, mappings)
            signed_in &= any(f.code == "sign_in" and f.severity == OK for f in side_findings)
            findings += side_findings
        if signed_in:
            findings += currency_findings(connection, connectors)
    finally:
        for connector in connectors.values():
            connector.close()
    return _order(findings)


def run_check(connection: Connection, *, user=None) -> ConnectionCheck:
    """Check the connection now and keep what was found (no secrets: the findings hold the
    apps' messages, never the credentials or the calls' details)."""
    findings = check_connection(connection)
    with transaction.atomic():
        check = ConnectionCheck.objects.create(
            connection=connection,
            checked_at=timezone.now(),
            checked_by=user if user is not None and user.is_authenticated else None,
            findings=[f.as_dict() for f in findings],
        )
        # A few past checks are kept to compare with; older ones say nothing new.
        stale = ConnectionCheck.objects.filter(connection=connection).order_by("-checked_at")
        ConnectionCheck.objects.filter(
            pk__in=list(stale.values_list("pk", flat=True)[ConnectionCheck.KEEP :])
        ).delete()
        # The setup failures of whole jobs whose cause the check no longer finds are gone.
        blocked = {f.mapping for f in findings if f.blocks_jobs}
        if "" not in blocked:
            clear = connection.mappings.exclude(name__in=blocked).values_list("pk", flat=True)
            resolve_setup_checked(clear, check.pk, user=user)
    return check


def job_blockers(
    mapping: TableMapping, direction: str, source: Connector, destination: Connector
) -> list[Finding]:
    """The findings that would fail every record of a job of `mapping` running in
    `direction`; empty when the job may run."""
    blockers: list[Finding] = []
    for side, connector in (("source", source), ("destination", destination)):
        findings = check_side(connector, side, [mapping], direction=direction, every_check=False)
        blockers += [f for f in findings if f.blocks_jobs]
    return blockers
