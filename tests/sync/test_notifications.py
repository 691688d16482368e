"""The console's receiver of change notifications takes each app's own shape, and only that:
Business Central's handshake and notifications on its side, Dataverse's webhook on the
other. A valid notification queues a modified-records sync of the changed table's mappings."""

import json
import uuid

import pytest
from django.urls import reverse

from demo.models import CrmAccount, CrmSdkMessageProcessingStep
from demo.seed import subscribe_to_changes
from demo.webhooks import remote_execution_context
from sync.models import SyncJob
from sync.notifications import handle_notification
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db


def url(connection, side: str, query: str = "") -> str:
    return reverse("sync:notification", args=[connection.pk, side]) + query


def company(connection) -> str:
    return connection.source_base_url.rsplit("companies(", 1)[1].split(")")[0]


def bc_item(connection, resource: str, change: str = "updated", **more) -> dict:
    return {
        "subscriptionId": uuid.uuid4().hex,
        "clientState": connection.notification_token(),
        "expirationDateTime": "2030-01-01T00:00:00Z",
        "resource": resource,
        "changeType": change,
        "lastModifiedDateTime": "2029-12-29T12:54:20.467Z",
        **more,
    }


def post(client, connection, side: str, payload, query: str = ""):
    return client.post(
        url(connection, side, query), data=json.dumps(payload), content_type="application/json"
    )


# Working with webhooks in Dynamics 365 Business Central
# https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions
def test_the_business_central_handshake_is_answered_with_the_token_as_text(demo_apps, client):
    connection = demo_apps.connection
    answer = client.post(url(connection, "source", "?validationToken=abc-123_XYZ"))
    assert answer.status_code == 200
    assert answer.content == b"abc-123_XYZ"
    assert answer["Content-Type"].startswith("text/plain")
    # Dataverse asks for no handshake: its side does not answer one.
    assert client.post(url(connection, "destination", "?validationToken=abc")).status_code == 400
    assert client.post(url(connection, "source", "?validationToken=")).status_code == 400
    assert not SyncJob.objects.exists()


def test_a_business_central_notification_queues_the_mapping_of_each_changed_table(
    demo_apps, client, celery_queue
):
    connection = demo_apps.connection
    root = f"api/v2.0/companies({company(connection)})/"
    record = uuid.uuid4()
    since = "lastModifiedDateTime%20gt%202030-01-01T00:00:00Z"
    payload = {
        "value": [
            bc_item(connection, f"{root}customers({record})", "created"),
            bc_item(connection, f"{root}customers({uuid.uuid4()})", "deleted"),
            bc_item(connection, f"/{root}items?$filter={since}", "collection"),
            bc_item(connection, f"{root}vendors({uuid.uuid4()})"),
        ]
    }  # fmt: skip
    answer = post(client, connection, "source", payload)
    assert answer.status_code == 202, answer.content
    jobs = SyncJob.objects.filter(pk__in=answer.json()["queued"])
    assert sorted(job.mapping.name for job in jobs) == ["CUSTOMER", "ITEM-PRODUCT"]
    assert {(job.kind, job.trigger) for job in jobs} == {
        (SyncJob.Kind.MODIFIED, SyncJob.Trigger.WEBHOOK)
    }


def test_a_notification_of_another_company_is_left_alone(demo_apps, client, celery_queue):
    connection = demo_apps.connection
    other = f"api/v2.0/companies({uuid.uuid4()})/customers({uuid.uuid4()})"
    answer = post(client, connection, "source", {"value": [bc_item(connection, other)]})
    assert (answer.status_code, answer.json()) == (202, {"queued": []})


def test_only_the_real_business_central_shape_is_taken(demo_apps, client):
    connection = demo_apps.connection
    token = connection.notification_token()
    root = f"api/v2.0/companies({company(connection)})/"
    refused = [
        # The shape the demo apps used to send.
        {"app": "erp", "resource": "customers", "id": str(uuid.uuid4()), "clientState": token},
        {"value": {"resource": "customers"}},
        {"value": [bc_item(connection, f"{root}customers({uuid.uuid4()})", "renamed")]},
        {"value": [bc_item(connection, f"{root}customers(not-an-id)")]},
        {"value": [bc_item(connection, "somewhere/else")]},
        {"value": ["customers"]},
    ]
    for payload in refused:
        assert post(client, connection, "source", payload).status_code == 400, payload
    # One item without the client state fails the whole request.
    good = bc_item(connection, f"{root}customers({uuid.uuid4()})")
    mixed = {"value": [good, bc_item(connection, f"{root}items({uuid.uuid4()})", clientState="x")]}
    assert post(client, connection, "source", mixed).status_code == 403
    assert not SyncJob.objects.exists()


# Use Webhooks to create external handlers for server events (Dataverse)
# https://learn.microsoft.com/power-apps/developer/data-platform/use-webhooks
def test_a_dataverse_webhook_is_authenticated_by_its_key(demo_apps, client, celery_queue):
    from datetime import UTC, datetime

    connection = demo_apps.connection
    context = remote_execution_context("account", uuid.uuid4(), "updated", datetime.now(UTC))
    key = f"?code={connection.notification_token()}"
    assert post(client, connection, "destination", context).status_code == 403
    assert post(client, connection, "destination", context, "?code=guess").status_code == 403
    answer = post(client, connection, "destination", context, key)
    assert answer.status_code == 202
    (job,) = SyncJob.objects.filter(pk__in=answer.json()["queued"])
    assert (job.mapping.name, job.trigger) == ("CUSTOMER", SyncJob.Trigger.WEBHOOK)
    # The Business Central shape is not Dataverse's.
    token = connection.notification_token()
    assert post(client, connection, "destination", {"resource": "accounts", "clientState": token},
                key).status_code == 400  # fmt: skip
    assert post(client, connection, "destination", {**context, "MessageName": "Merge"},
                key).status_code == 400  # fmt: skip


def test_a_disabled_mapping_is_not_queued(demo_apps, celery_queue):
    connection = demo_apps.connection
    connection.mappings.filter(name="CUSTOMER").update(is_enabled=False)
    root = f"api/v2.0/companies({company(connection)})/"
    payload = {"value": [bc_item(connection, f"{root}customers({uuid.uuid4()})")]}
    assert handle_notification(connection, "source", payload) == []


@pytest.mark.over_http
def test_a_change_in_the_crm_reaches_the_console_as_a_dataverse_webhook(demo_apps, celery_queue):
    subscribe_to_changes(demo_apps.connection, demo_apps.base_url)
    account = CrmAccount.objects.create(name="Nordlys Cycling", account_number="")

    def queued():
        return SyncJob.objects.filter(
            mapping__name="CUSTOMER", trigger=SyncJob.Trigger.WEBHOOK
        ).exists()

    wait_until(queued, timeout=20)
    # The console registered the webhook itself: its steps say what the CRM notifies.
    assert CrmSdkMessageProcessingStep.objects.filter(
        primary_entity="account", message_name="Create"
    ).exists()
    assert account.pk
