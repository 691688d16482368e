"""What the demo ERP does as Business Central's API v2.0 does, beyond reading and writing
records: webhook subscriptions (the handshake, the notifications, the three-day expiry), the
list of the resources that support them, the general ledger setup, and JSON `$batch`.

Microsoft's pages this follows (titles and addresses are in the conformance tests,
tests/demo/test_conformance_business_central.py): "Working with webhooks in Dynamics 365
Business Central", "subscriptions resource type", "generalLedgerSetup resource type", "Using
OData transactional $batch requests" and "Current API Limits"; the contactsInformation
navigation follows "Get contactInformation" (tests/demo/
test_conformance_business_central_contacts.py)."""

import base64
import json
import logging
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from . import contacts_information
from .api import (
    ApiError,
    _api_entity,
    _authorize,
    _body,
    _get_record,
    _inject_fault,
    error_response,
)
from .api import _not_found as record_not_found
from .api_schema import API_ENTITIES
from .models import ErpSubscription
from .outgoing import outgoing_client

logger = logging.getLogger(__name__)

API_ROOT = "/api/v2.0/"
# Subscriptions expire after three days unless renewed (Working with webhooks: "Renewing the
# subscription").
SUBSCRIPTION_LIFETIME = timedelta(days=3)
# The subscriber must answer the handshake at once; the demo waits five seconds.
HANDSHAKE_TIMEOUT_SECONDS = 5
MAX_CLIENT_STATE = 2048
MAX_NOTIFICATION_URL = 2048
# Working with webhooks, "List of supported entities": the resources of the standard API
# that notify their changes. contacts, salespeople and currencyExchangeRates are not among
# them: a subscription to one is refused.
WEBHOOK_RESOURCES = (
    "accounts",
    "companyInformation",
    "countriesRegions",
    "currencies",
    "customerPaymentJournals",
    "customers",
    "dimensions",
    "employees",
    "generalLedgerEntries",
    "itemCategories",
    "items",
    "journals",
    "paymentMethods",
    "paymentTerms",
    "purchaseInvoices",
    "salesCreditMemos",
    "salesInvoices",
    "salesOrders",
    "salesQuotes",
    "shipmentMethods",
    "unitsOfMeasure",
    "vendors",
)
# Business Central waits 30 seconds after the first change before it notifies, and sends one
# `collection` notification instead of one per record when more than 1,000 records changed
# in that time (both configurable on-premises). The demo waits one second, so that a change
# reaches the console within seconds; the tests shorten it further.
NOTIFICATION_DELAY_SECONDS = 1.0
COLLECTION_THRESHOLD = 1000
# Business Central retries a subscriber that answers 408, 429 or 5xx (or does not answer)
# over 36 hours; the demo tries a few times, a second apart.
DELIVERY_ATTEMPTS = 3
DELIVERY_RETRY_SECONDS = 1.0
# Current API Limits: "A $batch request can contain a maximum of 100 operations."
MAX_BATCH_OPERATIONS = 100
MAX_BATCH_BODY_BYTES = 4 * 1024 * 1024

RESOURCE = re.compile(
    r"^(?:https?://[^/?#]+)?/?(?:[^?#]*?/)?(?:api/v2\.0/)?"
    r"companies\((?P<company>[^()/]*)\)/(?P<entity>[A-Za-z][A-Za-z0-9]*)$"
)


def _company_path() -> str:
    return f"{API_ROOT}companies({settings.DEMO_ERP_COMPANY_ID})/"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _not_found(key: str) -> ApiError:
    return ApiError(
        404,
        "Internal_RecordNotFound",
        "The API Webhook Subscription does not exist. Identification fields and values: "
        f"Subscription Id='{key}'",
    )


# -- subscriptions -------------------------------------------------------------------------
def _etag(subscription: ErpSubscription) -> str:
    version = f"{subscription.last_modified.timestamp():.6f};{subscription.pk}"
    return 'W/"' + base64.b64encode(version.encode()).decode() + '"'


def _representation(subscription: ErpSubscription) -> dict[str, Any]:
    """The subscription as the subscriptions resource type shows it."""
    return {
        "@odata.etag": _etag(subscription),
        "subscriptionId": subscription.subscription_id,
        "notificationUrl": subscription.notification_url,
        "resource": subscription.resource,
        "userId": str(subscription.user_id),
        "lastModifiedDateTime": _stamp(subscription.last_modified),
        "clientState": subscription.client_state,
        "expirationDateTime": _stamp(subscription.expiration),
        "systemCreatedAt": _stamp(subscription.created_at),
        "systemCreatedBy": str(subscription.user_id),
        "systemModifiedAt": _stamp(subscription.last_modified),
        "systemModifiedBy": str(subscription.user_id),
    }


def _user_id(user: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"demo-erp/user/{user}")


def _active():
    """The subscriptions that have not expired; expired ones are gone, as in the app."""
    ErpSubscription.objects.filter(expiration__lte=timezone.now()).delete()
    return ErpSubscription.objects.all()


def _string(data: dict, name: str, *, limit: int, required: bool) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApiError(400, "BadRequest", f"'{name}' must be a non-empty string.")
    if len(value) > limit:
        raise ApiError(
            400,
            "Application_StringExceededLength",
            f"The length of the string is {len(value)}, but it must be less than or equal to "
            f"{limit} characters. Value: {name}",
        )
    return value


def _notification_url(data: dict, required: bool) -> str | None:
    url = _string(data, "notificationUrl", limit=MAX_NOTIFICATION_URL, required=required)
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise ApiError(400, "BadRequest", "'notificationUrl' must be an http(s) URL.")
    return url


def _subscribed_entity(resource: str) -> str:
    """The entity set a subscription's resource names, refused unless it is one of this
    company's resources that notify their changes."""
    match = RESOURCE.match(resource.strip())
    if not match:
        raise ApiError(
            400,
            "BadRequest_InvalidRequestUrl",
            f"The resource '{resource}' is not a resource of this API.",
        )
    if match["company"].strip("'") != settings.DEMO_ERP_COMPANY_ID:
        raise ApiError(
            404, "Internal_CompanyNotFound", f"The company '{match['company']}' does not exist."
        )
    entity = match["entity"]
    if ("erp", entity) not in API_ENTITIES:
        raise ApiError(
            404, "BadRequest_ResourceNotFound", f"Resource not found for the segment '{entity}'."
        )
    if entity not in WEBHOOK_RESOURCES:
        # The documentation names the resources that notify, not the words of the refusal.
        raise ApiError(
            400,
            "BadRequest",
            f"The resource '{entity}' does not support webhook subscriptions.",
        )
    return entity


def handshake(notification_url: str) -> None:
    """Ask the subscriber to echo a validation token, as Business Central does before it
    creates or renews a subscription; ApiError when it does not."""
    token = secrets.token_urlsafe(24)
    separator = "&" if urlsplit(notification_url).query else "?"
    url = f"{notification_url}{separator}{urlencode({'validationToken': token})}"
    problem = ""
    try:
        with outgoing_client(HANDSHAKE_TIMEOUT_SECONDS) as client:
            answer = client.post(url)
        if answer.status_code != 200:
            problem = f"it answered {answer.status_code}"
        elif not constant_time_compare(answer.text.strip(), token):
            problem = "its answer did not hold the validation token"
    except httpx.TimeoutException:
        problem = f"it did not answer within {HANDSHAKE_TIMEOUT_SECONDS} seconds"
    except httpx.HTTPError as error:
        problem = f"it could not be reached ({type(error).__name__})"
    if problem:
        # The documentation says only that the subscription is not registered.
        raise ApiError(
            400,
            "BadRequest",
            f"The subscription was not registered: the handshake with the notification URL "
            f"failed, {problem}.",
        )


@csrf_exempt
def subscriptions(request: HttpRequest) -> HttpResponse:
    """GET: the subscriptions; POST: subscribe, after a handshake with the subscriber."""
    try:
        fault = _inject_fault("erp", "subscriptions")
        if fault is not None:
            return fault
        user = _authorize(request, "erp", "")
        if request.method == "GET":
            return JsonResponse(
                {
                    "@odata.context": "$metadata#subscriptions",
                    "value": [_representation(s) for s in _active().order_by("pk")],
                }
            )
        if request.method != "POST":
            raise ApiError(
                405,
                "BadRequest_MethodNotAllowed",
                f"'{request.method}' requests for 'subscriptions' are not allowed.",
            )
        data = _body(request)
        notification_url = _notification_url(data, required=True)
        resource = _string(data, "resource", limit=500, required=True)
        client_state = _string(data, "clientState", limit=MAX_CLIENT_STATE, required=False)
        assert notification_url is not None and resource is not None  # required above
        entity = _subscribed_entity(resource)
        handshake(notification_url)
        subscription = ErpSubscription.objects.create(
            subscription_id=uuid.uuid4().hex,
            notification_url=notification_url,
            resource=resource,
            entity=entity,
            client_state=client_state or "",
            user_id=_user_id(user),
            expiration=timezone.now() + SUBSCRIPTION_LIFETIME,
        )
    except ApiError as error:
        return error_response(error)
    return JsonResponse(_representation(subscription), status=201)


@csrf_exempt
def subscription(request: HttpRequest, key: str) -> HttpResponse:
    """One subscription: GET it, renew or change it with PATCH (If-Match its etag, and a new
    handshake), DELETE it."""
    subscription_id = key.strip("'")
    try:
        fault = _inject_fault("erp", "subscriptions")
        if fault is not None:
            return fault
        _authorize(request, "erp", "")
        with transaction.atomic():
            found = _active().select_for_update().filter(subscription_id=subscription_id).first()
            if found is None:
                raise _not_found(subscription_id)
            if request.method == "GET":
                return JsonResponse(_representation(found))
            if request.method == "DELETE":
                found.delete()
                return HttpResponse(status=204)
            if request.method != "PATCH":
                raise ApiError(
                    405,
                    "BadRequest_MethodNotAllowed",
                    f"'{request.method}' requests for 'subscriptions' are not allowed.",
                )
            return _renew(request, found)
    except ApiError as error:
        return error_response(error)


def _renew(request: HttpRequest, found: ErpSubscription) -> HttpResponse:
    """PATCH: the If-Match header must carry the subscription's etag; the handshake is asked
    again, and the subscription lives three more days."""
    if_match = request.headers.get("If-Match", "")
    if not if_match:
        raise ApiError(
            400,
            "BadRequest_InvalidToken",
            "Could not validate the client concurrency token required by the service. Please "
            "provide a valid token in the client request.",
        )
    if if_match != "*" and if_match != _etag(found):
        raise ApiError(409, "Request_EntityChanged", "Another user has already changed the record.")
    data = _body(request)
    notification_url = _notification_url(data, required=False)
    client_state = _string(data, "clientState", limit=MAX_CLIENT_STATE, required=False)
    resource = _string(data, "resource", limit=500, required=False)
    if resource is not None:
        found.entity, found.resource = _subscribed_entity(resource), resource
    if notification_url is not None:
        found.notification_url = notification_url
    if client_state is not None:
        found.client_state = client_state
    handshake(found.notification_url)
    found.expiration = timezone.now() + SUBSCRIPTION_LIFETIME
    found.save()
    return JsonResponse(_representation(found))


@csrf_exempt
def webhook_supported_resources(request: HttpRequest, company: str) -> HttpResponse:
    """`api/microsoft/runtime/beta/companies(<id>)/webhookSupportedResources`: which resources
    notify their changes, with the documented `$filter=resource eq 'v2.0*'`."""
    try:
        if company != settings.DEMO_ERP_COMPANY_ID:
            raise ApiError(
                404, "Internal_CompanyNotFound", f"The company '{company}' does not exist."
            )
        _authorize(request, "erp", "")
        resources = [
            f"v2.0/{name}"
            for (app, name) in API_ENTITIES
            if app == "erp" and name in WEBHOOK_RESOURCES
        ]
        wanted = request.GET.get("$filter", "")
        if wanted:
            match = re.fullmatch(r"\s*resource\s+eq\s+'([^']*)'\s*", wanted)
            if not match:
                raise ApiError(
                    400, "BadRequest", f"The $filter expression '{wanted}' is not supported."
                )
            pattern = match[1]
            resources = [
                r
                for r in resources
                if (r.startswith(pattern[:-1]) if pattern.endswith("*") else r == pattern)
            ]
    except ApiError as error:
        return error_response(error)
    return JsonResponse(
        {
            "@odata.context": "$metadata#webhookSupportedResources",
            "value": [{"resource": resource} for resource in resources],
        }
    )


# -- notifications -------------------------------------------------------------------------
_pending: dict[int, dict[str, Any]] = {}
_pending_lock = threading.Lock()
_timer: threading.Timer | None = None


def announce(entity: str, changes: list[tuple[Any, str]]) -> None:
    """Notify the subscribers of `entity` of the changed records (id, change type: created,
    updated or deleted) once the change commits, a moment later and many in one request, as
    Business Central does."""
    if entity not in WEBHOOK_RESOURCES or not changes:
        return
    subscribers = list(ErpSubscription.objects.filter(entity=entity, expiration__gt=timezone.now()))
    if not subscribers:
        return
    changed_at = timezone.now()

    def queue() -> None:
        global _timer
        with _pending_lock:
            for subscriber in subscribers:
                entry = _pending.setdefault(
                    subscriber.pk,
                    {
                        "subscription": subscriber,
                        "entity": entity,
                        "changes": [],
                        "since": changed_at,
                    },
                )
                entry["changes"] += [(str(pk), kind, changed_at) for pk, kind in changes]
            if _timer is None:
                _timer = threading.Timer(NOTIFICATION_DELAY_SECONDS, _flush)
                _timer.daemon = True
                _timer.start()

    transaction.on_commit(queue)


def _items(entry: dict[str, Any]) -> list[dict[str, Any]]:
    subscription: ErpSubscription = entry["subscription"]
    common = {
        "subscriptionId": subscription.subscription_id,
        "clientState": subscription.client_state,
        "expirationDateTime": _stamp(subscription.expiration),
    }
    collection = f"{_company_path()}{entry['entity']}".lstrip("/")
    if len(entry["changes"]) > COLLECTION_THRESHOLD:
        # Many records changed: one notification with a filter that finds them all.
        since = _stamp(entry["since"] - timedelta(milliseconds=1))
        return [
            {
                **common,
                "resource": f"/{collection}?$filter=lastModifiedDateTime%20gt%20{since}",
                "changeType": "collection",
                "lastModifiedDateTime": _stamp(entry["changes"][-1][2]),
            }
        ]
    return [
        {
            **common,
            "resource": f"{collection}({record_id})",
            "changeType": kind,
            "lastModifiedDateTime": _stamp(moment),
        }
        for record_id, kind, moment in entry["changes"]
    ]


def _flush() -> None:
    """Send what waited: one request per notification URL, with the notifications of each of
    its subscriptions."""
    global _timer
    with _pending_lock:
        entries, _timer = list(_pending.values()), None
        _pending.clear()
    by_url: dict[str, list[dict[str, Any]]] = {}
    subscribers: dict[str, list[int]] = {}
    for entry in entries:
        url = entry["subscription"].notification_url
        by_url.setdefault(url, []).extend(_items(entry))
        subscribers.setdefault(url, []).append(entry["subscription"].pk)
    for url, items in by_url.items():
        _deliver(url, items, subscribers[url])


def _deliver(url: str, items: list[dict[str, Any]], subscription_pks: list[int]) -> None:
    body = json.dumps({"value": items})  # without a byte order mark, as since version 19
    for attempt in range(1, DELIVERY_ATTEMPTS + 1):
        try:
            with outgoing_client(HANDSHAKE_TIMEOUT_SECONDS) as client:
                answer = client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
        except httpx.HTTPError as error:
            logger.warning("Change notification to %s failed: %s", url, error)
        else:
            if answer.status_code < 300:
                return
            if answer.status_code not in (408, 429) and answer.status_code < 500:
                # Any other answer ends the subscriptions: Business Central deletes them.
                _drop(subscription_pks, url, answer.status_code)
                return
            logger.warning("Change notification to %s answered %s", url, answer.status_code)
        if attempt < DELIVERY_ATTEMPTS:
            time.sleep(DELIVERY_RETRY_SECONDS)


def _drop(subscription_pks: list[int], url: str, status: int) -> None:
    logger.warning("Deleting the subscriptions of %s: it answered %s", url, status)
    try:
        ErpSubscription.objects.filter(pk__in=subscription_pks).delete()
    finally:
        connection.close()


# -- the general ledger setup ----------------------------------------------------------------
@csrf_exempt
def general_ledger_setup(request: HttpRequest, company: str) -> HttpResponse:
    """The generalLedgerSetup entity set of API v2.0 (page 30087 "APIV2 - G/L Setup"): one
    read-only record, the company's local currency (LCY) among its fields."""
    try:
        if company != settings.DEMO_ERP_COMPANY_ID:
            raise ApiError(
                404, "Internal_CompanyNotFound", f"The company '{company}' does not exist."
            )
        fault = _inject_fault("erp", "generalLedgerSetup")
        if fault is not None:
            return fault
        _authorize(request, "erp", "generalLedgerSetup")
        if request.method != "GET":
            raise ApiError(
                405,
                "BadRequest_MethodNotAllowed",
                f"'{request.method}' requests for 'generalLedgerSetup' of EdmType 'Entity' are "
                "not allowed within Microsoft Dynamics NAV OData web services.",
            )
    except ApiError as error:
        return error_response(error)
    setup = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "demo-erp/generalLedgerSetup")),
        "allowPostingFrom": "0001-01-01",
        "allowPostingTo": "0001-01-01",
        "additionalReportingCurrency": "",
        "localCurrencyCode": settings.DEMO_ERP_LOCAL_CURRENCY,
        "localCurrencySymbol": "",
        "lastModifiedDateTime": "2024-01-01T00:00:00Z",
        "allowQueryFromConsolidation": False,
        **{f"shortcutDimension{n}Code": "" for n in range(1, 9)},
    }
    return JsonResponse({"@odata.context": "$metadata#generalLedgerSetup", "value": [setup]})


# -- contactsInformation -----------------------------------------------------------------------
@csrf_exempt
def contacts_information_of(request: HttpRequest, company: str, entity: str, pk: str):
    """`customers(<id>)/contactsInformation` and `contacts(<id>)/contactsInformation`: the
    contacts of a customer, or whom a contact is related to (demo/contacts_information.py).
    GET only, with `$select`."""
    try:
        if company != settings.DEMO_ERP_COMPANY_ID:
            raise ApiError(
                404, "Internal_CompanyNotFound", f"The company '{company}' does not exist."
            )
        fault = _inject_fault("erp", entity)
        if fault is not None:
            return fault
        _authorize(request, "erp", entity)
        if request.method != "GET":
            raise ApiError(
                405,
                "BadRequest_MethodNotAllowed",
                f"'{request.method}' requests for 'contactsInformation' of EdmType 'Entity' are "
                "not allowed within Microsoft Dynamics NAV OData web services.",
            )
        for option in ("$filter", "$expand", "$top", "$orderby", "$skip"):
            if option in request.GET:
                # Beyond the demo: Business Central takes these here too.
                raise ApiError(
                    400,
                    "BadRequest",
                    f"The demo ERP does not take {option} on contactsInformation.",
                )
        api = _api_entity("erp", entity)
        record, _ = _get_record(api, pk)
        if record is None:
            raise record_not_found(api, pk)
        select = contacts_information.select_list(request.GET.get("$select", ""))
        rows = contacts_information.rows_of(entity, [record])[record.pk]
    except ApiError as error:
        return error_response(error)
    return JsonResponse(
        {
            "@odata.context": f"$metadata#companies({company})/{entity}({record.pk})/"
            "contactsInformation",
            "value": contacts_information.selected(rows, select),
        }
    )


# -- $batch ------------------------------------------------------------------------------------
class _RolledBack(Exception):
    """Raised inside an atomicity group to undo what its requests did."""


@csrf_exempt
def batch(request: HttpRequest) -> HttpResponse:
    """`POST api/v2.0/$batch` with an OData JSON batch: `{"requests": [{"id", "method", "url",
    "headers", "body", "atomicityGroup"}]}` answered with `{"responses": [{"id", "status",
    "headers", "body"}]}`. Requests of one atomicity group are written together or not at all;
    with the `Isolation: snapshot` header the whole batch is."""
    try:
        fault = _inject_fault("erp", "$batch")
        if fault is not None:
            return fault
        _authorize(request, "erp", "")
        if request.method != "POST":
            raise ApiError(
                405, "BadRequest_MethodNotAllowed", "$batch requests are sent with POST."
            )
        content_type = request.headers.get("Content-Type", "")
        if not content_type.lower().startswith("application/json"):
            # Business Central also takes multipart batches; the demo only the JSON format.
            raise ApiError(
                400, "BadRequest", "The demo ERP takes $batch requests as application/json."
            )
        requests = _batch_requests(_body(request, MAX_BATCH_BODY_BYTES))
    except ApiError as error:
        return error_response(error)
    snapshot = request.headers.get("Isolation", "").strip().lower() == "snapshot"
    responses: list[dict[str, Any]] = []
    try:
        with transaction.atomic():
            for group in _groups(requests):
                responses += _run_group(request, group)
            if snapshot and any(r["status"] >= 400 for r in responses):
                # Isolation: snapshot: a failure reverts the whole batch, each answer kept.
                raise _RolledBack
    except _RolledBack:
        pass
    return JsonResponse({"responses": responses})


def _batch_requests(body: dict) -> list[dict[str, Any]]:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise ApiError(400, "BadRequest", "'requests' must be a non-empty list.")
    if len(requests) > MAX_BATCH_OPERATIONS:
        raise ApiError(
            400,
            "BadRequest",
            f"A $batch request can contain a maximum of {MAX_BATCH_OPERATIONS} operations; "
            f"this one has {len(requests)}.",
        )
    seen_ids: set[str] = set()
    closed_groups: set[str] = set()
    current_group = None
    for index, item in enumerate(requests):
        if not isinstance(item, dict):
            raise ApiError(400, "BadRequest", f"Request {index} of the batch is not an object.")
        request_id = item.get("id")
        if request_id is not None:
            if not isinstance(request_id, str) or request_id in seen_ids:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"Request {index}: 'id' must be a string, unique in the batch.",
                )
            seen_ids.add(request_id)
        method = item.get("method")
        if not isinstance(method, str) or method.upper() not in ("GET", "POST", "PATCH", "DELETE"):
            raise ApiError(
                400, "BadRequest", f"Request {index}: 'method' must be get, post, patch or delete."
            )
        if not isinstance(item.get("url"), str) or not item["url"]:
            raise ApiError(400, "BadRequest", f"Request {index}: 'url' is missing.")
        for name in ("headers", "body"):
            if item.get(name) is not None and not isinstance(item[name], dict):
                raise ApiError(400, "BadRequest", f"Request {index}: '{name}' must be an object.")
        group = item.get("atomicityGroup")
        if group is not None and not isinstance(group, str):
            raise ApiError(
                400, "BadRequest", f"Request {index}: 'atomicityGroup' must be a string."
            )
        if group != current_group:
            if current_group is not None:
                closed_groups.add(current_group)
            if group in closed_groups:
                # OData JSON batch format: the requests of a group are adjacent.
                raise ApiError(
                    400,
                    "BadRequest",
                    f"The requests of atomicity group '{group}' must be adjacent.",
                )
            current_group = group
    return requests


def _groups(requests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each atomicity group together; a request outside any group alone."""
    groups: list[list[dict[str, Any]]] = []
    for item in requests:
        group = item.get("atomicityGroup")
        if group is not None and groups and groups[-1][0].get("atomicityGroup") == group:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _run_group(request: HttpRequest, group: list[dict[str, Any]]) -> list[dict[str, Any]]:
    name = group[0].get("atomicityGroup")
    if name is None:
        return [_run_one(request, group[0])]
    answers: list[dict[str, Any]] = []
    failed: dict[str, Any] | None = None
    try:
        with transaction.atomic():
            for item in group:
                answer = _run_one(request, item)
                answers.append(answer)
                if answer["status"] >= 400:
                    failed = answer
                    raise _RolledBack
    except _RolledBack:
        pass
    if failed is None:
        return answers
    # The group is written together or not at all: the failed request says why, the others
    # of the group fail with it (424, as a request whose dependency failed).
    undone = _response(
        None,
        424,
        {
            "error": {
                "code": "BadRequest",
                "message": f"Not applied: request '{failed['id']}' of atomicity group '{name}' "
                "failed, so the whole group was rolled back.",
            }
        },
    )
    return [
        answers[i]
        if i < len(answers) and answers[i] is failed
        else {**undone, "id": item.get("id")}
        for i, item in enumerate(group)
    ]


def _response(request_id: Any, status: int, body: Any, headers: dict | None = None) -> dict:
    answer: dict[str, Any] = {"id": request_id, "status": status, "headers": headers or {}}
    if body is not None:
        answer["body"] = body
    return answer


def _run_one(request: HttpRequest, item: dict[str, Any]) -> dict[str, Any]:
    """One request of the batch, answered by the app's own views with the batch's sign-in."""
    request_id = item.get("id")
    method = item["method"].upper()
    parts = urlsplit(item["url"])
    if (parts.scheme or parts.netloc) and parts.netloc != request.get_host():
        return _response(
            request_id,
            400,
            {"error": {"code": "BadRequest", "message": "The URL names another host."}},
        )
    root = request.path.removesuffix("$batch")
    path = parts.path if parts.path.startswith("/") else root + parts.path
    if not path.startswith(root):
        return _response(
            request_id,
            404,
            {
                "error": {
                    "code": "BadRequest_NotFound",
                    "message": f"'{item['url']}' is not a resource of this API.",
                }
            },
        )
    try:
        match = resolve(path)
    except Resolver404:
        match = None
    if match is None or match.func is batch:
        return _response(
            request_id,
            404,
            {
                "error": {
                    "code": "BadRequest_ResourceNotFound",
                    "message": f"Resource not found for the segment '{item['url']}'.",
                }
            },
        )
    inner = HttpRequest()
    inner.method = method
    inner.path = inner.path_info = path
    inner.GET = QueryDict(parts.query)
    body = json.dumps(item["body"]).encode() if item.get("body") is not None else b""
    inner._body = body  # the body as the views read it
    inner.META = {
        "SERVER_NAME": request.META.get("SERVER_NAME", "testserver"),
        "SERVER_PORT": request.META.get("SERVER_PORT", "80"),
        "HTTP_HOST": request.get_host(),
        "wsgi.url_scheme": request.scheme,
        "QUERY_STRING": parts.query,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
    }
    if request.META.get("HTTP_AUTHORIZATION"):
        inner.META["HTTP_AUTHORIZATION"] = request.META["HTTP_AUTHORIZATION"]
    for name, value in (item.get("headers") or {}).items():
        if isinstance(name, str) and isinstance(value, str) and name.lower() != "authorization":
            key = name.upper().replace("-", "_")
            inner.META[key if key in ("CONTENT_TYPE",) else f"HTTP_{key}"] = value
    answer = match.func(inner, *match.args, **match.kwargs)
    headers = {
        name.lower(): value
        for name, value in answer.items()
        if name.lower() in ("content-type", "etag", "location", "odata-entityid", "retry-after")
    }
    if answer.status_code != 204 and answer.content:
        headers.setdefault("odata-version", "4.0")
    try:
        payload = json.loads(answer.content) if answer.content else None
    except ValueError:
        payload = answer.content.decode(errors="replace")
    return _response(request_id, answer.status_code, payload, headers)
