"""The demo ERP behaves as Business Central's API v2.0 documents it: webhook subscriptions
and their notifications, currencies and their exchange rates, the general ledger setup and
JSON $batch. Each test names the Microsoft page it follows."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from demo import business_central
from demo.models import (
    ErpCurrency,
    ErpCurrencyExchangeRate,
    ErpCustomer,
    ErpItem,
    ErpSubscription,
)
from tests.conftest import wait_until
from tests.webhook_recorder import Recorder

pytestmark = pytest.mark.django_db
COMPANY = settings.DEMO_ERP_COMPANY_ID


def erp(demo_apps, **options):
    """The demo ERP's API v2.0 root as its integration user calls it."""
    return demo_apps.client(
        base_url=f"{demo_apps.base_url}/demo/erp/api/v2.0/",
        auth=(settings.DEMO_ERP_USER, settings.DEMO_ERP_PASSWORD),
        **options,
    )


def receiver(demo_apps) -> str:
    """The console's own notification address for the connection's ERP side."""
    return demo_apps.base_url + reverse(
        "sync:notification", args=[demo_apps.connection.pk, "source"]
    )


def subscribe(demo_apps, entity="customers", url=None, client_state="shared-secret"):
    with erp(demo_apps) as api:
        return api.post(
            "subscriptions",
            json={
                "notificationUrl": url or receiver(demo_apps),
                "resource": f"/api/v2.0/companies({COMPANY})/{entity}",
                "clientState": client_state,
            },
        )


@pytest.fixture
def recorder():
    hook = Recorder()
    yield hook
    hook.close()


@pytest.fixture
def quick_notifications(monkeypatch):
    monkeypatch.setattr(business_central, "NOTIFICATION_DELAY_SECONDS", 0.05)
    monkeypatch.setattr(business_central, "DELIVERY_RETRY_SECONDS", 0.05)


# Working with webhooks in Dynamics 365 Business Central
# https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions
# subscriptions resource type
# https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_subscriptions
def test_a_subscription_is_created_after_the_handshake_and_expires_in_three_days(
    demo_apps, recorder
):
    before = timezone.now()
    answer = subscribe(demo_apps, url=recorder.url)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert len(recorder.handshakes) == 1
    documented = (
        "subscriptionId",
        "notificationUrl",
        "resource",
        "userId",
        "lastModifiedDateTime",
        "clientState",
        "expirationDateTime",
        "@odata.etag",
    )
    for name in documented:
        assert name in body, name
    assert (body["notificationUrl"], body["clientState"]) == (recorder.url, "shared-secret")
    assert body["resource"] == f"/api/v2.0/companies({COMPANY})/customers"
    expires = timezone.datetime.fromisoformat(body["expirationDateTime"].replace("Z", "+00:00"))
    assert timedelta(days=3) <= expires - before < timedelta(days=3, minutes=1)
    with erp(demo_apps) as api:
        listed = api.get("subscriptions").json()["value"]
    assert [s["subscriptionId"] for s in listed] == [body["subscriptionId"]]


def test_the_console_answers_the_handshake_of_its_own_receiver(demo_apps):
    assert subscribe(demo_apps).status_code == 201
    assert ErpSubscription.objects.get().notification_url == receiver(demo_apps)


def test_without_the_handshake_there_is_no_subscription(demo_apps, unused_port):
    nobody = subscribe(demo_apps, url=f"http://127.0.0.1:{unused_port}/hook")
    assert nobody.status_code == 400
    assert nobody.json()["error"]["code"] == "BadRequest"
    assert "handshake" in nobody.json()["error"]["message"]
    # The CRM side of the console asks for no handshake: it does not echo the token.
    crm_side = demo_apps.base_url + reverse(
        "sync:notification", args=[demo_apps.connection.pk, "destination"]
    )
    assert subscribe(demo_apps, url=crm_side).status_code == 400
    assert not ErpSubscription.objects.exists()


def test_only_the_documented_resources_take_subscriptions(demo_apps):
    """List of supported entities: contacts and currencyExchangeRates are not among them."""
    for entity in ("contacts", "currencyExchangeRates", "salespeople"):
        refused = subscribe(demo_apps, entity=entity)
        assert refused.status_code == 400, entity
        assert "does not support webhook subscriptions" in refused.json()["error"]["message"]
    unknown = subscribe(demo_apps, entity="invoices")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (
        404,
        "BadRequest_ResourceNotFound",
    )
    with erp(demo_apps) as api:
        other_company = api.post(
            "subscriptions",
            json={
                "notificationUrl": receiver(demo_apps),
                "resource": f"/api/v2.0/companies({uuid.UUID(int=1)})/customers",
            },
        )
        listed = api.get(
            f"{demo_apps.base_url}/demo/erp/api/microsoft/runtime/beta/companies({COMPANY})/"
            "webhookSupportedResources",
            params={"$filter": "resource eq 'v2.0*'"},
        ).json()["value"]
    assert other_company.json()["error"]["code"] == "Internal_CompanyNotFound"
    assert sorted(row["resource"] for row in listed) == [
        "v2.0/currencies",
        "v2.0/customers",
        "v2.0/items",
    ]


def test_a_subscription_is_renewed_with_patch_and_its_etag(demo_apps, recorder):
    created = subscribe(demo_apps, url=recorder.url).json()
    key = f"subscriptions('{created['subscriptionId']}')"
    ErpSubscription.objects.update(expiration=timezone.now() + timedelta(hours=2))
    with erp(demo_apps) as api:
        stale_etag = api.get(key).json()["@odata.etag"]
        no_etag = api.patch(key, json={})
        assert (no_etag.status_code, no_etag.json()["error"]["code"]) == (
            400,
            "BadRequest_InvalidToken",
        )
        wrong = api.patch(key, json={}, headers={"If-Match": 'W/"JzEnOw=="'})
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (409, "Request_EntityChanged")
        renewed = api.patch(key, json={}, headers={"If-Match": stale_etag})
        assert renewed.status_code == 200, renewed.text
        assert len(recorder.handshakes) == 2  # renewing asks for the handshake again
        expires = renewed.json()["expirationDateTime"]
        assert expires > created["expirationDateTime"]
        assert renewed.json()["@odata.etag"] != stale_etag
        assert api.delete(key).status_code == 204
        gone = api.get(key)
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "Internal_RecordNotFound")


def test_an_expired_subscription_is_gone(demo_apps, recorder):
    created = subscribe(demo_apps, url=recorder.url).json()
    ErpSubscription.objects.update(expiration=timezone.now() - timedelta(seconds=1))
    with erp(demo_apps) as api:
        assert api.get("subscriptions").json()["value"] == []
        assert api.get(f"subscriptions('{created['subscriptionId']}')").status_code == 404


def test_each_change_is_notified_with_its_record_and_change_type(
    demo_apps, recorder, quick_notifications, django_capture_on_commit_callbacks
):
    """Notifications and change types: created, updated, deleted, one request for many."""
    created = subscribe(demo_apps, url=recorder.url).json()
    with django_capture_on_commit_callbacks(execute=True):
        customer = ErpCustomer.objects.create(number="C99990", display_name="Nordlys AS")
        customer.city = "Tromsø"
        customer.save()
        ErpItem.objects.create(number="9999", display_name="Not subscribed")
    wait_until(lambda: len(recorder.notifications) == 1, timeout=10)
    customer_id = customer.pk
    with django_capture_on_commit_callbacks(execute=True):
        customer.delete()
    wait_until(lambda: len(recorder.notifications) == 2, timeout=10)
    first, second = recorder.notifications
    resource = f"api/v2.0/companies({COMPANY})/customers({customer_id})"
    assert [(n["resource"], n["changeType"]) for n in first["value"]] == [
        (resource, "created"),
        (resource, "updated"),
    ]
    assert [(n["resource"], n["changeType"]) for n in second["value"]] == [(resource, "deleted")]
    for notification in first["value"] + second["value"]:
        assert notification["subscriptionId"] == created["subscriptionId"]
        assert notification["clientState"] == "shared-secret"
        assert notification["expirationDateTime"] == created["expirationDateTime"]
        assert notification["lastModifiedDateTime"].endswith("Z")


def test_many_changes_at_once_are_one_collection_notification(
    demo_apps, recorder, quick_notifications, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(business_central, "COLLECTION_THRESHOLD", 2)
    subscribe(demo_apps, url=recorder.url)
    with django_capture_on_commit_callbacks(execute=True):
        for number in ("C99991", "C99992", "C99993"):
            ErpCustomer.objects.create(number=number, display_name=f"Customer {number}")
    wait_until(lambda: recorder.notifications, timeout=10)
    (notification,) = recorder.notifications[0]["value"]
    assert notification["changeType"] == "collection"
    path, _, query = notification["resource"].partition("?")
    assert path == f"/api/v2.0/companies({COMPANY})/customers"
    assert query.startswith("$filter=lastModifiedDateTime%20gt%20")


# Business Central API v2.0: currency resource type
# https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_currency
# currencyExchangeRate resource type
# https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_currencyexchangerate
def test_a_currency_has_no_exchange_rate_its_rates_are_a_resource_of_their_own(demo_apps):
    with erp(demo_apps) as api:
        company = f"companies({COMPANY})/"
        currencies = api.get(company + "currencies").json()["value"]
        rates = api.get(
            company + "currencyExchangeRates", params={"$filter": "currencyCode eq 'USD'"}
        ).json()["value"]
    assert currencies and not any("exchangeRate" in c for c in currencies)
    (usd,) = rates
    assert set(usd) == {"@odata.etag", "id", "currencyCode", "startingDate", "exchangeRateAmount",
                        "relationalCurrencyCode", "relationalExchangeRateAmount",
                        "lastModifiedDateTime"}  # fmt: skip
    assert (usd["startingDate"], usd["exchangeRateAmount"]) == ("2024-01-01", 1.08)
    # NOK has no exchange rate record at all: the demo's missing exchange rate.
    assert ErpCurrency.objects.filter(code="NOK").exists()
    assert not ErpCurrencyExchangeRate.objects.filter(currency_code="NOK").exists()


def test_exchange_rates_are_read_only_and_filtered_by_starting_date(demo_apps):
    ErpCurrencyExchangeRate.objects.create(
        currency_code="USD",
        starting_date=date.today() + timedelta(days=30),
        exchange_rate_amount=Decimal("1.10"),
    )
    url = f"companies({COMPANY})/currencyExchangeRates"
    with erp(demo_apps) as api:
        in_force = api.get(
            url, params={"$filter": f"currencyCode eq 'USD' and startingDate le {date.today()}"}
        ).json()["value"]
        created = api.post(url, json={"currencyCode": "NOK", "startingDate": "2024-01-01"})
    assert [rate["startingDate"] for rate in in_force] == ["2024-01-01"]
    assert (created.status_code, created.json()["error"]["code"]) == (
        405,
        "BadRequest_MethodNotAllowed",
    )


# generalLedgerSetup resource type (API v2.0; the entity set is generalLedgerSetup, page 30087
# "APIV2 - G/L Setup"): https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_generalledgersetup
def test_the_general_ledger_setup_names_the_local_currency(demo_apps):
    with erp(demo_apps) as api:
        (setup,) = api.get(f"companies({COMPANY})/generalLedgerSetup").json()["value"]
        refused = api.patch(f"companies({COMPANY})/generalLedgerSetup", json={})
    assert setup["localCurrencyCode"] == settings.DEMO_ERP_LOCAL_CURRENCY
    for name in ("id", "allowPostingFrom", "allowPostingTo", "additionalReportingCurrency",
                 "localCurrencySymbol", "lastModifiedDateTime", "allowQueryFromConsolidation",
                 "shortcutDimension1Code", "shortcutDimension8Code"):  # fmt: skip
        assert name in setup, name
    assert refused.status_code == 405


# Using OData transactional $batch requests
# https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-odata-batch
# Current API Limits ("A $batch request can contain a maximum of 100 operations")
# https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-current-limits
def customer(number: str, **more) -> dict:
    return {"number": number, "displayName": f"Batch {number}", **more}


def test_a_batch_answers_each_request_with_its_status_headers_and_body(demo_apps):
    batch = {
        "requests": [
            {"id": "1", "method": "POST", "url": f"companies({COMPANY})/customers",
             "headers": {"Content-Type": "application/json"}, "body": customer("B0001")},
            {"id": "2", "method": "GET",
             "url": f"companies({COMPANY})/customers?$filter=number eq 'B0001'"},
            {"id": "3", "method": "POST", "url": f"companies({COMPANY})/customers",
             "body": customer("B0002", email="not an address")},
        ]
    }  # fmt: skip
    with erp(demo_apps) as api:
        answer = api.post("$batch", json=batch)
    assert answer.status_code == 200
    first, second, third = answer.json()["responses"]
    assert (first["id"], first["status"]) == ("1", 201)
    assert first["body"]["number"] == "B0001"
    assert first["headers"]["content-type"].startswith("application/json")
    assert [c["number"] for c in second["body"]["value"]] == ["B0001"]
    assert (third["id"], third["status"], third["body"]["error"]["code"]) == (
        "3",
        400,
        "BadRequest",
    )
    # Outside an atomicity group each request stands on its own.
    assert ErpCustomer.objects.filter(number="B0001").exists()


def test_an_atomicity_group_is_written_together_or_not_at_all(demo_apps):
    group = [
        {"id": "a", "atomicityGroup": "g1", "method": "POST",
         "url": f"/demo/erp/api/v2.0/companies({COMPANY})/customers", "body": customer("B0010")},
        {"id": "b", "atomicityGroup": "g1", "method": "POST",
         "url": f"companies({COMPANY})/customers", "body": customer("B0011", email="bad")},
        {"id": "c", "method": "POST", "url": f"companies({COMPANY})/customers",
         "body": customer("B0012")},
    ]  # fmt: skip
    with erp(demo_apps) as api:
        responses = api.post("$batch", json={"requests": group}).json()["responses"]
    assert [(r["id"], r["status"]) for r in responses] == [("a", 424), ("b", 400), ("c", 201)]
    assert not ErpCustomer.objects.filter(number__in=["B0010", "B0011"]).exists()
    assert ErpCustomer.objects.filter(number="B0012").exists()


def test_isolation_snapshot_reverts_the_whole_batch_on_a_failure(demo_apps):
    requests = [
        {"id": "1", "method": "POST", "url": f"companies({COMPANY})/customers",
         "body": customer("B0020")},
        {"id": "2", "method": "PATCH", "url": f"companies({COMPANY})/customers(not-an-id)",
         "headers": {"If-Match": "*"}, "body": {"city": "Oslo"}},
    ]  # fmt: skip
    with erp(demo_apps) as api:
        answer = api.post("$batch", json={"requests": requests}, headers={"Isolation": "snapshot"})
    assert [r["status"] for r in answer.json()["responses"]] == [201, 404]
    assert not ErpCustomer.objects.filter(number="B0020").exists()


def test_a_batch_is_refused_whole_when_malformed_or_too_big(demo_apps):
    one = {"method": "GET", "url": f"companies({COMPANY})/currencies"}
    with erp(demo_apps) as api:
        too_many = api.post(
            "$batch", json={"requests": [{**one, "id": str(i)} for i in range(101)]}
        )
        twice = api.post("$batch", json={"requests": [{**one, "id": "x"}, {**one, "id": "x"}]})
        apart = api.post("$batch", json={"requests": [
            {**one, "id": "1", "atomicityGroup": "g"}, {**one, "id": "2"},
            {**one, "id": "3", "atomicityGroup": "g"}]})  # fmt: skip
        exactly = api.post("$batch", json={"requests": [{**one, "id": str(i)} for i in range(100)]})
    with demo_apps.client() as anonymous:
        unsigned = anonymous.post(
            f"{demo_apps.base_url}/demo/erp/api/v2.0/$batch",
            json={"requests": [{**one, "id": "1"}]},
        )
    for refused in (too_many, twice, apart):
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "BadRequest")
    assert "maximum of 100 operations" in too_many.json()["error"]["message"]
    assert exactly.status_code == 200 and len(exactly.json()["responses"]) == 100
    assert unsigned.status_code == 401


def test_a_batch_request_outside_the_api_is_not_found(demo_apps):
    requests = [
        {"id": "1", "method": "GET", "url": "/sync/mappings/"},
        {"id": "2", "method": "GET", "url": "$batch"},
        {"id": "3", "method": "GET", "url": "https://elsewhere.example/api/v2.0/companies"},
    ]
    with erp(demo_apps) as api:
        responses = api.post("$batch", json={"requests": requests}).json()["responses"]
    assert [r["status"] for r in responses] == [404, 404, 400]


@pytest.mark.django_db(transaction=True)
def test_a_subscriber_that_refuses_a_notification_loses_its_subscription(quick_notifications):
    """A subscriber answering other than 408, 429 or 5xx: no retries, and Business Central
    deletes the subscription."""
    hook = Recorder(status=410)
    try:
        ErpSubscription.objects.create(
            subscription_id=uuid.uuid4().hex,
            notification_url=hook.url,
            resource=f"/api/v2.0/companies({COMPANY})/customers",
            entity="customers",
            user_id=uuid.uuid4(),
            expiration=timezone.now() + timedelta(days=3),
        )
        ErpCustomer.objects.create(number="C99995", display_name="Refused")  # commits
        wait_until(lambda: not ErpSubscription.objects.exists(), timeout=10)
        assert len(hook.notifications) == 1  # not tried again
    finally:
        hook.close()
