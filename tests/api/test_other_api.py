"""Problems, jobs and clean-ups through the API, and its OpenAPI description."""

from datetime import timedelta

import pytest
import yaml
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.validation import validate_schema

from errors.models import Category, ErrorGroup, SyncError, SyncErrorCleanup
from sync.models import SyncJob
from tests.factories import make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db


def post(client, name, body, *args):
    return client.post(reverse(name, args=args), body, content_type="application/json")


def test_problems_list_filter_and_status(user_api, sync_user):
    conflict = make_error(category=Category.CONFLICT, message="Record 1 changed in both apps")
    make_error(category=Category.CONFLICT, message="Record 2 changed in both apps")
    make_error(category=Category.VALIDATION, message="Name too long")
    listed = user_api.get(reverse("api:problems"), {"category": "conflict"}).json()
    assert [(p["id"], p["count"]) for p in listed["results"]] == [(conflict.group_id, 2)]
    assert user_api.get(reverse("api:problems"), {"status": "bogus"}).status_code == 400

    response = post(
        user_api, "api:problem_status", {"status": "resolved", "note": "fixed"}, conflict.group_id
    )
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    assert set(
        SyncError.objects.filter(group_id=conflict.group_id).values_list("status", flat=True)
    ) == {"resolved"}
    snooze = post(
        user_api,
        "api:problem_status",
        {"status": "snoozed", "more_occurrences": 5},
        conflict.group_id,
    )
    assert snooze.json()["snooze_until_count"] == 7
    for body in (
        {"status": "snoozed"},
        {"status": "snoozed", "snoozed_until": "2031-01-01T00:00:00"},  # no offset
        {"status": "snoozed", "snoozed_until": "2031-01-01T00:00:00Z", "more_occurrences": 3},
        {"status": "open", "more_occurrences": 3},
        {"status": "open", "reason": "typo of note"},
    ):
        assert post(user_api, "api:problem_status", body, conflict.group_id).status_code == 400
    # Well formed, but a snooze that ended before it began.
    for until in ("2001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00"):
        body = {"status": "snoozed", "snoozed_until": until}
        refused = post(user_api, "api:problem_status", body, conflict.group_id)
        assert refused.status_code == 409 and "snoozed_until" in refused.json(), until


def test_setup_problems_are_for_administrators(user_api, admin_api):
    setup = make_error(category=Category.AUTHENTICATION, message="Password must be changed")
    assert user_api.get(reverse("api:problem", args=[setup.group_id])).status_code == 403
    assert (
        post(user_api, "api:problem_status", {"status": "ignored"}, setup.group_id).status_code
        == 403
    )
    assert user_api.get(reverse("api:problems")).json()["results"] == []
    assert admin_api.get(reverse("api:problem", args=[setup.group_id])).json()["count"] == 1
    assert ErrorGroup.objects.get(pk=setup.group_id).status == "open"


def test_jobs_list_filter_and_start(admin_api, user_api, celery_queue):
    mapping = make_mapping()
    done = make_job(mapping)
    make_job(make_mapping(), status=SyncJob.Status.FAILED)
    listed = admin_api.get(reverse("api:jobs"), {"mapping": mapping.pk}).json()
    assert [job["id"] for job in listed["results"]] == [done.pk]
    assert admin_api.get(reverse("api:job", args=[done.pk])).json()["status"] == "succeeded"

    started = post(admin_api, "api:jobs", {"mapping": mapping.pk, "kind": "full"})
    assert started.status_code == 202, started.content
    job = SyncJob.objects.get(pk=started.json()["id"])
    assert (job.kind, job.status, job.trigger) == ("full", "queued", "user")
    refused = post(admin_api, "api:jobs", {"mapping": mapping.pk, "kind": "full"})
    assert refused.status_code == 409 and "already" in refused.json()["detail"]
    nothing = post(admin_api, "api:jobs", {"mapping": 99999, "kind": "full"})
    assert nothing.status_code == 404
    assert nothing.json() == {"mapping": ["There is no such table mapping."]}
    assert post(admin_api, "api:jobs", {"mapping": str(mapping.pk), "kind": "full"}).json() == {
        "mapping": ["A valid integer is required."]
    }
    assert "kind" in post(admin_api, "api:jobs", {"mapping": mapping.pk, "kind": "x"}).json()
    assert post(user_api, "api:jobs", {"mapping": mapping.pk, "kind": "full"}).status_code == 403


def test_cleanup_older_than_days_and_all(user_api, admin_api):
    old = make_error(age=timedelta(days=10))
    new = make_error(age=timedelta(hours=1))
    response = post(user_api, "api:cleanups", {"days": 7})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["deleted_count"], body["trigger"], body["state"]) == (1, "api", "done")
    assert not SyncError.objects.filter(pk=old.pk).exists()
    assert admin_api.get(reverse("api:cleanup", args=[body["id"]])).json()["deleted_count"] == 1

    assert post(user_api, "api:cleanups", {"all": True}).status_code == 403
    assert SyncError.objects.filter(pk=new.pk).exists()
    for bad in (
        {},
        {"days": 0},
        {"days": "x"},
        {"days": "7"},
        {"days": 7.0},
        {"days": 7, "all": True},
        {"days": 7, "all": 0},
        {"all": "true"},
        {"all": False},
        {"days": 99999},
        {"days": 7, "weeks": 1},
    ):
        assert post(user_api, "api:cleanups", bad).status_code == 400, bad
    everything = post(admin_api, "api:cleanups", {"all": True})
    assert everything.status_code == 201 and everything.json()["deleted_count"] == 1
    assert SyncError.objects.count() == 0
    assert SyncErrorCleanup.objects.filter(trigger="api").count() == 2


def test_the_openapi_description_is_served_and_valid():
    response = Client().get(reverse("api:schema"))
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    paths = schema["paths"]
    assert {
        "/api/v1/errors/",
        "/api/v1/ingest/",
        "/api/v1/errors/actions/",
        "/api/v1/cleanups/",
        "/api/v1/problems/{id}/status/",
    } <= set(paths)
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    filters = {p["name"] for p in paths["/api/v1/errors/"]["get"]["parameters"]}
    assert {"category", "status", "mapping", "q", "before", "page_size"} <= filters
    docs = Client().get(reverse("api:docs"))
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_entries_times_are_iso_with_zone(admin_api):
    make_error(created_at=timezone.now())
    row = admin_api.get(reverse("api:errors")).json()["results"][0]
    assert row["created_at"].endswith("Z") or "+" in row["created_at"]


def test_the_description_has_no_warnings(tmp_path):
    from django.core.management import call_command

    # Every view, filter and choice set is described precisely (no guessed types).
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert "/api/v1/couplings/match/" in (tmp_path / "s.yml").read_text()
