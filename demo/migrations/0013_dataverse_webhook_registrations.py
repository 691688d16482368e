"""The demo CRM's webhooks are registered through its API, as Dataverse's are: a service
endpoint and its steps instead of a row per table. Each webhook row of the CRM becomes an
endpoint (one per address and key) with an asynchronous PostOperation step on Create, Update
and Delete of its table."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

import syncconsole.encryption

# The tables the CRM's webhook rows named, by entity set: their logical names.
LOGICAL_NAMES = {
    "accounts": "account",
    "contacts": "contact",
    "products": "product",
    "transactioncurrencies": "transactioncurrency",
    "systemusers": "systemuser",
    "roles": "role",
    "teams": "team",
}
MESSAGES = ("Create", "Update", "Delete")


def _message_id(message: str) -> uuid.UUID:
    # As demo/dataverse_messages.py names the messages and their filters.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessage:{message}")


def _filter_id(message: str, logical_name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessagefilter:{message}:{logical_name}")


def carry_webhooks_over(apps, schema_editor):
    webhooks = apps.get_model("demo", "DemoWebhook")
    endpoints = apps.get_model("demo", "CrmServiceEndpoint")
    steps = apps.get_model("demo", "CrmSdkMessageProcessingStep")
    by_address: dict[tuple[str, str], object] = {}
    for hook in webhooks.objects.filter(app="crm").order_by("pk"):
        logical_name = LOGICAL_NAMES.get(hook.entity)
        if logical_name is None:
            continue
        key = (hook.notification_url, hook.client_state)
        if key not in by_address:
            by_address[key] = endpoints.objects.create(
                name=f"Webhook {len(by_address) + 1}",
                contract=8,  # Webhook
                auth_type=4,  # WebhookKey
                auth_value=hook.client_state,
                url=hook.notification_url,
            )
        for message in MESSAGES:
            steps.objects.create(
                name=f"{hook.notification_url}: {message} of {logical_name}",
                service_endpoint=by_address[key],
                sdk_message_id=_message_id(message),
                message_name=message,
                sdk_message_filter_id=_filter_id(message, logical_name),
                primary_entity=logical_name,
                stage=40,  # PostOperation
                mode=1,  # Asynchronous
                async_auto_delete=True,
            )


def carry_webhooks_back(apps, schema_editor):
    webhooks = apps.get_model("demo", "DemoWebhook")
    steps = apps.get_model("demo", "CrmSdkMessageProcessingStep")
    entity_sets = {logical: entity_set for entity_set, logical in LOGICAL_NAMES.items()}
    seen = set()
    for step in steps.objects.select_related("service_endpoint").order_by("pk"):
        endpoint = step.service_endpoint
        entity = entity_sets.get(step.primary_entity)
        if endpoint.contract != 8 or entity is None or (endpoint.pk, entity) in seen:
            continue
        seen.add((endpoint.pk, entity))
        webhooks.objects.create(
            app="crm",
            entity=entity,
            notification_url=endpoint.url[:500],
            client_state=endpoint.auth_value,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0012_append_privileges"),
    ]

    operations = [
        migrations.CreateModel(
            name="CrmSdkMessageProcessingStep",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=256)),
                ("description", models.CharField(blank=True, max_length=256)),
                ("sdk_message_id", models.UUIDField()),
                ("message_name", models.CharField(max_length=100)),
                ("sdk_message_filter_id", models.UUIDField(blank=True, null=True)),
                (
                    "primary_entity",
                    models.CharField(
                        blank=True,
                        help_text="The table's logical name; empty: every table.",
                        max_length=100,
                    ),
                ),
                (
                    "stage",
                    models.IntegerField(
                        choices=[
                            (10, "Pre-validation"),
                            (20, "Pre-operation"),
                            (40, "Post-operation"),
                        ]
                    ),
                ),
                ("mode", models.IntegerField(choices=[(0, "Synchronous"), (1, "Asynchronous")])),
                ("rank", models.IntegerField(default=1)),
                (
                    "supported_deployment",
                    models.IntegerField(
                        choices=[
                            (0, "Server Only"),
                            (1, "Microsoft Dynamics 365 Client for Outlook Only"),
                            (2, "Both"),
                        ],
                        default=0,
                    ),
                ),
                (
                    "invocation_source",
                    models.IntegerField(
                        choices=[(-1, "Internal"), (0, "Parent"), (1, "Child")], default=0
                    ),
                ),
                ("async_auto_delete", models.BooleanField(default=False)),
                ("filtering_attributes", models.TextField(blank=True)),
                (
                    "state",
                    models.IntegerField(choices=[(0, "Enabled"), (1, "Disabled")], default=0),
                ),
                ("modified_on", models.DateTimeField(auto_now=True, db_index=True)),
            ],
        ),
        migrations.CreateModel(
            name="CrmServiceEndpoint",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=256)),
                ("description", models.CharField(blank=True, max_length=2000)),
                (
                    "contract",
                    models.IntegerField(
                        choices=[
                            (1, "OneWay"),
                            (2, "Queue"),
                            (3, "Rest"),
                            (4, "TwoWay"),
                            (5, "Topic"),
                            (6, "Queue (Persistent)"),
                            (7, "Event Hub"),
                            (8, "Webhook"),
                            (9, "Event Grid"),
                            (10, "Managed Data Lake"),
                        ]
                    ),
                ),
                (
                    "auth_type",
                    models.IntegerField(
                        blank=True,
                        choices=[
                            (1, "ACS"),
                            (2, "SAS Key"),
                            (3, "SAS Token"),
                            (4, "Webhook Key"),
                            (5, "Http Header"),
                            (6, "Http Query String"),
                            (7, "Connection String"),
                            (8, "Access Key"),
                        ],
                        null=True,
                    ),
                ),
                ("auth_value", syncconsole.encryption.EncryptedTextField(blank=True)),
                ("url", models.CharField(blank=True, max_length=2000)),
                (
                    "connection_mode",
                    models.IntegerField(choices=[(1, "Normal"), (2, "Federated")], default=1),
                ),
                (
                    "message_format",
                    models.IntegerField(
                        blank=True,
                        choices=[(1, "Binary XML"), (2, "Json"), (3, "Text XML")],
                        null=True,
                    ),
                ),
                (
                    "user_claim",
                    models.IntegerField(
                        choices=[(1, "None"), (2, "UserId"), (3, "UserInfo")], default=1
                    ),
                ),
                ("modified_on", models.DateTimeField(auto_now=True, db_index=True)),
            ],
        ),
        migrations.AddField(
            model_name="crmsdkmessageprocessingstep",
            name="service_endpoint",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="steps",
                to="demo.crmserviceendpoint",
            ),
        ),
        migrations.AddIndex(
            model_name="crmsdkmessageprocessingstep",
            index=models.Index(fields=["message_name", "primary_entity"], name="crm_step_event"),
        ),
        migrations.RunPython(carry_webhooks_over, carry_webhooks_back),
        migrations.DeleteModel(
            name="DemoWebhook",
        ),
    ]
