"""The API's exception handler: DRF's, with the request id in its 404 and 5xx answers, as
in those of a path no route matches and of a server error (api.views)."""

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler


def handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    # Only the answers of one `detail`: those of a message per field keep their shape.
    if response is None or not isinstance(response.data, dict) or "detail" not in response.data:
        return response
    if response.status_code == 404 or response.status_code >= 500:
        request = context.get("request")
        response.data["request_id"] = getattr(request, "request_id", "")
    return response
