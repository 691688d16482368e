"""Subscribing to the apps' change notifications, and renewing the subscriptions before they
expire.

Business Central takes webhook subscriptions through its API (`POST api/v2.0/subscriptions`
with the notification URL, the resource and the client state); it asks the console for a
handshake first, and a subscription expires after three days unless it is renewed (PATCH
with its etag, and another handshake). Not every resource notifies: those the app lists as
webhook-supported only. Each subscription is kept as a ChangeSubscription, with its expiry
and the last failure, so the connection's page shows it. Dataverse's webhooks are registered
by an administrator with the Plug-in Registration tool, not here."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from .connectors import ConnectorError, connector_for
from .connectors import business_central as bc
from .connectors.odata import BUSINESS_CENTRAL
from .models import ChangeSubscription, Connection

logger = logging.getLogger(__name__)
SIDES = ("source", "destination")
# A subscription is renewed when it has less than this left (Business Central's last three
# days; the beat task runs every few hours).
RENEW_BEFORE = timedelta(days=1)


def notification_url(connection: Connection, side: str, console_url: str | None = None) -> str:
    """Where the app posts the side's notifications: the side's `notification_url` setting,
    else the console's address (SYNC_CONSOLE_URL, or `console_url`) and the receiver's path."""
    configured = connection.side_config(side).option("notification_url")
    if configured:
        return str(configured)
    base = (console_url or settings.SYNC_CONSOLE_URL).rstrip("/")
    return base + reverse("sync:notification", args=[connection.pk, side])


def _wanted(connection: Connection, side: str) -> set[str]:
    if not connection.is_enabled:
        return set()
    return set(connection.mappings.filter(is_enabled=True).values_list(f"{side}_entity", flat=True))


def keep_subscribed(
    connection: Connection, *, console_url: str | None = None, now: datetime | None = None
) -> list[ChangeSubscription]:
    """Subscribe to the changes of every table an enabled mapping reads from a Business
    Central side, renew the subscriptions that expire within RENEW_BEFORE or no longer carry
    the connection's secret, subscribe anew where the app dropped one, and delete those no
    mapping needs any more. A failure is kept on its subscription (and logged), never
    raised: the schedule picks the changes up meanwhile."""
    now = now or timezone.now()
    kept: list[ChangeSubscription] = []
    for side in SIDES:
        if getattr(connection, f"{side}_flavor") != BUSINESS_CENTRAL:
            continue
        wanted = _wanted(connection, side)
        existing = {s.entity: s for s in connection.change_subscriptions.filter(side=side)}
        if not wanted and not existing:
            continue
        url = notification_url(connection, side, console_url)
        with connector_for(connection, side) as connector:
            try:
                supported = bc.supported_resources(connector)
            except ConnectorError as error:
                logger.warning("Could not read the webhook resources of %s: %s", connection, error)
                supported = None
            for entity in sorted(wanted):
                subscription = existing.pop(entity, None) or ChangeSubscription(
                    connection=connection, side=side, entity=entity
                )
                kept.append(_keep(connector, subscription, url, supported, now))
            for subscription in existing.values():
                _drop(connector, subscription)
    return kept


def _keep(connector, subscription, url, supported, now) -> ChangeSubscription:
    token = subscription.connection.notification_token()
    subscription.resource = bc.resource_path(connector, subscription.entity)
    if supported is not None and subscription.entity not in supported:
        subscription.status = ChangeSubscription.Status.UNSUPPORTED
        subscription.message = (
            f"{connector.app_name} does not notify changes of {subscription.entity}; the "
            "scheduled synchronization picks them up."
        )
        subscription.save()
        return subscription
    fresh = (
        subscription.status == ChangeSubscription.Status.ACTIVE
        and subscription.subscription_id
        and subscription.expires_at is not None
        and subscription.expires_at - now > RENEW_BEFORE
        and subscription.notification_url == url
    )
    try:
        answer = None
        if fresh:
            # Still there, with this connection's secret? (The app drops a subscription whose
            # subscriber refused a notification; a new SECRET_KEY changes the secret.)
            current = bc.get_subscription(connector, subscription.subscription_id)
            if current is not None and current.client_state == token:
                return subscription
            if current is None:
                subscription.subscription_id = ""
        if subscription.subscription_id:
            try:
                answer = bc.renew(
                    connector, subscription.subscription_id, subscription.etag, url, token
                )
            except ConnectorError as error:
                if not error.is_not_found:
                    raise
                # It expired or the app deleted it: subscribe anew.
        renewed = answer is not None
        if answer is None:
            answer = bc.subscribe(connector, subscription.entity, url, token)
    except ConnectorError as error:
        subscription.status = ChangeSubscription.Status.FAILED
        subscription.message = f"{connector.app_name} refused the subscription: {error.message}"[
            :2000
        ]
        subscription.save()
        logger.warning("Subscription to %s failed: %s", subscription.entity, error)
        return subscription
    subscription.status = ChangeSubscription.Status.ACTIVE
    subscription.subscription_id = answer.subscription_id
    subscription.notification_url = url
    subscription.etag = answer.etag
    subscription.expires_at = answer.expires_at
    subscription.renewed_at = now
    subscription.message = "Renewed." if renewed else "Subscribed."
    subscription.save()
    return subscription


def _drop(connector, subscription: ChangeSubscription) -> None:
    if subscription.subscription_id:
        try:
            bc.unsubscribe(connector, subscription.subscription_id)
        except ConnectorError as error:
            logger.warning(
                "Could not delete the subscription to %s: %s", subscription.entity, error
            )
            return
    subscription.delete()


def keep_every_connection_subscribed() -> int:
    """The beat task's work: every connection's subscriptions made, renewed or dropped."""
    count = 0
    for connection in Connection.objects.all():
        count += len(keep_subscribed(connection))
    return count
