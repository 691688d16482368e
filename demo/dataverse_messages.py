"""What the demo CRM does as the Dataverse Web API does beyond reading and writing records:
which table takes which message, and the `sdkmessagefilters` query by which a client learns
it in advance.

Microsoft's pages this follows (titles and addresses are in the conformance tests,
tests/demo/test_conformance_dataverse_bulk.py): "Use bulk operation messages" (Availability with
standard tables: not every standard table takes CreateMultiple and UpdateMultiple; test it
with `GET sdkmessagefilters`) and the tables' references (the Currency (TransactionCurrency)
table lists neither message)."""

import re
import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .api import _authorize, _inject_fault
from .api_schema import API_ENTITIES
from .errors import ApiError, error_response

# The bulk operation messages, and the tables of the demo CRM that take them (by logical
# name). Every demo table is a standard one; transactioncurrency takes neither message.
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple")
BULK_TABLES = frozenset({"account", "contact", "product"})
# The messages every table of the demo CRM takes through its API.
TABLE_MESSAGES = ("Create", "Delete", "Retrieve", "RetrieveMultiple", "Update")
# Dataverse's error code for a message a table does not support (SdkEntityDoesNotSupportMessage).
NOT_SUPPORTED_CODE = "0x80040800"

FILTER_CONDITION = re.compile(
    r"^\s*(?P<field>sdkmessageid/name|primaryobjecttypecode)\s+eq\s+"
    r"(?P<value>'(?:[^']|'')*'|@[A-Za-z_][A-Za-z0-9_]*)\s*$"
)


def takes(logical_name: str, message: str) -> bool:
    """Whether the demo CRM's table takes the message."""
    if message in BULK_MESSAGES:
        return logical_name in BULK_TABLES
    return message in TABLE_MESSAGES and any(
        api.logical_name == logical_name for (app, _), api in API_ENTITIES.items() if app == "crm"
    )


def not_supported(message: str, logical_name: str) -> ApiError:
    """How Dataverse answers a message the table does not take."""
    return ApiError(
        400,
        NOT_SUPPORTED_CODE,
        f"The '{message}' method does not support entities of type '{logical_name}'. "
        "MessageProcessorCache returned MessageProcessor.Empty.",
    )


def _filter_id(message: str, logical_name: str) -> str:
    # A stable id per message and table, as each sdkmessagefilter row has its own.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessagefilter:{message}:{logical_name}"))


def _literal(raw: str, request: HttpRequest) -> str:
    """A quoted value, or the value of a parameter alias (`@message` with
    `@message='CreateMultiple'` in the query)."""
    if raw.startswith("@"):
        value = request.GET.get(raw)
        if value is None or not (len(value) >= 2 and value[0] == value[-1] == "'"):
            raise ApiError(
                400, "0x80060888", f"The parameter alias '{raw}' is missing or not a string."
            )
        raw = value
    return raw[1:-1].replace("''", "'")


@csrf_exempt
def sdk_message_filters(request: HttpRequest) -> HttpResponse:
    """`GET sdkmessagefilters`, filtered by `sdkmessageid/name` and `primaryobjecttypecode`
    (both with `eq`, as literals or parameter aliases): one row per message a table takes,
    none when it does not take it."""
    try:
        fault = _inject_fault("crm", "sdkmessagefilters")
        if fault is not None:
            return fault
        _authorize(request, "crm", "")
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", "sdkmessagefilters is read with GET.")
        wanted: dict[str, str] = {}
        expression = request.GET.get("$filter", "").strip()
        for part in re.split(r"\s+and\s+", expression) if expression else []:
            match = FILTER_CONDITION.match(part)
            if not match:
                raise ApiError(
                    400, "0x80060888", f"The $filter expression '{part}' is not supported."
                )
            wanted[match["field"]] = _literal(match["value"], request)
    except ApiError as error:
        return error_response(error)
    tables = sorted({api.logical_name for (app, _), api in API_ENTITIES.items() if app == "crm"})
    rows = [
        {"sdkmessagefilterid": _filter_id(message, table), "primaryobjecttypecode": table}
        for table in tables
        for message in (*TABLE_MESSAGES, *BULK_MESSAGES)
        if takes(table, message)
        and wanted.get("sdkmessageid/name", message) == message
        and wanted.get("primaryobjecttypecode", table) == table
    ]
    select = [s.strip() for s in request.GET.get("$select", "").split(",") if s.strip()]
    if select:
        rows = [
            {k: v for k, v in row.items() if k in select or k == "sdkmessagefilterid"}
            for row in rows
        ]
    context = request.build_absolute_uri(request.path.removesuffix("sdkmessagefilters"))
    fields = ",".join(select) if select else ""
    return JsonResponse(
        {
            "@odata.context": f"{context}$metadata#sdkmessagefilters"
            + (f"({fields})" if fields else ""),
            "value": [{"@odata.etag": 'W/"1"', **row} for row in rows],
        }
    )
