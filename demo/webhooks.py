"""Change notifications from the demo apps to whoever subscribed, after the change commits."""

import logging
import threading
from datetime import UTC, datetime

import httpx
from django.db import transaction

from .models import DemoWebhook

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5


def _post(url: str, payload: dict) -> None:
    try:
        httpx.post(url, json=payload, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        logger.warning("Change notification to %s failed: %s", url, exc)


def notify_change(app: str, entity: str, record_id) -> None:
    notify_changes(app, entity, [record_id])


def notify_changes(app: str, entity: str, record_ids: list) -> None:
    """Announce each changed record to the table's subscribers (one look-up for them all)."""
    subscriptions = list(DemoWebhook.objects.filter(app=app, entity=entity))
    if not subscriptions or not record_ids:
        return
    changed_on = datetime.now(UTC).isoformat()

    def send() -> None:
        for subscription in subscriptions:
            for record_id in record_ids:
                payload = {
                    "app": app,
                    "resource": entity,
                    "id": str(record_id),
                    "changeType": "updated",
                    "lastModifiedDateTime": changed_on,
                    "clientState": subscription.client_state,
                }
                # Never hold up the app's own answer for a subscriber.
                threading.Thread(
                    target=_post, args=(subscription.notification_url, payload), daemon=True
                ).start()

    transaction.on_commit(send)
