"""Dataverse's lookups on the demo CRM, as the Web API documents them.

- A lookup column is set on create and on update through its single-valued navigation
  property, `"<navigation>@odata.bind": "/<entity set>(<id>)"`, and cleared with null, with
  or without the annotation ("Associate table rows on create", "Associate and disassociate
  tables on update"). A polymorphic lookup (a contact's parentcustomerid) has a navigation
  property per table it may refer to (parentcustomerid_account, parentcustomerid_contact);
  setting one sets the others to null ("Multi-table lookups").
- It reads back as its lookup property `_<name>_value`, a GUID, which is read-only and may
  be used in `$filter` ("Lookup properties"); with `Prefer: odata.include-annotations`, the
  related record's name, the navigation property and the related table's logical name come
  with it ("Lookup property data").
- A navigation property that the table does not declare is refused as Dataverse refuses
  `parentcustomerid@odata.bind`, a property it does not have as it refuses `Name` ("Troubleshoot
  Dataverse Web API client errors"), and a record that does not exist with ObjectDoesNotExist
  ("Web service error codes").
- A record created without a currency gets the organization's base currency.
- Binding a record needs the Append privilege on the table that gets the lookup and Append To
  on the table it refers to ("Security concepts in Microsoft Dataverse"), at a level that
  reaches both records ("How access to a record is determined"): without the privilege the
  answer is "Principal user ... is missing prv... privilege" (0x80040220), with one that does
  not reach the record "Principal with ID ... does not have AppendToAccess right(s) for record
  with ID ..." (0x80048306), both 403 ("Troubleshoot Dataverse client errors"). The request
  writes nothing then."""

import re
import uuid
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest

from . import security
from .api_schema import API_ENTITIES, ApiEntity
from .errors import ApiError
from .models import CrmRole, CrmSystemUser

BIND_SUFFIX = "@odata.bind"
# "/accounts(<id>)", "accounts(<id>)" or the record's absolute address.
BIND = re.compile(r"^(?:.*/)?(?P<entity>[A-Za-z_][A-Za-z0-9_]*)\((?P<id>[^()]*)\)$")
INCLUDE_ANNOTATIONS = re.compile(r'odata\.include-annotations\s*=\s*"(?P<terms>[^"]*)"')
# Dataverse's error codes: ODataClientPayloadError, ObjectDoesNotExist.
PAYLOAD_ERROR = "0x80048d19"
OBJECT_DOES_NOT_EXIST = "0x80040217"
# InvalidArgument: what Dataverse answers a create that leaves out a required column.
INVALID_ARGUMENT = "0x80040203"
# The lookup of a record's transaction currency (accounts, and every table with money).
CURRENCY_NAVIGATION = "transactioncurrencyid"
# A privilege check that failed (the user holds the privilege at no level), and an access check
# that failed (it holds it at a level that does not reach the record).
MISSING_PRIVILEGE = "0x80040220"
ACCESS_DENIED = "0x80048306"


def annotations_wanted(
    api: ApiEntity, request: HttpRequest
) -> tuple[Callable[[str], bool] | None, str]:
    """Which annotations `Prefer: odata.include-annotations="..."` asks for ("*", names,
    "Namespace.*", and "-name" to leave one out), and the preference to answer in
    Preference-Applied; (None, "") when it asks for none, or of the ERP."""
    found = INCLUDE_ANNOTATIONS.search(request.headers.get("Prefer", ""))
    if not found or api.entity.app != "crm":
        return None, ""
    terms = [term.strip() for term in found["terms"].split(",") if term.strip()]
    included = [term for term in terms if not term.startswith("-")]
    excluded = [term[1:] for term in terms if term.startswith("-")]

    def wanted(term: str) -> bool:
        return any(fnmatchcase(term, pattern) for pattern in included) and not any(
            fnmatchcase(term, pattern) for pattern in excluded
        )

    return wanted, f'odata.include-annotations="{found["terms"]}"'


def payload_error(api: ApiEntity, inner: str) -> ApiError:
    """Dataverse's answer to a payload it cannot read (ODataClientPayloadError)."""
    return ApiError(
        400,
        PAYLOAD_ERROR,
        f"Error identified in Payload provided by the user for Entity :'{api.name}'  ---->  "
        f"InnerException : Microsoft.OData.ODataException: {inner}",
    )


def invalid_property(api: ApiEntity, name: str) -> ApiError:
    """Dataverse's answer to a property the table does not have."""
    return ApiError(
        400,
        "0x0",
        "An error occurred while validating input parameters: Microsoft.Crm.CrmException: "
        f"Invalid property '{name}' was found in entity "
        f"'Microsoft.Dynamics.CRM.{api.logical_name}'. ---> Microsoft.OData.ODataException: "
        "Does not support untyped value in non-open type.",
    )


def does_not_exist(target: ApiEntity, key: Any) -> ApiError:
    return ApiError(
        404, OBJECT_DOES_NOT_EXIST, f"{target.logical_name} With Id = {key} Does Not Exist"
    )


def related(model, pk, cache: dict):
    """The record `pk` of `model`, or None; `cache` keeps those looked up, for a request that
    writes many records."""
    key = (model, pk)
    if key not in cache:
        cache[key] = model.objects.filter(pk=pk).first()
    return cache[key]


def _navigation_named(api: ApiEntity, name: str) -> str | None:
    """The navigation property a payload key sets: `<navigation>@odata.bind`, or the bare
    name of a declared navigation property; None for any other key."""
    if name.endswith(BIND_SUFFIX):
        return name.removesuffix(BIND_SUFFIX)
    if api.navigation(name) is not None:
        return name
    return None


def missing_privilege(
    user: CrmSystemUser, roles: list[CrmRole], held: set[str], privilege: str, api: ApiEntity
) -> ApiError:
    """The failed privilege check: "Principal user is missing privilege on OTC for entity",
    0x80040220 ("Troubleshoot Dataverse client errors"), in the words Dataverse fills in."""
    return ApiError(
        403,
        MISSING_PRIVILEGE,
        f"Principal user (Id={user.pk}, type=8, roleCount={len(roles)}, "
        f"privilegeCount={len(held)}, accessMode={user.access_mode}), is missing {privilege} "
        f"privilege (Id={security.privilege_id(privilege)}) on OTC={api.type_code} for entity "
        f"'{api.logical_name}'.",
    )


def access_denied(user: CrmSystemUser, right: str, record, api: ApiEntity) -> ApiError:
    """The failed access check: "Principal with ID <guid> does not have CreateAccess right(s)
    for record with ID <guid> of entity", 0x80048306 ("Troubleshoot Dataverse client
    errors")."""
    return ApiError(
        403,
        ACCESS_DENIED,
        f"Principal with ID {user.pk} does not have {right} right(s) for record with ID "
        f"{record.pk} of entity {api.logical_name}.",
    )


def _security_of(user: CrmSystemUser, cache: dict) -> tuple[list[CrmRole], set[str] | None]:
    """The user's roles and privileges, looked up once a request."""
    key = ("security", user.pk)
    if key not in cache:
        roles = security.held_roles(user)
        cache[key] = roles, security.privileges_of(user, roles)
    return cache[key]


def authorize_append(
    user: CrmSystemUser, api: ApiEntity, record, target: ApiEntity, found, cache: dict
) -> None:
    """May `user` set a lookup of `record` (of `api`) to `found` (of `target`)? Append on the
    one, Append To on the other: both privilege checks, then both access checks."""
    roles, held = _security_of(user, cache)
    checks = [
        (verb, security.privilege_named(verb, table.name), table, row)
        for verb, table, row in (
            (security.APPEND, api, record),
            (security.APPEND_TO, target, found),
        )
    ]
    for _, privilege, table, _ in checks:
        if held is not None and privilege not in held:
            raise missing_privilege(user, roles, held, privilege, table)
    for verb, privilege, table, row in checks:
        if verb == security.APPEND_TO:
            # The record appended to is the same for many records of a request (their
            # currency): its access check is made once a request.
            key = ("reaches", user.pk, privilege, table.name, row.pk)
            if key not in cache:
                cache[key] = security.reaches(user, privilege, table.name, row, roles)
            reached = cache[key]
        else:
            reached = security.reaches(user, privilege, table.name, row, roles)
        if not reached:
            raise access_denied(user, security.ACCESS_RIGHTS[verb], row, table)


def owned_by(record, user: CrmSystemUser | None) -> None:
    """A new record of a table users own is owned by whoever creates it through the API."""
    if user is not None and hasattr(record, "owner_id") and record.owner_id is None:
        record.owner = user


def bind(
    api: ApiEntity, record, data: dict, cache: dict, user: CrmSystemUser | None = None
) -> set[str]:
    """Set the lookups that the payload binds or clears; the payload keys it took care of.
    With `user`, who must be allowed to bind each record (Append and Append To)."""
    taken: set[str] = set()
    for name, value in data.items():
        navigation_name = _navigation_named(api, name)
        if navigation_name is None:
            continue
        found = api.navigation(navigation_name)
        if found is None:
            raise payload_error(
                api,
                f"An undeclared property '{navigation_name}' which only has property "
                "annotations in the payload but no property value was found in the payload. "
                "In OData, only declared navigation properties and declared named streams can "
                "be represented as properties without values.",
            )
        lookup, navigation = found
        taken.add(name)
        for other in lookup.navigations:
            setattr(record, other.field, None)
        if value is None:
            continue  # disassociated
        if not name.endswith(BIND_SUFFIX):
            # Creating the related record in the same request (deep insert) is Dataverse's
            # too; the demo goes no further than binding existing records.
            raise payload_error(
                api,
                f"The demo CRM binds existing records only: set '{name}{BIND_SUFFIX}' to "
                f"the address of a {navigation.target} record.",
            )
        target = API_ENTITIES[(api.entity.app, navigation.target)]
        found = _bound_record(api, target, name, value, cache)
        if user is not None:
            authorize_append(user, api, record, target, found, cache)
        setattr(record, navigation.field, found)
    if record._state.adding:
        _base_currency_by_default(api, record, data, cache)
    return taken


def _base_currency_by_default(api: ApiEntity, record, data: dict, cache: dict) -> None:
    """A record created without a currency gets the organization's base currency.

    Dataverse gives every record of a table with money columns a transaction currency: the
    creating user's own (Personal Options) or else the organization's base currency
    (Organization.BaseCurrencyId, "Transaction Currency (currency) table"). Its pages do not
    spell out the filling in; the demo's users have no currency of their own, so a new record
    gets the base currency, DEMO_CRM_BASE_CURRENCY, when the CRM has it."""
    found = api.navigation(CURRENCY_NAVIGATION)
    if found is None:
        return
    _, navigation = found
    if getattr(record, f"{navigation.field}_id") is not None or any(
        _navigation_named(api, name) == CURRENCY_NAVIGATION for name in data
    ):
        return  # bound, or cleared on purpose
    target = API_ENTITIES[(api.entity.app, navigation.target)]
    key = ("base currency", settings.DEMO_CRM_BASE_CURRENCY)
    if key not in cache:
        cache[key] = target.model.objects.filter(
            iso_currency_code=settings.DEMO_CRM_BASE_CURRENCY
        ).first()
    setattr(record, navigation.field, cache[key])


def _bound_record(api: ApiEntity, target: ApiEntity, name: str, value: Any, cache: dict):
    """The existing record an `@odata.bind` value refers to."""
    reference = BIND.match(value) if isinstance(value, str) else None
    # What Dataverse says of a reference it cannot read, or to the wrong table, is not in
    # its documentation: these words are the demo's.
    if reference is None:
        raise payload_error(
            api, f"The value of '{name}' must be a record address such as '/{target.name}(<id>)'."
        )
    if reference["entity"] != target.name:
        raise payload_error(
            api,
            f"'{name}' refers to {target.name} records, not to {reference['entity']}.",
        )
    try:
        key = uuid.UUID(reference["id"].strip("'{}"))
    except ValueError:
        raise payload_error(api, f"'{reference['id']}' is not a valid id.") from None
    found = related(target.model, key, cache)
    if found is None:
        raise does_not_exist(target, key)
    return found


def bound_fields(api: ApiEntity, data: dict) -> set[str]:
    """The model fields a payload's binds change (every key of a lookup it sets)."""
    fields: set[str] = set()
    for name in data:
        navigation_name = _navigation_named(api, name)
        found = api.navigation(navigation_name) if navigation_name else None
        if found is not None:
            fields.update(navigation.field for navigation in found[0].navigations)
    return fields


def refuse_lookup_property(api: ApiEntity, name: str) -> None:
    """A lookup property is read-only: its navigation property sets it."""
    lookup = api.lookup(name)
    if lookup is not None:
        setters = " or ".join(f"'{n.name}{BIND_SUFFIX}'" for n in lookup.navigations)
        # Dataverse documents lookup properties as read-only; the words are the demo's.
        raise ApiError(
            400,
            PAYLOAD_ERROR,
            f"The lookup property '{name}' is read-only: set {setters} instead.",
        )


def lookup_keys(api: ApiEntity) -> list[str]:
    """The model's foreign keys behind the lookups, for select_related."""
    return [navigation.field for lookup in api.lookups for navigation in lookup.navigations]


def lookup_condition(api: ApiEntity, name: str, op: str, raw: str) -> Q | None:
    """A `$filter` condition on a lookup property (`_x_value eq <id>`, `eq null`), or None
    when `name` is not one."""
    lookup = api.lookup(name)
    if lookup is None:
        return None
    if op != "eq":
        raise ApiError(
            400, "0x80060888", f"The lookup property '{name}' is compared with eq only here."
        )
    condition = Q()
    if raw == "null":
        for navigation in lookup.navigations:
            condition &= Q(**{f"{navigation.field}__isnull": True})
        return condition
    key = guid(raw)
    for navigation in lookup.navigations:
        condition |= Q(**{f"{navigation.field}_id": key})
    return condition


def lookup_in(api: ApiEntity, name: str, values: list[str]) -> Q | None:
    """Dataverse's In function over a lookup property, or None when `name` is not one."""
    lookup = api.lookup(name)
    if lookup is None:
        return None
    keys = [guid(value) for value in values]
    condition = Q()
    for navigation in lookup.navigations:
        condition |= Q(**{f"{navigation.field}_id__in": keys})
    return condition


def guid(raw: str) -> uuid.UUID:
    """The id a $filter compares a lookup property with."""
    try:
        return uuid.UUID(raw.strip("'{}"))
    except ValueError:
        raise ApiError(400, "0x80060888", f"'{raw}' is not a valid id.") from None
