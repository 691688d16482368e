"""Only a POST with the CSRF token changes anything: a GET or HEAD of any console URL, even
with the fields a form would post in its query string, leaves the database as it was, and a
POST without the token is refused on every console view."""

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from .pages import console_urls

pytestmark = pytest.mark.django_db

# Views that change state: only POST reaches them, so GET and HEAD answer 405.
POST_ONLY = {
    "errors:group_set_status",
    "errors:group_assignment",
    "errors:group_comment",
    "errors:group_evidence",
    "errors:group_policy",
    "errors:ownership_rule_delete",
    "errors:set_status",
    "errors:fix",
    "errors:edit",
    "errors:evidence",
    "errors:bulk",
    "errors:alert_change",
    "errors:alert_delete",
    "sync:mapping_start",
    "sync:mapping_resume",
    "sync:mapping_lag_probe",
    "sync:rule_switch_off",
    "sync:rule_revert",
    "sync:skipped_action",
}
# Views whose GET shows a page (a confirmation, a form) and whose POST acts.
GET_SHOWS_POST_ACTS = {
    "errors:cleanup_confirm",
    "errors:alerts",
    "errors:ownership_rules",
    "errors:group_rule",
    "sync:connection_health",
    "couplings:couple",
}
# Not signed in, so no session to ride: the apps' change notifications carry a secret of
# their connection instead (tests/sync); signing in has the token like every form.
CSRF_EXEMPT = {"sync:notification"}


def acting_query(world) -> dict:
    """What the forms post, in a query string: a view that acted on GET would act on this."""
    return {
        "status": "resolved",
        "note": "by GET",
        "action": "resolve",
        "kind": "full",
        "scope": "selection",
        "ids": [world.error.pk, world.uncoupled.pk],
        "days": "1",
        "coupling": [world.skipped.pk],
        "mapping": world.mapping.pk,
        "side": "source",
        "record": "X1",
        "source_record_id": "S1",
        "destination_record_id": "D1",
        "new-new_problems": "on",
        "confirmation": "x",
    }


DATA_TABLES_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname <> 'django_session' ORDER BY 1
"""


def database_state() -> dict[str, str]:
    """A checksum of every table's rows (sessions aside: signing in writes one)."""
    with connection.cursor() as cursor:
        cursor.execute(DATA_TABLES_SQL)
        tables = [row[0] for row in cursor.fetchall()]
        state = {}
        for table in tables:
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"  # noqa: S608
                f' FROM "{table}" t'
            )
            state[table] = cursor.fetchone()
    return state


def test_the_table_covers_every_view_that_acts():
    from .pages import console_url_names

    names = set(console_url_names())
    assert names >= POST_ONLY | GET_SHOWS_POST_ACTS


def test_get_and_head_change_nothing_anywhere(hostile, staff_client):
    before = database_state()
    query = acting_query(hostile)
    for name, url in console_urls(hostile):
        for method in ("get", "head"):
            for data in (None, query):
                response = getattr(staff_client, method)(url, data)
                assert response.status_code < 500, (method, url)
                if name in POST_ONLY:
                    assert response.status_code == 405, (method, url)
                    assert "POST" in response["Allow"], url
        assert database_state() == before, f"GET {url} changed the database"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_change_nothing_either(hostile, staff_client, method):
    before = database_state()
    for name, url in console_urls(hostile):
        response = getattr(staff_client, method)(url, "status=resolved&action=resolve")
        assert response.status_code < 500, (method, url)
        if name in POST_ONLY | GET_SHOWS_POST_ACTS:
            assert response.status_code == 405, (method, url)
    assert database_state() == before


def test_a_post_without_the_csrf_token_is_refused_everywhere(hostile, staff_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    before = database_state()
    query = acting_query(hostile)
    for name, url in console_urls(hostile):
        response = browser.post(url, query)
        assert response.status_code == 403, (name, response.status_code)
        assert b"CSRF" in response.content, name
    assert database_state() == before
    # Signing in needs it too (login CSRF).
    response = Client(enforce_csrf_checks=True).post(
        reverse("login"), {"username": staff_user.username, "password": "x"}
    )
    assert response.status_code == 403


def test_the_same_post_with_the_token_goes_through(hostile, staff_user):
    """The refusal above is the token's doing, not the form's."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    page = browser.get(hostile.error.get_absolute_url())
    token = page.cookies["csrftoken"].value
    response = browser.post(
        reverse("errors:set_status", args=[hostile.error.pk]),
        {"status": "resolved", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    hostile.error.refresh_from_db()
    assert hostile.error.status == "resolved"


def test_only_the_notification_endpoint_is_exempt_from_csrf():
    from tests.test_roles import named_urls

    exempt = {
        name
        for name, pattern in named_urls()
        if getattr(pattern.callback, "csrf_exempt", False)
        and not name.startswith(("api:", "demo:", "admin:"))
    }
    assert exempt == CSRF_EXEMPT
