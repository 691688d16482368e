"""Subscribing to the apps' change notifications, and keeping the subscriptions there.

- Business Central takes webhook subscriptions through its API (`POST api/v2.0/subscriptions`
  with the notification URL, the resource and the client state); it asks the console for a
  handshake first, and a subscription expires after three days unless it is renewed (PATCH
  with its etag, and another handshake). Not every resource notifies: those the app lists as
  webhook-supported only.
- Dataverse posts to a webhook registered through its Web API, as the Plug-in Registration
  tool registers one (sync/connectors/dataverse_webhooks.py): one service endpoint per side of
  a connection, with the connection's secret as its key, and an asynchronous step on Create,
  Update and Delete of each mapped table. Registering again finds the webhook by its address
  or its name and reuses it and its steps. A table without a message filter for a message
  does not notify it.

Each table's subscription is kept as a ChangeSubscription, with its state and the last
failure, so the connection's page shows it; a table no enabled mapping reads any more is
unsubscribed in the app."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from audit import services as audit

from .connectors import ConnectorError, connector_for
from .connectors import business_central as bc
from .connectors import dataverse_webhooks as webhooks
from .connectors.odata import BUSINESS_CENTRAL, DATAVERSE, FLAVORS
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


def _side_state(
    connection: Connection, side: str
) -> tuple[set[str], dict[str, ChangeSubscription]]:
    """The tables the side's notifications are wanted for, and its subscriptions by table."""
    existing = {s.entity: s for s in connection.change_subscriptions.filter(side=side)}
    return _wanted(connection, side), existing


def keep_subscribed(
    connection: Connection, *, console_url: str | None = None, now: datetime | None = None
) -> list[ChangeSubscription]:
    """Subscribe to the changes of every table an enabled mapping reads, on each side: renew
    Business Central's subscriptions that expire within RENEW_BEFORE or no longer carry the
    connection's secret and subscribe anew where the app dropped one; register Dataverse's
    webhook and its steps where they are missing. Unsubscribe the tables no mapping needs
    any more. A failure is kept on its subscription (and logged), never raised: the
    schedule picks the changes up meanwhile."""
    now = now or timezone.now()
    kept: list[ChangeSubscription] = []
    for side in SIDES:
        flavor = getattr(connection, f"{side}_flavor")
        if flavor == BUSINESS_CENTRAL:
            kept += _keep_business_central(connection, side, console_url, now)
        elif flavor == DATAVERSE:
            kept += _keep_dataverse(connection, side, console_url, now)
    return kept


def _keep_business_central(
    connection: Connection, side: str, console_url: str | None, now: datetime
) -> list[ChangeSubscription]:
    wanted, existing = _side_state(connection, side)
    if not wanted and not existing:
        return []
    url = notification_url(connection, side, console_url)
    kept: list[ChangeSubscription] = []
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


# -- Dataverse: the side's webhook and its steps -----------------------------------------------
MESSAGES = ("Create", "Update", "Delete")


def webhook_name(connection: Connection, side: str) -> str:
    """The name the side's webhook is registered under (and found by, with its address)."""
    return f"Sync Console: {connection.name} ({side})"[:256]


def logical_name(connection: Connection, side: str, entity: str) -> str:
    """The logical name of a Dataverse table from its entity set: its key field without `id`
    (accountid: account), as the side's conventions give it; else the entity set's
    singular."""
    options = connection.side_config(side).option("key_fields") or {}
    key_fields = {**FLAVORS[DATAVERSE]["key_fields"], **options}
    key = str(key_fields.get(entity, ""))
    if key.endswith("id") and len(key) > 2:
        return key[:-2]
    if entity.endswith("ies"):
        return entity[:-3] + "y"
    return entity.removesuffix("s")


def _listing(messages: list[str]) -> str:
    return messages[0] if len(messages) == 1 else ", ".join(messages[:-1]) + f" and {messages[-1]}"


def _refused(app_name: str, what: str, error: ConnectorError) -> str:
    text = f"{app_name} refused {what}: {error.message}"
    if error.status in (401, 403):
        text += (
            " Give the application user the privileges to register webhooks, or register the "
            "webhook by hand (Connecting, Change notifications)."
        )
    return text[:2000]


def _find_webhook(connector, connection: Connection, side: str, url: str, known: set[str]):
    """The side's webhook if it is registered: by the id kept, its address or its name."""
    name = webhook_name(connection, side)
    found = webhooks.webhooks(connector)
    for matches in (
        lambda e: e.id in known,
        lambda e: e.url.rstrip("/").lower() == url.rstrip("/").lower(),
        lambda e: e.name == name,
    ):
        endpoint = next((e for e in found if matches(e)), None)
        if endpoint is not None:
            return endpoint
    return None


def _keep_dataverse(
    connection: Connection, side: str, console_url: str | None, now: datetime
) -> list[ChangeSubscription]:
    wanted, existing = _side_state(connection, side)
    if not wanted and not existing:
        return []
    url = notification_url(connection, side, console_url)
    name = webhook_name(connection, side)
    known = {s.endpoint_id for s in existing.values() if s.endpoint_id}
    kept: list[ChangeSubscription] = []
    with connector_for(connection, side) as connector:
        try:
            endpoint = _find_webhook(connector, connection, side, url, known)
            if not wanted:
                if endpoint is not None:
                    webhooks.delete(connector, "serviceendpoints", endpoint.id)  # and its steps
                for unneeded in existing.values():
                    unneeded.delete()
                return []
            if endpoint is None:
                endpoint = webhooks.create_webhook(
                    connector, name, url, connection.notification_token()
                )
            else:
                # The key cannot be read back: set again, so a new secret takes effect.
                webhooks.update_webhook(
                    connector, endpoint.id, name, url, connection.notification_token()
                )
            steps = webhooks.steps_of(connector, endpoint.id)
        except ConnectorError as error:
            logger.warning("Registering the webhook of %s failed: %s", connection, error)
            message = _refused(connector.app_name, "the webhook registration", error)
            for entity in sorted(wanted):
                failed = existing.get(entity) or ChangeSubscription(
                    connection=connection, side=side, entity=entity
                )
                failed.status = ChangeSubscription.Status.FAILED
                failed.notification_url = url
                failed.message = message
                failed.save()
                kept.append(failed)
            return kept
        registrar = _StepRegistrar(connector, endpoint.id, steps)
        for entity in sorted(wanted):
            subscription = existing.pop(entity, None) or ChangeSubscription(
                connection=connection, side=side, entity=entity
            )
            subscription.endpoint_id = endpoint.id
            subscription.notification_url = url
            registrar.register(subscription, logical_name(connection, side, entity), now)
            kept.append(subscription)
        for subscription in existing.values():  # no mapping reads these tables any more
            subscription.delete()
        registrar.drop_the_rest()
    return kept


class _StepRegistrar:
    """The steps of one webhook: those found are reused, the missing ones registered, and
    those no table needs any more deleted."""

    def __init__(self, connector, endpoint_id: str, steps: list[webhooks.Step]):
        self.connector, self.endpoint_id = connector, endpoint_id
        self.by_event = {(step.message_id, step.filter_id): step for step in steps}
        self.message_ids: dict[str, str | None] = {}
        self.needed: set[tuple[str, str]] = set()
        self.failed = False

    def message_id(self, message: str) -> str | None:
        if message not in self.message_ids:
            self.message_ids[message] = webhooks.message_id(self.connector, message)
        return self.message_ids[message]

    def register(self, subscription: ChangeSubscription, table: str, now: datetime) -> None:
        app = self.connector.app_name
        registered: dict[str, str] = {}
        missing: list[str] = []
        created = False
        try:
            for message in MESSAGES:
                message_key = self.message_id(message)
                filter_key = (
                    webhooks.message_filter_id(self.connector, message, table)
                    if message_key
                    else None
                )
                if not message_key or not filter_key:
                    missing.append(message)
                    continue
                event = (message_key, filter_key)
                self.needed.add(event)
                if event not in self.by_event:
                    self.by_event[event] = webhooks.create_step(
                        self.connector,
                        f"Sync Console: {message} of {table}",
                        self.endpoint_id,
                        message_key,
                        filter_key,
                    )
                    created = True
                registered[message] = self.by_event[event].id
        except ConnectorError as error:
            logger.warning("Registering the steps of %s failed: %s", table, error)
            self.failed = True
            subscription.status = ChangeSubscription.Status.FAILED
            subscription.message = _refused(app, f"the webhook's steps for {table}", error)
            subscription.save()
            return
        subscription.resource = table
        subscription.step_ids = registered
        subscription.expires_at = None
        subscription.renewed_at = now
        if not registered:
            subscription.status = ChangeSubscription.Status.UNSUPPORTED
            subscription.message = (
                f"{app} offers no webhook step on {_listing(missing)} of {table}; the "
                "scheduled synchronization picks its changes up."
            )
        else:
            subscription.status = ChangeSubscription.Status.ACTIVE
            subscription.message = "Registered." if created else "Already registered."
            if missing:
                subscription.message += (
                    f" {app} offers no webhook step on {_listing(missing)} of {table}."
                )
        subscription.save()

    def drop_the_rest(self) -> None:
        """Delete the webhook's steps no table needs, unless a table could not be seen to
        (its steps would be taken for unneeded)."""
        if self.failed:
            return
        for event, step in self.by_event.items():
            if event not in self.needed:
                try:
                    webhooks.delete(self.connector, "sdkmessageprocessingsteps", step.id)
                except ConnectorError as error:
                    logger.warning("Could not delete the step %s: %s", step.name, error)


# -- removing them all ------------------------------------------------------------------------
def remove_subscriptions(connection: Connection, *, user=None) -> list[str]:
    """Delete the connection's subscriptions in both apps (Business Central's subscriptions,
    Dataverse's webhook with its steps) and on the connection; returns what could not be
    removed, whose subscriptions are kept and marked failed."""
    problems: list[str] = []
    removed = 0
    for side in SIDES:
        subscriptions = list(connection.change_subscriptions.filter(side=side))
        flavor = getattr(connection, f"{side}_flavor")
        if not subscriptions and flavor != DATAVERSE:
            continue
        with connector_for(connection, side) as connector:
            try:
                if flavor == DATAVERSE:
                    known = {s.endpoint_id for s in subscriptions if s.endpoint_id}
                    url = notification_url(connection, side)
                    endpoint = _find_webhook(connector, connection, side, url, known)
                    if endpoint is not None:
                        webhooks.delete(connector, "serviceendpoints", endpoint.id)
                else:
                    for subscription in subscriptions:
                        if subscription.subscription_id:
                            bc.unsubscribe(connector, subscription.subscription_id)
            except ConnectorError as error:
                text = _refused(connector.app_name, "removing the subscriptions", error)
                problems.append(text)
                for subscription in subscriptions:
                    subscription.status = ChangeSubscription.Status.FAILED
                    subscription.message = text
                    subscription.save()
                continue
        removed += len(subscriptions)
        for subscription in subscriptions:
            subscription.delete()
    audit.record(
        audit.Action.CONNECTION_CHANGED,
        f"Change notifications of {connection} removed in the apps"
        + (f" ({len(problems)} could not be removed)" if problems else ""),
        user=user,
        target=connection,
        details={"removed": removed, "problems": problems},
    )
    return problems


def keep_every_connection_subscribed() -> int:
    """The beat task's work: every connection's subscriptions made, renewed or dropped."""
    count = 0
    for connection in Connection.objects.all():
        count += len(keep_subscribed(connection))
    return count
