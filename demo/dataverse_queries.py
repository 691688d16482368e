"""The Dataverse Web API's query syntax on the demo CRM, beyond plain OData: the `In` query
function (PropertyValues a JSON array of strings, either parameter an alias), `$select` that
refuses a property the table does not have, and the many-to-many relationships of its
security tables (systemuserroles_association, teamroles_association,
teammembership_association), read as collection-valued navigation properties
(`systemusers(<id>)/systemuserroles_association`) or with `$expand`. Lookups (`_x_value`,
`@odata.bind`, their annotations) are in demo/dataverse.py."""

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import CharField, Q, TextField
from django.db.models.functions import Upper
from django.db.models.lookups import Exact, In

from . import dataverse
from .api_schema import API_ENTITIES, ApiEntity
from .errors import ApiError
from .odata_syntax import split_top_level

IN_FUNCTION = "Microsoft.Dynamics.CRM.In("
# The most values one In function may have in the demo (Dataverse documents no limit).
MAX_IN_VALUES = 500
# Dataverse's words when PropertyValues is not a JSON array of strings, e.g. a value with an
# apostrophe in single quotes ('O''Brien'): "Filter rows using OData", Manage single quotes.
COMMA_EXPECTED = (
    "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two elements in "
    "an array and properties of an object must be separated by commas."
)
QUERY_ERROR = "0x80060888"  # the code Dataverse gives an OData query it cannot take


def unsupported(expression: str) -> ApiError:
    return ApiError(400, QUERY_ERROR, f"The $filter expression '{expression}' is not supported.")


def unknown_property(api: ApiEntity, name: str) -> ApiError:
    """Dataverse's answer for a property its table does not have ("Troubleshoot Dataverse
    Web API client errors")."""
    return ApiError(
        400,
        "0x0",
        f"Could not find a property named '{name}' on type "
        f"'Microsoft.Dynamics.CRM.{api.logical_name}'.",
    )


# -- the In function -----------------------------------------------------------------------------
def _odata_string(raw: str, expression: str) -> str:
    raw = raw.strip()
    if len(raw) < 2 or raw[0] != "'" or raw[-1] != "'" or "'" in raw[1:-1].replace("''", ""):
        raise unsupported(expression)
    return raw[1:-1].replace("''", "'")


ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
           "t": "\t"}  # fmt: skip


def _json_string(raw: str, start: int) -> tuple[str, int]:
    """The string that opens at `start` (in double quotes, or single ones as Dataverse also
    takes), with JSON's backslash escapes, and the index after it."""
    quote, i = raw[start], start + 1
    text: list[str] = []
    while i < len(raw):
        char = raw[i]
        if char == quote:
            return "".join(text), i + 1
        if char == "\\":
            code = raw[i + 1 : i + 2]
            if code == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", raw[i + 2 : i + 6]):
                text.append(chr(int(raw[i + 2 : i + 6], 16)))
                i += 6
                continue
            if code not in ESCAPES:
                # Beyond the documentation: its words for a bad escape are not published.
                raise ApiError(400, QUERY_ERROR, "Invalid JSON. Bad JSON escape sequence.")
            text.append(ESCAPES[code])
            i += 2
            continue
        text.append(char)
        i += 1
    raise ApiError(400, QUERY_ERROR, "Invalid JSON. Unterminated string in scope 'Array'.")


def string_array(raw: str) -> list[str]:
    """PropertyValues: a JSON array of strings, `["a","b"]`."""
    raw = raw.strip()
    if not raw.startswith("["):
        raise ApiError(400, QUERY_ERROR, "Invalid JSON. PropertyValues must be an array.")
    values: list[str] = []
    i = _space(raw, 1)
    if raw[i : i + 1] == "]":
        i += 1
    else:
        while True:
            if raw[i : i + 1] not in ('"', "'"):
                found = raw[i : i + 1] or "the end"
                raise ApiError(
                    400,
                    QUERY_ERROR,
                    f"Invalid JSON. Unexpected character encountered while parsing value: {found}.",
                )
            value, i = _json_string(raw, i)
            values.append(value)
            i = _space(raw, i)
            if raw[i : i + 1] == ",":
                i = _space(raw, i + 1)
                continue
            if raw[i : i + 1] == "]":
                i += 1
                break
            raise ApiError(400, QUERY_ERROR, COMMA_EXPECTED)
    if raw[i:].strip():
        raise ApiError(400, QUERY_ERROR, COMMA_EXPECTED)
    return values


def _space(raw: str, i: int) -> int:
    while i < len(raw) and raw[i].isspace():
        i += 1
    return i


def in_function(expression: str, aliases: Mapping[str, str]) -> tuple[str, list[str]]:
    """The property and the values of `Microsoft.Dynamics.CRM.In(PropertyName='name',
    PropertyValues=["a","b"])`; either parameter may be an alias (`PropertyName=@p1` with
    `&@p1='name'` in the query)."""
    if not (expression.startswith(IN_FUNCTION) and expression.endswith(")")):
        raise unsupported(expression)
    parameters: dict[str, str] = {}
    for part in split_top_level(expression[len(IN_FUNCTION) : -1], ","):
        name, equals, value = part.partition("=")
        if not equals or name.strip() not in ("PropertyName", "PropertyValues"):
            raise unsupported(expression)
        value = value.strip()
        if value.startswith("@"):
            if value not in aliases:
                raise ApiError(400, QUERY_ERROR, f"The parameter alias '{value}' has no value.")
            value = aliases[value]
        parameters[name.strip()] = value
    if set(parameters) != {"PropertyName", "PropertyValues"}:
        raise unsupported(expression)
    values = string_array(parameters["PropertyValues"])
    if len(values) > MAX_IN_VALUES:
        raise ApiError(400, QUERY_ERROR, f"The In function takes at most {MAX_IN_VALUES} values.")
    return _odata_string(parameters["PropertyName"], expression), values


def is_text(api: ApiEntity, name: str) -> bool:
    """Whether the property holds text (a string column of a Dataverse table)."""
    field = api.model._meta.get_field(api.fields[name])
    return api.entity.app == "crm" and isinstance(field, CharField | TextField)


def text_equals(field: str, values: list[str]) -> Q:
    """Dataverse compares text without regard to case (its database's collation is case
    insensitive: "Query data using the Web API", Filter rows). The demo compares upper-case
    forms, which the demo tables index."""
    upper = Upper(field)
    if len(values) == 1:
        return Q(Exact(upper, values[0].upper()))
    return Q(In(upper, [value.upper() for value in values]))


def in_filter(api: ApiEntity, expression: str, aliases: Mapping[str, str]) -> Q:
    """The records whose property holds any of the In function's values."""
    name, values = in_function(expression, aliases)
    on_lookup = dataverse.lookup_in(api, name, values)
    if on_lookup is not None:
        return on_lookup
    if name == api.key or (name in api.fields and api.is_column_lookup(name)):
        try:
            ids = [uuid.UUID(value.strip("{}")) for value in values]
        except ValueError:
            raise ApiError(400, QUERY_ERROR, "A value is not a valid id.") from None
        field = "pk" if name == api.key else api.model._meta.get_field(api.fields[name]).attname
        return Q(**{f"{field}__in": ids})
    if name not in api.fields:
        raise unknown_property(api, name)
    field = api.model._meta.get_field(api.fields[name])
    try:
        typed = [field.to_python(value) for value in values]
    except ValidationError:
        raise ApiError(400, QUERY_ERROR, f"A value is not a valid {name}.") from None
    if is_text(api, name):
        return text_equals(field.name, typed)
    return Q(**{f"{field.name}__in": typed})


# -- many-to-many relationships ------------------------------------------------------------------
@dataclass(frozen=True)
class CollectionNavigation:
    """A collection-valued navigation property: the model's relation and the entity set of
    the records it leads to."""

    accessor: str
    target: str


NAVIGATIONS: dict[tuple[str, str], CollectionNavigation] = {
    ("systemusers", "systemuserroles_association"): CollectionNavigation("roles", "roles"),
    ("systemusers", "teammembership_association"): CollectionNavigation("teams", "teams"),
    ("teams", "teamroles_association"): CollectionNavigation("roles", "roles"),
    ("teams", "teammembership_association"): CollectionNavigation("members", "systemusers"),
    ("roles", "systemuserroles_association"): CollectionNavigation("users", "systemusers"),
    ("roles", "teamroles_association"): CollectionNavigation("teams", "teams"),
}


def navigation(api: ApiEntity, name: str) -> CollectionNavigation:
    try:
        return NAVIGATIONS[(api.name, name)]
    except KeyError:
        found = api.navigation(name)
        if found is not None:
            # Beyond the demo: Dataverse expands a lookup's single-valued navigation property
            # too; the demo names the related record through the lookup's annotations.
            raise ApiError(
                400,
                QUERY_ERROR,
                f"The demo CRM does not expand the lookup '{name}': select "
                f"'{found[0].property}' with Prefer: odata.include-annotations instead.",
            ) from None
        raise unknown_property(api, name) from None


def check_select(api: ApiEntity, select: list[str]) -> None:
    """Refuse a `$select` of a property the table does not have (a navigation property
    included: its lookup property is the one to select), whatever the records found."""
    known = {api.key, api.modified, *api.fields, *(lookup.property for lookup in api.lookups)}
    for name in select:
        if name not in known:
            raise unknown_property(api, name)


def selected(api: ApiEntity, record: dict, select: list[str]) -> dict:
    """The record's `$select`ed properties, with its key and modified time; its version
    (`@odata.etag`) and a selected property's annotations come with them."""
    if not select:
        return record
    keep = {*select, api.key, api.modified}
    return {
        name: value
        for name, value in record.items()
        if name == "@odata.etag" or name.split("@")[0] in keep
    }


def select_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


@dataclass(frozen=True)
class Expansion:
    name: str
    navigation: CollectionNavigation
    select: list[str]


EXPAND_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*", re.DOTALL)


def expansions(api: ApiEntity, text: str) -> list[Expansion]:
    """The `$expand` of the security tables' many-to-many relationships, each with its own
    `$select`: `systemuserroles_association($select=name),teammembership_association`."""
    found: list[Expansion] = []
    if not text.strip():
        return found
    for item in split_top_level(text, ","):
        match = EXPAND_ITEM.fullmatch(item)
        if not match:
            raise ApiError(400, QUERY_ERROR, f"The $expand '{item.strip()}' is not valid.")
        link, select = navigation(api, match[1]), []
        for option in split_top_level(match[2] or "", ";"):
            key, _, value = option.strip().partition("=")
            if not key:
                continue
            if key == "$select":
                select = select_list(value)
                check_select(API_ENTITIES[("crm", link.target)], select)
            elif key == "$expand":
                # "Join tables using OData": nested $expand is not supported on a
                # many-to-many relationship.
                raise ApiError(
                    400,
                    QUERY_ERROR,
                    "Nested $expand is not supported on a many-to-many relationship.",
                )
            else:
                # Beyond the demo: Dataverse also takes $filter, $orderby and $top here.
                raise ApiError(400, QUERY_ERROR, f"The demo CRM does not take {key} in $expand.")
        found.append(Expansion(match[1], link, select))
    return found


def expand(
    record,
    data: dict,
    wanted: list[Expansion],
    authorize: Callable[[str], None],
    annotations: Callable[[str], bool] | None = None,
) -> dict:
    """The record's data with each expanded relationship as a list of related records."""
    for expansion in wanted:
        target = API_ENTITIES[("crm", expansion.navigation.target)]
        authorize(target.name)
        related = getattr(record, expansion.navigation.accessor).all()
        data[expansion.name] = [
            selected(target, target.to_api(row, annotations), expansion.select) for row in related
        ]
    return data
