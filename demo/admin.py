from django.contrib import admin
from django.db import models

from .entities import ENTITIES
from .models import (
    CrmSdkMessageProcessingStep,
    CrmServiceEndpoint,
    DemoFault,
    ErpContactBusinessRelation,
    ErpNumberSeries,
    ErpSubscription,
)

for entity in ENTITIES.values():
    admin.site.register(
        entity.model,
        list_display=[
            "id",
            *[
                f
                for f in entity.fields
                if f != "privileges" and not entity.model._meta.get_field(f).is_relation
            ],
        ],
        search_fields=[
            f
            for f in entity.fields
            if isinstance(entity.model._meta.get_field(f), models.CharField)
        ],
    )


@admin.register(DemoFault)
class DemoFaultAdmin(admin.ModelAdmin):
    """Switch failures of the demo apps on and off: timeouts, slow answers, 500, 503, 429,
    broken JSON."""

    list_display = ["app", "entity", "mode", "remaining", "delay_seconds"]
    list_filter = ["app", "mode"]


class StepInline(admin.TabularInline):
    model = CrmSdkMessageProcessingStep
    extra = 0
    fields = ["name", "message_name", "primary_entity", "stage", "mode", "state"]
    readonly_fields = ["message_name", "primary_entity"]


@admin.register(CrmServiceEndpoint)
class CrmServiceEndpointAdmin(admin.ModelAdmin):
    """The demo CRM's service endpoints (webhooks) and their steps, registered through its
    API (serviceendpoints, sdkmessageprocessingsteps)."""

    list_display = ["name", "contract", "auth_type", "url"]
    exclude = ["auth_value"]
    inlines = [StepInline]


@admin.register(ErpSubscription)
class ErpSubscriptionAdmin(admin.ModelAdmin):
    """The demo ERP's webhook subscriptions, made through its API."""

    list_display = ["subscription_id", "resource", "notification_url", "expiration"]
    exclude = ["client_state"]


@admin.register(ErpContactBusinessRelation)
class ErpContactBusinessRelationAdmin(admin.ModelAdmin):
    """Which company contact is which customer's, as Business Central links them."""

    list_display = ["contact", "link_to_table", "customer"]
    list_select_related = ["contact", "customer"]
    raw_id_fields = ["contact", "customer"]


@admin.register(ErpNumberSeries)
class ErpNumberSeriesAdmin(admin.ModelAdmin):
    list_display = ["code", "starting_number", "last_number_used"]
