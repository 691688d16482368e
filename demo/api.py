"""The JSON APIs of the demo apps: the ERP speaks like the Business Central API, the CRM like
the Dataverse Web API (OData v4: $filter, $select, $top, Prefer: odata.maxpagesize,
@odata.nextLink, errors as {"error": {"code", "message"}})."""

import base64
import binascii
import json
import re
import time
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, F, Q
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.text import capfirst
from django.views.decorators.csrf import csrf_exempt

from . import security
from .api_schema import API_ENTITIES, ApiEntity
from .models import (
    CrmSystemUser,
    CrmTransactionCurrency,
    DemoFault,
    ErpCurrency,
    ErpCurrencyExchangeRate,
)

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000
MAX_BODY_BYTES = 256 * 1024
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
CONDITION = re.compile(
    r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<op>eq|gt|ge|lt|le)\s+"
    rf"(?P<value>'(?:[^']|'')*'|{GUID}|[0-9T:.\-+Z]+|true|false|null)\s*$"
)
# Dataverse's In query function: Microsoft.Dynamics.CRM.In(PropertyName='f',PropertyValues=[...]).
IN_FUNCTION = re.compile(
    r"^Microsoft\.Dynamics\.CRM\.In\(\s*PropertyName\s*=\s*'(?P<field>[A-Za-z_][A-Za-z0-9_]*)'"
    r"\s*,\s*PropertyValues\s*=\s*\[(?P<values>(?:\s*'(?:[^']|'')*'\s*,)*\s*'(?:[^']|'')*'\s*)\]"
    r"\s*\)$"
)
QUOTED = re.compile(r"'((?:[^']|'')*)'")
# Outside quoted values: an even number of quotes follows the operator.
UNQUOTED = r"(?=(?:[^']*'[^']*')*[^']*$)"
# The most alternatives one "(a eq 1 or a eq 2 ...)" group may have.
MAX_ALTERNATIVES = 500
LOOKUPS = {"eq": "exact", "gt": "gt", "ge": "gte", "lt": "lt", "le": "lte"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_response(error: ApiError) -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": error.code, "message": error.message}}, status=error.status
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


def _inject_fault(app: str, entity: str) -> HttpResponse | None:
    """Answer as the fault configured for this app and table says, if any."""
    fault = (
        DemoFault.objects.filter(app=app)
        .filter(Q(entity="") | Q(entity=entity))
        .filter(Q(remaining__isnull=True) | Q(remaining__gt=0))
        .order_by("pk")
        .first()
    )
    if fault is None:
        return None
    if fault.remaining is not None:
        DemoFault.objects.filter(pk=fault.pk).update(remaining=F("remaining") - 1)
    mode = DemoFault.Mode
    if fault.mode == mode.SLOW:
        # Going beyond the documentation, to produce a slow answer on demand: the request
        # is answered as usual after the delay.
        time.sleep(fault.delay_seconds)
        return None
    if fault.mode == mode.TIMEOUT:
        time.sleep(fault.delay_seconds)
        return error_response(ApiError(504, "GatewayTimeout", "The operation has timed out."))
    if fault.mode == mode.THROTTLE:
        return error_response(
            ApiError(
                429,
                "0x80072322",
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                {"Retry-After": "1"},
            )
        )
    if fault.mode == mode.UNAVAILABLE:
        return error_response(
            ApiError(
                503,
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
                {"Retry-After": "1"},
            )
        )
    if fault.mode == mode.GARBAGE:
        return HttpResponse('{"value": [{"id": ', content_type="application/json")
    return error_response(ApiError(500, "InternalServerError", "An unexpected error occurred."))


def _api_entity(app: str, name: str) -> ApiEntity:
    try:
        return API_ENTITIES[(app, name)]
    except KeyError:
        raise ApiError(404, "0x80060888", f"Resource not found for the segment '{name}'.") from None


def _parse_datetime(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "BadRequest", f"The value '{value}' is not a valid date.") from None


def _condition(api: ApiEntity, part: str) -> tuple[str, Any]:
    """The lookup and value of one condition, as Q takes them."""
    match = CONDITION.match(part)
    if not match:
        raise ApiError(400, "0x80060888", f"The $filter expression '{part}' is not supported.")
    name, op, raw = match["field"], match["op"], match["value"]
    value: Any
    if name == api.modified:
        field, value = api.entity.modified_field, _parse_datetime(raw)
    elif name == api.key:
        field, value = "pk", raw.strip("'")
        try:
            value = uuid.UUID(value)
        except ValueError:
            raise ApiError(400, "0x80060888", f"'{value}' is not a valid id.") from None
    elif name in api.fields and api.fields[name] != "parent_account":
        field = api.fields[name]
        value = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
    else:
        raise ApiError(400, "0x80060888", f"Could not find a property named '{name}'.")
    return f"{field}__{LOOKUPS[op]}", value


def _in_function(api: ApiEntity, part: str) -> Q:
    """Dataverse's In query function: the records whose field holds any of the values."""
    match = IN_FUNCTION.match(part)
    if not match:
        raise ApiError(400, "0x80060888", f"The $filter expression '{part}' is not supported.")
    values = [value.replace("''", "'") for value in QUOTED.findall(match["values"])]
    if len(values) > MAX_ALTERNATIVES:
        raise ApiError(
            400, "0x80060888", f"The In function takes at most {MAX_ALTERNATIVES} values."
        )
    name = match["field"]
    if name == api.key:
        try:
            return Q(pk__in=[uuid.UUID(value.strip("{}")) for value in values])
        except ValueError:
            raise ApiError(400, "0x80060888", "A value is not a valid id.") from None
    if name in api.fields and api.fields[name] != "parent_account" and name != api.modified:
        return Q(**{f"{api.fields[name]}__in": values})
    raise ApiError(400, "0x80060888", f"Could not find a property named '{name}'.")


def _filter(queryset, api: ApiEntity, expression: str):
    """Conditions joined with "and"; a condition may be a parenthesized group of conditions
    joined with "or", or Dataverse's In function (how OData clients ask for many records by
    key in one request)."""
    for part in re.split(rf"\s+and\s+{UNQUOTED}", expression.strip()):
        part = part.strip()
        if part.startswith("Microsoft.Dynamics.CRM.In("):
            if api.entity.app != "crm":
                raise ApiError(400, "BadRequest", "The In function is Dataverse's.")
            queryset = queryset.filter(_in_function(api, part))
        elif part.startswith("(") and part.endswith(")"):
            alternatives = re.split(rf"\s+or\s+{UNQUOTED}", part[1:-1].strip())
            if len(alternatives) > MAX_ALTERNATIVES:
                raise ApiError(
                    400,
                    "0x80060888",
                    f"A $filter group may have at most {MAX_ALTERNATIVES} alternatives.",
                )
            conditions = [_condition(api, alternative) for alternative in alternatives]
            lookups = {lookup for lookup, _ in conditions}
            if len(lookups) == 1 and next(iter(lookups)).endswith("__exact"):
                # Many values of one field: one "= ANY" index scan instead of an OR each.
                values = [value for _, value in conditions]
                queryset = queryset.filter(**{lookups.pop().replace("__exact", "__in"): values})
            else:
                either = Q()
                for condition in conditions:
                    either |= Q(condition)
                queryset = queryset.filter(either)
        else:
            queryset = queryset.filter(Q(_condition(api, part)))
    return queryset


def _page_size(request: HttpRequest) -> int:
    prefer = request.headers.get("Prefer", "")
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    size = int(match.group(1)) if match else DEFAULT_PAGE_SIZE
    return max(1, min(size, MAX_PAGE_SIZE))


def _encode_token(record, api: ApiEntity) -> str:
    raw = json.dumps([getattr(record, api.entity.modified_field).isoformat(), str(record.pk)])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: str):
    try:
        moment, pk = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(moment), uuid.UUID(pk)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise ApiError(400, "0x80060888", "The $skiptoken is not valid.") from None


def _list(request: HttpRequest, api: ApiEntity) -> JsonResponse:
    modified = api.entity.modified_field
    queryset = api.model.objects.all()
    if request.GET.get("$filter"):
        queryset = _filter(queryset, api, request.GET["$filter"])
    top = request.GET.get("$top")
    size = _page_size(request)
    if top is not None:
        if not top.isdigit():
            raise ApiError(400, "0x80060888", "The $top value must be a whole number.")
        size = min(size, int(top))
    if request.GET.get("$skiptoken"):
        moment, pk = _decode_token(request.GET["$skiptoken"])
        # A row comparison, so the (modified, id) index serves the page as one range scan.
        meta = api.model._meta
        columns = f'"{meta.db_table}"."{meta.get_field(modified).column}", ' + (
            f'"{meta.db_table}"."{meta.pk.column}"'
        )
        # The columns come from the model; the values are parameters.
        after = RawSQL(f"({columns}) > (%s, %s)", [moment, pk], output_field=BooleanField())  # noqa: S611
        queryset = queryset.filter(after)
    rows = list(queryset.order_by(modified, "pk")[: size + 1])
    records = [api.to_api(row) for row in rows[:size]]
    select = [s.strip() for s in request.GET.get("$select", "").split(",") if s.strip()]
    if select:
        keep = set(select) | {api.key, api.modified}
        records = [{k: v for k, v in r.items() if k in keep} for r in records]
    body = {"@odata.context": f"$metadata#{api.name}", "value": records}
    if len(rows) > size and top is None:
        query = request.GET.copy()
        query["$skiptoken"] = _encode_token(rows[size - 1], api)
        body["@odata.nextLink"] = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return JsonResponse(body)


def _not_found(api: ApiEntity, pk: str) -> ApiError:
    if api.entity.app == "crm":
        return ApiError(404, "0x80040217", f"{api.logical_name} With Id = {pk} Does Not Exist")
    return ApiError(
        404,
        "Internal_RecordNotFound",
        f"The {api.entity.title} does not exist. Identification fields and values: Id='{pk}'",
    )


def _get_record(api: ApiEntity, pk: str):
    try:
        key = uuid.UUID(pk.strip("'{}"))
    except ValueError:
        raise _not_found(api, pk) from None
    return api.model.objects.filter(pk=key).first(), key


def _body(request: HttpRequest, limit: int = MAX_BODY_BYTES) -> dict:
    if len(request.body) > limit:
        raise ApiError(413, "RequestTooLarge", "The request body is too large.")
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "BadRequest", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", "The request body must be a JSON object.")
    return data


def _validation(api: ApiEntity, message_erp: str, message_crm: str) -> ApiError:
    if api.entity.app == "crm":
        return ApiError(400, "0x80044331", message_crm)
    return ApiError(400, "BadRequest", message_erp)


def _assign(api: ApiEntity, record, data: dict, currencies: dict | None = None) -> None:
    """Validate the incoming values the way the real app would, then set them.

    `currencies` keeps the currencies looked up, for a request that writes many records."""
    for name, value in data.items():
        if name.startswith("@odata") or name in (api.key, api.modified):
            continue
        if name not in api.fields or name in api.read_only:
            raise ApiError(
                400, "0x80060888", f"The property '{name}' does not exist on type '{api.name}'."
            )
        field = api.model._meta.get_field(api.fields[name])
        kind = field.get_internal_type()
        if value is None and not field.null:
            if kind != "CharField":
                raise _validation(
                    api,
                    f"{capfirst(field.verbose_name)} must have a value.",
                    f"'{name}' cannot be null.",
                )
            value = ""
        if kind == "CharField":
            if not isinstance(value, str):
                raise _validation(
                    api, f"{field.verbose_name} must be text.", f"'{name}' must be a string."
                )
            if len(value) > field.max_length:
                raise _validation(
                    api,
                    f"{capfirst(field.verbose_name)} must not exceed {field.max_length} "
                    "characters.",
                    f"A validation error occurred. The length of the '{name}' attribute of the "
                    f"'{api.logical_name}' entity exceeded the maximum allowed length of "
                    f"'{field.max_length}'.",
                )
        elif kind == "DecimalField" and value is not None:
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise _validation(
                    api, f"{field.verbose_name} must be a number.", f"'{name}' must be a number."
                ) from None
        elif kind == "BooleanField" and not isinstance(value, bool):
            raise _validation(
                api, f"{field.verbose_name} must be true or false.", f"'{name}' must be a boolean."
            )
        setattr(record, field.name, value)
    _check_rules(api, record, {} if currencies is None else currencies)


def _currency(model, code: str, currencies: dict):
    key = (model, code)
    if key not in currencies:
        lookup = "code" if model is ErpCurrency else "iso_currency_code"
        currencies[key] = model.objects.filter(**{lookup: code}).first()
    return currencies[key]


def _has_rate_today(code: str, currencies: dict) -> bool:
    key = (ErpCurrencyExchangeRate, code)
    if key not in currencies:
        currencies[key] = ErpCurrencyExchangeRate.objects.filter(
            currency_code=code, starting_date__lte=timezone.localdate()
        ).exists()
    return currencies[key]


def _check_rules(api: ApiEntity, record, currencies: dict) -> None:
    title = (
        getattr(record, "display_name", None)
        or getattr(record, "name", None)
        or getattr(record, "full_name", None)
    )
    named = hasattr(record, "display_name") or hasattr(record, "full_name")
    if (named or api.name == "accounts") and not (title or "").strip():
        raise _validation(api, "Name must have a value.", "A name is required.")
    email = getattr(record, "email", "")
    if api.entity.app == "erp" and email and not EMAIL.match(email):
        raise ApiError(400, "BadRequest", f'The email address "{email}" is not valid.')
    if api.name == "customers" and record.currency_code:
        # Going beyond the documentation, to produce a failure on demand: the demo ERP
        # refuses a customer in a currency without any exchange rate in force today (one
        # whose starting date is not after today), as Business Central refuses to post in
        # one, with its record-not-found error.
        currency = _currency(ErpCurrency, record.currency_code, currencies)
        if currency is None or not _has_rate_today(record.currency_code, currencies):
            raise ApiError(
                400,
                "Internal_RecordNotFound",
                "Currency Exchange Rate does not exist. Identification fields and values: "
                f"Currency Code='{record.currency_code}'",
            )
    if api.name == "accounts" and record.transaction_currency_code:
        currency = _currency(CrmTransactionCurrency, record.transaction_currency_code, currencies)
        if currency is None:
            raise ApiError(
                400,
                "0x80040203",
                f"The currency {record.transaction_currency_code} does not exist in "
                "Dynamics 365 Sales.",
            )
        if currency.exchange_rate is None:
            raise ApiError(
                400,
                "0x80040203",
                f"The currency {record.transaction_currency_code} does not have an exchange rate.",
            )


def _authorize(request: HttpRequest, app: str, entity: str, method: str | None = None):
    """The signed-in user, who must hold the privilege for `method` (the request's own by
    default) on the entity."""
    header = request.headers.get("Authorization", "")
    try:
        if app == "erp":
            return security.authenticate_erp(header)
        user = security.authenticate_crm(header)
    except security.AuthFailure as failure:
        raise ApiError(
            401, failure.code, failure.message, {"WWW-Authenticate": 'Basic realm="demo"'}
        ) from None
    method = method or request.method
    if entity in security.ENTITY_PRIVILEGE_NAMES and method in security.VERBS:
        _authorize_privilege(user, app, entity, method)
    return user


def _authorize_privilege(user: CrmSystemUser, app: str, entity: str, method: str) -> None:
    privileges = security.privileges_of(user)
    privilege = security.privilege_for(entity, method)
    if privileges is not None and privilege not in privileges:
        api = API_ENTITIES[(app, entity)]
        raise ApiError(
            403,
            "0x80040220",
            f"Principal user (Id={user.pk}, type=8, roleCount={len(user.roles)}, "
            f"privilegeCount={len(privileges)}) is missing {privilege} privilege "
            f"(Id={security.privilege_id(privilege)}) on OTC={api.type_code} for entity "
            f"'{api.logical_name}'.",
        )


@csrf_exempt
def entity_endpoint(
    request: HttpRequest, app: str, entity: str, pk: str | None = None, company: str | None = None
):
    try:
        if app == "erp" and company != settings.DEMO_ERP_COMPANY_ID:
            raise ApiError(
                404, "Internal_CompanyNotFound", f"The company '{company}' does not exist."
            )
        fault = _inject_fault(app, entity)
        if fault is not None:
            return fault
        _authorize(request, app, entity)
        api = _api_entity(app, entity)
        if api.read_only_entity and request.method != "GET":
            raise ApiError(
                405,
                "BadRequest_MethodNotAllowed",
                f"'{request.method}' requests for '{entity}' of EdmType 'Entity' are not "
                "allowed within Microsoft Dynamics NAV OData web services.",
            )
        if pk is None:
            if request.method == "GET":
                return _list(request, api)
            if request.method == "POST":
                return _create(request, api)
        else:
            if request.method == "GET":
                record, _ = _get_record(api, pk)
                if record is None:
                    raise _not_found(api, pk)
                return JsonResponse(api.to_api(record))
            if request.method == "PATCH":
                return _update(request, api, pk)
            if request.method == "DELETE":
                record, _ = _get_record(api, pk)
                if record is None:
                    raise _not_found(api, pk)
                record.delete()
                return HttpResponse(status=204)
        raise ApiError(405, "MethodNotAllowed", f"The method {request.method} is not allowed here.")
    except ApiError as error:
        return error_response(error)


def _representation(request: HttpRequest, api: ApiEntity, record, status: int) -> HttpResponse:
    if api.entity.app == "crm" and "return=representation" not in request.headers.get("Prefer", ""):
        response = HttpResponse(status=204)
        response["OData-EntityId"] = request.build_absolute_uri(
            f"{request.path.split('(')[0].rstrip('/')}({record.pk})"
        )
        return response
    return JsonResponse(api.to_api(record), status=status)


@transaction.atomic
def _create(request: HttpRequest, api: ApiEntity) -> HttpResponse:
    data = _body(request)
    record = api.model()
    if data.get(api.key):
        try:
            record.pk = uuid.UUID(str(data[api.key]))
        except ValueError:
            raise ApiError(400, "BadRequest", f"'{api.key}' is not a valid id.") from None
        if api.model.objects.filter(pk=record.pk).exists():
            raise ApiError(412, "0x80040237", "A record with matching key values already exists.")
    _assign(api, record, data)
    record.save()
    return _representation(request, api, record, 201)


@transaction.atomic
def _update(request: HttpRequest, api: ApiEntity, pk: str) -> HttpResponse:
    data = _body(request)
    record, key = _get_record(api, pk)
    if record is None:
        # Dataverse upserts on PATCH unless If-Match: * asks for an existing record.
        if api.entity.app == "erp" or request.headers.get("If-Match") == "*":
            raise _not_found(api, pk)
        record = api.model(pk=key)
    else:
        record = api.model.objects.select_for_update().get(pk=record.pk)
    _assign(api, record, data)
    record.save()
    return _representation(request, api, record, 200)


@csrf_exempt
def who_am_i(request: HttpRequest) -> HttpResponse:
    """Dataverse's WhoAmI: who the integration user is, after the sign-in checks."""
    try:
        fault = _inject_fault("crm", "")
        if fault is not None:
            return fault
        user = _authorize(request, "crm", "")
    except ApiError as error:
        return error_response(error)
    return JsonResponse({"UserId": str(user.pk), "BusinessUnitId": str(uuid.UUID(int=1))})


@csrf_exempt
def user_roles(request: HttpRequest, pk: str) -> JsonResponse:
    """The security roles of a CRM user (systemusers(<id>)/systemuserroles_association)."""
    try:
        _authorize(request, "crm", "")
        user = CrmSystemUser.objects.filter(pk=uuid.UUID(pk)).first()
    except ValueError:
        user = None
    except ApiError as error:
        return error_response(error)
    if user is None:
        return error_response(_not_found(API_ENTITIES[("crm", "systemusers")], pk))
    return JsonResponse({"value": [{"name": role} for role in user.roles]})


@csrf_exempt
def user_privileges(request: HttpRequest, pk: str) -> HttpResponse:
    """Dataverse's RetrieveUserPrivileges: every privilege a user holds through its roles.

    A user may read its own; reading another user's needs prvReadUser."""
    try:
        fault = _inject_fault("crm", "")
        if fault is not None:
            return fault
        caller = _authorize(request, "crm", "")
        try:
            user = CrmSystemUser.objects.filter(pk=uuid.UUID(pk.strip("'{}"))).first()
        except ValueError:
            user = None
        if user is None:
            raise _not_found(API_ENTITIES[("crm", "systemusers")], pk)
        if user.pk != caller.pk:
            _authorize_privilege(caller, "crm", "systemusers", "GET")
    except ApiError as error:
        return error_response(error)
    held = security.privileges_of(user)
    names = sorted(security.all_privileges() if held is None else held)
    business_unit = str(uuid.UUID(int=1))
    return JsonResponse(
        {
            "RolePrivileges": [
                {
                    "Depth": "Global",
                    "PrivilegeId": str(security.privilege_id(name)),
                    "BusinessUnitId": business_unit,
                    "PrivilegeName": name,
                }
                for name in names
            ]
        }
    )


SCOPES = {"api://demo-erp/.default": "erp", "api://demo-crm/.default": "crm"}


def _identity_error(status: int, error: str, description: str) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


@csrf_exempt
def token(request: HttpRequest) -> JsonResponse:
    """The demo identity provider's token endpoint: OAuth 2.0 client credentials, answered the
    way Microsoft Entra ID does (`error` and `error_description` on failure)."""
    if request.method != "POST":
        return _identity_error(
            405, "invalid_request", "AADSTS900561: The endpoint only accepts POST."
        )
    form = request.POST
    if form.get("grant_type") != "client_credentials":
        return _identity_error(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        )
    app = SCOPES.get(form.get("scope", ""))
    if app is None:
        scopes = " or ".join(SCOPES)
        return _identity_error(
            400, "invalid_scope", f"AADSTS70011: The provided scope is not valid; use {scopes}."
        )
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    valid = (
        security.erp_credentials_valid(client_id, secret)
        if app == "erp"
        else security.crm_user_with(client_id, secret) is not None
    )
    if not valid:
        return _identity_error(
            401, "invalid_client", "AADSTS7000215: Invalid client secret provided."
        )
    return JsonResponse(
        {
            "token_type": "Bearer",
            "expires_in": security.TOKEN_LIFETIME_SECONDS,
            "access_token": security.issue_token(app, client_id),
        }
    )
