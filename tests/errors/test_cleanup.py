import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from errors import services
from errors.models import Status, SyncError, SyncErrorCleanup
from tests.factories import make_error

pytestmark = pytest.mark.django_db
OLDER = reverse("errors:cleanup_confirm", args=["older_than"]) + "?days=7"
ALL = reverse("errors:cleanup_confirm", args=["all"])


def test_older_than_7_days_keeps_the_entry_a_minute_younger(staff_client):
    stays = make_error(age=timedelta(days=7) - timedelta(minutes=1))
    goes = make_error(age=timedelta(days=7, minutes=1))
    very_old = make_error(age=timedelta(days=40))
    response = staff_client.post(OLDER, {"days": "7"})
    assert response.status_code == 302
    remaining = set(SyncError.objects.values_list("pk", flat=True))
    assert remaining == {stays.pk}
    assert not SyncError.objects.filter(pk__in=[goes.pk, very_old.pk]).exists()


def test_delete_all_deletes_everything(staff_client):
    make_error(age=timedelta(seconds=5))
    make_error(age=timedelta(days=100))
    staff_client.post(ALL)
    assert SyncError.objects.count() == 0


def test_confirmation_page_says_how_many_and_how_many_are_open(staff_client):
    make_error(age=timedelta(days=8), status=Status.OPEN)
    make_error(age=timedelta(days=9), status=Status.RESOLVED)
    make_error(age=timedelta(days=10), status=Status.OPEN)
    make_error(age=timedelta(days=1), status=Status.OPEN)
    html = staff_client.get(OLDER).content.decode()
    assert "Delete Entries Older than 7 Days" in html
    assert re.search(
        r'Are you sure that you want to delete the <strong id="delete-count">3</strong>', html
    )
    assert re.search(r"<strong>2</strong> of them are still open", html)
    html = staff_client.get(ALL).content.decode()
    assert re.search(r'<strong id="delete-count">4</strong>', html)
    assert re.search(r"<strong>3</strong> of them are still open", html)


def test_confirmation_page_when_nothing_would_go(staff_client):
    make_error(age=timedelta(days=1))
    html = staff_client.get(OLDER).content.decode()
    assert "There are no entries to delete older than 7 days" in html


def test_get_never_deletes(staff_client):
    make_error(age=timedelta(days=30))
    staff_client.get(OLDER)
    staff_client.get(ALL)
    staff_client.get(ALL + "?confirm=yes")
    assert SyncError.objects.count() == 1
    assert SyncErrorCleanup.objects.count() == 0


def test_deleting_needs_the_csrf_token(staff_user):
    make_error(age=timedelta(days=30))
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(ALL).status_code == 403
    assert SyncError.objects.count() == 1


def test_the_list_links_to_both_actions(staff_client):
    html = staff_client.get(reverse("errors:list")).content.decode()
    assert "Delete Entries Older than 7 Days" in html
    assert "Delete All Entries" in html


def test_each_deletion_is_recorded_with_who_what_and_how_many(staff_client, staff_user):
    make_error(age=timedelta(days=8), status=Status.OPEN)
    make_error(age=timedelta(days=9), status=Status.IGNORED)
    make_error(age=timedelta(hours=1))
    response = staff_client.post(OLDER, {"days": "7"}, follow=True)
    assert "Deleted 2 entries older than 7 days." in response.content.decode()
    cleanup = SyncErrorCleanup.objects.get()
    assert cleanup.requested_by == staff_user
    assert cleanup.action == SyncErrorCleanup.Action.OLDER_THAN
    assert cleanup.days == 7
    assert cleanup.trigger == SyncErrorCleanup.Trigger.CONSOLE
    assert cleanup.expected_count == 2
    assert cleanup.open_count == 1
    assert cleanup.deleted_count == 2
    assert cleanup.state == SyncErrorCleanup.State.DONE
    assert cleanup.finished_at >= cleanup.started_at

    staff_client.post(ALL)
    latest = SyncErrorCleanup.objects.first()
    assert latest.action == SyncErrorCleanup.Action.ALL
    assert latest.days is None
    assert latest.deleted_count == 1


@pytest.mark.parametrize("days", ["0", "-3", "abc", "100000", "7.5"])
def test_bad_day_counts_are_refused_with_a_message(staff_client, days):
    make_error(age=timedelta(days=30))
    url = reverse("errors:cleanup_confirm", args=["older_than"])
    response = staff_client.post(url, {"days": days}, follow=True)
    assert "The number of days must be a whole number" in response.content.decode()
    assert SyncError.objects.count() == 1


def test_unknown_action_is_404(staff_client):
    assert staff_client.get(reverse("errors:cleanup_confirm", args=["some"])).status_code == 404


def test_deletion_runs_in_batches(settings):
    settings.SYNC_ERROR_CLEANUP_BATCH_SIZE = 3
    for _ in range(10):
        make_error(age=timedelta(days=20))
    keep = make_error(age=timedelta(days=1))
    cleanup = services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.COMMAND)
    assert cleanup.deleted_count == 10
    assert list(SyncError.objects.values_list("pk", flat=True)) == [keep.pk]


def test_entries_that_arrive_after_delete_all_was_asked_stay():
    make_error(age=timedelta(days=1))
    cleanup = SyncErrorCleanup.objects.create(
        action=SyncErrorCleanup.Action.ALL,
        cutoff=timezone.now(),
        trigger=SyncErrorCleanup.Trigger.CONSOLE,
        expected_count=1,
    )
    late = make_error(created_at=timezone.now() + timedelta(seconds=1))
    services.run_cleanup(cleanup.pk)
    assert list(SyncError.objects.values_list("pk", flat=True)) == [late.pk]


def test_running_a_finished_cleanup_again_changes_nothing():
    make_error(age=timedelta(days=10))
    cleanup = services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.COMMAND)
    make_error(age=timedelta(days=10))
    again = services.run_cleanup(cleanup.pk)
    assert again.deleted_count == 1
    assert SyncError.objects.count() == 1


def test_large_cleanups_go_to_the_queue_and_show_progress(staff_client, settings, monkeypatch):
    settings.SYNC_ERROR_CLEANUP_ASYNC_THRESHOLD = 2
    queued = []
    from syncconsole.celery import app

    def send_task(name, args, countdown=None):
        queued.extend(args if name == "errors.run_sync_error_cleanup" else [])

    monkeypatch.setattr(app, "send_task", send_task)
    for _ in range(3):
        make_error(age=timedelta(days=10))
    response = staff_client.post(OLDER, {"days": "7"})
    cleanup = SyncErrorCleanup.objects.get()
    assert queued == [cleanup.pk]
    assert response["Location"] == cleanup.get_absolute_url()
    assert cleanup.state == SyncErrorCleanup.State.QUEUED
    assert SyncError.objects.count() == 3

    page = staff_client.get(cleanup.get_absolute_url()).content.decode()
    assert "<progress" in page
    assert "0 of 3 entries deleted" in re.sub(r"<[^>]+>", "", page)
    status = staff_client.get(cleanup.get_absolute_url(), {"format": "json"}).json()
    assert status["finished"] is False and status["expected_count"] == 3

    services.run_cleanup(cleanup.pk)
    status = staff_client.get(cleanup.get_absolute_url(), {"format": "json"}).json()
    assert status == {
        "state": "done",
        "state_display": "Done",
        "expected_count": 3,
        "deleted_count": 3,
        "progress_percent": 100,
        "finished": True,
        "outcome": "Deleted 3 entries older than 7 days.",
        "list_url": reverse("errors:list"),
    }


def test_an_unreachable_queue_is_said_clearly_and_deletes_nothing(
    staff_client, settings, monkeypatch
):
    settings.SYNC_ERROR_CLEANUP_ASYNC_THRESHOLD = 0
    from syncconsole.celery import app

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("Connection refused")

    monkeypatch.setattr(app, "send_task", broker_down)
    make_error(age=timedelta(days=10))
    response = staff_client.post(ALL, follow=True)
    assert "The task queue is unavailable; nothing was deleted." in response.content.decode()
    assert SyncError.objects.count() == 1
    assert SyncErrorCleanup.objects.get().state == SyncErrorCleanup.State.FAILED
