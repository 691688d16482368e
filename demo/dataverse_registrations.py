"""The demo CRM's `serviceendpoints` and `sdkmessageprocessingsteps`: webhooks registered
through the Web API, as the Dataverse event framework keeps them.

Microsoft's pages this follows (titles and addresses are in the conformance tests,
tests/demo/test_conformance_dataverse_webhooks.py):

- "Use Webhooks to create external handlers for server events" and "Register a WebHook": a
  webhook is a service endpoint with contract 8, its URL and one of three authentications
  (WebhookKey sends its key as the `code` query parameter; HttpHeader and HttpQueryString
  their key/value pairs). Its authentication value is never read back.
- The ServiceEndpoint and SdkMessageProcessingStep tables' references: the columns, their
  option values, and that deleting an endpoint deletes its steps. A step is bound to its
  event handler (`eventhandler_serviceendpoint@odata.bind`), its message
  (`sdkmessageid@odata.bind`) and, for one table, its message filter
  (`sdkmessagefilterid@odata.bind`); "Register a plug-in": an asynchronous step runs at the
  PostOperation stage only.
- "Web service error codes": a value outside a choice column's options is
  PicklistValueOutOfRange (0x8004431A), a bound record that does not exist ObjectDoesNotExist
  (0x80040217), a step on a message and table that takes no custom step
  SdkCustomProcessingStepIsNotAllowed (0x80044187), a missing privilege 0x80040220.

Who may do what is the demo's security model (demo/security.py): the privileges
prv<Verb>ServiceEndpoint and prv<Verb>SdkMessageProcessingStep, all of which a System
Administrator holds."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db import models, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import concurrency, security
from .api import _authorize, _body, _inject_fault
from .dataverse_messages import (
    conditions,
    filter_with_id,
    message_named,
    selected,
    step_allowed,
)
from .errors import ApiError, error_response
from .models import CrmSdkMessageProcessingStep, CrmServiceEndpoint, CrmSystemUser

BIND = "@odata.bind"
# Dataverse's error codes ("Web service error codes").
VALIDATION_FAILED = "0x80044331"
PICKLIST_OUT_OF_RANGE = "0x8004431A"
OBJECT_DOES_NOT_EXIST = "0x80040217"
CUSTOM_STEP_NOT_ALLOWED = "0x80044187"
PAYLOAD_ERROR = "0x80048d19"
# The authentications a webhook may have ("Register a WebHook", Authentication options).
WEBHOOK_AUTHENTICATIONS = (
    CrmServiceEndpoint.AuthType.WEBHOOK_KEY,
    CrmServiceEndpoint.AuthType.HTTP_HEADER,
    CrmServiceEndpoint.AuthType.HTTP_QUERY_STRING,
)


@dataclass(frozen=True)
class Column:
    """A column the API takes and answers: its name, the model field behind it, its type
    (text, choice, integer, boolean or secret: written, never read) and its limits."""

    name: str
    field: str
    kind: str = "text"
    choices: type[models.IntegerChoices] | None = None
    max_length: int = 0
    required: bool = False


@dataclass(frozen=True)
class Binding:
    """A single-valued navigation property a create or update binds with `<name>@odata.bind`:
    the entity set it refers to, and how to find the record (None: it does not exist)."""

    name: str
    target: str
    lookup: str  # the lookup property it is read back as
    required: bool = False


@dataclass(frozen=True)
class Table:
    entity_set: str
    logical_name: str
    type_code: int  # Dataverse's object type code, named in its error messages
    key: str
    model: Any  # the model behind the table
    privilege: str  # prv<Verb><privilege>
    columns: tuple[Column, ...]
    bindings: tuple[Binding, ...] = field(default=())

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


Endpoint = CrmServiceEndpoint
Step = CrmSdkMessageProcessingStep
ENDPOINTS = Table(
    "serviceendpoints",
    "serviceendpoint",
    4618,
    "serviceendpointid",
    Endpoint,
    "ServiceEndpoint",
    (
        Column("name", "name", max_length=256, required=True),
        Column("description", "description", max_length=2000),
        Column("contract", "contract", "choice", Endpoint.Contract, required=True),
        Column("authtype", "auth_type", "choice", Endpoint.AuthType),
        Column("authvalue", "auth_value", "secret", max_length=2048),
        Column("url", "url", max_length=2000),
        Column("connectionmode", "connection_mode", "choice", Endpoint.ConnectionMode),
        Column("messageformat", "message_format", "choice", Endpoint.MessageFormat),
        Column("userclaim", "user_claim", "choice", Endpoint.UserClaim),
    ),
)
STEPS = Table(
    "sdkmessageprocessingsteps",
    "sdkmessageprocessingstep",
    4608,
    "sdkmessageprocessingstepid",
    Step,
    "SdkMessageProcessingStep",
    (
        Column("name", "name", max_length=256, required=True),
        Column("description", "description", max_length=256),
        Column("stage", "stage", "choice", Step.Stage, required=True),
        Column("mode", "mode", "choice", Step.Mode, required=True),
        Column("rank", "rank", "integer", required=True),
        Column("supporteddeployment", "supported_deployment", "choice", Step.SupportedDeployment),
        Column("invocationsource", "invocation_source", "choice", Step.InvocationSource),
        Column("asyncautodelete", "async_auto_delete", "boolean"),
        Column("filteringattributes", "filtering_attributes", max_length=100000),
        Column("statecode", "state", "choice", Step.State),
    ),
    (
        Binding("eventhandler_serviceendpoint", "serviceendpoints", "_eventhandler_value", True),
        Binding("eventhandler_plugintype", "plugintypes", "_eventhandler_value"),
        Binding("sdkmessageid", "sdkmessages", "_sdkmessageid_value", True),
        Binding("sdkmessagefilterid", "sdkmessagefilters", "_sdkmessagefilterid_value"),
    ),
)
# How each table is read: its columns as the API answers them.
READ_ONLY: dict[str, Callable[[Any], dict[str, Any]]] = {
    "serviceendpoints": lambda e: {"isauthvalueset": bool(e.auth_value)},
    "sdkmessageprocessingsteps": lambda s: {
        "statuscode": 2 if s.state == Step.State.DISABLED else 1,
        "_eventhandler_value": str(s.service_endpoint_id),
        "_sdkmessageid_value": str(s.sdk_message_id),
        "_sdkmessagefilterid_value": str(s.sdk_message_filter_id)
        if s.sdk_message_filter_id
        else None,
    },
}
# The lookup properties of each table a query may compare, by the model field behind them.
LOOKUP_FIELDS: dict[str, dict[str, str]] = {
    "serviceendpoints": {},
    "sdkmessageprocessingsteps": {
        "_eventhandler_value": "service_endpoint_id",
        "_sdkmessageid_value": "sdk_message_id",
        "_sdkmessagefilterid_value": "sdk_message_filter_id",
    },
}


# -- errors, in Dataverse's words -------------------------------------------------------------
def validation(message: str) -> ApiError:
    return ApiError(400, VALIDATION_FAILED, message)


def out_of_range(table: Table, column: Column, value: Any) -> ApiError:
    accepted = ",".join(str(choice.value) for choice in column.choices or ())
    return ApiError(
        400,
        PICKLIST_OUT_OF_RANGE,
        f"A validation error occurred. The value {value} of '{column.name}' on record of type "
        f"'{table.logical_name}' is outside the valid range. Accepted Values: {accepted}",
    )


def does_not_exist(logical_name: str, key: Any) -> ApiError:
    return ApiError(404, OBJECT_DOES_NOT_EXIST, f"{logical_name} With Id = {key} Does Not Exist")


def invalid_property(table: Table, name: str) -> ApiError:
    return ApiError(
        400,
        "0x0",
        "An error occurred while validating input parameters: Microsoft.Crm.CrmException: "
        f"Invalid property '{name}' was found in entity "
        f"'Microsoft.Dynamics.CRM.{table.logical_name}'. ---> Microsoft.OData.ODataException: "
        "Does not support untyped value in non-open type.",
    )


def _payload_error(table: Table, inner: str) -> ApiError:
    return ApiError(
        400,
        PAYLOAD_ERROR,
        f"Error identified in Payload provided by the user for Entity :'{table.entity_set}'  "
        f"---->  InnerException : Microsoft.OData.ODataException: {inner}",
    )


# -- who may ------------------------------------------------------------------------------------
VERB_OF = {"GET": "Read", "POST": "Create", "PATCH": "Write", "DELETE": "Delete"}


def _authorized(request: HttpRequest, method: str, *tables: Table) -> CrmSystemUser:
    """The signed-in user, who must hold each table's privilege for `method`: Dataverse's
    answer otherwise, as for every other table."""
    user = _authorize(request, "crm", "")
    roles = security.held_roles(user)
    privileges = security.privileges_of(user, roles)
    for table in tables:
        privilege = f"prv{VERB_OF[method]}{table.privilege}"
        if privileges is not None and privilege not in privileges:
            raise ApiError(
                403,
                "0x80040220",
                f"Principal user (Id={user.pk}, type=8, roleCount={len(roles)}, "
                f"privilegeCount={len(privileges)}) is missing {privilege} privilege "
                f"(Id={security.privilege_id(privilege)}) on OTC={table.type_code} for "
                f"entity '{table.logical_name}'.",
            )
    return user


# -- reading ------------------------------------------------------------------------------------
def _etag(record) -> str:
    return concurrency.etag("crm", record.modified_on)


def to_api(table: Table, record) -> dict[str, Any]:
    data: dict[str, Any] = {"@odata.etag": _etag(record), table.key: str(record.pk)}
    for column in table.columns:
        if column.kind != "secret":
            data[column.name] = getattr(record, column.field)
    data.update(READ_ONLY[table.entity_set](record))
    data["modifiedon"] = record.modified_on.isoformat().replace("+00:00", "Z")
    return data


def _condition(table: Table, name: str, value: str) -> Q:
    """A `$filter` condition on a column or lookup property of the table."""
    lookups = LOOKUP_FIELDS[table.entity_set]
    if name == table.key or name in lookups:
        field_name = "pk" if name == table.key else lookups[name]
        try:
            return Q(**{field_name: uuid.UUID(value.strip("{}"))})
        except ValueError:
            raise ApiError(400, "0x80060888", f"'{value}' is not a valid id.") from None
    column = table.column(name)
    if column is None or column.kind == "secret":
        raise ApiError(400, "0x0", f"Could not find a property named '{name}' on type "
                       f"'Microsoft.Dynamics.CRM.{table.logical_name}'.")  # fmt: skip
    if column.kind in ("choice", "integer"):
        try:
            return Q(**{column.field: int(value)})
        except ValueError:
            raise ApiError(400, "0x80060888", f"'{value}' is not a number.") from None
    if column.kind == "boolean":
        return Q(**{column.field: value == "true"})
    return Q(**{column.field: value})


def _listed(request: HttpRequest, table: Table, queryset) -> JsonResponse:
    names = {
        table.key,
        *LOOKUP_FIELDS[table.entity_set],
        *(c.name for c in table.columns if c.kind != "secret"),
    }
    wanted = conditions(request, names)
    for name, value in wanted.items():
        queryset = queryset.filter(_condition(table, name, value))
    rows, suffix = selected(request, [to_api(table, r) for r in queryset.order_by("pk")], table.key)
    return JsonResponse({"@odata.context": f"$metadata#{table.entity_set}{suffix}", "value": rows})


def _key(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip("'{}"))
    except ValueError:
        raise ApiError(400, "0x80060888", f"'{raw}' is not a valid id.") from None


def _one(table: Table, pk: str):
    """The record's id, and the record (None when there is none)."""
    key = _key(pk)
    return key, table.model.objects.filter(pk=key).first()


# -- writing ------------------------------------------------------------------------------------
def _assign(table: Table, record, data: dict[str, Any], creating: bool) -> None:
    """Check the payload's columns and binds as Dataverse does, and set them."""
    for name, value in data.items():
        if name.startswith("@"):
            continue  # an annotation of the payload (@odata.type)
        if name.endswith(BIND):
            _bind(table, record, name.removesuffix(BIND), value)
            continue
        column = table.column(name)
        if column is None:
            if any(binding.name == name for binding in table.bindings):
                raise _payload_error(
                    table, f"Set '{name}{BIND}' to the address of the record to bind."
                )
            raise invalid_property(table, name)
        setattr(record, column.field, _value(table, column, value))
    if creating:
        missing = [c.name for c in table.columns if c.required and c.name not in data]
        missing += [
            b.name
            for b in table.bindings
            if b.required
            and not any(o.lookup == b.lookup and f"{o.name}{BIND}" in data for o in table.bindings)
        ]
        if missing:
            # The words are the demo's: Dataverse names the missing column in its own.
            raise validation(
                f"A value is required for {', '.join(repr(name) for name in missing)} to "
                f"create a {table.logical_name}."
            )


def _value(table: Table, column: Column, value: Any) -> Any:
    if column.kind == "choice":
        allowed = {choice.value for choice in column.choices or ()}
        if not isinstance(value, int) or isinstance(value, bool) or value not in allowed:
            raise out_of_range(table, column, value)
        return value
    if column.kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise validation(f"'{column.name}' must be a whole number.")
        return value
    if column.kind == "boolean":
        if not isinstance(value, bool):
            raise validation(f"'{column.name}' must be true or false.")
        return value
    if value is None:
        return ""
    if not isinstance(value, str):
        raise validation(f"'{column.name}' must be text.")
    if column.max_length and len(value) > column.max_length:
        raise validation(
            f"The length of the '{column.name}' attribute of the '{table.logical_name}' entity "
            f"exceeded the maximum allowed length of '{column.max_length}'."
        )
    return value


def _bound_key(table: Table, name: str, value: Any, target: str) -> str:
    """The id an `@odata.bind` value names (`/serviceendpoints(<id>)`)."""
    text = value if isinstance(value, str) else ""
    path = urlsplit(text).path.rstrip("/")
    entity_set, _, rest = path.rpartition("/")[2].partition("(")
    if entity_set != target or not rest.endswith(")"):
        raise _payload_error(
            table, f"The value of '{name}{BIND}' must be a record address such as "
            f"'/{target}(<id>)'."
        )  # fmt: skip
    try:
        return str(uuid.UUID(rest[:-1].strip("'{}")))
    except ValueError:
        raise _payload_error(table, f"'{rest[:-1]}' is not a valid id.") from None


def _bind(table: Table, record, name: str, value: Any) -> None:
    binding = next((b for b in table.bindings if b.name == name), None)
    if binding is None:
        raise _payload_error(
            table,
            f"An undeclared property '{name}' which only has property annotations in the "
            "payload but no property value was found in the payload. In OData, only declared "
            "navigation properties and declared named streams can be represented as "
            "properties without values.",
        )
    if value is None:
        if binding.required:
            # The words are the demo's.
            raise validation(f"'{binding.lookup}' cannot be cleared.")
        if binding.target == "sdkmessagefilters":
            record.sdk_message_filter_id, record.primary_entity = None, ""
        return
    key = _bound_key(table, name, value, binding.target)
    if binding.target == "serviceendpoints":
        endpoint = Endpoint.objects.filter(pk=key).first()
        if endpoint is None:
            raise does_not_exist("serviceendpoint", key)
        record.service_endpoint = endpoint
    elif binding.target == "sdkmessages":
        message = message_named(key)
        if message is None:
            raise does_not_exist("sdkmessage", key)
        record.sdk_message_id, record.message_name = key, message
    elif binding.target == "sdkmessagefilters":
        found = filter_with_id(key)
        if found is None:
            raise does_not_exist("sdkmessagefilter", key)
        record.sdk_message_filter_id, record.primary_entity = key, found[1]
    else:  # the demo has no plug-in types: none can be bound
        raise does_not_exist("plugintype", key)


def _check_endpoint(endpoint: Endpoint) -> None:
    """A webhook posts to an http(s) address, with one of the three authentications and the
    key its endpoint expects ("Register a WebHook"). The words are the demo's."""
    if endpoint.contract != Endpoint.Contract.WEBHOOK:
        return
    address = urlsplit(endpoint.url)
    if address.scheme not in ("http", "https") or not address.netloc:
        raise validation("A webhook needs the absolute http(s) URL to post to in 'url'.")
    if endpoint.auth_type not in WEBHOOK_AUTHENTICATIONS:
        raise validation(
            "A webhook authenticates with WebhookKey (4), HttpHeader (5) or HttpQueryString "
            "(6) in 'authtype'."
        )
    if not endpoint.auth_value:
        raise validation("A webhook needs the key its endpoint expects in 'authvalue'.")


def _check_step(step: Step) -> None:
    if step.sdk_message_filter_id:
        found = filter_with_id(str(step.sdk_message_filter_id))
        if found is None or found[0] != step.message_name:
            # The words are the demo's.
            raise validation(
                "The sdkmessagefilterid is not a filter of the step's message "
                f"'{step.message_name}'."
            )
        if not step_allowed(step.primary_entity, step.message_name):
            raise ApiError(
                400,
                CUSTOM_STEP_NOT_ALLOWED,
                "Custom SdkMessageProcessingStep is not allowed on the specified message and "
                "entity.",
            )
    if step.mode == Step.Mode.ASYNCHRONOUS and step.stage != Step.Stage.POST_OPERATION:
        raise validation("Asynchronous steps can only be registered for the PostOperation stage.")


CHECKS: dict[str, Callable[[Any], None]] = {
    "serviceendpoints": _check_endpoint,
    "sdkmessageprocessingsteps": _check_step,
}


def _representation(request: HttpRequest, table: Table, record, status: int) -> HttpResponse:
    if "return=representation" in request.headers.get("Prefer", ""):
        response: HttpResponse = JsonResponse(to_api(table, record), status=status)
    else:
        response = HttpResponse(status=204)
        response["OData-EntityId"] = request.build_absolute_uri(
            f"{request.path.split('(')[0].rstrip('/')}({record.pk})"
        )
    response["ETag"] = _etag(record)
    return response


@transaction.atomic
def _write(request: HttpRequest, table: Table, pk: str | None) -> HttpResponse:
    data = _body(request)
    creating = pk is None
    if pk is None:
        record = table.model()
        if data.get(table.key):
            record.pk = _key(str(data.pop(table.key)))
            if table.model.objects.filter(pk=record.pk).exists():
                raise ApiError(
                    412, "0x80040237", "A record with matching key values already exists."
                )
    else:
        key, found = _one(table, pk)
        if found is None:
            if request.headers.get("If-Match"):
                raise does_not_exist(table.logical_name, pk)
            record, creating = table.model(pk=key), True  # PATCH without If-Match: upsert
        else:
            record = table.model.objects.select_for_update().get(pk=key)
            concurrency.check_if_match(request, "crm", _etag(record))
    _assign(table, record, data, creating)
    CHECKS[table.entity_set](record)
    record.save()
    return _representation(request, table, record, 201 if creating else 200)


@transaction.atomic
def _delete(request: HttpRequest, table: Table, pk: str) -> HttpResponse:
    _, record = _one(table, pk)
    if record is None:
        raise does_not_exist(table.logical_name, pk)
    record = table.model.objects.select_for_update().get(pk=record.pk)
    concurrency.check_if_match(request, "crm", _etag(record))
    record.delete()  # an endpoint's steps go with it
    return HttpResponse(status=204)


TABLES = {table.entity_set: table for table in (ENDPOINTS, STEPS)}


@csrf_exempt
def collection(request: HttpRequest, entity_set: str) -> HttpResponse:
    """`GET` (with `$filter` eq conditions and `$select`) and `POST` of a table."""
    table = TABLES[entity_set]
    try:
        fault = _inject_fault("crm", entity_set)
        if fault is not None:
            return fault
        if request.method not in ("GET", "POST"):
            raise ApiError(405, "MethodNotAllowed", f"The method {request.method} is not allowed.")
        _authorized(request, request.method, table)
        if request.method == "GET":
            return _listed(request, table, table.model.objects.all())
        return _write(request, table, None)
    except ApiError as error:
        return error_response(error)


@csrf_exempt
def item(request: HttpRequest, entity_set: str, pk: str) -> HttpResponse:
    """`GET`, `PATCH` and `DELETE` of one record."""
    table = TABLES[entity_set]
    try:
        fault = _inject_fault("crm", entity_set)
        if fault is not None:
            return fault
        if request.method not in VERB_OF or request.method == "POST":
            raise ApiError(405, "MethodNotAllowed", f"The method {request.method} is not allowed.")
        _authorized(request, request.method, table)
        if request.method == "GET":
            _, record = _one(table, pk)
            if record is None:
                raise does_not_exist(table.logical_name, pk)
            rows, _ = selected(request, [to_api(table, record)], table.key)
            response = JsonResponse(rows[0])
            response["ETag"] = _etag(record)
            return response
        if request.method == "PATCH":
            return _write(request, table, pk)
        return _delete(request, table, pk)
    except ApiError as error:
        return error_response(error)


@csrf_exempt
def endpoint_steps(request: HttpRequest, pk: str) -> HttpResponse:
    """`serviceendpoints(<id>)/serviceendpoint_sdkmessageprocessingstep`: the steps
    registered for a webhook ("Register a WebHook", Query steps registered for a WebHook)."""
    try:
        fault = _inject_fault("crm", "serviceendpoints")
        if fault is not None:
            return fault
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"The method {request.method} is not allowed.")
        _authorized(request, "GET", ENDPOINTS, STEPS)
        _, endpoint = _one(ENDPOINTS, pk)
        if endpoint is None:
            raise does_not_exist("serviceendpoint", pk)
        return _listed(request, STEPS, endpoint.steps.all())
    except ApiError as error:
        return error_response(error)
