"""The demo CRM's webhooks made before they were registered through its API keep working
after `migrate`: each becomes a service endpoint with its key and an asynchronous step on
Create, Update and Delete of its table."""

import pytest

from demo import dataverse_messages

from . import migrating

pytestmark = pytest.mark.django_db(transaction=True)


def test_existing_webhooks_become_endpoints_and_steps():
    before, after = migrating.around("_dataverse_webhook_registrations")
    latest = migrating.latest()
    old = migrating.migrate(before)
    try:
        hooks = old.get_model("demo", "DemoWebhook").objects
        console = "https://console.example/sync/notifications/1/destination/"
        for entity in ("accounts", "contacts"):
            hooks.create(app="crm", entity=entity, notification_url=console, client_state="key")
        hooks.create(app="crm", entity="products", notification_url="https://other.example/")
        hooks.create(app="erp", entity="customers", notification_url=console, client_state="k")

        new = migrating.migrate(after)
        endpoints = {e.url: e for e in new.get_model("demo", "CrmServiceEndpoint").objects.all()}
        assert set(endpoints) == {console, "https://other.example/"}
        webhook = endpoints[console]
        assert (webhook.contract, webhook.auth_type, webhook.auth_value) == (8, 4, "key")
        steps = new.get_model("demo", "CrmSdkMessageProcessingStep").objects
        assert {
            (s.message_name, s.primary_entity, s.stage, s.mode)
            for s in steps.filter(service_endpoint=webhook)
        } == {
            (message, table, 40, 1)
            for message in ("Create", "Update", "Delete")
            for table in ("account", "contact")
        }
        for saved in steps.all():
            assert str(saved.sdk_message_id) == dataverse_messages.message_id(saved.message_name)
            assert str(saved.sdk_message_filter_id) == dataverse_messages.filter_id(
                saved.message_name, saved.primary_entity
            )
        assert steps.filter(service_endpoint=endpoints["https://other.example/"]).count() == 3

        back = migrating.migrate(before)
        assert set(
            back.get_model("demo", "DemoWebhook").objects.values_list("entity", "client_state")
        ) == {("accounts", "key"), ("contacts", "key"), ("products", "")}
    finally:
        migrating.migrate(latest)
