"""Dataverse's bulk operation messages on the demo CRM: CreateMultiple and UpdateMultiple
(POST <entity set>/Microsoft.Dynamics.CRM.CreateMultiple with {"Targets": [...]}), as "Use
bulk operation messages" describes them for standard tables, which every demo table is:

- a request is one transaction: when a target is refused, nothing is written, and the answer
  is the error of the first target refused, in the order of the targets, as a single request
  would have answered it; it names no target (the per-target details, BulkApiErrorDetails,
  are for elastic tables only, and the demo has none);
- not every table takes the messages (demo/dataverse_messages.py): a request to one that does not is
  answered as Dataverse answers a message the table does not support."""

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
    _refuse_changes,
)
from .api_schema import ApiEntity
from .dataverse_messages import not_supported, takes
from .errors import ApiError, error_response
from .webhooks import notify_changes

MAX_TARGETS = 1000
MAX_BULK_BODY_BYTES = 2 * 1024 * 1024


@csrf_exempt
def bulk_action(request: HttpRequest, entity: str, action: str) -> HttpResponse:
    try:
        fault = _inject_fault("crm", entity)
        if fault is not None:
            return fault
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", f"{action} is called with POST.")
        creating = action == "CreateMultiple"
        user = _authorize(request, "crm", entity, method="POST" if creating else "PATCH")
        api = _api_entity("crm", entity)
        _refuse_changes(api, "POST")
        if not takes(api.logical_name, action):
            raise not_supported(action, api.logical_name)
        targets = _targets(_body(request, MAX_BULK_BODY_BYTES), api)
        if creating:
            ids = _create_multiple(api, targets, user)
            notify_changes("crm", entity, ids, "created")
            return JsonResponse(
                {
                    "@odata.context": "$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
                    "Ids": [str(pk) for pk in ids],
                }
            )
        ids = _update_multiple(api, targets, user)
        notify_changes("crm", entity, ids)
        return HttpResponse(status=204)
    except ApiError as error:
        return error_response(error)


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


def _create_multiple(api: ApiEntity, targets: list[dict], user) -> list:
    """Create every target, or none: the first target refused stops the request. `user`
    owns them, and must be allowed to bind what they bind."""
    records = []
    cache: dict = {}
    keys = set()
    for target in targets:
        _check_type(api, target)
        key = _key(api, target)
        record = api.model()
        if key is not None:
            if key in keys or api.model.objects.filter(pk=key).exists():
                raise ApiError(
                    412, "0x80040237", "A record with matching key values already exists."
                )
            keys.add(key)
            record.pk = key
        dataverse.owned_by(record, user)
        _assign(api, record, target, cache, user)
        records.append(record)
    with transaction.atomic():
        api.model.objects.bulk_create(records)
    return [record.pk for record in records]


def _update_multiple(api: ApiEntity, targets: list[dict], user) -> list:
    """Update every target, or none: the records are looked up first (the missing ones are
    named together, in the words of "Use bulk operation messages", Troubleshooting), then
    the first target refused stops the request."""
    keys: list[uuid.UUID] = []
    for target in targets:
        _check_type(api, target)
        key = _key(api, target)
        if key is None:
            raise ApiError(400, "BadRequest", f"Each target must have its '{api.key}'.")
        if key in keys:
            raise ApiError(400, "BadRequest", f"The record {key} is targeted twice.")
        keys.append(key)
    with transaction.atomic():
        found = {
            record.pk: record
            for record in api.model.objects.select_for_update().filter(pk__in=keys)
        }
        missing = [str(key) for key in keys if key not in found]
        if missing:
            raise ApiError(
                404,
                "0x80040217",
                f"{api.entity.title} With Ids = {', '.join(missing)} Do Not Exist",
            )
        cache: dict = {}
        changed: set[str] = set()
        for key, target in zip(keys, targets, strict=True):
            _assign(api, found[key], target, cache, user)
            changed.update(api.fields[name] for name in target if name in api.fields)
            changed.update(dataverse.bound_fields(api, target))
        # bulk_update does not run auto_now: the modified time is set here.
        now = timezone.now()
        modified = api.entity.modified_field
        records = [found[key] for key in keys]
        for record in records:
            setattr(record, modified, now)
        api.model.objects.bulk_update(records, [*sorted(changed), modified])
    return [record.pk for record in records]
