"""The JSON APIs of the demo apps: the ERP speaks like the Business Central API, the CRM like
the Dataverse Web API (OData v4: $filter, $select, $top, Prefer: odata.maxpagesize,
@odata.nextLink, errors as {"error": {"code", "message"}}); the CRM's lookups are in
demo/dataverse.py."""

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

from . import concurrency, contacts_information, dataverse, dataverse_queries, faults, security
from .api_schema import API_ENTITIES, ApiEntity
from .errors import ApiError, error_response
from .models import (
    CrmSystemUser,
    CrmTransactionCurrency,
    DemoFault,
    ErpCurrency,
    ErpCurrencyExchangeRate,
)
from .odata_syntax import split_top_level

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000
MAX_BODY_BYTES = 256 * 1024
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
CONDITION = re.compile(
    r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<op>eq|gt|ge|lt|le)\s+"
    rf"(?P<value>'(?:[^']|'')*'|{GUID}|[0-9T:.\-+Z]+|true|false|null)\s*$"
)
# The most alternatives one "(a eq 1 or a eq 2 ...)" group may have.
MAX_ALTERNATIVES = 500
LOOKUPS = {"eq": "exact", "gt": "gt", "ge": "gte", "lt": "lt", "le": "lte"}


# The first fault switched on for an app and table (or the whole app): asked on every request
# of the demo apps, in SQL of its own, as building the query took two thirds of its time.
SWITCHED_ON = (
    f"SELECT * FROM {DemoFault._meta.db_table} WHERE app = %s AND entity IN ('', %s)"  # noqa: S608 - our table
    " AND (remaining IS NULL OR remaining > 0) ORDER BY id LIMIT 1"
)


def _inject_fault(app: str, entity: str) -> HttpResponse | None:
    """Answer as the fault switched on for this app and table says, if any.

    The switch goes beyond Microsoft's documentation: it is the demo's way of producing a
    failure on demand (Demo faults in the Django admin). What it answers is the app's own
    documented answer to that failure, in demo/faults.py."""
    fault = next(iter(DemoFault.objects.raw(SWITCHED_ON, [app, entity])), None)
    if fault is None:
        return None
    if fault.remaining is not None:
        DemoFault.objects.filter(pk=fault.pk).update(remaining=F("remaining") - 1)
    if fault.mode == DemoFault.Mode.SLOW:
        # Going beyond the documentation, to produce a slow answer on demand: the request
        # is answered as usual after the delay.
        time.sleep(fault.delay_seconds)
        return None
    return faults.answer(fault)


def _api_entity(app: str, name: str) -> ApiEntity:
    try:
        return API_ENTITIES[(app, name)]
    except KeyError:
        # Dataverse's code for it ("Troubleshoot Dataverse Web API client errors").
        code = "0x8006088a" if app == "crm" else "0x80060888"
        raise ApiError(404, code, f"Resource not found for the segment '{name}'.") from None


def _parse_datetime(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "BadRequest", f"The value '{value}' is not a valid date.") from None


def _condition(api: ApiEntity, part: str) -> tuple[str, Any] | Q:
    """The lookup and value of one condition, as Q takes them (a Q for a lookup property)."""
    match = CONDITION.match(part)
    if not match:
        raise ApiError(400, "0x80060888", f"The $filter expression '{part}' is not supported.")
    name, op, raw = match["field"], match["op"], match["value"]
    on_lookup = dataverse.lookup_condition(api, name, op, raw)
    if on_lookup is not None:
        return on_lookup
    value: Any
    if name == api.modified:
        field, value = api.entity.modified_field, _parse_datetime(raw)
    elif name == api.key:
        field, value = "pk", raw.strip("'")
        try:
            value = uuid.UUID(value)
        except ValueError:
            raise ApiError(400, "0x80060888", f"'{value}' is not a valid id.") from None
    elif name in api.fields and api.is_column_lookup(name):
        # A security table's lookup property, compared with an id or null as a lookup is.
        if op != "eq":
            raise ApiError(
                400, "0x80060888", f"The lookup property '{name}' is compared with eq only here."
            )
        field = api.model._meta.get_field(api.fields[name]).attname
        if raw == "null":
            return f"{field}__isnull", True
        value = dataverse.guid(raw)
    elif name in api.fields:
        field = api.fields[name]
        value = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
        if op == "eq" and raw.startswith("'") and dataverse_queries.is_text(api, name):
            return dataverse_queries.text_equals(field, [value])
    elif api.entity.app == "crm":
        raise dataverse_queries.unknown_property(api, name)
    else:
        raise ApiError(400, "0x80060888", f"Could not find a property named '{name}'.")
    return f"{field}__{LOOKUPS[op]}", value


def _filter(queryset, api: ApiEntity, expression: str, aliases: dict[str, str]):
    """Conditions joined with "and"; a condition may be a parenthesized group of conditions
    joined with "or", or Dataverse's In function (how OData clients ask for many records by
    key in one request)."""
    for part in split_top_level(expression.strip(), r"\s+and\s+"):
        part = part.strip()
        if part.startswith(dataverse_queries.IN_FUNCTION):
            if api.entity.app != "crm":
                raise ApiError(400, "BadRequest", "The In function is Dataverse's.")
            queryset = queryset.filter(dataverse_queries.in_filter(api, part, aliases))
        elif part.startswith("(") and part.endswith(")"):
            alternatives = split_top_level(part[1:-1].strip(), r"\s+or\s+")
            if len(alternatives) > MAX_ALTERNATIVES:
                raise ApiError(
                    400,
                    "0x80060888",
                    f"A $filter group may have at most {MAX_ALTERNATIVES} alternatives.",
                )
            conditions = [_condition(api, alternative) for alternative in alternatives]
            pairs = [condition for condition in conditions if isinstance(condition, tuple)]
            lookups = {lookup for lookup, _ in pairs}
            if (
                len(pairs) == len(conditions)
                and len(lookups) == 1
                and next(iter(lookups)).endswith("__exact")
            ):
                # Many values of one field: one "= ANY" index scan instead of an OR each.
                values = [value for _, value in pairs]
                queryset = queryset.filter(**{lookups.pop().replace("__exact", "__in"): values})
            else:
                either = Q()
                for condition in conditions:
                    either |= condition if isinstance(condition, Q) else Q(condition)
                queryset = queryset.filter(either)
        else:
            condition = _condition(api, part)
            queryset = queryset.filter(condition if isinstance(condition, Q) else Q(condition))
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


def _aliases(request: HttpRequest) -> dict[str, str]:
    """The query's parameter aliases (`@p1='name'`), which a function's parameters may name."""
    return {name: str(value) for name, value in request.GET.items() if name.startswith("@")}


def _shaped(
    request: HttpRequest, api: ApiEntity, user, rows: list, own: bool = False
) -> tuple[list[dict], str]:
    """The records as the API shows them, with `$select`, each with its version and, in the
    CRM, the lookup annotations `Prefer` asks for and `$expand` (of the caller's own user
    record: no privilege needed, see `_own`); and the preference applied."""
    select = dataverse_queries.select_list(request.GET.get("$select", ""))
    annotations, applied = dataverse.annotations_wanted(api, request)
    if api.entity.app != "crm":
        keep = set(select) | {api.key, api.modified} if select else None
        records = [api.to_api(row, only=keep) for row in rows]
        return contacts_information.expanded(
            api.name, rows, records, request.GET.get("$expand", "")
        ), applied
    dataverse_queries.check_select(api, select)
    wanted = dataverse_queries.expansions(api, request.GET.get("$expand", ""))
    allowed: set[str] = set()

    def authorize(entity: str) -> None:
        if not own and entity not in allowed:
            _authorize_privilege(user, "crm", entity, "GET")
            allowed.add(entity)

    only = {*select, api.key, api.modified} if select else None
    records = [
        dataverse_queries.expand(
            row,
            dataverse_queries.selected(api, api.to_api(row, annotations, only), select),
            wanted,
            authorize,
            annotations,
        )
        for row in rows
    ]
    return records, applied


def _list(request: HttpRequest, api: ApiEntity, user) -> JsonResponse:
    modified = api.entity.modified_field
    queryset = api.model.objects.all()
    if api.lookups:
        queryset = queryset.select_related(*dataverse.lookup_keys(api))
    if request.GET.get("$filter"):
        queryset = _filter(queryset, api, request.GET["$filter"], _aliases(request))
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
    records, applied = _shaped(request, api, user, rows[:size])
    body = {"@odata.context": f"$metadata#{api.name}", "value": records}
    if len(rows) > size and top is None:
        query = request.GET.copy()
        query["$skiptoken"] = _encode_token(rows[size - 1], api)
        body["@odata.nextLink"] = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return _with_preference(JsonResponse(body), applied)


def _with_preference(response: JsonResponse, applied: str) -> JsonResponse:
    if applied:
        response["Preference-Applied"] = applied
    return response


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


def _assign(api: ApiEntity, record, data: dict, cache: dict | None = None, user=None) -> None:
    """Validate the incoming values the way the real app would, then set them.

    `cache` keeps the records looked up (currencies, records bound to), for a request that
    writes many records; `user` (the CRM's) must be allowed to bind the records bound."""
    cache = {} if cache is None else cache
    bound = dataverse.bind(api, record, data, cache, user) if api.entity.app == "crm" else set()
    for name, value in data.items():
        if name.startswith("@odata") or name in (api.key, api.modified) or name in bound:
            continue
        dataverse.refuse_lookup_property(api, name)
        if name not in api.fields and api.entity.app == "crm":
            raise dataverse.invalid_property(api, name)
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
            choices = [choice for choice, _ in field.choices or []]
            if choices and value not in choices:
                # An enum, such as a Business Central contact's type; the words are the demo's.
                raise _validation(
                    api,
                    f"{capfirst(field.verbose_name)} must be one of {', '.join(choices)}.",
                    f"'{name}' must be one of {', '.join(choices)}.",
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
    _check_rules(api, record, cache)


def _currency(code: str, cache: dict):
    key = (ErpCurrency, code)
    if key not in cache:
        cache[key] = ErpCurrency.objects.filter(code=code).first()
    return cache[key]


def _has_rate_today(code: str, cache: dict) -> bool:
    key = (ErpCurrencyExchangeRate, code)
    if key not in cache:
        cache[key] = ErpCurrencyExchangeRate.objects.filter(
            currency_code=code, starting_date__lte=timezone.localdate()
        ).exists()
    return cache[key]


def _check_rules(api: ApiEntity, record, cache: dict) -> None:
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
        currency = _currency(record.currency_code, cache)
        if currency is None or not _has_rate_today(record.currency_code, cache):
            raise ApiError(
                400,
                "Internal_RecordNotFound",
                "Currency Exchange Rate does not exist. Identification fields and values: "
                f"Currency Code='{record.currency_code}'",
            )
    if (
        api.name == "transactioncurrencies"
        and record._state.adding
        and record.exchange_rate is None
    ):
        # Dataverse requires a new currency's exchange rate against the base currency (the
        # column's RequiredLevel is SystemRequired), as it does its code and name.
        raise ApiError(
            400,
            dataverse.INVALID_ARGUMENT,
            "A value for the required column 'exchangerate' (Exchange Rate) of the "
            "transactioncurrency table is missing.",
        )
    if api.name == "accounts" and record.transaction_currency_id:
        currency = dataverse.related(CrmTransactionCurrency, record.transaction_currency_id, cache)
        if currency is not None and currency.exchange_rate is None:
            # The demo's way to show a missing exchange rate on the CRM side.
            raise ApiError(
                400,
                "0x80040203",
                f"The currency {currency.iso_currency_code} does not have an exchange rate.",
            )


def _own(user, app: str, entity: str, record_id: str | None) -> bool:
    """Whether a CRM request reads the caller's own user record (or its roles and teams).

    Beyond the documentation: the demo CRM lets every user read itself, as it may read its own
    privileges (RetrieveUserPrivileges), so that the setup check finds a user without roles
    rather than one that cannot read its roles."""
    return (
        app == "crm"
        and entity == "systemusers"
        and record_id is not None
        and record_id.strip("'{}").lower() == str(user.pk)
    )


def _authorize(
    request: HttpRequest,
    app: str,
    entity: str,
    method: str | None = None,
    record_id: str | None = None,
):
    """The signed-in user, who must hold the privilege for `method` (the request's own by
    default) on the entity, unless it reads itself."""
    header = request.headers.get("Authorization", "")
    try:
        if app == "erp":
            return security.authenticate_erp(header)
        user = security.authenticate_crm(header)
    except security.AuthFailure as failure:
        raise ApiError(401, failure.code, failure.message, _challenge(request, failure)) from None
    method = method or request.method
    if method == "GET" and _own(user, app, entity, record_id):
        return user
    if entity in security.ENTITY_PRIVILEGE_NAMES and method in security.VERBS:
        _authorize_privilege(user, app, entity, method)
    return user


def _challenge(request: HttpRequest, failure: security.AuthFailure) -> dict[str, str]:
    """The WWW-Authenticate of a 401: for a refused access token, the bearer scheme with the
    authority to sign in at and invalid_token, as a resource protected by Microsoft Entra ID
    answers (RFC 6750 section 3; "Authorize access to Azure Active Directory web applications
    using the OAuth 2.0 code grant flow", Error response, https://learn.microsoft.com/
    previous-versions/azure/active-directory/azuread-dev/v1-protocols-oauth-code)."""
    if not failure.bearer:
        return {"WWW-Authenticate": 'Basic realm="demo"'}
    authority = request.build_absolute_uri(f"/demo/identity/{settings.DEMO_TENANT_ID}")
    description = failure.message.replace('"', "'")
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{authority}/oauth2/authorize", '
        f'error="invalid_token", error_description="{description}"'
    }


def _authorize_privilege(user: CrmSystemUser, app: str, entity: str, method: str) -> None:
    """Dataverse's answer to a user whose roles (its own and its teams') lack the privilege:
    "Principal user is missing privilege on OTC for entity", 0x80040220 ("Troubleshoot
    Dataverse client errors")."""
    roles = security.held_roles(user)
    privileges = security.privileges_of(user, roles)
    privilege = security.privilege_for(entity, method)
    if privileges is not None and privilege not in privileges:
        raise dataverse.missing_privilege(
            user, roles, privileges, privilege, API_ENTITIES[(app, entity)]
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
        user = _authorize(request, app, entity, record_id=pk)
        api = _api_entity(app, entity)
        _refuse_changes(api, request.method)
        if pk is None:
            if request.method == "GET":
                return _list(request, api, user)
            if request.method == "POST":
                return _create(request, api, user)
        else:
            if request.method == "GET":
                record, _ = _get_record(api, pk)
                if record is None:
                    raise _not_found(api, pk)
                own = _own(user, app, entity, pk)
                records, applied = _shaped(request, api, user, [record], own)
                return _with_etag(_with_preference(JsonResponse(records[0]), applied), api, record)
            if request.method == "PATCH":
                return _update(request, api, pk, user)
            if request.method == "DELETE":
                return _delete(request, api, pk)
        raise ApiError(405, "MethodNotAllowed", f"The method {request.method} is not allowed here.")
    except ApiError as error:
        return error_response(error)


def _refuse_changes(api: ApiEntity, method: str | None) -> None:
    """A table the API only reads takes GET alone."""
    if not api.read_only_entity or method == "GET":
        return
    if api.entity.app == "crm":
        # Beyond the documentation: the demo CRM changes its users, roles and teams on its
        # pages only.
        raise ApiError(
            405, "MethodNotAllowed", f"The demo CRM changes {api.name} on its pages only."
        )
    raise ApiError(
        405,
        "BadRequest_MethodNotAllowed",
        f"'{method}' requests for '{api.name}' of EdmType 'Entity' are not "
        "allowed within Microsoft Dynamics NAV OData web services.",
    )


def _with_etag(response: HttpResponse, api: ApiEntity, record) -> HttpResponse:
    """An answer about one record names its version in the ETag header (OData part 1,
    section 8.3.1)."""
    response["ETag"] = api.etag(record)
    return response


def _representation(request: HttpRequest, api: ApiEntity, record, status: int) -> HttpResponse:
    if api.entity.app == "crm" and "return=representation" not in request.headers.get("Prefer", ""):
        response = HttpResponse(status=204)
        response["OData-EntityId"] = request.build_absolute_uri(
            f"{request.path.split('(')[0].rstrip('/')}({record.pk})"
        )
        return _with_etag(response, api, record)
    annotations, applied = dataverse.annotations_wanted(api, request)
    return _with_etag(
        _with_preference(JsonResponse(api.to_api(record, annotations), status=status), applied),
        api,
        record,
    )


@transaction.atomic
def _create(request: HttpRequest, api: ApiEntity, user) -> HttpResponse:
    data = _body(request)
    record = api.model()
    dataverse.owned_by(record, _crm_user(api, user))
    if data.get(api.key):
        try:
            record.pk = uuid.UUID(str(data[api.key]))
        except ValueError:
            raise ApiError(400, "BadRequest", f"'{api.key}' is not a valid id.") from None
        if api.model.objects.filter(pk=record.pk).exists():
            raise ApiError(412, "0x80040237", "A record with matching key values already exists.")
    _assign(api, record, data, user=_crm_user(api, user))
    record.save()
    return _representation(request, api, record, 201)


def _crm_user(api: ApiEntity, user) -> CrmSystemUser | None:
    """The CRM user a write is checked for (the ERP checks no privilege per record)."""
    return user if api.entity.app == "crm" else None


@transaction.atomic
def _update(request: HttpRequest, api: ApiEntity, pk: str, user) -> HttpResponse:
    data = _body(request)
    record, key = _get_record(api, pk)
    if record is None:
        # Dataverse upserts on PATCH unless If-Match asks for an existing record (* or a
        # version of it); Business Central updates existing records only.
        if api.entity.app == "erp" or request.headers.get("If-Match"):
            raise _not_found(api, pk)
        record = api.model(pk=key)
        dataverse.owned_by(record, _crm_user(api, user))
    else:
        # Locked, so that no other change slips in between the version check and the save.
        record = api.model.objects.select_for_update().get(pk=record.pk)
        concurrency.check_if_match(request, api.entity.app, api.etag(record))
    _assign(api, record, data, user=_crm_user(api, user))
    record.save()
    return _representation(request, api, record, 200)


@transaction.atomic
def _delete(request: HttpRequest, api: ApiEntity, pk: str) -> HttpResponse:
    record, _ = _get_record(api, pk)
    if record is None:
        raise _not_found(api, pk)
    record = api.model.objects.select_for_update().get(pk=record.pk)
    concurrency.check_if_match(request, api.entity.app, api.etag(record))
    record.delete()
    return HttpResponse(status=204)


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
    return JsonResponse(
        {
            "@odata.context": "$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": str(user.business_unit_id or uuid.UUID(int=0)),
            "UserId": str(user.pk),
            "OrganizationId": str(uuid.uuid5(uuid.NAMESPACE_URL, "demo-crm/organization")),
        }
    )


@csrf_exempt
def navigation_endpoint(request: HttpRequest, entity: str, pk: str, name: str) -> HttpResponse:
    """A collection-valued navigation property of a CRM record, as Dataverse serves one:
    `systemusers(<id>)/systemuserroles_association` lists the user's own roles (with
    `$select`)."""
    try:
        fault = _inject_fault("crm", entity)
        if fault is not None:
            return fault
        user = _authorize(request, "crm", entity, record_id=pk)
        api = _api_entity("crm", entity)
        link = dataverse_queries.navigation(api, name)
        if request.method != "GET":
            raise ApiError(
                405, "MethodNotAllowed", f"The method {request.method} is not allowed here."
            )
        own = _own(user, "crm", entity, pk)
        if not own:
            _authorize_privilege(user, "crm", link.target, "GET")
        record, _ = _get_record(api, pk)
        if record is None:
            raise _not_found(api, pk)
        target = API_ENTITIES[("crm", link.target)]
        rows = list(getattr(record, link.accessor).all())
        records, applied = _shaped(request, target, user, rows, own)
    except ApiError as error:
        return error_response(error)
    return _with_preference(
        JsonResponse({"@odata.context": f"$metadata#{target.name}", "value": records}), applied
    )


@csrf_exempt
def user_privileges(request: HttpRequest, pk: str) -> HttpResponse:
    """Dataverse's RetrieveUserPrivileges: every privilege a user holds through its roles and,
    inherited, through its teams' roles, at the deepest level it holds it
    ("RetrieveUserPrivilegesRequest Class").

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
    held = security.depths_of(user)
    if held is None:
        held = security.at(security.GLOBAL, security.all_privileges())
    business_unit = str(user.business_unit_id or uuid.UUID(int=0))
    return JsonResponse(
        {
            "@odata.context": "$metadata#Microsoft.Dynamics.CRM.RetrieveUserPrivilegesResponse",
            "RolePrivileges": [
                {
                    "Depth": held[name],
                    "PrivilegeId": str(security.privilege_id(name)),
                    "BusinessUnitId": business_unit,
                    "PrivilegeName": name,
                }
                for name in sorted(held)
            ],
        }
    )
