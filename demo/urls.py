from django.urls import path, re_path

from . import (
    api,
    bulk,
    business_central,
    dataverse_messages,
    dataverse_registrations,
    identity,
    views,
)

app_name = "demo"
ERP_API = r"^erp/api/v2\.0/companies\((?P<company>[0-9A-Za-z-]*)\)/(?P<entity>[A-Za-z]+)"
CRM_API = r"^crm/api/data/v9\.2/(?P<entity>[A-Za-z][A-Za-z0-9_]*)"
ITEM = r"\((?P<pk>[0-9A-Za-z'{}-]*)\)$"
urlpatterns = [
    re_path(
        r"^erp/api/v2\.0/companies\((?P<company>[0-9A-Za-z-]*)\)/generalLedgerSetup$",
        business_central.general_ledger_setup,
        name="erp_general_ledger_setup",
    ),
    re_path(
        r"^erp/api/v2\.0/subscriptions$", business_central.subscriptions, name="erp_subscriptions"
    ),
    re_path(
        r"^erp/api/v2\.0/subscriptions\((?P<key>[^()/]*)\)$",
        business_central.subscription,
        name="erp_subscription",
    ),
    re_path(r"^erp/api/v2\.0/\$batch$", business_central.batch, name="erp_batch"),
    re_path(
        r"^erp/api/v2\.0/companies\((?P<company>[0-9A-Za-z-]*)\)/(?P<entity>customers|contacts)"
        r"\((?P<pk>[0-9A-Za-z'{}-]*)\)/contactsInformation$",
        business_central.contacts_information_of,
        name="erp_contacts_information",
    ),
    re_path(
        r"^erp/api/microsoft/runtime/beta/companies\((?P<company>[0-9A-Za-z-]*)\)/"
        r"webhookSupportedResources$",
        business_central.webhook_supported_resources,
        name="erp_webhook_supported_resources",
    ),
    path(
        "erp/currencies/<str:pk>/exchange-rates/",
        views.add_exchange_rate,
        name="erp_add_exchange_rate",
    ),
    re_path(ERP_API + "$", api.entity_endpoint, {"app": "erp"}, name="erp_api"),
    re_path(ERP_API + ITEM, api.entity_endpoint, {"app": "erp"}, name="erp_api_item"),
    path("identity/<str:tenant>/oauth2/v2.0/token", identity.token, name="token"),
    re_path(r"^crm/api/data/v9\.2/WhoAmI$", api.who_am_i, name="crm_whoami"),
    re_path(
        CRM_API + r"\((?P<pk>[0-9A-Za-z'{}-]*)\)/(?P<name>[a-z_]+_association)$",
        api.navigation_endpoint,
        name="crm_navigation",
    ),
    re_path(
        r"^crm/api/data/v9\.2/systemusers\((?P<pk>[0-9A-Za-z'{}-]*)\)/"
        r"Microsoft\.Dynamics\.CRM\.RetrieveUserPrivileges(?:\(\))?$",
        api.user_privileges,
        name="crm_user_privileges",
    ),
    re_path(
        r"^crm/api/data/v9\.2/sdkmessagefilters$",
        dataverse_messages.sdk_message_filters,
        name="crm_sdk_message_filters",
    ),
    re_path(
        r"^crm/api/data/v9\.2/sdkmessages$",
        dataverse_messages.sdk_messages,
        name="crm_sdk_messages",
    ),
    re_path(
        r"^crm/api/data/v9\.2/(?P<entity_set>serviceendpoints|sdkmessageprocessingsteps)$",
        dataverse_registrations.collection,
        name="crm_registrations",
    ),
    re_path(
        r"^crm/api/data/v9\.2/(?P<entity_set>serviceendpoints|sdkmessageprocessingsteps)" + ITEM,
        dataverse_registrations.item,
        name="crm_registration",
    ),
    re_path(
        r"^crm/api/data/v9\.2/serviceendpoints\((?P<pk>[0-9A-Za-z'{}-]*)\)/"
        r"serviceendpoint_sdkmessageprocessingstep$",
        dataverse_registrations.endpoint_steps,
        name="crm_endpoint_steps",
    ),
    re_path(
        CRM_API + r"/Microsoft\.Dynamics\.CRM\.(?P<action>CreateMultiple|UpdateMultiple)$",
        bulk.bulk_action,
        name="crm_bulk",
    ),
    re_path(CRM_API + "$", api.entity_endpoint, {"app": "crm"}, name="crm_api"),
    re_path(CRM_API + ITEM, api.entity_endpoint, {"app": "crm"}, name="crm_api_item"),
    path("<str:app>/", views.app_index, name="app_index"),
    path("<str:app>/<str:entity>/", views.record_list, name="record_list"),
    path("<str:app>/<str:entity>/<str:pk>/", views.record_detail, name="record"),
]
