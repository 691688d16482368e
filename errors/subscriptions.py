"""Subscribing to alerts and unsubscribing, each change kept in the audit log."""

from django.db import IntegrityError, transaction

from audit import services as audit

from .forms import AlertSubscriptionForm
from .models import AlertSubscription

EVENTS = ("new_problems", "regressions", "setup_errors")


def _what(subscription: AlertSubscription) -> str:
    chosen = [name.replace("_", " ") for name in EVENTS if getattr(subscription, name)]
    return f"{', '.join(chosen) or 'nothing'} on {subscription.scope_label}"


def save_subscription(form: AlertSubscriptionForm, user) -> bool:
    """Save a new or changed subscription; False when the form says what is wrong."""
    if not form.is_valid():
        return False
    subscription = form.instance
    before = audit.snapshot(subscription) if subscription.pk else {}
    try:
        with transaction.atomic():
            form.save()
            changed = audit.changes(before, subscription)
            if before and not changed:
                return True
            audit.record(
                audit.Action.ALERTS_CHANGED,
                f"{'Changed' if before else 'Subscribed to'} alerts: {_what(subscription)}",
                user=user,
                target=subscription,
                details={"change": "changed" if before else "added", "fields": changed},
            )
    except IntegrityError:  # the same subscription saved at the same moment elsewhere
        form.add_error(None, "You already have a subscription for this; change that one.")
        return False
    return True


def unsubscribe(subscription: AlertSubscription, user) -> str:
    """Delete the subscription; returns what it was for."""
    label = subscription.scope_label
    with transaction.atomic():
        audit.record(
            audit.Action.ALERTS_CHANGED,
            f"Unsubscribed from alerts: {_what(subscription)}",
            user=user,
            target=subscription,
            details={"change": "deleted"},
        )
        subscription.delete()
    return label
