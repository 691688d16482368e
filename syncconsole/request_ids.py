"""A request id for every request: the one a proxy sent in X-Request-ID when it is safe to
repeat, else a new one. Bound to every line logged while the request is served, answered in
the X-Request-ID header and shown on the error pages, so a person can quote it."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from . import logs

HEADER = "X-Request-ID"
SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")
logger = logging.getLogger("syncconsole.requests")


def request_id_of(value: str | None) -> str:
    """The incoming id when it is 1-64 letters, digits, dots, dashes or underscores (so it
    cannot forge log fields or headers), else a new one."""
    if value and SAFE.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.monotonic()
        with logs.bound(request_id=request_id):
            response = self.get_response(request)
            response[HEADER] = request_id
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    # The path only: a query string may carry what must not be logged.
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "user_id": _user_id(request),
                },
            )
        return response


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in person's id when the request already looked them up: the request line
    costs no query of its own."""
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    return user.pk if user.is_authenticated else None
