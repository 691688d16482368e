"""Change notifications from the demo apps to whoever subscribed, after the change commits.

The ERP notifies as Business Central does (demo/business_central.py: subscriptions made
through its API, `{"value": [...]}` notifications). The CRM posts as a Dataverse webhook does:
a service endpoint registered with the WebhookKey authentication (the key sent as the `code`
query parameter) receives the RemoteExecutionContext of each change ("Use Webhooks to create
external handlers for server events")."""

import logging
import threading
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import httpx
from django.db import transaction

from .api_schema import API_ENTITIES
from .business_central import announce
from .models import DemoWebhook
from .outgoing import outgoing_client

logger = logging.getLogger(__name__)
# Dataverse's message names of the changes.
MESSAGES = {"created": "Create", "updated": "Update", "deleted": "Delete"}
ORGANIZATION_NAME = "demo-crm"


def _post(url: str, payload: dict, headers: dict[str, str]) -> None:
    try:
        with outgoing_client() as client:
            client.post(url, json=payload, headers=headers)
    except httpx.HTTPError as exc:
        logger.warning("Change notification to %s failed: %s", url, exc)


def notify_change(app: str, entity: str, record_id, change: str = "updated") -> None:
    notify_changes(app, entity, [record_id], change)


def notify_changes(app: str, entity: str, record_ids: list, change: str = "updated") -> None:
    """Announce each changed record (`change`: created, updated or deleted) to the table's
    subscribers."""
    if not record_ids:
        return
    if app == "erp":
        announce(entity, [(pk, change) for pk in record_ids])
        return
    subscriptions = list(DemoWebhook.objects.filter(app=app, entity=entity))
    api = API_ENTITIES.get((app, entity))
    if not subscriptions or api is None:
        return
    moment = datetime.now(UTC)

    def send() -> None:
        for subscription in subscriptions:
            for record_id in record_ids:
                payload = remote_execution_context(api.logical_name, record_id, change, moment)
                headers = {
                    "x-request-id": payload["RequestId"],
                    "x-ms-dynamics-organization": payload["OrganizationName"],
                    "x-ms-dynamics-entity-name": api.logical_name,
                    "x-ms-dynamics-request-name": payload["MessageName"],
                    "x-ms-correlation-request-id": payload["CorrelationId"],
                }
                # Never hold up the app's own answer for a subscriber.
                threading.Thread(
                    target=_post,
                    args=(_with_key(subscription), payload, headers),
                    daemon=True,
                ).start()

    transaction.on_commit(send)


def _with_key(subscription: DemoWebhook) -> str:
    """The endpoint's address with its WebhookKey as the `code` query parameter."""
    if not subscription.client_state:
        return subscription.notification_url
    separator = "&" if urlsplit(subscription.notification_url).query else "?"
    key = urlencode({"code": subscription.client_state})
    return f"{subscription.notification_url}{separator}{key}"


def remote_execution_context(logical_name: str, record_id, change: str, moment: datetime) -> dict:
    """What Dataverse posts to a webhook for one change: the execution context of the
    message (its name, the table's logical name and the record's id, the stage)."""
    organization = uuid.uuid5(uuid.NAMESPACE_URL, "demo-crm/organization")
    user = str(uuid.UUID(int=1))
    epoch_ms = int(moment.timestamp() * 1000)
    return {
        "BusinessUnitId": str(uuid.UUID(int=1)),
        "CorrelationId": str(uuid.uuid4()),
        "Depth": 1,
        "InitiatingUserId": user,
        "InputParameters": [],
        "IsExecutingOffline": False,
        "IsInTransaction": False,
        "IsOfflinePlayback": False,
        "IsolationMode": 1,
        "MessageName": MESSAGES.get(change, "Update"),
        "Mode": 1,
        "OperationCreatedOn": f"/Date({epoch_ms}+0000)/",
        "OperationId": str(uuid.uuid4()),
        "OrganizationId": str(organization),
        "OrganizationName": ORGANIZATION_NAME,
        "OutputParameters": [],
        "OwningExtension": {"Id": str(uuid.uuid4()), "LogicalName": "sdkmessageprocessingstep"},
        "ParentContext": None,
        "PostEntityImages": [],
        "PreEntityImages": [],
        "PrimaryEntityId": str(record_id),
        "PrimaryEntityName": logical_name,
        "RequestId": str(uuid.uuid4()),
        "SecondaryEntityName": "none",
        "SharedVariables": [],
        "Stage": 40,
        "UserId": user,
    }
