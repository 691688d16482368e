"""Change notifications from the demo apps to whoever subscribed, after the change commits.

The ERP notifies as Business Central does (demo/business_central.py: subscriptions made
through its API, `{"value": [...]}` notifications). The CRM posts as a Dataverse webhook does
("Use Webhooks to create external handlers for server events"): each enabled step registered
on the change's message, for its table or for every table (demo/dataverse_registrations.py),
has its service endpoint receive the RemoteExecutionContext of the change, authenticated as
the endpoint says: WebhookKey sends the key as the `code` query parameter, HttpHeader and
HttpQueryString their key/value pairs (`<settings><setting name="..." value="..." />
</settings>`)."""

import html
import logging
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import httpx
from django.db import models, transaction
from django.db.models import Q

from .api_schema import API_ENTITIES
from .business_central import announce
from .entities import names_of
from .models import CrmSdkMessageProcessingStep, CrmServiceEndpoint, ErpSubscription
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


# True inside unheard_while_nobody_listens() when no table had a subscriber as it started.
_nobody_listens: ContextVar[bool] = ContextVar("nobody_listens", default=False)


def webhook_steps():
    """The CRM's enabled steps whose service endpoint is a webhook: those that post changes."""
    return CrmSdkMessageProcessingStep.objects.filter(
        state=CrmSdkMessageProcessingStep.State.ENABLED,
        service_endpoint__contract=CrmServiceEndpoint.Contract.WEBHOOK,
    )


def anyone_listens() -> bool:
    """Whether any table of either app has a subscriber."""
    return ErpSubscription.objects.exists() or webhook_steps().exists()


@contextmanager
def unheard_while_nobody_listens() -> Iterator[None]:
    """For a block that makes records in bulk and no subscription (the apps' first records and
    users): when no table has a subscriber as it starts, its changes are announced to no one,
    so each save skips looking its table's subscribers up (a query a save)."""
    token = _nobody_listens.set(not anyone_listens())
    try:
        yield
    finally:
        _nobody_listens.reset(token)


def announce_created(model: type[models.Model], records: Iterable[models.Model]) -> None:
    """Announce records made in bulk, which send no save signal, as created, as each save
    announces its record (demo.signals); `records` is read only when someone may listen."""
    if _nobody_listens.get():
        return
    ids = [record.pk for record in records]
    for app, name in names_of(model):
        notify_changes(app, name, ids, "created")


def notify_change(app: str, entity: str, record_id, change: str = "updated") -> None:
    notify_changes(app, entity, [record_id], change)


def notify_changes(app: str, entity: str, record_ids: list, change: str = "updated") -> None:
    """Announce each changed record (`change`: created, updated or deleted) to the table's
    subscribers."""
    if not record_ids or _nobody_listens.get():
        return
    if app == "erp":
        announce(entity, [(pk, change) for pk in record_ids])
        return
    api = API_ENTITIES.get((app, entity))
    if api is None:
        return
    message = MESSAGES.get(change, "Update")
    steps = list(
        webhook_steps()
        .select_related("service_endpoint")
        .filter(Q(primary_entity=api.logical_name) | Q(primary_entity=""), message_name=message)
    )
    if not steps:
        return
    moment = datetime.now(UTC)

    def send() -> None:
        for step in steps:
            url, auth_headers = _addressed(step.service_endpoint)
            for record_id in record_ids:
                payload = remote_execution_context(
                    api.logical_name, record_id, change, moment, step=step
                )
                headers = {
                    **auth_headers,
                    "x-request-id": payload["RequestId"],
                    "x-ms-dynamics-organization": payload["OrganizationName"],
                    "x-ms-dynamics-entity-name": api.logical_name,
                    "x-ms-dynamics-request-name": payload["MessageName"],
                    "x-ms-correlation-request-id": payload["CorrelationId"],
                }
                # Never hold up the app's own answer for a subscriber.
                threading.Thread(target=_post, args=(url, payload, headers), daemon=True).start()

    transaction.on_commit(send)


SETTING = re.compile(
    r"""<setting\s+name=(["'])(?P<name>.*?)\1\s+value=(["'])(?P<value>.*?)\3\s*/>"""
)


def _settings(auth_value: str) -> list[tuple[str, str]]:
    """The key/value pairs of an HttpHeader or HttpQueryString authentication value."""
    return [
        (html.unescape(found["name"]), html.unescape(found["value"]))
        for found in SETTING.finditer(auth_value)
    ]


def _addressed(endpoint: CrmServiceEndpoint) -> tuple[str, dict[str, str]]:
    """Where a webhook posts, with its authentication: the URL (with the query it adds) and
    the headers it sends."""
    kind = endpoint.auth_type
    if kind == CrmServiceEndpoint.AuthType.HTTP_HEADER:
        return endpoint.url, dict(_settings(endpoint.auth_value))
    if kind == CrmServiceEndpoint.AuthType.WEBHOOK_KEY:
        query = [("code", endpoint.auth_value)]
    elif kind == CrmServiceEndpoint.AuthType.HTTP_QUERY_STRING:
        query = _settings(endpoint.auth_value)
    else:
        query = []
    if not query:
        return endpoint.url, {}
    separator = "&" if urlsplit(endpoint.url).query else "?"
    return f"{endpoint.url}{separator}{urlencode(query)}", {}


def remote_execution_context(
    logical_name: str,
    record_id,
    change: str,
    moment: datetime,
    step: CrmSdkMessageProcessingStep | None = None,
) -> dict:
    """What Dataverse posts to a webhook for one change: the execution context of the
    message (its name, the table's logical name and the record's id), with the stage and
    mode of the step that posts it (an asynchronous PostOperation step when none is given)."""
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
        "Mode": step.mode if step else CrmSdkMessageProcessingStep.Mode.ASYNCHRONOUS,
        "OperationCreatedOn": f"/Date({epoch_ms}+0000)/",
        "OperationId": str(uuid.uuid4()),
        "OrganizationId": str(organization),
        "OrganizationName": ORGANIZATION_NAME,
        "OutputParameters": [],
        "OwningExtension": {
            "Id": str(step.pk if step else uuid.uuid4()),
            "LogicalName": "sdkmessageprocessingstep",
        },
        "ParentContext": None,
        "PostEntityImages": [],
        "PreEntityImages": [],
        "PrimaryEntityId": str(record_id),
        "PrimaryEntityName": logical_name,
        "RequestId": str(uuid.uuid4()),
        "SecondaryEntityName": "none",
        "SharedVariables": [],
        "Stage": step.stage if step else CrmSdkMessageProcessingStep.Stage.POST_OPERATION,
        "UserId": user,
    }
