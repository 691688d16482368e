"""Why an entry happened and how to fix it, in plain words, with links to the places to fix it.

The causes follow the anchor's list of setup errors (roles and privileges, an administrator as
integration user, a password that must be changed, exchange rates, the connection) and
coupled-record errors (a deleted coupled record, a conflict, a refused value)."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from sync.connectors import ConnectorError, connector_for
from sync.connectors.currencies import currency_table, has_rate
from sync.connectors.dataverse import VERB_WORDS, privilege_words

from .blocking import root_of
from .links import safe_link
from .models import Category, ErrorGroup, Status, SyncError, audience_of

PRIVILEGE = re.compile(
    r"Principal user \(Id=(?P<user>[0-9a-fA-F-]+).*?is missing (?P<privilege>prv\w+) privilege"
    r"(?:.*?for entity '(?P<entity>\w+)')?",
    re.DOTALL,
)
# Dataverse's failed access check: the privilege is held, at a level that does not reach the
# record ("Principal with ID <guid> does not have CreateAccess right(s) for record with ID
# <guid> of entity").
ACCESS = re.compile(
    r"Principal with ID (?P<user>[0-9a-fA-F-]+) does not have (?P<right>\w+)Access right\(s\) "
    r"for record with ID (?P<record>[0-9a-fA-F-]+) of entity (?P<entity>\w+)"
)
LINKING = ("prvAppend",)
CURRENCY_CODE = re.compile(r"(?:[Cc]urrency |Currency Code=')(?P<code>[A-Z]{3})\b")
# The button of the connection's setup health page, named as the page names it.
CHECK_NOW = "Press Check now on the connection's setup health page, then run the job again."
# A look-up for a link on the page must not hold the page up for long.
LINK_TIMEOUT = 2.0


@dataclass(frozen=True)
class NextStep:
    """What to do now that the cause is gone: a bulk action on the problem's open entries
    (confirmed with their exact count, as every bulk action is)."""

    said: str  # what was found: "Business Central has an exchange rate for NOK now."
    label: str  # the button: "Retry the 4 open entries of this problem"
    action: str
    filter_query: str


@dataclass(frozen=True)
class Remedy:
    cause: str
    steps: list[str]
    who: str  # who acts on it, as its category's audience says: "for an administrator"...
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, address)
    next_step: NextStep | None = None


def remedy_for(error: SyncError) -> Remedy:
    if error.blocked_by_group_id:
        blocked = _blocked(error)
        if blocked is not None:
            return blocked
    finders: dict[str, Callable[[SyncError], Remedy]] = {
        Category.PERMISSION: _permission,
        Category.AUTHENTICATION: _authentication,
        Category.INTEGRATION_USER: _integration_user,
        Category.CURRENCY: _currency,
        Category.COUPLED_RECORD_DELETED: _coupled_record_deleted,
        Category.NOT_COUPLED: _not_coupled,
        Category.CONFLICT: _conflict,
        Category.VALIDATION: _validation,
        Category.CONNECTION: _connection,
        Category.LAG: _lag,
    }
    return finders.get(error.category, _other)(error)


def _blocked(error: SyncError) -> Remedy | None:
    """An entry blocked by another problem's record: its own cause is that one; the root of
    the chain is what to fix, not this entry (no second diagnosis)."""
    group = ErrorGroup.objects.filter(pk=error.blocked_by_group_id or 0).first()
    if group is None:
        return None
    root = root_of(group) or group
    mapping = error.mapping.name if error.mapping else "its mapping"
    record = f"{error.blocked_by_entity or 'record'} {error.blocked_by_record}".strip()
    links = [(f"Root cause: problem #{root.pk}", f"{reverse('errors:list')}?group={root.pk}")]
    # Where the root cause is fixed, as its own entry's page links it.
    root_entry = (
        SyncError.objects.filter(group=root, status=Status.OPEN, blocked_by_group__isnull=True)
        .select_related("mapping__connection")
        .order_by("-created_at", "-id")
        .first()
    )
    if root_entry is not None:
        links += [link for link in remedy_for(root_entry).links if link not in links]
    # A title is an app's message: it may end without a full stop ("... Code='NOK'").
    title = root.title if root.title.endswith((".", "!", "?")) else f"{root.title}."
    return Remedy(
        cause=f"Root cause: problem #{root.pk}, {title} This record fails only because "
        f"the {record} it refers to fails there.",
        steps=[
            f"Fix problem #{root.pk} first, as its page says.",
            f"Once that record synchronizes, this record is retried by itself (a job of "
            f"{mapping} triggered by Root cause resolved) and this entry resolves.",
        ],
        who=_who(error),
        links=links,
    )


def _who(error: SyncError) -> str:
    return audience_of(error.category).who


def _app(error: SyncError) -> str:
    """The app that answered with the failure: the one written to, or for a job-level entry,
    the one the job could not use."""
    if error.source_record_id:
        return error.destination_app or "the other app"
    return error.source_app or "the app"


def _side(error: SyncError) -> str:
    """The side of the entry's connection whose app answered with the failure."""
    connection = error.mapping.connection if error.mapping else None
    return "destination" if connection and _app(error) == connection.destination_app else "source"


def _briefly(connection, side: str):
    """The side's connector for a look-up on the page: one try, a short timeout."""
    return connector_for(connection, side, timeout=LINK_TIMEOUT, max_retries=0, throttle_budget=0)


def _connection_links(error: SyncError) -> list[tuple[str, str]]:
    if error.mapping is None:
        return []
    connection = error.mapping.connection
    return [
        (
            f"Connection {connection.name}",
            reverse("admin:sync_connection_change", args=[connection.pk]),
        )
    ]


def _health_links(error: SyncError) -> list[tuple[str, str]]:
    if error.mapping is None:
        return []
    connection_id = error.mapping.connection_id
    return [("Setup health check", reverse("sync:connection_health", args=[connection_id]))]


def _mapping_links(error: SyncError) -> list[tuple[str, str]]:
    if error.mapping is None:
        return []
    return [
        (
            f"Table mapping {error.mapping.name}",
            reverse("admin:sync_tablemapping_change", args=[error.mapping_id]),
        )
    ]


def _record_links(error: SyncError) -> list[tuple[str, str]]:
    """Both records, on their mapping's sides, each saying which app and record it opens; a
    record known to be gone is not linked."""
    sides = error.sides
    return [
        (f"{record.side_label}: {record.label}", record.link)
        for record in (sides.source, sides.destination)
        if record.link
    ]


def _user_record_link(error: SyncError, user_id: str) -> list[tuple[str, str]]:
    """The integration user's own page in the app that refused it, where the app has one."""
    if error.mapping is None:
        return []
    connection = error.mapping.connection
    with connector_for(connection, _side(error)) as connector:
        url = safe_link(connector.record_url("systemusers", user_id))
    return [("The integration user in " + _app(error), url)] if url else []


def _permission(error: SyncError) -> Remedy:
    app = _app(error)
    denied = ACCESS.search(error.message)
    if denied is not None:
        return _out_of_reach(error, denied)
    found = PRIVILEGE.search(error.message)
    if found and found["privilege"].startswith(LINKING):
        return _linking(error, found)
    privilege = found["privilege"] if found else "a privilege"
    entity = f" on {found['entity']}" if found and found["entity"] else ""
    links = _user_record_link(error, found["user"]) if found else []
    return Remedy(
        cause=f"The integration user's security roles in {app} do not grant {privilege}{entity}, "
        "so every record of this table fails the same way.",
        steps=[
            f"In {app}, open the integration user and its security roles.",
            f"Assign a role that holds {privilege}{entity} (the Integration Administrator role "
            "does), or add the privilege to the user's role.",
            "Run the job again; the records that failed are tried at the next run.",
        ],
        who=_who(error),
        links=links + _connection_links(error) + _health_links(error),
    )


def _linking(error: SyncError, found: re.Match) -> Remedy:
    """Append or Append To missing: in the words of the setup check's finding."""
    app, privilege = _app(error), found["privilege"]
    words = privilege_words(privilege)
    return Remedy(
        cause=f"The integration user's security roles in {app} do not grant {words} "
        f"({privilege}), which setting a lookup needs, so every record that sets one fails the "
        "same way.",
        steps=[
            f"In {app}, open the integration user and its security roles.",
            f"Give the integration user's security role {words}, at the Organization level, or "
            "assign it a role that has it (the Integration Administrator role does).",
            "Run the job again; the records that failed are tried at the next run.",
        ],
        who=_who(error),
        links=_user_record_link(error, found["user"])
        + _connection_links(error)
        + _health_links(error),
    )


def _out_of_reach(error: SyncError, denied: re.Match) -> Remedy:
    """The privilege is held at a level that does not reach the record (owned by another user
    or business unit)."""
    app = _app(error)
    right = denied["right"]
    words = f"{VERB_WORDS.get(right, right)} on {denied['entity']}"
    return Remedy(
        cause=f"The integration user's security roles in {app} grant {words} at a level that "
        f"does not reach the {denied['entity']} record {denied['record']}: another user or "
        "business unit owns it.",
        steps=[
            f"In {app}, set {words} to the Organization level in the integration user's "
            "security role (or give the record to an owner within the level's reach).",
            "Retry the record, or let the next run try it again.",
        ],
        who=_who(error),
        links=_user_record_link(error, denied["user"])
        + _record_links(error)
        + _connection_links(error)
        + _health_links(error),
    )


def _authentication(error: SyncError) -> Remedy:
    app = _app(error)
    if "must be changed" in error.message:
        return Remedy(
            cause=f"The integration user's password is set to require a change at the next "
            f"sign-in in {app}, so the integration cannot sign in.",
            steps=[
                f"Sign in to {app} as the integration user and set a new password, or have an "
                "administrator turn off the change-at-next-sign-in requirement.",
                "Enter the new password on the connection.",
                CHECK_NOW,
            ],
            who=_who(error),
            links=_connection_links(error),
        )
    if error.message.startswith("AADSTS"):
        # Microsoft Entra ID refused the sign-in with OAuth 2.0 client credentials.
        code = error.message.split(":")[0]
        check = {
            "AADSTS700016": "Check the client ID on the connection, and that the connection's "
            "authority names the tenant the app registration belongs to.",
            "AADSTS90002": "Check the tenant in the connection's authority "
            "(https://login.microsoftonline.com/<tenant ID>).",
            "AADSTS70011": "Check the scope on the connection: the app's application ID URI "
            "with /.default (left blank, it is taken from the API address).",
        }.get(
            code,
            "Enter the client secret's value (not its ID) on the connection again; a secret "
            "that expired is replaced in Microsoft Entra ID (App registrations, Certificates & "
            "secrets) first.",
        )
        return Remedy(
            cause=f"Microsoft Entra ID refused to sign the integration in to {app} ({code}).",
            steps=[check, CHECK_NOW],
            who=_who(error),
            links=_connection_links(error),
        )
    return Remedy(
        cause=f"{app} refused the integration user's credentials (user name, password, token or "
        "client secret).",
        steps=[
            "Check the user name and secret on the connection; secrets are never shown, so "
            "enter the secret again if in doubt.",
            CHECK_NOW,
        ],
        who=_who(error),
        links=_connection_links(error),
    )


def _signed_in_user_link(error: SyncError) -> list[tuple[str, str]]:
    """The integration user's own page in the app that refused it, found by asking the app who
    signs in (briefly: a slow app costs the page LINK_TIMEOUT, and says nothing)."""
    if error.mapping is None:
        return []
    connection = error.mapping.connection
    with _briefly(connection, _side(error)) as connector:
        try:
            user_id = connector.signed_in_user_id()
        except ConnectorError:
            return []
        url = safe_link(connector.record_url("systemusers", user_id)) if user_id else None
    return [("The integration user in " + _app(error), url)] if url else []


def _integration_user(error: SyncError) -> Remedy:
    app = _app(error)
    links = _signed_in_user_link(error)
    if "System Administrator" in error.message:
        return Remedy(
            cause=f"An administrator account is set as the integration user. {app} and Sync "
            "Console refuse it: an integration must not run with every privilege.",
            steps=[
                f"In {app}, use a dedicated integration user without the System Administrator "
                "role, holding the Integration User or Integration Administrator role.",
                "Set that user on the connection, then press Check now on the connection's "
                "setup health page.",
            ],
            who=_who(error),
            links=links + _connection_links(error) + _health_links(error),
        )
    if "no security roles" in error.message or "none of the integration roles" in error.message:
        return Remedy(
            cause=f"The integration user in {app} does not hold an integration role, so it may "
            "not read or write the tables the integration needs.",
            steps=[
                f"In {app}, open the integration user and assign the Integration User or "
                "Integration Administrator security role.",
                "Check the connection's setup health, then run the job again.",
            ],
            who=_who(error),
            links=links + _connection_links(error) + _health_links(error),
        )
    if "access mode" in error.message:
        return Remedy(
            cause=f"The integration user's access mode in {app} does not let an integration "
            "work with it (it must be Read-Write or Non-interactive).",
            steps=[
                f"In {app}, open the integration user and set its access mode to "
                "Non-interactive (or Read-Write).",
                "Check the connection's setup health, then run the job again.",
            ],
            who=_who(error),
            links=links + _connection_links(error) + _health_links(error),
        )
    if "no license" in error.message:
        return Remedy(
            cause=f"The integration user has no license in {app}, and only a Non-interactive "
            "user works without one.",
            steps=[
                f"In {app}, assign the integration user a license, or make it a "
                "Non-interactive user.",
                "Check the connection's setup health, then run the job again.",
            ],
            who=_who(error),
            links=links + _connection_links(error) + _health_links(error),
        )
    if "disabled" in error.message:
        return Remedy(
            cause=f"The integration user is disabled in {app}.",
            steps=[f"Enable the user in {app} (and check its license), then run the job again."],
            who=_who(error),
            links=links + _connection_links(error) + _health_links(error),
        )
    return Remedy(
        cause=f"The integration user is not set up the way {app} needs.",
        steps=[
            "Check the user's roles and status, then press Check now on the connection's "
            "setup health page."
        ],
        who=_who(error),
        links=links + _connection_links(error) + _health_links(error),
    )


def _currency(error: SyncError) -> Remedy:
    found = CURRENCY_CODE.search(error.message)
    code = found["code"] if found else "the record's currency"
    lacking = "does not exist" in error.message and "Exchange Rate" not in error.message
    app = _app(error) if lacking else _rates_app(error)
    if lacking:
        missing = f"{app} has no currency {code}."
        step = f"Add the currency {code} with its exchange rate in {app}."
    else:
        missing = f"{app} has no exchange rate for {code}."
        step = f"Open the currency {code} in {app} and enter its exchange rate."
    links: list[tuple[str, str]] = []
    next_step = None
    if found and error.mapping is not None:
        now = _currency_now(error.mapping.connection, app, code, lacking)
        links = now.links
        if now.fixed:
            said = (
                f"{app} has the currency {code} with an exchange rate now."
                if lacking
                else f"{app} has an exchange rate for {code} now."
            )
            next_step = _retry_the_problem(error, said)
    return Remedy(
        cause=f"{missing} Records in {code} cannot be written there until it has.",
        steps=[
            step,
            "Run the job again: the records that failed go through, the others are unaffected.",
        ],
        who=_who(error),
        links=links + _record_links(error) + _mapping_links(error) + _health_links(error),
        next_step=next_step,
    )


def _rates_app(error: SyncError) -> str:
    """The app whose exchange rate is missing: the one that keeps its rates in a table of
    their own (Business Central's Currency Exchange Rate, whose words the message is in).
    It refuses a record written to it in that currency, and its currency cannot be written
    to the other app without a rate: the app written to or the app read."""
    connection = error.mapping.connection if error.mapping else None
    if connection is not None:
        for side in ("source", "destination"):
            with _briefly(connection, side) as connector:
                if connector.exchange_rate_entity():
                    return connector.app_name
    return _app(error)


@dataclass(frozen=True)
class _CurrencyNow:
    links: list[tuple[str, str]]
    fixed: bool


def _currency_now(connection, app: str, code: str, lacking: bool) -> _CurrencyNow:
    """How the currency stands now in the app that refused it: the link to where it is fixed
    (its record there; for a currency the app lacks, the currency as the other app has it),
    and whether it is fixed (it is there with a rate). Asked of the apps briefly: a slow app
    costs the page LINK_TIMEOUT, and says nothing."""
    sides = {connection.source_app: "source", connection.destination_app: "destination"}
    side = sides.get(app)
    if side is None:
        return _CurrencyNow([], False)
    other = "destination" if side == "source" else "source"
    tables: dict[str, dict[str, tuple[str, Any]]] = {}
    links: list[tuple[str, str]] = []
    for looked_at in (side, other) if lacking else (side,):
        with _briefly(connection, looked_at) as connector:
            entity = connector.config.option("currency_entity")
            if not entity:
                continue
            try:
                tables[looked_at] = table = currency_table(connector)
            except ConnectorError:
                continue
            if code in table and not links:
                url = safe_link(connector.record_url(entity, table[code][0]))
                if url:
                    links.append((f"Currency {code} in {connector.app_name}", url))
    here = tables.get(side, {})
    return _CurrencyNow(links, code in here and has_rate(here[code][1]))


def _retry_the_problem(error: SyncError, said: str) -> NextStep | None:
    """Retry the open entries of the entry's problem, once what refused them is gone."""
    if error.group_id is None:
        return None
    open_entries = SyncError.objects.filter(group_id=error.group_id, status=Status.OPEN).count()
    if not open_entries:
        return None
    return NextStep(
        said=said,
        label=f"Retry the {_entries(open_entries)} of this problem",
        action="retry",
        filter_query=urlencode({"group": error.group_id, "status": Status.OPEN}),
    )


def _entries(count: int) -> str:
    return "open entry" if count == 1 else f"{count} open entries"


def _coupled_record_deleted(error: SyncError) -> Remedy:
    gone = error.destination_app or "the other app"
    return Remedy(
        cause=f"The record was deleted in {gone} but is still coupled there, so its changes have "
        "nowhere to go.",
        steps=[
            f"Restore it: re-create the record in {gone} from the remaining one and couple it.",
            "Or delete the remaining record too, if it should be gone on both sides.",
            "Or remove the coupling, so the records are no longer linked.",
            "To have this handled by itself, set the mapping's deletion-conflict rule "
            "(restore the record or remove the coupling).",
        ],
        who=_who(error),
        links=_record_links(error) + _mapping_links(error),
    )


def _not_coupled(error: SyncError) -> Remedy:
    here = error.source_app or "one app"
    there = error.destination_app or "the other app"
    return Remedy(
        cause=f"The record exists in {here} only: it was never coupled to a {there} record, "
        "so the synchronization does not keep the two apps' copies in step.",
        steps=[
            f"If {there} has the same record: Couple it, by hand or by matching fields.",
            f"If {there} should have it: Retry creates it there from this one and couples them.",
            f"If it should not exist: Delete it in {here}.",
            "If it is meant to stay on one side (outside the synchronization), ignore the "
            "problem: later reconciliations keep it quiet.",
        ],
        who=_who(error),
        links=_record_links(error) + _mapping_links(error),
    )


def _conflict(error: SyncError) -> Remedy:
    if "after it was read" in error.message:
        # The app refused the write: the record's version was no longer the one read.
        cause = (
            f"The record changed in {error.destination_app or 'the other app'} after the job "
            "read it and before it wrote it, so the job did not overwrite that change."
        )
    else:
        cause = (
            f"The record changed in both {error.source_app or 'apps'} and "
            f"{error.destination_app or 'the other app'} since the last synchronization, and "
            "the mapping has no rule for who wins."
        )
    return Remedy(
        cause=cause,
        steps=[
            "Open both records and decide which values are right.",
            "Correct the other record, or synchronize in the direction of the right one.",
            "To have this handled by itself, set the mapping's update-conflict rule (take the "
            "source or take the destination).",
        ],
        who=_who(error),
        links=_record_links(error) + _mapping_links(error),
    )


def _validation(error: SyncError) -> Remedy:
    app = _app(error)
    return Remedy(
        cause=f"{app} refused a value it was sent: {error.message.split(' The record will')[0]}",
        steps=[
            f"Correct the value in the {error.source_app or 'source'} record so that {app} "
            "accepts it.",
            "Or change the field mapping (a transformation, or clearing the value when the "
            "sync fails).",
            "The record is tried again at the next run.",
        ],
        who=_who(error),
        links=_record_links(error) + _mapping_links(error),
    )


def _lag(error: SyncError) -> Remedy:
    mapping = error.mapping.name if error.mapping else "the mapping"
    links = []
    if error.mapping is not None:
        links.append(
            (
                f"Lag of {mapping}",
                reverse("sync:mapping_health", args=[error.mapping_id]) + "#lag",
            )
        )
        links.append((f"Jobs of {mapping}", reverse("sync:jobs") + f"?mapping={error.mapping_id}"))
    return Remedy(
        cause=(
            f"The lag probe of {mapping} changed its record, and the change took longer than "
            "the probe's limit to reach the other app (or has not reached it yet). No record "
            "failed: what carries the changes is slow or stopped."
        ),
        steps=[
            "Check that the Celery worker and beat are running, and that the mapping's jobs "
            "run and succeed (a paused mapping or a queue of jobs holds every change back).",
            "Check the change notifications on the connection's setup health page: without "
            "them, a change waits for the next scheduled run.",
            "If an app throttles the integration, spread the jobs over time or raise the "
            "probe's limit to what the integration can keep. The entry closes by itself when "
            "a later marker arrives within the limit.",
        ],
        who=_who(error),
        links=links + _health_links(error),
    )


def _connection(error: SyncError) -> Remedy:
    app = _app(error)
    message = error.message
    # Temporary: the steps say so first, then what an administrator does if it keeps coming.
    first = (
        "Nothing to do at once: it closes by itself when a later job gets through, going on "
        "where this one stopped."
    )
    if "429" in message or "asked to slow down" in message:
        cause = (
            f"{app} throttled the integration for a long time: it takes only so many requests "
            "at a time. Jobs pause and go on by themselves while it does; this one waited for "
            "several in a row."
        )
        second = (
            "If it happens often, an administrator runs the schedule less often, or spreads "
            "the mappings' jobs over the day."
        )
    elif "not JSON" in message or "unexpected JSON" in message:
        cause = f"{app} answered with something that is not its API (a maintenance or proxy page)."
        second = (
            f"If it keeps coming, an administrator checks that {app} is up and that the "
            "connection's address is its API root."
        )
    elif "timed out" in message:
        cause = f"{app} did not answer in time."
        second = (
            f"If it keeps coming, an administrator checks how {app} is doing, and raises the "
            "connection's timeout if it is just slow."
        )
    else:
        cause = f"{app} could not be reached or kept failing after the retries."
        second = (
            "If it keeps coming, an administrator checks the connection's address and the "
            "network, then presses Check now on the connection's setup health page."
        )
    return Remedy(
        cause=cause,
        steps=[first, second],
        who=_who(error),
        links=_connection_links(error),
    )


def _other(error: SyncError) -> Remedy:
    return Remedy(
        cause="The sync stopped on something it does not recognize.",
        steps=["Read the detail below for the app's answer or the stack trace."],
        who=_who(error),
        links=_connection_links(error),
    )
