"""The demo CRM registers webhooks as the Dataverse Web API documents it: a service endpoint
with contract 8 and its key, steps bound to it for a message and a table, the message
filters that say which table takes which message and which of those take a step, and a
registered asynchronous step posting the RemoteExecutionContext of each change to its
endpoint. Each test names the Microsoft page it follows."""

import uuid

import pytest

from demo import dataverse_messages
from demo.models import CrmAccount, CrmSdkMessageProcessingStep, CrmServiceEndpoint
from demo.seed import INTEGRATION_PASSWORD, INTEGRATION_USER, allow_webhook_registration
from tests.conftest import wait_until
from tests.webhook_recorder import Recorder

pytestmark = pytest.mark.django_db
KEY = "00000000-0000-0000-0000-000000000001"
STEP_COLUMNS = {
    "@odata.etag", "sdkmessageprocessingstepid", "name", "description", "stage", "mode",
    "rank", "supporteddeployment", "invocationsource", "asyncautodelete",
    "filteringattributes", "statecode", "statuscode", "_eventhandler_value",
    "_sdkmessageid_value", "_sdkmessagefilterid_value", "modifiedon",
}  # fmt: skip


@pytest.fixture
def recorder():
    hook = Recorder()
    yield hook
    hook.close()


def as_integration_user(demo_apps):
    return demo_apps.client(
        base_url=demo_apps.base_url + "/demo/crm/api/data/v9.2/",
        auth=(INTEGRATION_USER, INTEGRATION_PASSWORD),
    )


def webhook(crm, url="https://console.example/hook", **more):
    return crm.post(
        "serviceendpoints",
        json={
            "name": "Console",
            "contract": 8,
            "authtype": 4,
            "authvalue": KEY,
            "url": url,
            **more,
        },
        headers={"Prefer": "return=representation"},
    )


def step_payload(endpoint_id, message="Create", table="account", **more) -> dict:
    return {
        "name": f"{message} of {table}",
        "stage": 40,
        "mode": 1,
        "rank": 1,
        "supporteddeployment": 0,
        "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint_id})",
        "sdkmessageid@odata.bind": f"/sdkmessages({dataverse_messages.message_id(message)})",
        "sdkmessagefilterid@odata.bind": (
            f"/sdkmessagefilters({dataverse_messages.filter_id(message, table)})"
        ),
        **more,
    }


def step(crm, endpoint_id, message="Create", table="account", **more):
    return crm.post(
        "sdkmessageprocessingsteps",
        json=step_payload(endpoint_id, message, table, **more),
        headers={"Prefer": "return=representation"},
    )


# Register a WebHook ("Query WebHook registrations": service endpoints with a Contract value
# of 8; "Details about the authentication values set are in the AuthValue property and cannot
# be retrieved")
# https://learn.microsoft.com/power-apps/developer/data-platform/register-web-hook
# ServiceEndpoint table/entity reference (Contract 8 Webhook, AuthType 4 Webhook Key, AuthValue
# not valid for read)
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/serviceendpoint
def test_a_webhook_is_a_service_endpoint_whose_key_is_never_read_back(demo_apps):
    with demo_apps.crm() as crm:
        created = webhook(crm)
        assert created.status_code == 201, created.text
        endpoint = created.json()
        queue = crm.post("serviceendpoints", json={"name": "Queue", "contract": 2})
        assert queue.status_code == 204 and queue.headers["OData-EntityId"].endswith(")")
        listed = crm.get(
            "serviceendpoints",
            params={"$filter": "contract eq 8", "$select": "serviceendpointid,name,authtype,url"},
        ).json()
        one = crm.get(f"serviceendpoints({endpoint['serviceendpointid']})")
        by_key = crm.get("serviceendpoints", params={"$filter": f"authvalue eq '{KEY}'"})
        not_a_step = crm.get(
            "serviceendpoints", params={"$filter": f"_eventhandler_value eq {uuid.uuid4()}"}
        )
    assert "authvalue" not in endpoint and endpoint["isauthvalueset"] is True
    assert (endpoint["contract"], endpoint["authtype"], endpoint["url"]) == (
        8, 4, "https://console.example/hook",
    )  # fmt: skip
    assert listed["value"] == [
        {
            "@odata.etag": endpoint["@odata.etag"],
            "serviceendpointid": endpoint["serviceendpointid"],
            "name": "Console",
            "authtype": 4,
            "url": "https://console.example/hook",
        }
    ]
    assert listed["@odata.context"].endswith("(serviceendpointid,name,authtype,url)")
    assert one.status_code == 200 and "authvalue" not in one.json()
    assert one.headers["ETag"] == endpoint["@odata.etag"]
    assert by_key.status_code == not_a_step.status_code == 400
    assert CrmServiceEndpoint.objects.get(pk=endpoint["serviceendpointid"]).auth_value == KEY


# Register a WebHook, "Authentication options": HttpHeader, WebhookKey or HttpQueryString, "you
# must provide the keys that will identify the request as legitimate"
# https://learn.microsoft.com/power-apps/developer/data-platform/register-web-hook
# Web service error codes: PicklistValueOutOfRange (0x8004431A), ValidationFailed (0x80044331)
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes
@pytest.mark.parametrize(
    "payload, code",
    [
        ({"contract": 11}, "0x8004431A"),
        ({"authtype": 9}, "0x8004431A"),
        ({"contract": "8"}, "0x8004431A"),
        ({"url": "console.example/hook"}, "0x80044331"),
        ({"authtype": 2}, "0x80044331"),  # SAS Key: not a webhook's
        ({"authvalue": ""}, "0x80044331"),
        ({"name": None, "contract": None}, "0x8004431A"),
        ({"endpoint": "x"}, "0x0"),  # not a column of the table
    ],
)
def test_a_webhook_with_a_bad_value_is_refused(demo_apps, payload, code):
    with demo_apps.crm() as crm:
        answer = webhook(crm, **payload)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, code), answer.text
    assert not CrmServiceEndpoint.objects.exists()


def test_a_webhook_without_its_name_is_refused(demo_apps):
    with demo_apps.crm() as crm:
        answer = crm.post("serviceendpoints", json={"contract": 8, "url": "https://x.example/"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "0x80044331")
    assert "'name'" in answer.json()["error"]["message"]


# SdkMessageProcessingStep table/entity reference (EventHandler: plugintype or serviceendpoint;
# SdkMessageId; SdkMessageFilterId; Stage 40 Post-operation; Mode 1 Asynchronous;
# SupportedDeployment 0 Server Only), and Register a WebHook, "Query steps registered for a
# WebHook" (serviceendpoints(@id)/serviceendpoint_sdkmessageprocessingstep)
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
# https://learn.microsoft.com/power-apps/developer/data-platform/register-web-hook
def test_a_step_is_bound_to_its_webhook_message_and_filter(demo_apps):
    with demo_apps.crm() as crm:
        endpoint_id = webhook(crm).json()["serviceendpointid"]
        created = step(crm, endpoint_id, asyncautodelete=True)
        assert created.status_code == 201, created.text
        listed = crm.get(
            f"serviceendpoints({endpoint_id})/serviceendpoint_sdkmessageprocessingstep",
            params={"$select": "sdkmessageprocessingstepid,name,mode,stage"},
        ).json()["value"]
        by_message = crm.get(
            "sdkmessageprocessingsteps",
            params={
                "$filter": f"_eventhandler_value eq {endpoint_id} and "
                f"_sdkmessageid_value eq {dataverse_messages.message_id('Create')}"
            },
        ).json()["value"]
    body = created.json()
    assert set(body) == STEP_COLUMNS
    assert (body["stage"], body["mode"], body["statecode"], body["statuscode"]) == (40, 1, 0, 1)
    assert body["_eventhandler_value"] == endpoint_id
    assert body["_sdkmessageid_value"] == dataverse_messages.message_id("Create")
    assert body["_sdkmessagefilterid_value"] == dataverse_messages.filter_id("Create", "account")
    assert [row["sdkmessageprocessingstepid"] for row in listed] == [
        body["sdkmessageprocessingstepid"]
    ]
    assert set(listed[0]) == {"@odata.etag", "sdkmessageprocessingstepid", "name", "mode", "stage"}
    assert [row["name"] for row in by_message] == ["Create of account"]
    saved = CrmSdkMessageProcessingStep.objects.get()
    assert (saved.message_name, saved.primary_entity, saved.async_auto_delete) == (
        "Create", "account", True,
    )  # fmt: skip


# Web service error codes: ValidationFailed (0x80044331), PicklistValueOutOfRange
# (0x8004431A), ObjectDoesNotExist (0x80040217)
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes
# Register a plug-in, "Execution Mode": "Asynchronous plug-ins can only be registered for the
# PostOperation stage"
# https://learn.microsoft.com/power-apps/developer/data-platform/register-plug-in
@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"stage": 99}, 400, "0x8004431A"),
        ({"mode": 2}, 400, "0x8004431A"),
        ({"supporteddeployment": 3}, 400, "0x8004431A"),
        ({"stage": 20}, 400, "0x80044331"),  # asynchronous at PreOperation
        ({"rank": None}, 400, "0x80044331"),
        ({"eventhandler_serviceendpoint@odata.bind": None}, 400, "0x80044331"),
        ({"sdkmessageid@odata.bind": f"/sdkmessages({uuid.uuid4()})"}, 404, "0x80040217"),
        ({"sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({uuid.uuid4()})"}, 404,
         "0x80040217"),
        ({"eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({uuid.uuid4()})"}, 404,
         "0x80040217"),
        ({"eventhandler_serviceendpoint@odata.bind": "/accounts(1)"}, 400, "0x80048d19"),
        ({"eventhandler@odata.bind": "/serviceendpoints(1)"}, 400, "0x80048d19"),
    ],
)  # fmt: skip
def test_a_step_with_a_bad_value_or_bind_is_refused(demo_apps, change, status, code):
    with demo_apps.crm() as crm:
        endpoint_id = webhook(crm).json()["serviceendpointid"]
        payload = {**step_payload(endpoint_id), **change}
        payload = {k: v for k, v in payload.items() if v is not None}
        answer = crm.post("sdkmessageprocessingsteps", json=payload)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert not CrmSdkMessageProcessingStep.objects.exists()


def test_a_step_without_its_message_or_handler_is_refused(demo_apps):
    with demo_apps.crm() as crm:
        endpoint_id = webhook(crm).json()["serviceendpointid"]
        for missing in ("sdkmessageid@odata.bind", "eventhandler_serviceendpoint@odata.bind"):
            payload = {k: v for k, v in step_payload(endpoint_id).items() if k != missing}
            answer = crm.post("sdkmessageprocessingsteps", json=payload)
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "0x80044331")
        # A plug-in type is an event handler too, but the demo CRM has none.
        plugin = {
            **{k: v for k, v in step_payload(endpoint_id).items() if not k.startswith("event")},
            "eventhandler_plugintype@odata.bind": f"/plugintypes({uuid.uuid4()})",
        }
        answer = crm.post("sdkmessageprocessingsteps", json=plugin)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "0x80040217")
    assert "plugintype With Id" in answer.json()["error"]["message"]


# SdkMessageFilter table/entity reference (IsCustomProcessingStepAllowed: "Indicates whether a
# custom SDK message processing step is allowed"), the Security Role (Role) table's messages
# (Retrieve, Event: False), and Web service error codes (SdkCustomProcessingStepIsNotAllowed,
# 0x80044187, "Custom SdkMessageProcessingStep is not allowed on the specified message and
# entity.")
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessagefilter
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/role
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes
def test_a_step_on_a_message_that_is_no_event_of_the_table_is_refused(demo_apps):
    with demo_apps.crm() as crm:
        endpoint_id = webhook(crm).json()["serviceendpointid"]
        refused = step(crm, endpoint_id, "Retrieve", "role")
        # A filter of another message than the step's is not the step's filter.
        other = step(
            crm,
            endpoint_id,
            **{
                "sdkmessagefilterid@odata.bind": (
                    f"/sdkmessagefilters({dataverse_messages.filter_id('Update', 'account')})"
                )
            },
        )
        taken = step(crm, endpoint_id, "Update", "role")
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "0x80044187",
        "message": "Custom SdkMessageProcessingStep is not allowed on the specified message and "
        "entity.",
    }
    assert (other.status_code, other.json()["error"]["code"]) == (400, "0x80044331")
    assert taken.status_code == 201


# ServiceEndpoint table/entity reference, relationship serviceendpoint_sdkmessageprocessingstep
# (CascadeConfiguration Delete: Cascade); Update and delete table rows using the Web API
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
def test_a_webhook_is_changed_and_deleted_with_its_steps(demo_apps):
    with demo_apps.crm() as crm:
        endpoint = webhook(crm).json()
        key = f"serviceendpoints({endpoint['serviceendpointid']})"
        step(crm, endpoint["serviceendpointid"])
        stale = crm.patch(key, json={"url": "https://x.example/"}, headers={"If-Match": 'W/"1"'})
        assert stale.status_code == 412
        changed = crm.patch(
            key,
            json={"url": "https://console.example/new", "authvalue": "new key"},
            headers={"If-Match": endpoint["@odata.etag"]},
        )
        assert changed.status_code == 204
        assert crm.delete(key).status_code == 204
        gone = crm.get(key)
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "0x80040217")
    assert not CrmSdkMessageProcessingStep.objects.exists()


# The demo's security model, as for every table: a missing privilege is Dataverse's 403
# (Troubleshoot Dataverse client errors, "Principal user ... is missing ... privilege")
# https://learn.microsoft.com/power-apps/developer/data-platform/troubleshoot-dataverse-web-api-client-errors
def test_registering_a_webhook_takes_its_privileges(demo_apps):
    with as_integration_user(demo_apps) as crm:
        refused = webhook(crm)
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "0x80040220"
        assert "prvCreateServiceEndpoint" in error["message"]
        assert "OTC=4618 for entity 'serviceendpoint'" in error["message"]
        allow_webhook_registration()
        endpoint_id = webhook(crm).json()["serviceendpointid"]
        assert step(crm, endpoint_id).status_code == 201
        assert crm.get("serviceendpoints").status_code == 200


# The SdkMessage table, and "Use bulk operation messages": a client learns which table takes
# a message from sdkmessagefilters, filtered by the message's name and the table
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessage
# https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
def test_sdkmessages_are_found_by_name(demo_apps):
    with demo_apps.crm() as crm:
        create = crm.get(
            "sdkmessages",
            params={"$select": "sdkmessageid", "$filter": "name eq @n", "@n": "'Create'"},
        ).json()
        unknown = crm.get("sdkmessages", params={"$filter": "name eq 'Explode'"}).json()
        everything = crm.get("sdkmessages").json()["value"]
    assert create["value"] == [
        {"@odata.etag": 'W/"1"', "sdkmessageid": dataverse_messages.message_id("Create")}
    ]
    assert unknown["value"] == []
    assert {row["name"] for row in everything} >= {"Create", "Update", "Delete", "Retrieve"}


# Each table's reference lists its messages and whether each is an event, one a step may be
# registered on: Account (all of them, the bulk messages too), Currency (TransactionCurrency),
# User (SystemUser) and Security Role (Role) (Create, Update and Delete; Retrieve and
# RetrieveMultiple are not events), Team (Retrieve and RetrieveMultiple are events too)
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/account
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/transactioncurrency
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/systemuser
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/role
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/team
@pytest.mark.parametrize(
    "table, allowed, not_allowed",
    [
        ("account", {"Create", "CreateMultiple", "Delete", "Retrieve", "RetrieveMultiple",
                     "Update", "UpdateMultiple"}, set()),
        ("transactioncurrency", {"Create", "Delete", "Update"}, {"Retrieve", "RetrieveMultiple"}),
        ("systemuser", {"Create", "Delete", "Update"}, {"Retrieve", "RetrieveMultiple"}),
        ("role", {"Create", "Delete", "Update"}, {"Retrieve", "RetrieveMultiple"}),
        ("team", {"Create", "Delete", "Retrieve", "RetrieveMultiple", "Update"}, set()),
        ("lead", set(), set()),  # a table the demo CRM does not have
    ],
)  # fmt: skip
def test_the_message_filters_are_the_documented_messages_of_each_table(
    demo_apps, table, allowed, not_allowed
):
    with demo_apps.crm() as crm:
        rows = crm.get(
            "sdkmessagefilters",
            params={"$filter": "primaryobjecttypecode eq @t", "@t": f"'{table}'"},
        ).json()["value"]
        refused = crm.get(
            "sdkmessagefilters",
            params={
                "$select": "sdkmessagefilterid",
                "$filter": f"primaryobjecttypecode eq '{table}' and "
                "iscustomprocessingstepallowed eq false",
            },
        ).json()["value"]
    names = {dataverse_messages.message_named(row["_sdkmessageid_value"]): row for row in rows}
    assert set(names) == allowed | not_allowed
    assert {name for name, row in names.items() if row["iscustomprocessingstepallowed"]} == allowed
    assert {row["sdkmessagefilterid"] for row in refused} == {
        dataverse_messages.filter_id(name, table) for name in not_allowed
    }


def registered(demo_apps, url: str, **endpoint) -> tuple[str, dict[str, str]]:
    """A webhook with a step on Create, Update and Delete of account; its id and the steps'
    ids by message."""
    with demo_apps.crm() as crm:
        endpoint_id = webhook(crm, url=url, **endpoint).json()["serviceendpointid"]
        steps = {
            message: step(crm, endpoint_id, message).json()["sdkmessageprocessingstepid"]
            for message in ("Create", "Update", "Delete")
        }
    return endpoint_id, steps


# Use Webhooks to create external handlers for server events ("Data passed to the service":
# the WebhookKey as the query string, the x-ms-dynamics-* headers, the RemoteExecutionContext
# as the body)
# https://learn.microsoft.com/power-apps/developer/data-platform/use-webhooks
def test_each_registered_step_posts_the_execution_context_of_its_change(
    demo_apps, recorder, django_capture_on_commit_callbacks
):
    endpoint_id, steps = registered(demo_apps, recorder.url)
    with demo_apps.crm() as crm, django_capture_on_commit_callbacks(execute=True):
        created = crm.post("accounts", json={"name": "Nordlys AS"})
    account_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    wait_until(lambda: len(recorder.deliveries) == 1, timeout=10)
    with demo_apps.crm() as crm, django_capture_on_commit_callbacks(execute=True):
        crm.patch(f"accounts({account_id})", json={"address1_city": "Tromsø"})
    wait_until(lambda: len(recorder.deliveries) == 2, timeout=10)
    with demo_apps.crm() as crm, django_capture_on_commit_callbacks(execute=True):
        crm.delete(f"accounts({account_id})")
        crm.post("contacts", json={"fullname": "Not a subscribed table"})
    wait_until(lambda: len(recorder.deliveries) == 3, timeout=10)
    for delivery, message in zip(recorder.deliveries, ("Create", "Update", "Delete"), strict=True):
        assert delivery.params == {"code": [KEY]}
        context = delivery.body
        assert (context["MessageName"], context["PrimaryEntityName"]) == (message, "account")
        assert context["PrimaryEntityId"] == account_id
        assert (context["Stage"], context["Mode"]) == (40, 1)
        assert context["OwningExtension"] == {
            "Id": steps[message],
            "LogicalName": "sdkmessageprocessingstep",
        }
        assert delivery.headers["x-ms-dynamics-entity-name"] == "account"
        assert delivery.headers["x-ms-dynamics-request-name"] == message
        assert delivery.headers["x-ms-dynamics-organization"] == context["OrganizationName"]


# SdkMessageProcessingStep table/entity reference (StateCode 1: Disabled)
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
def test_a_disabled_step_posts_nothing(demo_apps, recorder, django_capture_on_commit_callbacks):
    _, steps = registered(demo_apps, recorder.url)
    with demo_apps.crm() as crm:
        disabled = crm.patch(f"sdkmessageprocessingsteps({steps['Create']})", json={"statecode": 1})
        assert disabled.status_code == 204
        assert crm.get(f"sdkmessageprocessingsteps({steps['Create']})").json()["statuscode"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        account = CrmAccount.objects.create(name="Quiet AS")
        account.name = "Loud AS"
        account.save()
    wait_until(lambda: recorder.deliveries, timeout=10)
    assert [d.body["MessageName"] for d in recorder.deliveries] == ["Update"]


# Register a WebHook, "Authentication options" (HttpHeader: key value pairs in the header;
# HttpQueryString: key value pairs as query string parameters)
# https://learn.microsoft.com/power-apps/developer/data-platform/register-web-hook
@pytest.mark.parametrize("authtype", [5, 6])
def test_a_webhook_sends_its_header_or_query_string_keys(
    demo_apps, recorder, django_capture_on_commit_callbacks, authtype
):
    settings = '<settings><setting name="Key1" value="Value1" /></settings>'
    registered(demo_apps, recorder.url, authtype=authtype, authvalue=settings)
    with django_capture_on_commit_callbacks(execute=True):
        CrmAccount.objects.create(name="Nordlys AS")
    wait_until(lambda: recorder.deliveries, timeout=10)
    (delivery,) = recorder.deliveries
    if authtype == 5:
        assert delivery.headers["key1"] == "Value1" and delivery.params == {}
    else:
        assert delivery.params == {"Key1": ["Value1"]}
