"""Change notifications from the apps: a change starts a modified-records sync of its mapping
within seconds instead of at the next scheduled run.

Each side is notified in its app's own shape, and only in that shape:

- Business Central ("Working with webhooks in Dynamics 365 Business Central"): a handshake
  first (`?validationToken=...`, answered 200 with the token as text), then
  `{"value": [{"subscriptionId", "clientState", "expirationDateTime", "resource",
  "changeType", "lastModifiedDateTime"}, ...]}`, the client state being the connection's own
  secret. `resource` names the company, the entity set and the record
  (`api/v2.0/companies(<id>)/customers(<id>)`), or, for `collection`, the entity set with a
  filter: many records changed.
- Dataverse ("Use Webhooks to create external handlers for server events"): the
  RemoteExecutionContext of one change (`MessageName`, `PrimaryEntityName`,
  `PrimaryEntityId`), the webhook registered with the WebhookKey authentication: the key,
  the connection's secret, comes as the `code` query parameter.

A deletion (Business Central's `deleted`, Dataverse's Delete message) names a record that can
no longer be read on its side: the job synchronizes the record coupled to it on the other side
instead (its id in the job's record ids for that direction), so that the mapping's deletion
rule applies to the coupling. A deleted record that is not coupled is left alone."""

import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

from django.utils.crypto import constant_time_compare

from couplings.models import Coupling
from syncconsole.queue import QueueUnavailable

from .connectors.odata import BUSINESS_CENTRAL, DATAVERSE, FLAVORS
from .fields import FROM_DESTINATION, TO_DESTINATION
from .models import Connection, SyncJob, TableMapping
from .services import JobRefused, request_sync

CHANGE_TYPES = ("created", "updated", "deleted", "collection")
DATAVERSE_MESSAGES = ("Create", "Update", "Delete")
MAX_VALIDATION_TOKEN = 1024
RESOURCE = re.compile(
    r"^/?(?:[^?#]*?/)?companies\((?P<company>[^()/]*)\)/(?P<entity>[A-Za-z][A-Za-z0-9]*)"
    r"(?:\((?P<record>[^()/]*)\))?(?:\?(?P<query>.*))?$"
)
COMPANY = re.compile(r"/companies\((?P<company>[^()/]*)\)/?$")


class BadNotification(ValueError):
    """The body is not a notification of the app this side speaks to."""


@dataclass
class Changes:
    """What a notification says changed: the records created or updated and those deleted,
    by entity set, and the entity sets where many records changed at once (Business
    Central's `collection`)."""

    records: dict[str, set[str]] = field(default_factory=dict)
    deleted: dict[str, set[str]] = field(default_factory=dict)
    collections: set[str] = field(default_factory=set)
    ignored: int = 0

    @property
    def entities(self) -> set[str]:
        return set(self.records) | set(self.deleted) | self.collections

    def add(self, entity: str, record_id: str, deleted: bool) -> None:
        (self.deleted if deleted else self.records).setdefault(entity, set()).add(record_id)


# The direction that writes to each side: the one that reads the record coupled to a record
# deleted on that side.
TOWARDS = {"destination": TO_DESTINATION, "source": FROM_DESTINATION}
RUNS: dict[str, set[str]] = {
    TableMapping.Direction.BIDIRECTIONAL: {TO_DESTINATION, FROM_DESTINATION},
    TableMapping.Direction.TO_DESTINATION: {TO_DESTINATION},
    TableMapping.Direction.FROM_DESTINATION: {FROM_DESTINATION},
}


def counterparts(mapping: TableMapping, side: str, deleted: set[str]) -> dict[str, list[str]]:
    """The records coupled to records deleted on `side`, by the direction that reads them:
    what the job synchronizes so that the mapping's deletion rule applies. None for a
    direction the mapping does not run (the nightly reconciliation finds those)."""
    direction = TOWARDS[side]
    if not deleted or direction not in RUNS.get(mapping.direction, set()):
        return {}
    other = "source" if side == "destination" else "destination"
    ids = sorted(
        Coupling.objects.filter(
            mapping=mapping, **{f"{side}_record_id__in": sorted(deleted)}
        ).values_list(f"{other}_record_id", flat=True)
    )
    return {direction: ids} if ids else {}


def flavor_of(connection: Connection, side: str) -> str:
    return str(getattr(connection, f"{side}_flavor"))


def answers_handshake(connection: Connection, side: str) -> bool:
    """Whether the side's app asks for a handshake (Business Central does)."""
    return flavor_of(connection, side) == BUSINESS_CENTRAL


def validation_answer(token: str) -> str:
    """The body that completes Business Central's handshake: the token itself."""
    if not token or len(token) > MAX_VALIDATION_TOKEN or not token.isprintable():
        raise BadNotification("The validation token is missing or not valid.")
    return token


def handle_notification(
    connection: Connection, side: str, payload: object, query: dict[str, str] | None = None
) -> list[SyncJob]:
    """Check that the notification comes from the side's app (its secret) and is in that
    app's shape, then queue a modified-records sync of each enabled mapping of a changed
    table, naming the records coupled to deleted ones; returns the queued jobs. Several
    notifications in a row become one queued job per mapping, which takes the records each
    names.

    PermissionError: not this connection's secret; BadNotification: not the app's shape."""
    if flavor_of(connection, side) == DATAVERSE:
        changes = _dataverse_changes(connection, side, payload, query or {})
    else:
        changes = _business_central_changes(connection, side, payload)
    queued: list[SyncJob] = []
    if not changes.entities:
        return queued
    mappings = connection.mappings.filter(
        is_enabled=True, **{f"{side}_entity__in": sorted(changes.entities)}
    )
    for mapping in mappings:
        entity = getattr(mapping, f"{side}_entity")
        record_ids = counterparts(mapping, side, changes.deleted.get(entity, set()))
        if not record_ids and entity not in changes.records and entity not in changes.collections:
            continue  # only records deleted that nothing is coupled to: nothing to do
        try:
            queued.append(
                request_sync(
                    mapping,
                    kind=SyncJob.Kind.MODIFIED,
                    trigger=SyncJob.Trigger.WEBHOOK,
                    allow_behind_running=True,
                    record_ids=record_ids,
                    join_queued=True,
                )
            )
        except (JobRefused, QueueUnavailable):
            continue
    return queued


def _secret_matches(given: object, connection: Connection) -> bool:
    return isinstance(given, str) and constant_time_compare(given, connection.notification_token())


def _company(connection: Connection, side: str) -> str:
    """The company id of the side's API root (`.../companies(<id>)/`), lower case."""
    match = COMPANY.search(str(getattr(connection, f"{side}_base_url")))
    return match["company"].strip("'").lower() if match else ""


def _business_central_changes(connection: Connection, side: str, payload: object) -> Changes:
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise BadNotification(
            "A Business Central notification is a JSON object with a list of notifications "
            "under 'value'."
        )
    if not all(_secret_matches(item.get("clientState"), connection) for item in items):
        raise PermissionError("The notification does not carry this connection's client state.")
    company = _company(connection, side)
    changes = Changes()
    for index, item in enumerate(items):
        change_type = item.get("changeType")
        resource = item.get("resource")
        if change_type not in CHANGE_TYPES or not isinstance(resource, str):
            raise BadNotification(
                f"Notification {index} has no known changeType ({', '.join(CHANGE_TYPES)}) or "
                "no resource."
            )
        match = RESOURCE.match(unquote(resource.strip()))
        if not match:
            raise BadNotification(f"Notification {index} names no resource of the API.")
        if company and match["company"].strip("'").lower() != company:
            changes.ignored += 1  # another company of the tenant
            continue
        entity = match["entity"]
        if change_type == "collection":
            changes.collections.add(entity)
            continue
        record = (match["record"] or "").strip("'")
        try:
            record_id = str(uuid.UUID(record))
        except ValueError:
            raise BadNotification(f"Notification {index} names no record id.") from None
        changes.add(entity, record_id, deleted=change_type == "deleted")
    return changes


def _entity_sets(connection: Connection, side: str, logical_name: str) -> set[str]:
    """The entity sets of the side's mappings whose table has this logical name (accounts
    for account), by their key field (accountid) as the connection's conventions give it."""
    config = connection.side_config(side)
    key_fields = {**FLAVORS[DATAVERSE]["key_fields"], **(config.option("key_fields") or {})}
    names = set(connection.mappings.values_list(f"{side}_entity", flat=True))
    return {
        name
        for name in names
        if key_fields.get(name, "").removesuffix("id") == logical_name
        or name in (f"{logical_name}s", f"{logical_name}es", f"{logical_name[:-1]}ies")
    }


def _dataverse_changes(
    connection: Connection, side: str, payload: object, query: dict[str, str]
) -> Changes:
    if not _secret_matches(query.get("code"), connection):
        raise PermissionError("The notification does not carry this connection's webhook key.")
    if not isinstance(payload, dict):
        raise BadNotification("A Dataverse notification is a RemoteExecutionContext object.")
    message = payload.get("MessageName")
    logical_name = payload.get("PrimaryEntityName")
    record = payload.get("PrimaryEntityId")
    if message not in DATAVERSE_MESSAGES or not isinstance(logical_name, str):
        raise BadNotification(
            "A Dataverse notification names its message (Create, Update or Delete) and the "
            "table's logical name (PrimaryEntityName)."
        )
    try:
        record_id = str(uuid.UUID(str(record)))
    except ValueError:
        raise BadNotification("PrimaryEntityId is not a record id.") from None
    changes = Changes()
    for entity in _entity_sets(connection, side, logical_name):
        changes.add(entity, record_id, deleted=message == "Delete")
    return changes
