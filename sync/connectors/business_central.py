"""What the connector does with Business Central beyond reading and writing records: a
currency's exchange rates, kept apart as the read-only currencyExchangeRates resource
(currencyCode, startingDate, exchangeRateAmount, relationalExchangeRateAmount,
relationalCurrencyCode; Business Central API v2.0, "currencyExchangeRate resource type"), and
webhook subscriptions at the API root (`api/v2.0/subscriptions`)."""

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit

from .base import Connector, ConnectorError, Sender

RATE_FIELDS = ["currencyCode", "startingDate", "exchangeRateAmount", "relationalExchangeRateAmount"]
# Codes named in one filter of the rates; for more, every rate in force is read (an app has
# a few dozen currencies at most, and the filter must fit in a request line).
MAX_CODES_IN_FILTER = 40


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def exchange_rates(
    connector: Connector, entity: str, on: date, codes: list[str] | None = None
) -> dict[str, Decimal | None]:
    """Each currency's exchange rate in force on `on` (of the currencies `codes` only, when
    given), by upper-case currency code: the rate with the latest starting date not after
    that day, as the app itself picks it, given as units of the currency per unit of the
    relational (or local) currency. None where that rate is not a positive number; a
    currency without any rate in force is left out."""
    latest: dict[str, tuple[str, Decimal | None]] = {}
    condition = f"startingDate le {on.isoformat()}"
    named = sorted({str(code).strip().upper() for code in codes or [] if str(code).strip()})
    if named and len(named) <= MAX_CODES_IN_FILTER:
        literals = ["'" + code.replace("'", "''") + "'" for code in named]
        condition += " and (" + " or ".join(f"currencyCode eq {c}" for c in literals) + ")"
    for page in connector.list_changes(entity, None, condition=condition, select=RATE_FIELDS):
        for record in page:
            code = str(record.values.get("currencyCode") or "").strip().upper()
            starting = str(record.values.get("startingDate") or "")
            if not code or not starting or starting > on.isoformat():
                continue
            if code in latest and latest[code][0] >= starting:
                continue
            amount = _decimal(record.values.get("exchangeRateAmount"))
            relational = _decimal(record.values.get("relationalExchangeRateAmount"))
            rate = (
                amount / relational
                if amount is not None and relational is not None and amount > 0 and relational > 0
                else None
            )
            latest[code] = (starting, rate)
    return {code: rate for code, (_, rate) in latest.items()}


# -- webhook subscriptions ("Working with webhooks in Dynamics 365 Business Central") -------
COMPANY_ROOT = re.compile(r"^(?P<root>.*/)(?P<company>companies\([^()/]*\))/?$")


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription as the app answered it."""

    subscription_id: str
    resource: str
    notification_url: str
    expires_at: datetime | None
    etag: str
    client_state: str = ""


def api_root(connector: Sender) -> str:
    """The API root of a connector whose base URL is a company's (`.../api/v2.0/` of
    `.../api/v2.0/companies(<id>)/`): where subscriptions and `$batch` live."""
    match = COMPANY_ROOT.match(connector.base_url)
    return match["root"] if match else connector.base_url


def resource_path(connector: Sender, entity: str) -> str:
    """The resource a subscription names: the entity set's path from `/api/` on."""
    path = urlsplit(connector.base_url).path
    at = path.find("/api/")
    return (path[at:] if at >= 0 else path) + entity


def _subscription(connector: Sender, body: dict[str, Any]) -> Subscription:
    subscription_id = body.get("subscriptionId")
    if not isinstance(subscription_id, str) or not subscription_id:
        raise ConnectorError(
            f"{connector.app_name} answered a subscription without its subscriptionId.",
            detail=str(body)[:2000],
        )
    expires = body.get("expirationDateTime")
    moment = None
    if isinstance(expires, str):
        try:
            moment = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        except ValueError:
            moment = None
    return Subscription(
        subscription_id,
        str(body.get("resource", "")),
        str(body.get("notificationUrl", "")),
        moment,
        str(body.get("@odata.etag", "")),
        str(body.get("clientState") or ""),
    )


def supported_resources(connector: Sender) -> set[str] | None:
    """The entity sets of this API that notify their changes, as the runtime API lists them
    (`api/microsoft/runtime/beta/companies(<id>)/webhookSupportedResources`); None when the
    app does not say."""
    match = COMPANY_ROOT.match(connector.base_url)
    api = re.search(r"/api/(?P<version>[^/]+/)?(?P<rest>.*)$", match["root"]) if match else None
    if not match or not api:
        return None
    prefix = match["root"][: api.start()]
    version = match["root"][api.start() + len("/api/") :].rstrip("/")
    url = f"{prefix}/api/microsoft/runtime/beta/{match['company']}/webhookSupportedResources"
    try:
        body = connector._send("GET", url, parse=True)
    except ConnectorError as error:
        if error.status in (400, 404):
            return None
        raise
    rows = body.get("value")
    if not isinstance(rows, list):
        return None
    names = set()
    for row in rows:
        resource = str(row.get("resource", "")) if isinstance(row, dict) else ""
        owner, _, name = resource.rpartition("/")
        if owner == version and name:
            names.add(name)
    return names


def subscribe(
    connector: Sender, entity: str, notification_url: str, client_state: str
) -> Subscription:
    """Create a subscription to the changes of `entity` (the app first asks
    `notification_url` for the handshake)."""
    body = connector._send(
        "POST",
        api_root(connector) + "subscriptions",
        json={
            "notificationUrl": notification_url,
            "resource": resource_path(connector, entity),
            "clientState": client_state,
        },
        parse=True,
    )
    return _subscription(connector, body)


def renew(
    connector: Sender,
    subscription_id: str,
    etag: str,
    notification_url: str,
    client_state: str,
) -> Subscription:
    """Renew a subscription for three more days: PATCH with its etag (another handshake)."""
    body = connector._send(
        "PATCH",
        f"{api_root(connector)}subscriptions('{quote(subscription_id, safe='')}')",
        json={"notificationUrl": notification_url, "clientState": client_state},
        headers={"If-Match": etag or "*"},
        parse=True,
    )
    return _subscription(connector, body)


def get_subscription(connector: Sender, subscription_id: str) -> Subscription | None:
    """The subscription as the app has it now; None when it is gone (expired or deleted)."""
    try:
        body = connector._send(
            "GET",
            f"{api_root(connector)}subscriptions('{quote(subscription_id, safe='')}')",
            parse=True,
        )
    except ConnectorError as error:
        if error.is_not_found:
            return None
        raise
    return _subscription(connector, body)


def unsubscribe(connector: Sender, subscription_id: str) -> None:
    """Delete a subscription; one that is gone already is fine."""
    try:
        connector._send(
            "DELETE", f"{api_root(connector)}subscriptions('{quote(subscription_id, safe='')}')"
        )
    except ConnectorError as error:
        if not error.is_not_found:
            raise
