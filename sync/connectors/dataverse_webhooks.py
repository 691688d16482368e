"""What the connector does to register a webhook with Dataverse through its Web API, as the
Plug-in Registration tool does ("Use Webhooks to create external handlers for server
events", "Register a WebHook"):

- the webhook is a service endpoint (`serviceendpoints`) with contract 8 (Webhook), the URL to
  post to, and the WebhookKey authentication (authtype 4), its `authvalue` the key Dataverse
  sends as the `code` query parameter; the key is never read back;
- a step (`sdkmessageprocessingsteps`) per message and table, bound to the endpoint
  (`eventhandler_serviceendpoint@odata.bind`), to its message (an `sdkmessages` row, found by
  name) and to the message filter of the table (an `sdkmessagefilters` row, found by message
  and `primaryobjecttypecode`): stage 40 (PostOperation), mode 1 (asynchronous), deployment 0
  (server only). A table without a filter for the message (or whose filter takes no custom
  step) does not notify it;
- deleting the endpoint deletes its steps."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .base import ConnectorError, Sender

WEBHOOK = 8  # serviceendpoint.contract
WEBHOOK_KEY = 4  # serviceendpoint.authtype
POST_OPERATION = 40  # sdkmessageprocessingstep.stage
ASYNCHRONOUS = 1  # sdkmessageprocessingstep.mode
SERVER_ONLY = 0  # sdkmessageprocessingstep.supporteddeployment
ENDPOINT_COLUMNS = "serviceendpointid,name,url,authtype"
STEP_COLUMNS = "sdkmessageprocessingstepid,name,_sdkmessageid_value,_sdkmessagefilterid_value"


@dataclass(frozen=True)
class Endpoint:
    id: str
    name: str
    url: str


@dataclass(frozen=True)
class Step:
    id: str
    name: str
    message_id: str
    filter_id: str


def _rows(connector: Sender, body: Any, what: str) -> list[dict[str, Any]]:
    rows = body.get("value") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ConnectorError(
            f"{connector.app_name} answered its {what} in an unexpected shape.",
            detail=str(body)[:2000],
        )
    return rows


def _id(row: dict[str, Any], key: str) -> str:
    return str(row.get(key) or "").lower()


def _get(connector: Sender, path: str, params: dict[str, str]) -> Any:
    return connector._send("GET", connector.base_url + path, params=params, parse=True)


def webhooks(connector: Sender) -> list[Endpoint]:
    """The webhooks registered in the environment (service endpoints with contract 8)."""
    body = _get(
        connector,
        "serviceendpoints",
        {"$select": ENDPOINT_COLUMNS, "$filter": f"contract eq {WEBHOOK}"},
    )
    return [
        Endpoint(
            _id(row, "serviceendpointid"), str(row.get("name") or ""), str(row.get("url") or "")
        )
        for row in _rows(connector, body, "service endpoints")
    ]


def _endpoint_values(name: str, url: str, key: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Change notifications for Sync Console.",
        "contract": WEBHOOK,
        "authtype": WEBHOOK_KEY,
        "authvalue": key,
        "url": url,
    }


def create_webhook(connector: Sender, name: str, url: str, key: str) -> Endpoint:
    body = connector._send(
        "POST",
        connector.base_url + "serviceendpoints",
        json=_endpoint_values(name, url, key),
        headers={"Prefer": "return=representation"},
        parse=True,
    )
    endpoint_id = _id(body, "serviceendpointid")
    if not endpoint_id:
        raise ConnectorError(
            f"{connector.app_name} answered the new webhook without its id.",
            detail=str(body)[:2000],
        )
    return Endpoint(endpoint_id, name, url)


def update_webhook(connector: Sender, endpoint_id: str, name: str, url: str, key: str) -> None:
    """Set the webhook's name, URL and key: the key cannot be read back, so it is set
    again rather than compared."""
    connector._send(
        "PATCH",
        f"{connector.base_url}serviceendpoints({quote(endpoint_id, safe='')})",
        json=_endpoint_values(name, url, key),
        headers={"If-Match": "*"},
    )


def delete(connector: Sender, entity_set: str, record_id: str) -> None:
    """Delete a service endpoint (with its steps) or a step; one that is gone is fine."""
    try:
        connector._send("DELETE", f"{connector.base_url}{entity_set}({quote(record_id, safe='')})")
    except ConnectorError as error:
        if not error.is_not_found:
            raise


def steps_of(connector: Sender, endpoint_id: str) -> list[Step]:
    """The steps registered on a webhook ("Query steps registered for a WebHook")."""
    body = _get(
        connector,
        f"serviceendpoints({quote(endpoint_id, safe='')})/serviceendpoint_sdkmessageprocessingstep",
        {"$select": STEP_COLUMNS},
    )
    return [
        Step(
            _id(row, "sdkmessageprocessingstepid"),
            str(row.get("name") or ""),
            _id(row, "_sdkmessageid_value"),
            _id(row, "_sdkmessagefilterid_value"),
        )
        for row in _rows(connector, body, "steps")
    ]


def message_id(connector: Sender, message: str) -> str | None:
    """The id of the SDK message of that name (Create, Update, Delete), or None."""
    body = _get(
        connector,
        "sdkmessages",
        {"$select": "sdkmessageid", "$filter": "name eq @name", "@name": odata_string(message)},
    )
    rows = _rows(connector, body, "messages")
    return _id(rows[0], "sdkmessageid") if rows else None


def message_filter_id(connector: Sender, message: str, logical_name: str) -> str | None:
    """The id of the message filter of the table for the message, when a step may be
    registered on it; None when the table does not take the message, or takes no custom
    step on it."""
    body = _get(
        connector,
        "sdkmessagefilters",
        {
            "$select": "sdkmessagefilterid,iscustomprocessingstepallowed",
            "$filter": "sdkmessageid/name eq @message and primaryobjecttypecode eq @table",
            "@message": odata_string(message),
            "@table": odata_string(logical_name),
        },
    )
    for row in _rows(connector, body, "message filters"):
        if row.get("iscustomprocessingstepallowed") is not False:
            return _id(row, "sdkmessagefilterid")
    return None


def create_step(
    connector: Sender,
    name: str,
    endpoint_id: str,
    message_key: str,
    filter_key: str,
) -> Step:
    """An asynchronous PostOperation step of the webhook on the message of one table."""
    body = connector._send(
        "POST",
        connector.base_url + "sdkmessageprocessingsteps",
        json={
            "name": name,
            "description": "Change notifications for Sync Console.",
            "stage": POST_OPERATION,
            "mode": ASYNCHRONOUS,
            "rank": 1,
            "supporteddeployment": SERVER_ONLY,
            # "Choosing to delete the System Job when it succeeds will save you database
            # space" ("Register a WebHook").
            "asyncautodelete": True,
            "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint_id})",
            "sdkmessageid@odata.bind": f"/sdkmessages({message_key})",
            "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({filter_key})",
        },
        headers={"Prefer": "return=representation"},
        parse=True,
    )
    step_id = _id(body, "sdkmessageprocessingstepid")
    if not step_id:
        raise ConnectorError(
            f"{connector.app_name} answered the new step without its id.",
            detail=str(body)[:2000],
        )
    return Step(step_id, name, message_key, filter_key)


def odata_string(value: str) -> str:
    """A parameter alias's value: an OData string literal."""
    return "'" + value.replace("'", "''") + "'"
