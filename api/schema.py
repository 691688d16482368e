"""How the OpenAPI description names the API's token authentication and the refusals any
operation may answer, and how it gives exactly what the API reads: request bodies with no
field but those described (`additionalProperties: false`), in one of their forms
(`oneOf`), and the filters' query parameters as api.filters checks them."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance

from .fields import Form, StrictSerializer, TextField
from .filters import ApiFilterBackend, parameters_of
from .pagination import KeysetPagination


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token's key (manage.py create_api_token).",
        }


# What any operation may answer besides what it declares, so that the description is
# complete: a client can rely on every status code it meets being there.
COMMON_REFUSALS = {
    "400": "The parameters or the body are not valid: a message per field, or a detail.",
    "401": "No valid API token (or console session).",
    "403": "The account's role does not allow this.",
    "404": "No such object.",
    "429": "Too many wrong API tokens from this address: every token is refused until the "
    "lock ends (Retry-After says in how many seconds).",
}
PAGE_NOT_FOUND = "No such object, or a page link (`before`, `after`) that names no page."
REFUSAL_BODY = {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}


def _limited(schema: dict, values: tuple) -> dict:
    """A property's schema limited to these values. The enum is put in an allOf, where
    drf-spectacular leaves it be: it would make a named component of each, and name
    alike the [false] of `all`, `dry_run` and `all_skipped`."""
    boolean = all(isinstance(value, bool) for value in values)
    enum = {
        "type": "boolean" if boolean else "string",
        "enum": [value if isinstance(value, bool) else str(value) for value in values],
    }
    limited: dict = {"allOf": [enum]}
    # A choice list drf-spectacular wrote would name values this form does not take.
    if "description" in schema and not schema["description"].startswith("* `"):
        limited["description"] = schema["description"]
    return limited


def _in_forms(schema: dict, forms: tuple[Form, ...]) -> dict:
    properties = schema.pop("properties", {})
    schema.pop("required", None)
    # Each form is an object; drf-spectacular would drop an object without properties.
    schema.pop("type", None)
    schema["oneOf"] = [
        {
            "type": "object",
            "properties": {
                name: _limited(properties[name], form.values[name])
                if name in form.values
                else properties[name]
                for name in form.fields
            },
            "required": list(form.required),
            "additionalProperties": False,
        }
        for form in forms
    ]
    return schema


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        has_path_id = "{" in self.path
        paged = self._is_list_view() and isinstance(self._get_paginator(), KeysetPagination)
        for code, description in COMMON_REFUSALS.items():
            if code == "404":
                if paged:
                    description = PAGE_NOT_FOUND
                elif not has_path_id:
                    continue
            responses.setdefault(code, {"description": description, "content": REFUSAL_BODY})
        return responses

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        # Every body the API reads must be sent: none of them is valid empty.
        if body is not None:
            body["required"] = True
        return body

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        serializer = force_instance(serializer)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            if serializer.forms:
                schema = _in_forms(schema, serializer.forms)
            else:
                schema["additionalProperties"] = False
        return schema

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        # drf-spectacular adds "or empty" to a pattern of a text that may be blank; the
        # patterns of TextField say themselves whether it may be (the empty text would match
        # both sides of that oneOf, and so neither).
        if isinstance(field, TextField) and "oneOf" in schema:
            inner, _ = schema.pop("oneOf")
            schema.update(inner)

    def _get_filter_parameters(self):
        filterset_class = getattr(self.view, "filterset_class", None)
        backends = self.get_filter_backends()
        if filterset_class is None or not any(
            issubclass(backend, ApiFilterBackend) for backend in backends
        ):
            return super()._get_filter_parameters()
        return [
            {
                "name": parameter.name,
                "in": "query",
                "required": False,
                "schema": parameter.schema,
                **({"description": parameter.description} if parameter.description else {}),
            }
            for parameter in parameters_of(filterset_class)
        ]
