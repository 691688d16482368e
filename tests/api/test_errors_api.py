"""Entries through the API: every filter, pages, the detail, status changes, bulk actions with
a dry run, and the CSV export."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from errors.models import Category, SyncError
from tests.conftest import wait_until
from tests.factories import make_coupling, make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db
ERRORS = reverse("api:errors")


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_each_filter_and_the_search(admin_api):
    mapping, other = make_mapping(), make_mapping()
    job = make_job(mapping)
    coupling = make_coupling(mapping)
    conflict = make_error(
        mapping=mapping,
        job=job,
        coupling=coupling,
        category=Category.CONFLICT,
        message="Record C77 was changed in both apps",
    )
    deleted = make_error(
        mapping=other,
        category=Category.COUPLED_RECORD_DELETED,
        source_record_id="ABC-123",
        age=timedelta(days=3),
    )
    external = make_error(integration="Shop ↔ ERP", message="Order 1 failed: no stock")
    SyncError.objects.filter(pk=deleted.pk).update(status="resolved")

    assert ids(admin_api.get(ERRORS)) == {conflict.pk, deleted.pk, external.pk}
    cases = {
        "category": ("conflict", {conflict.pk}),
        "status": ("resolved", {deleted.pk}),
        "mapping": (other.pk, {deleted.pk}),
        "connection": (mapping.connection_id, {conflict.pk}),
        "job": (job.pk, {conflict.pk}),
        "coupling": (coupling.pk, {conflict.pk}),
        "group": (external.group_id, {external.pk}),
        "integration": ("Shop ↔ ERP", {external.pk}),
        "q": ("changed in both", {conflict.pk}),
    }
    for name, (value, expected) in cases.items():
        assert ids(admin_api.get(ERRORS, {name: value})) == expected, name
    assert ids(admin_api.get(ERRORS, {"q": "abc-123"})) == {deleted.pk}  # a whole record id
    day = (timezone.now() - timedelta(days=3)).date().isoformat()
    assert ids(admin_api.get(ERRORS, {"created_after": day, "created_before": day})) == {deleted.pk}


def test_bad_filters_and_pages_get_field_messages(admin_api):
    for query, field in (
        ({"category": "nope"}, "category"),
        ({"mapping": "x"}, "mapping"),
        ({"mapping": "0"}, "mapping"),
        ({"page_size": "0"}, "page_size"),
        ({"before": "not a link"}, "before"),
        ({"after": "a" * 201}, "after"),
        ({"job": "-1"}, "job"),
        ({"job": "1.5"}, "job"),
        ({"group": "²"}, "group"),
        ({"created_after": "2024-1-5"}, "created_after"),
        ({"q": "x" * 201}, "q"),
        ({"integration": "a\x00b"}, "integration"),
    ):
        response = admin_api.get(ERRORS, query)
        assert response.status_code == 400, query
        assert field in response.json(), (query, response.json())


def test_a_parameter_sent_empty_is_refused_not_taken_for_any(admin_api):
    make_error(category=Category.CONFLICT)
    for name in ("category", "status", "mapping", "connection", "job", "created_before"):
        response = admin_api.get(ERRORS, {name: ""})
        assert response.status_code == 400 and name in response.json(), name
    for name in ("page_size", "before", "after"):
        assert admin_api.get(ERRORS, {name: ""}).status_code == 400, name
    # Text may be empty: it searches for nothing.
    assert len(admin_api.get(ERRORS, {"q": "", "integration": ""}).json()["results"]) == 1


def test_an_id_that_names_nothing_matches_nothing(admin_api):
    make_error(category=Category.CONFLICT)
    for name in ("mapping", "connection", "job", "coupling", "group"):
        response = admin_api.get(ERRORS, {name: "999999"})
        assert response.status_code == 200 and response.json()["results"] == [], name


def test_a_well_formed_page_link_that_names_no_page_is_not_found(admin_api):
    make_error()
    for name in ("before", "after"):
        response = admin_api.get(ERRORS, {name: "garbage"})
        assert response.status_code == 404, name
        assert "names no page" in response.json()["detail"]


def test_pages_follow_the_cursors_newest_first(admin_api):
    made = [make_error() for _ in range(5)]
    first = admin_api.get(ERRORS, {"page_size": 2}).json()
    assert first["total"] == 5 and first["total_is_exact"] and first["previous"] is None
    seen = [row["id"] for row in first["results"]]
    page = first
    while page["next"]:
        page = admin_api.get(page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    newest_first = sorted(made, key=lambda e: (e.created_at, e.pk), reverse=True)
    assert seen == [e.pk for e in newest_first]
    back = admin_api.get(page["previous"]).json()
    assert [row["id"] for row in back["results"]] == seen[2:4]


def test_an_entry_with_only_safe_links(admin_api):
    error = make_error(source_url="javascript:alert(1)", message="<script>x</script>")
    row = admin_api.get(reverse("api:error", args=[error.pk])).json()
    assert row["source_url"] is None and row["destination_url"].startswith("https://")
    assert row["message"] == "<script>x</script>"  # JSON, not HTML: the console escapes it
    assert admin_api.get(reverse("api:error", args=[error.pk + 999])).status_code == 404


def test_setup_errors_are_hidden_from_sync_users(user_api, admin_api):
    setup = make_error(category=Category.PERMISSION, message="No privilege to create accounts")
    coupled = make_error(category=Category.CONFLICT)
    assert ids(user_api.get(ERRORS)) == {coupled.pk}
    assert ids(user_api.get(ERRORS, {"category": "permission"})) == set()
    assert user_api.get(reverse("api:error", args=[setup.pk])).status_code == 403
    status_url = reverse("api:error_status", args=[setup.pk])
    assert (
        user_api.post(
            status_url, {"status": "resolved"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert ids(admin_api.get(ERRORS)) == {setup.pk, coupled.pk}


def test_status_of_an_entry_with_a_note(user_api, sync_user):
    error = make_error(category=Category.CONFLICT)
    url = reverse("api:error_status", args=[error.pk])
    response = user_api.post(
        url, {"status": "resolved", "note": "fixed in the CRM"}, content_type="application/json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["status_note"], body["status_changed_by"]) == (
        "resolved",
        "fixed in the CRM",
        sync_user.username,
    )
    bad = user_api.post(
        url, {"status": "snoozed", "note": "x" * 501}, content_type="application/json"
    )
    assert bad.status_code == 400 and {"status", "note"} <= set(bad.json())
    error.refresh_from_db()
    assert error.status == "resolved"


def test_bulk_resolve_of_chosen_entries(admin_api):
    chosen = [make_error(category=Category.CONFLICT) for _ in range(3)]
    other = make_error(category=Category.CONFLICT)
    response = admin_api.post(
        reverse("api:error_actions"),
        {"action": "resolve", "ids": [e.pk for e in chosen], "note": "done"},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["state"], body["changed_count"]) == ("done", 3)
    assert admin_api.get(reverse("api:bulk_action", args=[body["id"]])).json()["state"] == "done"
    assert set(
        SyncError.objects.filter(pk__in=[e.pk for e in chosen]).values_list("status", flat=True)
    ) == {"resolved"}
    other.refresh_from_db()
    assert other.status == "open"


@pytest.mark.django_db(transaction=True)
def test_bulk_on_all_matching_needs_the_counted_number(admin_api, celery_worker):
    url = reverse("api:error_actions")
    for _ in range(3):
        make_error(category=Category.CONFLICT)
    make_error(category=Category.VALIDATION)
    ask = {"action": "ignore", "filters": {"category": "conflict"}}
    refused = admin_api.post(url, ask, content_type="application/json")
    assert refused.status_code == 400 and "expected_count" in str(refused.json())
    dry = admin_api.post(url, {**ask, "dry_run": True}, content_type="application/json")
    assert dry.json()["count"] == 3
    make_error(category=Category.CONFLICT)  # one more arrives after the count
    stale = admin_api.post(url, {**ask, "expected_count": 3}, content_type="application/json")
    assert stale.status_code == 409 and stale.json()["count"] == 4
    assert SyncError.objects.filter(status="ignored").count() == 0
    done = admin_api.post(url, {**ask, "expected_count": 4}, content_type="application/json")
    assert done.status_code == 202
    progress = reverse("api:bulk_action", args=[done.json()["id"]])

    def finished():
        body = admin_api.get(progress).json()
        return body if body["state"] in ("done", "failed") else None

    body = wait_until(finished, timeout=60, message=celery_worker.log_path.read_text())
    assert (body["scope"], body["state"], body["changed_count"]) == ("filter", "done", 4)
    assert SyncError.objects.filter(category="validation", status="open").count() == 1


def test_bulk_refusals_say_why(admin_api):
    url = reverse("api:error_actions")
    for body, field in (
        ({"action": "explode", "ids": [1]}, "action"),
        ({"action": "resolve"}, "non_field_errors"),
        ({"action": "resolve", "ids": []}, "ids"),
        ({"action": "resolve", "ids": list(range(1, 502))}, "ids"),
        ({"action": "resolve", "ids": ["x"]}, "ids"),
        ({"action": "resolve", "ids": ["1"]}, "ids"),
        ({"action": "resolve", "ids": [1], "dry_run": True}, "non_field_errors"),
        ({"action": "resolve", "ids": [1], "expected_count": 1}, "non_field_errors"),
        ({"action": "resolve", "ids": [1], "dry-run": True}, "dry-run"),
        ({"action": "resolve", "filters": {"status": ""}, "dry_run": True}, "filters"),
        ({"action": "resolve", "filters": {"mapping": 3}, "dry_run": True}, "filters"),
        ({"action": "resolve", "filters": {"page": "2"}, "dry_run": True}, "filters"),
    ):
        response = admin_api.post(url, body, content_type="application/json")
        assert response.status_code == 400 and field in response.json(), body
    gone = admin_api.post(
        url, {"action": "resolve", "ids": [99999]}, content_type="application/json"
    )
    assert gone.status_code == 404 and "None of these entries" in gone.json()["detail"]


def test_csv_export_respects_the_filter_and_neutralises_formulas(user_api, sync_user_client):
    hostile = make_error(
        category=Category.CONFLICT,
        message='=HYPERLINK("http://evil")',
        source_record_id="+1-555",
        destination_record_id="@SUM(A1)",
    )
    make_error(category=Category.VALIDATION, message="-2 is not a quantity")
    make_error(category=Category.PERMISSION, message="setup: hidden from Sync users")
    conflicts = {"category": "conflict"}
    for response in (
        user_api.get(reverse("api:errors_export"), conflicts),
        sync_user_client.get(reverse("errors:export"), conflicts),
    ):
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) == 2, rows
        row = dict(zip(rows[0], rows[1], strict=True))
        assert row["Entry"] == str(hostile.pk)
        assert row["Message"] == '\'=HYPERLINK("http://evil")'
        assert (row["Source record"], row["Destination record"]) == ("'+1-555", "'@SUM(A1)")
    everything = b"".join(sync_user_client.get(reverse("errors:export")).streaming_content).decode(
        "utf-8-sig"
    )
    assert "'-2 is not a quantity" in everything and "setup: hidden" not in everything
    bad = sync_user_client.get(reverse("errors:export"), {"category": "nope"})
    assert bad.status_code == 400


def test_csv_export_streams_every_page(user_api, monkeypatch):
    from errors import export

    monkeypatch.setattr(export, "CHUNK", 3)
    made = {make_error(category=Category.CONFLICT).pk for _ in range(8)}
    text = b"".join(user_api.get(reverse("api:errors_export")).streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert {int(row["Entry"]) for row in rows} == made and len(rows) == 8
