"""Optimistic concurrency in the demo apps: each record has a version, its entity tag, given
as `@odata.etag` with every record read and as the ETag header of an answer about one
record; an update or delete that sends If-Match with another version is refused.

- Dataverse ("Perform conditional operations using the Web API",
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api):
  a weak `@odata.etag` (`W/"468026"`) on every record; PATCH and DELETE with If-Match and an
  entity tag that is not the current one answer 412 Precondition Failed, "The version of the
  existing record doesn't match the RowVersion property provided."; If-Match: * on PATCH
  updates only an existing record (404 otherwise), and PATCH without If-Match creates a
  missing record (an upsert).
- Business Central ("Update customers" and "Delete customers",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/api/dynamics_customer_update,
  and "Error Codes",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-error-codes):
  If-Match is required on PATCH and DELETE; without a token the request is refused with
  BadRequest_InvalidToken ("Could not validate the client concurrency token required by the
  service. ..."), and with an entity tag that no longer matches the record is not changed,
  Request_EntityChanged ("Another user has already changed the record."). Its documentation
  names no status for that refusal; the demo answers 412 Precondition Failed, as the OData
  protocol (part 1, section 8.2.1, If-Match) requires of a service that does not match.

The version is derived from the record's modified time, which every save moves on."""

import base64
from datetime import datetime

from django.http import HttpRequest

from .errors import ApiError

ERP_TOKEN_REQUIRED = ApiError(
    400,
    "BadRequest_InvalidToken",
    "Could not validate the client concurrency token required by the service. Please provide a "
    "valid token in the client request.",
)
ERP_CHANGED = ApiError(412, "Request_EntityChanged", "Another user has already changed the record.")
CRM_CHANGED = ApiError(
    412, "", "The version of the existing record doesn't match the RowVersion property provided."
)


def etag(app: str, modified: datetime) -> str:
    """The entity tag of a record last modified at `modified`, in its app's style: a version
    number in Dataverse's, an opaque token in Business Central's."""
    version = int(modified.timestamp() * 1_000_000)
    if app == "crm":
        return f'W/"{version}"'
    token = base64.b64encode(f"'{len(str(version))};{version};'".encode()).decode()
    return f'W/"{token}"'


def _opaque(tag: str) -> str:
    """An entity tag without its weakness indicator: two tags match when these are equal
    (the weak comparison both apps make)."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def check_if_match(request: HttpRequest, app: str, current: str) -> None:
    """Refuse an update or delete of the record whose entity tag is `current` unless its
    If-Match allows it: `*`, or a list of entity tags among which is the current one."""
    header = request.headers.get("If-Match")
    if header is None or not header.strip():
        if app == "erp":
            raise ERP_TOKEN_REQUIRED
        return  # Dataverse writes whatever version there is
    if header.strip() == "*":
        return
    wanted = _opaque(current)
    if any(_opaque(tag) == wanted for tag in header.split(",")):
        return
    raise ERP_CHANGED if app == "erp" else CRM_CHANGED
