import pytest
from django.test import Client
from django.urls import reverse

from errors.models import Category, Status, SyncError
from tests.factories import make_coupling, make_error, make_job

pytestmark = pytest.mark.django_db


def test_detail_shows_everything_stored(staff_client):
    job = make_job()
    coupling = make_coupling(job.mapping)
    error = make_error(
        job=job,
        mapping=job.mapping,
        coupling=coupling,
        category=Category.COUPLED_RECORD_DELETED,
        message="The Customer C00042 cannot be updated because it is coupled to a deleted record.",
        detail="Traceback (most recent call last):\n  File \"engine.py\", line 1\nKeyError: 'x'",
        source_record_id="C00042",
        destination_record_id="0d5f-42",
    )
    html = staff_client.get(error.get_absolute_url()).content.decode()
    assert "cannot be updated because it is coupled to a deleted record" in html
    assert "Coupled record deleted" in html
    assert "Traceback (most recent call last):" in html
    assert "KeyError: &#x27;x&#x27;" in html
    assert f"#{job.pk}" in html
    assert job.mapping.connection.name in html
    assert str(coupling) in html
    assert "C00042" in html and "0d5f-42" in html
    assert f'href="{error.source_url}"' in html
    # The record it was coupled to is gone: shown so, not linked.
    assert f'href="{error.destination_url}"' not in html
    assert "<strong>Deleted</strong> in Dynamics 365 Sales" in html
    assert "coupled-record error" in html


def test_setup_errors_say_they_need_an_administrator(staff_client):
    error = make_error(category=Category.AUTHENTICATION)
    html = staff_client.get(error.get_absolute_url()).content.decode()
    assert "needs an administrator" in html


def test_detail_escapes_hostile_detail_and_refuses_unsafe_links(staff_client):
    error = make_error(
        detail='{"error": {"message": "<script>steal()</script>"}}',
        destination_url="javascript:steal()",
    )
    html = staff_client.get(error.get_absolute_url()).content.decode()
    assert "<script>steal()" not in html
    assert "&lt;script&gt;steal()&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert "not an http(s) address" in html


def test_missing_entry_is_404(staff_client):
    assert staff_client.get(reverse("errors:detail", args=[987654])).status_code == 404


def test_status_changes_keep_who_and_when(staff_client, staff_user):
    error = make_error()
    url = reverse("errors:set_status", args=[error.pk])
    response = staff_client.post(url, {"status": "resolved"})
    assert response.status_code == 302
    error.refresh_from_db()
    assert error.status == Status.RESOLVED
    assert error.status_changed_by == staff_user
    assert error.status_changed_at is not None
    staff_client.post(url, {"status": "open"})
    error.refresh_from_db()
    assert error.status == Status.OPEN


def test_status_change_rejects_unknown_values_and_get(staff_client):
    error = make_error()
    url = reverse("errors:set_status", args=[error.pk])
    assert staff_client.get(url, {"status": "resolved"}).status_code == 405
    response = staff_client.post(url, {"status": "deleted"}, follow=True)
    assert "Choose open, resolved or ignored" in response.content.decode()
    assert SyncError.objects.get(pk=error.pk).status == Status.OPEN


def test_status_change_needs_the_csrf_token(staff_user):
    error = make_error()
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.post(reverse("errors:set_status", args=[error.pk]), {"status": "ignored"})
    assert response.status_code == 403
    assert SyncError.objects.get(pk=error.pk).status == Status.OPEN


def test_a_status_change_keeps_its_note_and_refuses_a_too_long_one(staff_client, staff_user):
    error = make_error()
    url = reverse("errors:set_status", args=[error.pk])
    staff_client.post(url, {"status": "resolved", "note": "  Fixed the phone number in CRM. "})
    error.refresh_from_db()
    assert (error.status, error.status_note) == ("resolved", "Fixed the phone number in CRM.")
    assert error.status_changed_by == staff_user
    page = staff_client.get(error.get_absolute_url()).content.decode()
    assert "Fixed the phone number in CRM." in page

    response = staff_client.post(url, {"status": "ignored", "note": "x" * 501}, follow=True)
    assert "The note can be at most 500 characters." in response.content.decode()
    error.refresh_from_db()
    assert error.status == "resolved"
