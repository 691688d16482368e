"""Errors of other integrations: one or many per request, checked field by field, all or
nothing, grouped per integration, and safe to send twice with an Idempotency-Key."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api.models import IngestionRequest
from errors.models import ErrorGroup, SyncError

pytestmark = pytest.mark.django_db
INGEST = reverse("api:ingest")


def failure(n: int, **extra) -> dict:
    return {
        "message": f"Order SO-{n} could not be posted: item {n}00 has no stock",
        "category": "validation",
        "source_app": "Shop",
        "source_entity": "orders",
        "source_record_id": f"SO-{n}",
        "source_url": f"https://shop.example.com/orders/SO-{n}",
        "destination_app": "ERP",
        "destination_entity": "salesOrders",
        **extra,
    }


def send(client: Client, body, **headers):
    return client.post(INGEST, json.dumps(body), content_type="application/json", headers=headers)


def test_one_many_or_wrapped_errors_are_stored_and_grouped_per_integration(
    integration_api, admin_api
):
    assert send(integration_api, failure(1)).status_code == 201
    assert send(integration_api, [failure(2), failure(3)]).status_code == 201
    answer = send(integration_api, {"errors": [failure(4)]}).json()
    assert answer["stored"] == 1 and answer["groups"][0]["count"] == 4
    other = send(admin_api, failure(5, integration="Payroll ↔ ERP")).json()

    groups = ErrorGroup.objects.filter(count__gt=0)
    assert {(g.integration, g.count) for g in groups} == {("Shop ↔ ERP", 4), ("Payroll ↔ ERP", 1)}
    assert other["groups"][0]["integration"] == "Payroll ↔ ERP"
    entry = SyncError.objects.get(source_record_id="SO-4")
    assert (entry.integration, entry.category, entry.mapping_id) == (
        "Shop ↔ ERP",
        "validation",
        None,
    )
    problems = admin_api.get(reverse("api:problems"), {"integration": "Shop ↔ ERP"}).json()
    assert [p["count"] for p in problems["results"]] == [4]


def test_the_console_shows_them_as_one_problem_with_their_integration(
    integration_api, staff_client
):
    send(integration_api, [failure(n) for n in range(1, 31)])
    page = staff_client.get(reverse("errors:groups")).content.decode()
    assert "Shop ↔ ERP" in page and "SO-1 could not be posted" in page
    assert ErrorGroup.objects.get(integration="Shop ↔ ERP").count == 30


def test_a_bad_entry_refuses_the_whole_batch_with_field_messages(integration_api):
    before = list(ErrorGroup.objects.values_list("pk", "count"))
    body = [
        failure(1),
        failure(2, message=""),
        failure(3, category="bogus", source_url="javascript:alert(1)"),
        failure(4, occurred_at=(timezone.now() + timedelta(days=1)).isoformat(), colour="red"),
        failure(5, source_record_id="x" * 101, message="a\x00b"),
    ]
    response = send(integration_api, body)
    assert response.status_code == 400
    problems = response.json()["errors"]
    assert set(problems) == {"1", "2", "3", "4"}
    assert "message" in problems["1"]
    assert {"category", "source_url"} <= set(problems["2"])
    assert "colour" in problems["3"]
    assert {"source_record_id", "message"} <= set(problems["4"])
    assert SyncError.objects.count() == 0
    assert list(ErrorGroup.objects.values_list("pk", "count")) == before


def test_an_entry_from_the_future_or_out_of_the_calendar_is_a_conflict(integration_api):
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()
    response = send(integration_api, [failure(1), failure(2, occurred_at=tomorrow)])
    assert response.status_code == 409
    assert set(response.json()["errors"]) == {"1"}
    # A day UTC cannot hold: the first moment of the calendar, an hour east of UTC.
    before_time = failure(3, occurred_at="0001-01-01T00:00:00+01:00")
    assert send(integration_api, before_time).status_code == 409
    assert SyncError.objects.count() == 0
    stored = send(integration_api, failure(4, occurred_at="2020-02-29T23:30:00-05:00"))
    assert stored.status_code == 201
    assert SyncError.objects.get().created_at.isoformat() == "2020-03-01T04:30:00+00:00"


def test_values_are_read_as_their_json_types_and_text_as_sent(integration_api):
    for entry in (
        failure(1, source_record_id=7),
        failure(2, message=["x"]),
        failure(3, occurred_at="2024-01-01T10:00:00"),  # no offset
        failure(4, occurred_at="2024-01-01 10:00:00Z"),
        failure(5, message="   "),
        failure(6, source_url="http://[::1]/orders"),
        failure(7, destination_url="ftp://erp.example/x"),
    ):
        assert send(integration_api, entry).status_code == 400, entry
    padded = failure(8, message="  SO-8 failed\n", source_url="  HTTPS://shop.example/SO-8 ")
    assert send(integration_api, padded).status_code == 201
    entry = SyncError.objects.get()
    assert (entry.message, entry.source_url) == ("SO-8 failed", "HTTPS://shop.example/SO-8")


@pytest.mark.parametrize(
    "body, status",
    [("not json", 400), ([], 400), (42, 400), ([1, 2], 400), ({"errors": "x"}, 400)],
)
def test_malformed_bodies_are_refused_clearly(integration_api, body, status):
    raw = body if isinstance(body, str) else json.dumps(body)
    response = integration_api.post(INGEST, raw, content_type="application/json")
    assert response.status_code == status
    assert response.json()
    assert SyncError.objects.count() == 0


def test_too_many_at_once_is_refused(integration_api):
    response = send(integration_api, [failure(n) for n in range(1001)])
    assert response.status_code == 400 and "at most 1,000" in str(response.json())


def test_without_an_integration_name_it_asks_for_one(admin_api):
    response = send(admin_api, failure(1))
    assert response.status_code == 400 and "integration" in response.json()["errors"]["0"]


def test_an_idempotency_key_stores_once(integration_api):
    first = send(integration_api, [failure(1), failure(2)], **{"Idempotency-Key": "batch-1"})
    again = send(integration_api, [failure(1), failure(2)], **{"Idempotency-Key": "batch-1"})
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert SyncError.objects.count() == 2
    changed = send(integration_api, [failure(3)], **{"Idempotency-Key": "batch-1"})
    assert changed.status_code == 409 and "different body" in changed.json()["detail"]
    assert send(integration_api, [failure(3)], **{"Idempotency-Key": "batch-2"}).status_code == 201
    assert SyncError.objects.count() == 3
    for key in ("k" * 201, "clé"):
        bad_key = send(integration_api, [failure(4)], **{"Idempotency-Key": key})
        assert bad_key.status_code == 400 and SyncError.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_same_key_sent_twice_at_once_stores_once(integration_api):
    body = [failure(n) for n in range(50)]
    answers = []

    def post():
        answers.append(send(integration_api, body, **{"Idempotency-Key": "together"}))
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [201, 201]
    assert SyncError.objects.count() == 50 and IngestionRequest.objects.count() == 1
    assert answers[0].json() == answers[1].json()


def test_integrations_may_send_but_not_read(integration_api):
    assert integration_api.get(reverse("api:errors")).status_code == 403
    assert integration_api.get(reverse("api:problems")).status_code == 403
