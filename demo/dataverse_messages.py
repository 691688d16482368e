"""What the demo CRM does as the Dataverse Web API does beyond reading and writing records:
which table takes which message, which of those are events a step may be registered on, and
the `sdkmessages` and `sdkmessagefilters` queries by which a client learns both.

Microsoft's pages this follows (titles and addresses are in the conformance tests,
tests/demo/test_conformance_dataverse_bulk.py and test_conformance_dataverse_webhooks.py):
"Use bulk operation messages" (Availability with standard tables: not every standard table
takes CreateMultiple and UpdateMultiple; test it with `GET sdkmessagefilters`), each table's
reference ("Messages": each message the table takes, and whether it is an event), and the
SdkMessage and SdkMessageFilter tables' references (a filter says which message is valid for
which table, and `iscustomprocessingstepallowed` whether a step may be registered on it)."""

import re
import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .api import _authorize, _inject_fault
from .errors import ApiError, error_response

# The bulk operation messages.
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple")
# Each demo table's messages as its reference page lists them ("Messages"), with whether the
# message is an event, one a step may be registered on ("Is Event?"). Every demo table is a
# standard one. Account (and contact and product, alike) take the bulk messages, and all
# their messages are events; the Currency, User and Security Role tables take neither bulk
# message, and reading them (Retrieve, RetrieveMultiple) is not an event; the Team table's
# reading is. The messages of these tables that the demo does not serve (Assign, SetState,
# AddPrivilegesRole, ...) are left out.
_BUSINESS_TABLE = {
    "Create": True,
    "CreateMultiple": True,
    "Delete": True,
    "Retrieve": True,
    "RetrieveMultiple": True,
    "Update": True,
    "UpdateMultiple": True,
}
_READ_NOT_AN_EVENT = {
    "Create": True,
    "Delete": True,
    "Retrieve": False,
    "RetrieveMultiple": False,
    "Update": True,
}
TABLE_MESSAGES: dict[str, dict[str, bool]] = {
    "account": _BUSINESS_TABLE,
    "contact": _BUSINESS_TABLE,
    "product": _BUSINESS_TABLE,
    "transactioncurrency": _READ_NOT_AN_EVENT,
    "systemuser": _READ_NOT_AN_EVENT,
    "role": _READ_NOT_AN_EVENT,
    "team": {**_READ_NOT_AN_EVENT, "Retrieve": True, "RetrieveMultiple": True},
}
MESSAGES = tuple(sorted({name for messages in TABLE_MESSAGES.values() for name in messages}))
# Dataverse's error code for a message a table does not support (SdkEntityDoesNotSupportMessage).
NOT_SUPPORTED_CODE = "0x80040800"

CONDITION = re.compile(
    r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_/]*)\s+eq\s+"
    r"(?P<value>'(?:[^']|'')*'|@[A-Za-z_][A-Za-z0-9_]*|true|false|-?\d+|"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\s*$"
)


def takes(logical_name: str, message: str) -> bool:
    """Whether the demo CRM's table takes the message."""
    return message in TABLE_MESSAGES.get(logical_name, {})


def step_allowed(logical_name: str, message: str) -> bool:
    """Whether a step may be registered on the message of the table (it is an event)."""
    return TABLE_MESSAGES.get(logical_name, {}).get(message, False)


def not_supported(message: str, logical_name: str) -> ApiError:
    """How Dataverse answers a message the table does not take."""
    return ApiError(
        400,
        NOT_SUPPORTED_CODE,
        f"The '{message}' method does not support entities of type '{logical_name}'. "
        "MessageProcessorCache returned MessageProcessor.Empty.",
    )


def message_id(message: str) -> str:
    # A stable id per message, as each sdkmessage row has its own. Kept as it is: the
    # registered steps and a demo migration name messages by these ids.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessage:{message}"))


def filter_id(message: str, logical_name: str) -> str:
    # A stable id per message and table, as each sdkmessagefilter row has its own.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessagefilter:{message}:{logical_name}"))


def message_named(message_key: str) -> str | None:
    """The name of the message with this id, or None."""
    return next((name for name in MESSAGES if message_id(name) == message_key), None)


def filter_with_id(key: str) -> tuple[str, str] | None:
    """The message and table of the filter with this id, or None."""
    for table, messages in TABLE_MESSAGES.items():
        for message in messages:
            if filter_id(message, table) == key:
                return message, table
    return None


def literal(raw: str, request: HttpRequest) -> str:
    """A condition's value: a quoted string, a parameter alias (`@message` with
    `@message='CreateMultiple'` in the query), a number, a boolean or a GUID, as text."""
    if raw.startswith("@"):
        value = request.GET.get(raw)
        if value is None or not (len(value) >= 2 and value[0] == value[-1] == "'"):
            raise ApiError(
                400, "0x80060888", f"The parameter alias '{raw}' is missing or not a string."
            )
        raw = value
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    return raw.lower()


def conditions(request: HttpRequest, fields: set[str]) -> dict[str, str]:
    """The `$filter` of a query that takes `field eq value` conditions joined with `and`, on
    the fields named: field -> value (as text)."""
    wanted: dict[str, str] = {}
    expression = request.GET.get("$filter", "").strip()
    for part in re.split(r"\s+and\s+", expression) if expression else []:
        match = CONDITION.match(part)
        if not match or match["field"] not in fields:
            raise ApiError(400, "0x80060888", f"The $filter expression '{part}' is not supported.")
        wanted[match["field"]] = literal(match["value"], request)
    return wanted


def selected(request: HttpRequest, rows: list[dict], key: str) -> tuple[list[dict], str]:
    """The rows with the columns `$select` names (and their key), and the context's suffix."""
    select = [s.strip() for s in request.GET.get("$select", "").split(",") if s.strip()]
    if select:
        kept = {*select, key, "@odata.etag"}
        rows = [{k: v for k, v in row.items() if k in kept} for row in rows]
    # A row of a generated table (a message, a filter) has one version.
    return [{"@odata.etag": 'W/"1"', **row} for row in rows], (
        f"({','.join(select)})" if select else ""
    )


def _answer(request: HttpRequest, entity_set: str, rows: list[dict], key: str) -> JsonResponse:
    rows, suffix = selected(request, rows, key)
    context = request.build_absolute_uri(request.path.removesuffix(entity_set))
    return JsonResponse(
        {"@odata.context": f"{context}$metadata#{entity_set}{suffix}", "value": rows}
    )


def _refused(request: HttpRequest, entity_set: str) -> HttpResponse | None:
    """The answer to a read the app does not serve (a fault switched on, a failed sign-in,
    another method than GET), or None."""
    fault = _inject_fault("crm", entity_set)
    if fault is not None:
        return fault
    try:
        _authorize(request, "crm", "")
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{entity_set} is read with GET.")
    except ApiError as error:
        return error_response(error)
    return None


@csrf_exempt
def sdk_messages(request: HttpRequest) -> HttpResponse:
    """`GET sdkmessages`, filtered by `name eq`: one row per message the demo CRM serves."""
    refused = _refused(request, "sdkmessages")
    if refused is not None:
        return refused
    try:
        wanted = conditions(request, {"name", "sdkmessageid"})
    except ApiError as error:
        return error_response(error)
    rows = [
        {"sdkmessageid": message_id(name), "name": name}
        for name in MESSAGES
        if wanted.get("name", name) == name
        and wanted.get("sdkmessageid", message_id(name)) == message_id(name)
    ]
    return _answer(request, "sdkmessages", rows, "sdkmessageid")


FILTER_FIELDS = {
    "sdkmessageid/name",
    "_sdkmessageid_value",
    "primaryobjecttypecode",
    "iscustomprocessingstepallowed",
}


@csrf_exempt
def sdk_message_filters(request: HttpRequest) -> HttpResponse:
    """`GET sdkmessagefilters`, filtered by `sdkmessageid/name`, `_sdkmessageid_value`,
    `primaryobjecttypecode` and `iscustomprocessingstepallowed` (with `eq`, as literals or
    parameter aliases): one row per message a table takes, none when it does not take it."""
    refused = _refused(request, "sdkmessagefilters")
    if refused is not None:
        return refused
    try:
        wanted = conditions(request, FILTER_FIELDS)
    except ApiError as error:
        return error_response(error)
    rows = []
    for table in sorted(TABLE_MESSAGES):
        for message, event in TABLE_MESSAGES[table].items():
            row = {
                "sdkmessagefilterid": filter_id(message, table),
                "primaryobjecttypecode": table,
                "secondaryobjecttypecode": "none",
                "iscustomprocessingstepallowed": event,
                "_sdkmessageid_value": message_id(message),
            }
            values = {
                "sdkmessageid/name": message,
                "_sdkmessageid_value": message_id(message),
                "primaryobjecttypecode": table,
                "iscustomprocessingstepallowed": "true" if event else "false",
            }
            if all(values[name] == value for name, value in wanted.items()):
                rows.append(row)
    return _answer(request, "sdkmessagefilters", rows, "sdkmessagefilterid")
