"""Subscribing to Business Central's change notifications and renewing the subscriptions
before they expire, against the demo ERP: each subscription is made with the handshake the
console's receiver answers, and kept on the connection. (The Dataverse side's webhook:
test_dataverse_subscriptions.py.)"""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from demo.models import ErpSubscription
from demo.seed import allow_webhook_registration
from sync.models import ChangeSubscription
from sync.subscriptions import keep_subscribed
from sync.tasks import keep_change_subscriptions

pytestmark = pytest.mark.django_db
Status = ChangeSubscription.Status


def kept(demo_apps) -> dict[str, ChangeSubscription]:
    """The Business Central side's subscriptions, kept."""
    return {
        s.entity: s
        for s in keep_subscribed(demo_apps.connection, console_url=demo_apps.base_url)
        if s.side == "source"
    }


def test_each_mapped_table_that_notifies_is_subscribed(demo_apps):
    subscriptions = kept(demo_apps)
    assert {entity: s.status for entity, s in subscriptions.items()} == {
        "currencies": Status.ACTIVE,
        "customers": Status.ACTIVE,
        "items": Status.ACTIVE,
        # Business Central does not notify changes of contacts: the schedule reads them.
        "contacts": Status.UNSUPPORTED,
    }
    customers = subscriptions["customers"]
    remote = ErpSubscription.objects.get(subscription_id=customers.subscription_id)
    assert remote.client_state == demo_apps.connection.notification_token()
    assert remote.notification_url == customers.notification_url
    assert customers.notification_url.endswith(
        f"/sync/notifications/{demo_apps.connection.pk}/source/"
    )
    assert customers.resource.endswith(")/customers") and "/api/v2.0/companies(" in (
        customers.resource
    )
    assert timedelta(days=2, hours=23) < customers.expires_at - timezone.now() <= timedelta(days=3)
    assert "contacts" in subscriptions["contacts"].message
    assert ErpSubscription.objects.count() == 3


def test_a_fresh_subscription_is_left_alone_and_one_near_its_expiry_is_renewed(demo_apps):
    first = kept(demo_apps)["customers"]
    assert kept(demo_apps)["customers"].expires_at == first.expires_at
    later = timezone.now() + timedelta(days=2, hours=1)
    renewed = {
        s.entity: s
        for s in keep_subscribed(demo_apps.connection, console_url=demo_apps.base_url, now=later)
        if s.side == "source"
    }["customers"]
    assert renewed.subscription_id == first.subscription_id  # PATCHed, not made anew
    assert renewed.expires_at > first.expires_at
    assert renewed.etag != first.etag and renewed.message == "Renewed."


@pytest.mark.parametrize("expiring", [False, True])
def test_a_subscription_the_app_dropped_is_made_anew(demo_apps, expiring):
    first = kept(demo_apps)["customers"]
    ErpSubscription.objects.filter(subscription_id=first.subscription_id).delete()
    if expiring:
        ChangeSubscription.objects.filter(pk=first.pk).update(
            expires_at=timezone.now() + timedelta(hours=1)
        )
    again = kept(demo_apps)["customers"]
    assert again.status == Status.ACTIVE
    assert again.subscription_id != first.subscription_id
    assert ErpSubscription.objects.filter(subscription_id=again.subscription_id).exists()


def test_a_subscription_with_an_old_secret_is_renewed_with_the_new_one(demo_apps):
    first = kept(demo_apps)["customers"]
    ErpSubscription.objects.filter(subscription_id=first.subscription_id).update(
        client_state="the secret before SECRET_KEY changed"
    )
    again = kept(demo_apps)["customers"]
    assert again.subscription_id == first.subscription_id and again.message == "Renewed."
    remote = ErpSubscription.objects.get(subscription_id=first.subscription_id)
    assert remote.client_state == demo_apps.connection.notification_token()


def test_a_failed_handshake_is_kept_on_the_subscription(demo_apps, unused_port):
    demo_apps.connection.source_settings["notification_url"] = f"http://127.0.0.1:{unused_port}/"
    demo_apps.connection.save()
    customers = kept(demo_apps)["customers"]
    assert customers.status == Status.FAILED
    assert "refused the subscription" in customers.message and "handshake" in customers.message
    assert not ErpSubscription.objects.exists()


def test_a_table_no_enabled_mapping_reads_is_unsubscribed(demo_apps):
    first = kept(demo_apps)
    demo_apps.connection.mappings.filter(name="ITEM-PRODUCT").update(is_enabled=False)
    assert "items" not in kept(demo_apps)
    assert not ErpSubscription.objects.filter(
        subscription_id=first["items"].subscription_id
    ).exists()
    assert not ChangeSubscription.objects.filter(side="source", entity="items").exists()


def test_beat_keeps_the_subscriptions_by_task_name(demo_apps, settings):
    task = PeriodicTask.objects.get(name="Keep change notification subscriptions")
    assert task.task == "sync.keep_change_subscriptions" and task.enabled
    demo_apps.connection.source_settings["notification_url"] = (
        demo_apps.base_url + f"/sync/notifications/{demo_apps.connection.pk}/source/"
    )
    demo_apps.connection.save()
    allow_webhook_registration()
    # Both sides: Business Central's four tables, and Dataverse's, all of which notify.
    assert keep_change_subscriptions() == 8
    assert ChangeSubscription.objects.filter(status=Status.ACTIVE).count() == 7


def test_the_connection_page_and_the_admin_show_the_subscriptions(
    demo_apps, staff_client, superuser, client
):
    kept(demo_apps)
    page = staff_client.get(f"/sync/connections/{demo_apps.connection.pk}/health/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="change-subscriptions"' in html
    assert (
        html.count('<td data-label="Status">Active</td>') == 3 and "Not offered by the app" in html
    )
    client.force_login(superuser)
    listed = client.get("/admin/sync/changesubscription/")
    assert listed.status_code == 200 and "customers" in listed.content.decode()
