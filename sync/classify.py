"""Which category a failure belongs to, from what the app answered."""

from errors.models import Category

from .connectors import ConnectorError

CURRENCY_WORDS = ("currency", "exchange rate")


def classify(error: ConnectorError, *, coupled_record_missing: bool = False) -> str:
    message = error.message.lower()
    if coupled_record_missing:
        return Category.COUPLED_RECORD_DELETED
    if error.is_sign_in_failure:  # 401, a token endpoint's refusal, an unreadable secret
        if "disabled" in message:
            return Category.INTEGRATION_USER
        return Category.AUTHENTICATION
    if error.status == 403:
        return Category.PERMISSION
    if error.changed_since_read:
        # The record changed between the job's read and its write: changed on both sides.
        return Category.CONFLICT
    if error.transient:
        return Category.CONNECTION
    if error.status in (400, 409, 412, 422):
        if any(word in message for word in CURRENCY_WORDS):
            return Category.CURRENCY
        return Category.VALIDATION
    if error.status is not None and error.status >= 500:
        return Category.CONNECTION
    return Category.OTHER
