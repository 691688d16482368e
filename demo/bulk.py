"""Dataverse's bulk operation messages on the demo CRM: CreateMultiple and UpdateMultiple
(POST <entity set>/Microsoft.Dynamics.CRM.CreateMultiple with {"Targets": [...]}).

As on a standard Dataverse table, a request is atomic: when any target is refused, nothing is
written. The refusal names every refused target (its RequestIndex, Id, StatusCode, code and
message, as Dataverse's BulkApiErrorDetails do), so a client can send the others again at
once and log each refused record with its own reason."""

import contextlib
import uuid

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import dataverse
from .api import (
    _api_entity,
    _assign,
    _authorize,
    _body,
    _inject_fault,
    _not_found,
    _refuse_changes,
)
from .api_schema import ApiEntity
from .errors import ApiError, error_response
from .webhooks import notify_changes

MAX_TARGETS = 1000
MAX_BULK_BODY_BYTES = 2 * 1024 * 1024


class Refused(Exception):
    """Some targets were refused: the whole request writes nothing."""

    def __init__(self, failures: list[dict]):
        super().__init__(failures[0]["message"])
        self.failures = failures


@csrf_exempt
def bulk_action(request: HttpRequest, entity: str, action: str) -> HttpResponse:
    try:
        fault = _inject_fault("crm", entity)
        if fault is not None:
            return fault
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", f"{action} is called with POST.")
        creating = action == "CreateMultiple"
        _authorize(request, "crm", entity, method="POST" if creating else "PATCH")
        api = _api_entity("crm", entity)
        _refuse_changes(api, "POST")
        targets = _targets(_body(request, MAX_BULK_BODY_BYTES), api)
        if creating:
            ids = _create_multiple(api, targets)
            notify_changes("crm", entity, ids, "created")
            return JsonResponse(
                {
                    "@odata.context": "$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
                    "Ids": [str(pk) for pk in ids],
                }
            )
        ids = _update_multiple(api, targets)
        notify_changes("crm", entity, ids)
        return HttpResponse(status=204)
    except ApiError as error:
        return error_response(error)
    except Refused as refused:
        first = refused.failures[0]
        count = len(refused.failures)
        message = first["message"]
        if count > 1:
            message += f" ({count} targets were refused; see the details.)"
        return JsonResponse(
            {"error": {"code": first["code"], "message": message, "details": refused.failures}},
            status=first["StatusCode"],
        )


def _targets(body: dict, api: ApiEntity) -> list[dict]:
    targets = body.get("Targets")
    if not isinstance(targets, list) or not targets:
        raise ApiError(400, "BadRequest", "'Targets' must be a non-empty list of records.")
    if len(targets) > MAX_TARGETS:
        raise ApiError(
            400, "BadRequest", f"At most {MAX_TARGETS} targets may be sent in one request."
        )
    if not all(isinstance(target, dict) for target in targets):
        raise ApiError(400, "BadRequest", "Every target must be a JSON object.")
    return targets


def _failure(index: int, error: ApiError, key=None) -> dict:
    return {
        "RequestIndex": index,
        "Id": str(key) if key else None,
        "StatusCode": error.status,
        "code": error.code,
        "message": error.message,
    }


def _check_type(api: ApiEntity, target: dict) -> None:
    wanted = f"Microsoft.Dynamics.CRM.{api.logical_name}"
    if target.get("@odata.type") != wanted:
        raise ApiError(400, "0x80048d19", f"Each target must have '@odata.type': '{wanted}'.")


def _key(api: ApiEntity, target: dict) -> uuid.UUID | None:
    raw = target.get(api.key)
    if raw in (None, ""):
        return None
    try:
        return uuid.UUID(str(raw).strip("{}"))
    except ValueError:
        raise ApiError(400, "BadRequest", f"'{api.key}' is not a valid id.") from None


def _create_multiple(api: ApiEntity, targets: list[dict]) -> list:
    failures, records = [], []
    cache: dict = {}
    wanted_keys = set()
    for target in targets:
        with contextlib.suppress(ApiError):  # refused with its index below
            wanted_keys.add(_key(api, target))
    taken = set(api.model.objects.filter(pk__in=wanted_keys - {None}).values_list("pk", flat=True))
    for index, target in enumerate(targets):
        key = None
        try:
            _check_type(api, target)
            key = _key(api, target)
            record = api.model()
            if key is not None:
                if key in taken:
                    raise ApiError(
                        412, "0x80040237", "A record with matching key values already exists."
                    )
                taken.add(key)
                record.pk = key
            _assign(api, record, target, cache)
            records.append(record)
        except ApiError as error:
            failures.append(_failure(index, error, key))
    if failures:
        raise Refused(failures)
    with transaction.atomic():
        api.model.objects.bulk_create(records)
    return [record.pk for record in records]


def _update_multiple(api: ApiEntity, targets: list[dict]) -> list:
    failures = []
    cache: dict = {}
    keys: list[uuid.UUID | None] = []
    for index, target in enumerate(targets):
        try:
            _check_type(api, target)
            key = _key(api, target)
            if key is None:
                raise ApiError(400, "BadRequest", f"Each target must have its '{api.key}'.")
            if key in keys:
                raise ApiError(400, "BadRequest", f"The record {key} is targeted twice.")
            keys.append(key)
        except ApiError as error:
            failures.append(_failure(index, error, target.get(api.key)))
            keys.append(None)
    with transaction.atomic():
        found = {
            record.pk: record
            for record in api.model.objects.select_for_update().filter(pk__in=set(keys) - {None})
        }
        changed: set[str] = set()
        records = []
        for index, (key, target) in enumerate(zip(keys, targets, strict=True)):
            if key is None:
                continue
            record = found.get(key)
            try:
                if record is None:
                    raise _not_found(api, str(key))
                _assign(api, record, target, cache)
            except ApiError as error:
                failures.append(_failure(index, error, key))
                continue
            changed.update(api.fields[name] for name in target if name in api.fields)
            changed.update(dataverse.bound_fields(api, target))
            records.append(record)
        if failures:
            raise Refused(sorted(failures, key=lambda failure: failure["RequestIndex"]))
        # bulk_update does not run auto_now: the modified time is set here.
        now = timezone.now()
        modified = api.entity.modified_field
        for record in records:
            setattr(record, modified, now)
        api.model.objects.bulk_update(records, [*sorted(changed), modified])
    return [record.pk for record in records]
