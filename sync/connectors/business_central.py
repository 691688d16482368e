"""What Business Central keeps apart from the records the sync reads: a currency's exchange
rates are the read-only currencyExchangeRates resource (currencyCode, startingDate,
exchangeRateAmount, relationalExchangeRateAmount, relationalCurrencyCode), not a field of the
currency (Business Central API v2.0, "currencyExchangeRate resource type")."""

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import Connector

RATE_FIELDS = ["currencyCode", "startingDate", "exchangeRateAmount", "relationalExchangeRateAmount"]


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def exchange_rates(connector: Connector, entity: str, on: date) -> dict[str, Decimal | None]:
    """Each currency's exchange rate in force on `on`, by upper-case currency code: the rate
    with the latest starting date not after that day, as the app itself picks it, given as
    units of the currency per unit of the relational (or local) currency. None where that
    rate is not a positive number."""
    latest: dict[str, tuple[str, Decimal | None]] = {}
    condition = f"startingDate le {on.isoformat()}"
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
