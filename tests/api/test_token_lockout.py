"""Wrong API tokens are limited as sign-ins are: LOGIN_FAILURE_LIMIT of them from one address
lock that address out of token authentication for LOGIN_LOCKOUT_MINUTES."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from api import lockout
from api.models import ApiToken, TokenFailures

pytestmark = pytest.mark.django_db

WRONG = "sct_" + "x" * 43


def get(key: str, address: str = "203.0.113.7", **headers):
    return Client(REMOTE_ADDR=address).get(
        reverse("api:problems"), headers={"Authorization": f"Bearer {key}", **headers}
    )


def fail(times: int, address: str = "203.0.113.7", **headers) -> list[int]:
    return [get(WRONG, address, **headers).status_code for _ in range(times)]


@pytest.fixture
def key(sync_user) -> str:
    return ApiToken.issue(sync_user, "script")[1]


def test_the_limit_locks_the_address_with_429_retry_after_and_a_message(key, caplog):
    limit = settings.AXES_FAILURE_LIMIT
    assert fail(limit - 1) == [401] * (limit - 1)
    assert get(key).status_code == 200  # below the limit a valid token still works

    with caplog.at_level(logging.WARNING, logger="api.lockout"):
        locking = get(WRONG)
    assert locking.status_code == 429
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert locking["Retry-After"] == str(minutes * 60)
    assert "Too many wrong API tokens" in locking.json()["detail"]
    assert f"{minutes} more minutes" in locking.json()["detail"]
    assert "locked for 203.0.113.7" in caplog.text

    # Locked: even the right token is refused, and nothing more is counted.
    refused = get(key)
    assert refused.status_code == 429 and int(refused["Retry-After"]) <= minutes * 60
    assert refused.headers["Content-Type"].startswith("application/json")
    assert TokenFailures.objects.get().failures == 0


def test_the_lock_ends_after_the_lockout_time(key):
    fail(settings.AXES_FAILURE_LIMIT)
    assert get(key).status_code == 429
    TokenFailures.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    assert get(key).status_code == 200
    assert fail(1) == [401]  # a fresh count


def test_failures_older_than_the_window_are_forgotten(key):
    fail(settings.AXES_FAILURE_LIMIT - 1)
    TokenFailures.objects.update(
        window_started_at=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert fail(settings.AXES_FAILURE_LIMIT - 1) == [401] * (settings.AXES_FAILURE_LIMIT - 1)
    assert get(key).status_code == 200


def test_other_addresses_are_not_locked_and_a_success_resets_no_one(key):
    fail(settings.AXES_FAILURE_LIMIT)
    assert get(key, "198.51.100.9").status_code == 200
    assert get(key, "203.0.113.7").status_code == 429

    fail(settings.AXES_FAILURE_LIMIT - 1, "198.51.100.20")
    assert get(key, "198.51.100.9").status_code == 200  # another address's success
    assert fail(1, "198.51.100.20") == [429]


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(key):
    # The client's own X-Forwarded-For entries prove nothing: only the proxy's is counted.
    for n in range(settings.AXES_FAILURE_LIMIT):
        get(WRONG, "10.0.0.1", **{"X-Forwarded-For": f"192.0.2.{n}, 203.0.113.7"})
    assert get(key, "10.0.0.1", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    assert get(key, "10.0.0.1", **{"X-Forwarded-For": "203.0.113.8"}).status_code == 200


def test_revoked_tokens_are_not_counted(key):
    token = ApiToken.objects.get()
    token.revoked_at = timezone.now()
    token.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert get(key).status_code == 401
    assert not TokenFailures.objects.exists()


@override_settings(AXES_ENABLED=False)
def test_no_limit_when_sign_in_limits_are_switched_off(key):
    fail(settings.AXES_FAILURE_LIMIT + 1)
    assert get(key).status_code == 200


def test_old_addresses_are_forgotten():
    fail(settings.AXES_FAILURE_LIMIT)  # locked
    fail(1, "198.51.100.20")
    later = timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    assert lockout.forget_old(timezone.now()) == 0
    assert lockout.forget_old(later) == 2
