"""The apps' first records and users are made before anyone subscribes to a table: their saves
are announced to no one and look no subscriber up; once a table has a subscriber, it hears of
them."""

import random
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from demo import webhooks
from demo.models import CrmRole, CrmSystemUser, ErpSubscription
from demo.seed import create_records

pytestmark = pytest.mark.django_db

SUBSCRIBERS = ("demo_erpsubscription", "demo_crmsdkmessageprocessingstep")


def subscriber_lookups(queries) -> list[str]:
    return [q["sql"] for q in queries if any(table in q["sql"] for table in SUBSCRIBERS)]


def someone_subscribes_to_the_currencies() -> None:
    ErpSubscription.objects.create(
        subscription_id=uuid.uuid4().hex,
        notification_url="https://subscriber.example/hook",
        resource="/api/v2.0/companies(1)/currencies",
        entity="currencies",
        user_id=uuid.uuid4(),
        expiration=timezone.now() + timedelta(days=3),
    )


def test_the_first_records_look_no_subscriber_up_while_nobody_listens(monkeypatch):
    announced = []
    monkeypatch.setattr(webhooks, "announce", lambda *args: announced.append(args))
    with CaptureQueriesContext(connection) as queries:
        create_records(random.Random(3), customers=12)  # noqa: S311
    # One look at the start, at each app's subscribers.
    assert len(subscriber_lookups(queries.captured_queries)) == 2
    assert announced == []


def test_the_first_records_are_announced_to_a_table_that_has_a_subscriber(monkeypatch):
    someone_subscribes_to_the_currencies()
    announced = []
    monkeypatch.setattr(webhooks, "announce", lambda entity, changes: announced.append(entity))
    create_records(random.Random(3), customers=12)  # noqa: S311
    # Those saved one by one and those written in bulk alike.
    assert {"currencies", "currencyExchangeRates", "customers", "items"} <= set(announced)


def test_each_crm_role_and_user_is_announced_once_whether_made_in_bulk_or_not(monkeypatch):
    someone_subscribes_to_the_currencies()
    changes = []

    def notify_changes(app, entity, record_ids, change="updated"):
        changes.extend((app, entity, pk, change) for pk in record_ids)

    monkeypatch.setattr(webhooks, "notify_changes", notify_changes)
    create_records(random.Random(3), customers=3)  # noqa: S311
    for entity, model in (("roles", CrmRole), ("systemusers", CrmSystemUser)):
        announced = [pk for app, name, pk, _ in changes if (app, name) == ("crm", entity)]
        assert sorted(announced) == sorted(model.objects.values_list("pk", flat=True)), entity
        assert {c for app, name, _, c in changes if name == entity} == {"created"}
