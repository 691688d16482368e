"""Roles, enforced on the server: every URL of the console has a rule, and each rule holds for
anonymous visitors, accounts without a role, Sync users and Sync administrators."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from errors.models import Category, ErrorGroup, SyncError
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.conftest import user_in_role
from tests.factories import make_error

pytestmark = pytest.mark.django_db

USER, ADMIN = "Sync users", "Sync administrators"
# Every named URL of the console and who may use it. A new view without a rule fails
# test_every_url_has_a_rule.
RULES = {
    "home": USER,
    "errors:list": USER,
    "errors:export": USER,
    "errors:groups": USER,
    "errors:group_set_status": USER,
    "errors:group_assignment": USER,  # assigning to others: administrators, tests/errors
    "errors:group_comment": USER,
    "errors:group_policy": ADMIN,
    "errors:group_rule": ADMIN,
    "errors:group_evidence": USER,  # setup problems: administrators, tests/errors
    "errors:ownership_rules": ADMIN,
    "errors:ownership_rule_delete": ADMIN,
    "errors:detail": USER,
    "errors:set_status": USER,
    "errors:fix": USER,
    "errors:edit": USER,
    "errors:evidence": USER,
    "errors:cleanup_confirm": USER,  # Delete All Entries: administrators, see below
    "errors:cleanup": USER,
    "errors:bulk": USER,
    "errors:bulk_progress": USER,
    "errors:alerts": ADMIN,
    "errors:alert_change": ADMIN,
    "errors:alert_delete": ADMIN,
    "sync:mappings": USER,
    "sync:mapping_start": ADMIN,
    "sync:connections": ADMIN,
    "sync:connection_health": ADMIN,
    "sync:mapping_health": USER,
    "sync:mapping_resume": ADMIN,
    "sync:mapping_lag_probe": ADMIN,
    "sync:rule_switch_off": ADMIN,
    "sync:rule_revert": ADMIN,
    "sync:jobs": USER,
    "sync:job": USER,
    "sync:couplings": USER,
    "sync:skipped": USER,
    "sync:skipped_action": USER,
    "couplings:couple": USER,
    "couplings:run": USER,
    "audit:events": ADMIN,
    "profile": USER,
}
# Not console views: signing in and out, the apps' change notifications (checked with a
# shared secret per connection), the Django admin (staff with model permissions), the demo
# apps (their own sign-in), the API (tokens; its table: tests/api/test_access.py), and the
# monitoring endpoints (/healthz open to all, /readyz to the monitoring networks or token;
# tests/test_health.py) and /metrics (the same: tests/test_metrics.py).
OUTSIDE = {"login", "logout", "sync:notification", "healthz", "readyz", "metrics"}
OUTSIDE_NAMESPACES = {"admin", "demo", "api"}


def named_urls(resolver=None, namespace=""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from named_urls(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", entry


def console_urls():
    for name, pattern in named_urls():
        if name in OUTSIDE or name.split(":")[0] in OUTSIDE_NAMESPACES:
            continue
        kwargs = {
            key: "older_than" if key == "action" else 987654 for key in pattern.pattern.converters
        }
        yield name, reverse(name, kwargs=kwargs)


def test_every_url_has_a_rule():
    unruled = [name for name, _ in console_urls() if name not in RULES]
    assert not unruled, f"views without an access rule: {unruled}"
    assert set(RULES) <= {name for name, _ in console_urls()}


def test_both_roles_are_groups_made_by_the_migration():
    users = Group.objects.get(name=SYNC_USERS)
    admins = Group.objects.get(name=SYNC_ADMINISTRATORS)
    assert {p.codename for p in users.permissions.all()} == {"triage_coupled_errors"}
    codenames = {p.codename for p in admins.permissions.all()}
    assert {
        "administer_sync",
        "triage_coupled_errors",
        "change_connection",
        "delete_syncerror",
        "change_periodictask",
    } <= codenames


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitors_are_sent_to_sign_in(client, method):
    for name, url in console_urls():
        response = getattr(client, method)(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name


@pytest.mark.parametrize("method", ["get", "post"])
def test_accounts_without_a_role_are_refused_even_staff(client, method):
    client.force_login(
        get_user_model().objects.create_user("nobody", "nobody@example.com", "pw", is_staff=True)
    )
    for name, url in console_urls():
        assert getattr(client, method)(url).status_code == 403, name


@pytest.mark.parametrize("method", ["get", "post"])
def test_sync_users_reach_their_views_and_are_refused_the_administrators(sync_user_client, method):
    for name, url in console_urls():
        response = getattr(sync_user_client, method)(url)
        if RULES[name] == ADMIN:
            assert response.status_code == 403, name
        else:
            assert response.status_code != 403, name
            assert not response.get("Location", "").startswith(reverse("login")), name


@pytest.mark.parametrize("method", ["get", "post"])
def test_administrators_reach_every_view(staff_client, method):
    for name, url in console_urls():
        response = getattr(staff_client, method)(url)
        assert response.status_code != 403, name
        assert not response.get("Location", "").startswith(reverse("login")), name


def setup_error() -> SyncError:
    return make_error(
        category=Category.INTEGRATION_USER,
        message="The integration user holds the System Administrator role.",
        detail="secret-looking response body",
    )


def test_sync_users_never_see_setup_errors(sync_user_client):
    setup = setup_error()
    coupled = make_error(category=Category.COUPLED_RECORD_DELETED, message="Record deleted")

    listing = sync_user_client.get(reverse("errors:list")).content.decode()
    assert coupled.message in listing and setup.message not in listing
    assert "1 open setup or connection entry is left to administrators" in listing
    problems = sync_user_client.get(reverse("errors:groups")).content.decode()
    assert "Record deleted" in problems and setup.message not in problems
    filtered = sync_user_client.get(reverse("errors:list"), {"category": "integration_user"})
    assert setup.message not in filtered.content.decode()
    by_group = sync_user_client.get(reverse("errors:list"), {"group": setup.group_id})
    assert setup.message not in by_group.content.decode()

    assert sync_user_client.get(setup.get_absolute_url()).status_code == 403
    for name, data in (
        ("errors:set_status", {"status": "resolved"}),
        ("errors:fix", {"action": "retry"}),
        ("errors:edit", {"value_phoneNumber": "+45 3333 4444"}),
    ):
        assert sync_user_client.post(reverse(name, args=[setup.pk]), data).status_code == 403
    response = sync_user_client.post(
        reverse("errors:group_set_status", args=[setup.group_id]), {"status": "ignored"}
    )
    assert response.status_code == 403
    setup.refresh_from_db()
    assert setup.status == "open"
    assert ErrorGroup.objects.get(pk=setup.group_id).status == "open"


def test_sync_users_resolve_coupled_record_errors(sync_user_client, sync_user):
    coupled = make_error(category=Category.COUPLED_RECORD_DELETED)
    assert sync_user_client.get(coupled.get_absolute_url()).status_code == 200
    response = sync_user_client.post(
        reverse("errors:set_status", args=[coupled.pk]), {"status": "resolved", "note": "done"}
    )
    assert response.status_code == 302
    coupled.refresh_from_db()
    assert (coupled.status, coupled.status_changed_by) == ("resolved", sync_user)


def test_only_administrators_delete_all_entries(sync_user_client, staff_user):
    make_error(category=Category.CONFLICT)
    all_url = reverse("errors:cleanup_confirm", args=["all"])
    assert sync_user_client.get(all_url).status_code == 403
    assert sync_user_client.post(all_url).status_code == 403
    assert SyncError.objects.count() == 1
    listing = sync_user_client.get(reverse("errors:list")).content.decode()
    assert "Delete Entries Older than 7 Days" in listing
    assert "Delete All Entries" not in listing
    older = reverse("errors:cleanup_confirm", args=["older_than"])
    assert sync_user_client.get(older, {"days": 7}).status_code == 200
    sync_user_client.force_login(staff_user)
    assert "Delete All Entries" in sync_user_client.get(reverse("errors:list")).content.decode()
    assert sync_user_client.get(all_url).status_code == 200


def test_sync_users_cannot_reach_connections_or_secrets_in_the_admin(client, sync_user):
    sync_user.is_staff = True
    sync_user.save()
    client.force_login(sync_user)
    for url in (
        reverse("admin:sync_connection_changelist"),
        reverse("admin:errors_syncerror_changelist"),
        reverse("admin:django_celery_beat_periodictask_changelist"),
    ):
        assert client.get(url).status_code == 403, url


def test_administrators_reach_connections_in_the_admin(client):
    admin = user_in_role("boss", SYNC_ADMINISTRATORS, is_staff=True)
    client.force_login(admin)
    assert client.get(reverse("admin:sync_connection_changelist")).status_code == 200


def test_a_page_reads_the_persons_roles_once_and_a_changed_role_counts_at_the_next(
    client, sync_user
):
    """One statement reads every permission of the person, their own and their groups'; the
    role checks of the request, the page's own included, ask nothing more."""
    client.force_login(sync_user)
    url = reverse("errors:list")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    reading_roles = [q["sql"] for q in queries if "auth_permission" in q["sql"]]
    assert len(reading_roles) == 1, reading_roles
    sync_user.groups.clear()
    assert client.get(url).status_code == 403
    sync_user.groups.add(Group.objects.get(name=SYNC_ADMINISTRATORS))
    assert client.get(reverse("sync:connections")).status_code == 200
