"""The rules of a clean-up are the same wherever a person asks for it: the console, the Django
admin, the API and cleanup_sync_errors refuse the same days, and Delete All Entries to the
same people, with the same words."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from errors import services
from errors.models import SyncError, SyncErrorCleanup
from tests.api.conftest import token_client
from tests.factories import make_error

pytestmark = pytest.mark.django_db
DAYS = "The number of days must be a whole number from 1 to 3650."


@pytest.mark.parametrize("days", ["0", "3651", "-1", "7.5", "٧", "seven"])
def test_the_console_refuses_days_out_of_range(days, staff_client):
    make_error()
    page = staff_client.get(
        reverse("errors:cleanup_confirm", args=["older_than"]), {"days": days}, follow=True
    )
    assert DAYS in page.content.decode()
    assert SyncError.objects.count() == 1 and not SyncErrorCleanup.objects.exists()


@pytest.mark.parametrize("days", [0, 3651, -1])
def test_the_command_refuses_the_same_days(days):
    make_error()
    with pytest.raises(CommandError, match=DAYS):
        call_command("cleanup_sync_errors", f"--days={days}")
    assert SyncError.objects.count() == 1 and not SyncErrorCleanup.objects.exists()


def test_the_api_refuses_the_same_days(staff_user):
    answer = token_client(staff_user).post(
        reverse("api:cleanups"), {"days": 3651}, content_type="application/json"
    )
    assert answer.status_code == 400
    assert not SyncErrorCleanup.objects.exists()


def test_delete_all_is_for_administrators_everywhere(sync_user, sync_user_client, staff_user):
    make_error()
    console = sync_user_client.post(reverse("errors:cleanup_confirm", args=["all"]))
    assert console.status_code == 403
    api = token_client(sync_user).post(
        reverse("api:cleanups"), {"all": True}, content_type="application/json"
    )
    assert (api.status_code, api.json()["detail"]) == (403, services.ALL_MESSAGE)
    with pytest.raises(services.CleanupRefused, match=services.ALL_MESSAGE):
        services.request_cleanup(days=None, trigger=SyncErrorCleanup.Trigger.ADMIN, user=sync_user)
    assert SyncError.objects.count() == 1

    done = services.request_cleanup(
        days=None, trigger=SyncErrorCleanup.Trigger.CONSOLE, user=staff_user
    )
    assert (done.deleted_count, SyncError.objects.count()) == (1, 0)


def test_the_admin_refuses_delete_all_to_a_sync_user_with_the_same_words(client, sync_user):
    sync_user.is_staff = True
    sync_user.save()
    client.force_login(sync_user)
    make_error()
    answer = client.post(reverse("admin:errors_syncerror_cleanup_all"), follow=True)
    text = answer.content.decode()
    assert services.ALL_MESSAGE in text or "You may not delete sync errors." in text
    assert SyncError.objects.count() == 1
