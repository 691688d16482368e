"""How the OpenAPI description names the API's token authentication, and the refusals any
operation may answer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


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
}
REFUSAL_BODY = {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        has_path_id = "{" in self.path
        for code, description in COMMON_REFUSALS.items():
            if code == "404" and not has_path_id:
                continue
            responses.setdefault(code, {"description": description, "content": REFUSAL_BODY})
        return responses
