"""An app's currencies and the exchange rate each has today, as the setup health check and the
cause and fix of a currency entry read them."""

from typing import Any

from django.utils import timezone

from .business_central import exchange_rates
from .odata import ODataConnector


def currency_table(connector: ODataConnector) -> dict[str, tuple[str, Any]]:
    """The app's currency table: code -> (record id, exchange rate in force today). The rate
    is a field of the currency (Dataverse's exchangerate) or, where the app keeps rates apart
    (Business Central's currencyExchangeRates), the one with the latest starting date not
    after today."""
    option = connector.config.option
    code_field, rate_field = option("currency_code_field"), option("exchange_rate_field")
    table: dict[str, tuple[str, Any]] = {}
    for page in connector.list_changes(option("currency_entity"), None):
        for record in page:
            code = str(record.values.get(code_field) or "").strip().upper()
            if code:
                table[code] = (record.id, record.values.get(rate_field) if rate_field else None)
    rate_entity = option("exchange_rate_entity")
    if rate_entity:
        rates = exchange_rates(connector, rate_entity, timezone.localdate())
        table = {code: (record_id, rates.get(code)) for code, (record_id, _) in table.items()}
    return table


def has_rate(rate: Any) -> bool:
    try:
        return rate is not None and float(rate) > 0
    except (TypeError, ValueError):
        return False
