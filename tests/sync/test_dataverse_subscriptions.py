"""Registering the console's webhook with Dataverse, against the demo CRM, as the Plug-in
Registration tool would: one service endpoint per side of a connection, keyed with the
connection's secret, and an asynchronous PostOperation step on Create, Update and Delete of
each mapped table; found and reused when registered again, removed when no longer needed."""

import pytest

from audit.models import AuditEvent
from demo import dataverse_messages
from demo.models import CrmSdkMessageProcessingStep, CrmServiceEndpoint, ErpSubscription
from demo.seed import allow_webhook_registration
from sync.models import ChangeSubscription
from sync.subscriptions import keep_subscribed, remove_subscriptions, webhook_name
from tests.factories import make_mapping
from tests.webhook_recorder import Recorder

pytestmark = pytest.mark.django_db
Status = ChangeSubscription.Status
TABLES = {
    "accounts": "account",
    "contacts": "contact",
    "products": "product",
    "transactioncurrencies": "transactioncurrency",
}


def kept(demo_apps) -> dict[str, ChangeSubscription]:
    """The Dataverse side's subscriptions, kept."""
    return {
        s.entity: s
        for s in keep_subscribed(demo_apps.connection, console_url=demo_apps.base_url)
        if s.side == "destination"
    }


@pytest.fixture
def recorder():
    hook = Recorder()
    yield hook
    hook.close()


def receiver(demo_apps) -> str:
    return demo_apps.base_url + f"/sync/notifications/{demo_apps.connection.pk}/destination/"


def test_the_webhook_and_a_step_per_message_of_each_mapped_table_are_registered(demo_apps):
    allow_webhook_registration()
    subscriptions = kept(demo_apps)
    assert {entity: s.status for entity, s in subscriptions.items()} == {
        entity: Status.ACTIVE for entity in TABLES
    }
    (webhook,) = CrmServiceEndpoint.objects.all()
    assert (webhook.contract, webhook.auth_type, webhook.url) == (8, 4, receiver(demo_apps))
    assert webhook.auth_value == demo_apps.connection.notification_token()
    assert webhook.name == webhook_name(demo_apps.connection, "destination")
    steps = CrmSdkMessageProcessingStep.objects.filter(service_endpoint=webhook)
    assert {(s.message_name, s.primary_entity) for s in steps} == {
        (message, table) for message in ("Create", "Update", "Delete") for table in TABLES.values()
    }
    assert {(s.stage, s.mode, s.supported_deployment) for s in steps} == {(40, 1, 0)}
    accounts = subscriptions["accounts"]
    assert accounts.endpoint_id == str(webhook.pk)
    assert accounts.resource == "account" and accounts.message == "Registered."
    assert accounts.step_ids == {
        s.message_name: str(s.pk) for s in steps.filter(primary_entity="account")
    }
    assert accounts.notification_url == receiver(demo_apps) and accounts.expires_at is None


def test_registering_again_reuses_the_webhook_and_its_steps(demo_apps):
    allow_webhook_registration()
    first = kept(demo_apps)
    steps = set(CrmSdkMessageProcessingStep.objects.values_list("pk", flat=True))
    # The key cannot be read back: it is set again, so that a new secret takes effect.
    CrmServiceEndpoint.objects.update(auth_value="the secret before SECRET_KEY changed")
    again = kept(demo_apps)
    assert CrmServiceEndpoint.objects.count() == 1
    assert set(CrmSdkMessageProcessingStep.objects.values_list("pk", flat=True)) == steps
    assert {e: s.step_ids for e, s in again.items()} == {e: s.step_ids for e, s in first.items()}
    assert {s.message for s in again.values()} == {"Already registered."}
    endpoint = CrmServiceEndpoint.objects.get()
    assert endpoint.auth_value == demo_apps.connection.notification_token()


def test_a_webhook_registered_by_hand_at_the_address_is_taken_over(demo_apps):
    """An administrator registered the webhook with the Plug-in Registration tool, and a step
    on Create of account: the console finds it by its address and adds what is missing."""
    allow_webhook_registration()
    by_hand = CrmServiceEndpoint.objects.create(
        name="Console webhook", contract=8, auth_type=4, auth_value="x", url=receiver(demo_apps)
    )
    mine = CrmSdkMessageProcessingStep.objects.create(
        name="account: Create",
        service_endpoint=by_hand,
        sdk_message_id=dataverse_messages.message_id("Create"),
        message_name="Create",
        sdk_message_filter_id=dataverse_messages.filter_id("Create", "account"),
        primary_entity="account",
        stage=40,
        mode=1,
    )
    subscriptions = kept(demo_apps)
    assert CrmServiceEndpoint.objects.get() == by_hand
    assert subscriptions["accounts"].step_ids["Create"] == str(mine.pk)
    assert CrmSdkMessageProcessingStep.objects.count() == 12
    assert CrmServiceEndpoint.objects.get().name == webhook_name(
        demo_apps.connection, "destination"
    )


def test_a_table_without_a_message_filter_is_kept_as_not_notifying(demo_apps, staff_client):
    """The demo CRM has no leads table: Dataverse would offer no message filter for it."""
    allow_webhook_registration()
    make_mapping(
        demo_apps.connection, name="LEAD", source_entity="contacts", destination_entity="leads"
    )
    subscriptions = kept(demo_apps)
    leads = subscriptions["leads"]
    assert leads.status == Status.UNSUPPORTED and leads.step_ids == {}
    assert "offers no webhook step on Create, Update and Delete of lead" in leads.message
    assert subscriptions["accounts"].status == Status.ACTIVE
    assert not CrmSdkMessageProcessingStep.objects.filter(primary_entity="lead").exists()
    page = staff_client.get(f"/sync/connections/{demo_apps.connection.pk}/health/")
    html = page.content.decode()
    assert "leads" in html and "Not offered by the app" in html and "accounts" in html


def test_an_application_user_that_may_not_register_is_told_so(demo_apps):
    subscriptions = kept(demo_apps)
    assert {s.status for s in subscriptions.values()} == {Status.FAILED}
    message = subscriptions["accounts"].message
    assert "refused the webhook registration" in message and "prvReadServiceEndpoint" in message
    assert "register the webhook by hand" in message
    assert not CrmServiceEndpoint.objects.exists()
    allow_webhook_registration()
    assert {s.status for s in kept(demo_apps).values()} == {Status.ACTIVE}


def test_the_steps_of_a_table_no_mapping_reads_are_deleted_and_then_the_webhook(demo_apps):
    allow_webhook_registration()
    kept(demo_apps)
    demo_apps.connection.mappings.filter(name="ITEM-PRODUCT").update(is_enabled=False)
    assert "products" not in kept(demo_apps)
    assert not CrmSdkMessageProcessingStep.objects.filter(primary_entity="product").exists()
    assert CrmSdkMessageProcessingStep.objects.count() == 9
    assert not ChangeSubscription.objects.filter(side="destination", entity="products").exists()
    demo_apps.connection.is_enabled = False
    demo_apps.connection.save()
    assert kept(demo_apps) == {}
    assert not CrmServiceEndpoint.objects.exists()
    assert not CrmSdkMessageProcessingStep.objects.exists()
    assert not ChangeSubscription.objects.exists()


def test_removing_the_subscriptions_deletes_them_in_both_apps(demo_apps, staff_user, recorder):
    allow_webhook_registration()
    demo_apps.connection.source_settings["notification_url"] = recorder.url
    demo_apps.connection.save()
    keep_subscribed(demo_apps.connection, console_url=demo_apps.base_url)
    assert ErpSubscription.objects.count() == 3 and CrmServiceEndpoint.objects.count() == 1
    assert remove_subscriptions(demo_apps.connection, user=staff_user) == []
    assert not ErpSubscription.objects.exists()
    assert (
        not CrmServiceEndpoint.objects.exists() and not CrmSdkMessageProcessingStep.objects.exists()
    )
    assert not ChangeSubscription.objects.exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.CONNECTION_CHANGED)
    assert event.actor == staff_user and "removed" in event.summary


def test_the_admin_subscribes_now_and_removes(demo_apps, superuser, client, recorder):
    allow_webhook_registration()
    demo_apps.connection.source_settings["notification_url"] = recorder.url
    demo_apps.connection.destination_settings["notification_url"] = receiver(demo_apps)
    demo_apps.connection.save()
    client.force_login(superuser)

    def act(action: str) -> str:
        answer = client.post(
            "/admin/sync/connection/",
            {"action": action, "_selected_action": [demo_apps.connection.pk]},
            follow=True,
        )
        assert answer.status_code == 200
        return answer.content.decode()

    assert "8 of 8 tables kept" in act("keep_change_notifications")
    assert CrmServiceEndpoint.objects.count() == 1 and ErpSubscription.objects.count() == 3
    assert "change notifications removed" in act("remove_change_notifications")
    assert not CrmServiceEndpoint.objects.exists() and not ErpSubscription.objects.exists()
