"""What a demo app answers when a fault is switched on for it (Demo faults, in the Django
admin): each app's own documented answer to that failure.

Switching a failure on is the demo's own device, beyond anything Microsoft documents; the
answers are the documented ones:

- Dataverse's service protection limits ("Service protection API limits",
  https://learn.microsoft.com/power-apps/developer/data-platform/api-limits): 429 Too Many
  Requests with a Retry-After in seconds and, in the Web API, the hexadecimal code and message
  of the limit: 0x80072322 for the number of requests (6,000 in 5 minutes), 0x80072321 for the
  combined execution time (20 minutes in 5 minutes), 0x80072326 for concurrent requests (52).
- Business Central's API limits ("Working with API limits in Dynamics 365 Business Central",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-rate-limits,
  and "Operational Limits for Business Central Online",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/administration/operational-limits-online):
  429 Too Many Requests, with or without a Retry-After (its documentation promises none, so
  the fault's `retry_after` may be left empty); 504 Gateway Timeout for a request that runs
  longer than its limit; 408 Request Timeout for the operation timeout. The error code and
  words of Business Central's 429 body (Application_TooManyRequests) are not in its
  documentation: they are what the service answers.
- 503 Service Unavailable with a Retry-After (RFC 9110 section 15.6.4), and an answer that is
  not JSON, are generic failures of any web service."""

import time

from django.http import HttpResponse

from .errors import ApiError, error_response
from .models import DemoFault

Mode = DemoFault.Mode

DATAVERSE_LIMITS: dict[str, tuple[str, str]] = {
    Mode.THROTTLE: (
        "0x80072322",
        "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    ),
    Mode.THROTTLE_EXECUTION_TIME: (
        "0x80072321",
        "Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds "
        "over time window of 300 seconds. Decrease number of concurrent requests or reduce the "
        "duration of requests and try again later.",
    ),
    Mode.THROTTLE_CONCURRENCY: (
        "0x80072326",
        "Number of concurrent requests exceeded the limit of 52.",
    ),
}
BUSINESS_CENTRAL_TOO_MANY = (
    "Application_TooManyRequests",
    "Too many requests reached. Actual (101). Maximum (100).",
)


def answer(fault: DemoFault) -> HttpResponse:
    """The answer of the app the fault is switched on for."""
    retry_after = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    if fault.mode == Mode.TIMEOUT:
        time.sleep(fault.delay_seconds)
        return error_response(ApiError(504, "GatewayTimeout", "The operation has timed out."))
    if fault.mode == Mode.REQUEST_TIMEOUT:
        return error_response(
            ApiError(408, "RequestTimeout", "The request took longer than the operation timeout.")
        )
    if fault.mode in DATAVERSE_LIMITS:
        code, message = (
            DATAVERSE_LIMITS[fault.mode] if fault.app == "crm" else BUSINESS_CENTRAL_TOO_MANY
        )
        return error_response(ApiError(429, code, message, retry_after))
    if fault.mode == Mode.UNAVAILABLE:
        return error_response(
            ApiError(
                503, "ServiceUnavailable", "The service is temporarily unavailable.", retry_after
            )
        )
    if fault.mode == Mode.GARBAGE:
        return HttpResponse('{"value": [{"id": ', content_type="application/json")
    return error_response(ApiError(500, "InternalServerError", "An unexpected error occurred."))
