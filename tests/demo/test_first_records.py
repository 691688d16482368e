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
from demo.models import ErpSubscription
from demo.seed import create_records

pytestmark = pytest.mark.django_db

SUBSCRIBERS = ("demo_erpsubscription", "demo_crmsdkmessageprocessingstep")


def subscriber_lookups(queries) -> list[str]:
    return [q["sql"] for q in queries if any(table in q["sql"] for table in SUBSCRIBERS)]


def test_the_first_records_look_no_subscriber_up_while_nobody_listens(monkeypatch):
    announced = []
    monkeypatch.setattr(webhooks, "announce", lambda *args: announced.append(args))
    with CaptureQueriesContext(connection) as queries:
        create_records(random.Random(3), customers=12)  # noqa: S311
    # One look at the start, at each app's subscribers.
    assert len(subscriber_lookups(queries.captured_queries)) == 2
    assert announced == []


def test_the_first_records_are_announced_to_a_table_that_has_a_subscriber(monkeypatch):
    ErpSubscription.objects.create(
        subscription_id=uuid.uuid4().hex,
        notification_url="https://subscriber.example/hook",
        resource="/api/v2.0/companies(1)/currencies",
        entity="currencies",
        user_id=uuid.uuid4(),
        expiration=timezone.now() + timedelta(days=3),
    )
    announced = []
    monkeypatch.setattr(webhooks, "announce", lambda entity, changes: announced.append(entity))
    create_records(random.Random(3), customers=12)  # noqa: S311
    # Those saved one by one and those written in bulk alike.
    assert {"currencies", "currencyExchangeRates", "customers", "items"} <= set(announced)
