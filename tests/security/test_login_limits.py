"""Sign-in limits: repeated wrong passwords lock one user name from one address for a while,
on the console's sign-in page and the Django admin's."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import RequestFactory, override_settings
from django.urls import reverse

from syncconsole.signin import client_address
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-77"


def sign_in(client, password, *, username="triager", address="10.0.0.1", url=None, **headers):
    return client.post(
        url or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


def fail(client, times, **where):
    for _ in range(times):
        response = sign_in(client, WRONG, **where)
        assert response.status_code == 200  # the form again, saying the password is wrong
        assert "correct username and password" in response.content.decode()


def test_five_failures_lock_the_user_name_from_that_address(client, staff_user):
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, PASSWORD).status_code == 302  # four are not enough
    client.logout()

    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    locked = sign_in(client, WRONG)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page and "locked for 15 minutes" in page

    # Even the right password is refused now, from that address.
    right = sign_in(client, PASSWORD)
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    # Another address, or another user name from the same address, is not affected.
    assert sign_in(client, PASSWORD, address="10.0.0.2").status_code == 302


def test_another_user_name_from_the_same_address_still_signs_in(client, staff_user, sync_user):
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, WRONG).status_code == 429
    assert sign_in(client, PASSWORD, username="fixer").status_code == 302


def test_a_success_starts_the_count_afresh(client, staff_user):
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, PASSWORD).status_code == 302
    client.logout()
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, PASSWORD).status_code == 302


def test_the_lock_ends_after_the_cool_off(client, staff_user):
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, WRONG).status_code == 429
    assert sign_in(client, PASSWORD).status_code == 429
    earlier = settings.AXES_COOLOFF_TIME + timedelta(minutes=1)
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(
            attempt_time=attempt.attempt_time - earlier
        )
    assert sign_in(client, PASSWORD).status_code == 302


def test_the_admin_sign_in_is_limited_too(client, staff_user):
    url = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, WRONG, url=url).status_code == 200
    assert sign_in(client, WRONG, url=url).status_code == 429
    locked = sign_in(client, PASSWORD, url=url)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    # The console's page shares the count: the same pair is locked there too.
    assert sign_in(client, PASSWORD).status_code == 429


def test_the_password_tried_is_never_kept(client, staff_user):
    fail(client, 2)
    attempt = AccessAttempt.objects.get()
    assert attempt.username == "triager" and attempt.ip_address == "10.0.0.1"
    assert WRONG not in f"{attempt.get_data}{attempt.post_data}"


def test_a_forwarded_address_counts_only_behind_a_configured_proxy(client, staff_user):
    # No proxy configured: changing X-Forwarded-For does not escape the lock.
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, WRONG, address="10.9.9.9", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    spoofed = sign_in(client, PASSWORD, address="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert spoofed.status_code == 429

    with override_settings(TRUSTED_PROXY_COUNT=1):
        # Behind one proxy, the address it saw is the client's: another client is free.
        fail(
            client,
            settings.AXES_FAILURE_LIMIT - 1,
            address="10.0.0.5",
            HTTP_X_FORWARDED_FOR="198.51.100.1",
        )
        assert (
            sign_in(
                client, WRONG, address="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1"
            ).status_code
            == 429
        )
        assert (
            sign_in(
                client, PASSWORD, address="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1"
            ).status_code
            == 429
        )
        assert (
            sign_in(
                client, PASSWORD, address="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.2"
            ).status_code
            == 302
        )


def test_only_the_proxies_entries_of_x_forwarded_for_are_believed():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7, 10.0.0.4"
    )
    assert client_address(request) == "10.0.0.5"
    with override_settings(TRUSTED_PROXY_COUNT=1):
        assert client_address(request) == "10.0.0.4"
    with override_settings(TRUSTED_PROXY_COUNT=2):
        assert client_address(request) == "198.51.100.7"  # never the spoofed 6.6.6.6
    with override_settings(TRUSTED_PROXY_COUNT=5):  # fewer hops than proxies: the peer
        assert client_address(request) == "10.0.0.5"


def test_the_limits_come_from_the_environment():
    env = {
        **os.environ,
        "LOGIN_FAILURE_LIMIT": "3",
        "LOGIN_LOCKOUT_MINUTES": "60",
        "TRUSTED_PROXY_COUNT": "2",
        "LOGIN_RATE_LIMIT_ENABLED": "false",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, s.TRUSTED_PROXY_COUNT, s.AXES_ENABLED)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    assert result.stdout.split() == ["3", "1:00:00", "2", "False"]
