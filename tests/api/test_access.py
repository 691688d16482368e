"""Who may call the API: every endpoint has a rule, held for anonymous callers, accounts
without a role, other integrations, Sync users and Sync administrators."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from api.authentication import sign_in
from api.models import LOOKUP_LENGTH, ApiToken
from errors.models import Category
from tests.factories import make_error
from tests.test_roles import named_urls

from .conftest import token_client

pytestmark = pytest.mark.django_db

JSON = "application/json"
OPEN, USER, ADMIN, INGEST = "anyone", "Sync users", "Sync administrators", "Integrations"
# Endpoint, method: who may call it. A new endpoint without a rule fails the first test.
RULES = {
    ("api:errors", "get"): USER,
    ("api:errors_export", "get"): USER,
    ("api:error_actions", "post"): USER,
    ("api:error", "get"): USER,
    ("api:error_status", "post"): USER,
    ("api:error_evidence", "get"): USER,
    ("api:error_fixes", "get"): USER,
    ("api:error_fixes", "post"): USER,
    ("api:error_edit", "get"): USER,
    ("api:error_edit", "post"): USER,
    ("api:bulk_action", "get"): USER,
    ("api:problems", "get"): USER,
    ("api:problem", "get"): USER,
    ("api:problem_status", "post"): USER,
    ("api:problem_assignment", "post"): USER,  # to others: administrators, see test_ownership
    ("api:problem_policy", "post"): ADMIN,
    ("api:problem_evidence", "get"): USER,
    ("api:problem_comments", "get"): USER,
    ("api:problem_comments", "post"): USER,
    ("api:problem_rule_preview", "post"): ADMIN,
    ("api:problem_rules", "post"): ADMIN,
    ("api:mapping_rules", "get"): ADMIN,
    ("api:mapping_rule_switch_off", "post"): ADMIN,
    ("api:mapping_rule_revert", "post"): ADMIN,
    ("api:jobs", "get"): USER,
    ("api:jobs", "post"): ADMIN,
    ("api:job", "get"): USER,
    ("api:cleanups", "post"): USER,  # all entries: administrators, see test_cleanup_api
    ("api:cleanup", "get"): USER,
    ("api:ingest", "post"): INGEST,
    ("api:mappings", "get"): USER,
    ("api:mapping_resume", "post"): ADMIN,
    ("api:mapping_lag", "get"): USER,
    ("api:mapping_lag", "put"): ADMIN,
    ("api:mapping_lag", "post"): ADMIN,
    ("api:connections", "get"): ADMIN,
    ("api:connection_check", "post"): ADMIN,
    ("api:couplings", "get"): USER,
    ("api:couplings", "post"): USER,
    ("api:coupling", "get"): USER,
    ("api:coupling", "delete"): USER,
    ("api:couple_by_match", "post"): USER,
    ("api:couplings_retry", "post"): USER,
    ("api:couplings_find_deleted", "post"): USER,
    ("api:coupling_run", "get"): USER,
    ("api:audit_events", "get"): ADMIN,
    ("api:schema", "get"): OPEN,
    ("api:docs", "get"): OPEN,
}


def api_urls():
    for name, pattern in named_urls():
        if name.startswith("api:"):
            yield name, reverse(name, kwargs={key: 987654 for key in pattern.pattern.converters})


def calls():
    urls = dict(api_urls())
    for (name, method), rule in RULES.items():
        yield name, method, urls[name], rule


def call(client: Client, method: str, url: str):
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    if method == "put":
        return client.put(url, {}, content_type="application/json")
    return client.post(url, {}, content_type="application/json")


def test_every_endpoint_has_a_rule():
    names = {name for name, _ in api_urls()}
    assert names == {name for name, _ in RULES}


def test_anonymous_callers_get_401_with_the_scheme():
    for name, method, url, rule in calls():
        response = call(Client(), method, url)
        if rule == OPEN:
            assert response.status_code == 200, name
        else:
            assert response.status_code == 401, name
            assert response["WWW-Authenticate"].startswith("Bearer"), name


def test_accounts_without_a_role_get_403(db):
    nobody = token_client(get_user_model().objects.create_user("nobody", is_staff=True))
    for name, method, url, rule in calls():
        if rule != OPEN:
            assert call(nobody, method, url).status_code == 403, name


@pytest.mark.parametrize(
    "who, allowed",
    [
        ("integration_api", {OPEN, INGEST}),
        ("user_api", {OPEN, USER}),
        ("admin_api", {OPEN, USER, ADMIN, INGEST}),
    ],
)
def test_each_role_reaches_its_endpoints_only(request, who, allowed):
    client = request.getfixturevalue(who)
    for name, method, url, rule in calls():
        status = call(client, method, url).status_code
        if rule in allowed:
            assert status not in (401, 403), (name, method, status)
        else:
            assert status == 403, (name, method, status)


def test_a_wrong_revoked_or_expired_token_is_refused(staff_user):
    url = reverse("api:errors")
    token, key = ApiToken.issue(staff_user, "script")
    assert Client(headers={"Authorization": f"Bearer {key}"}).get(url).status_code == 200
    for header in (
        f"Bearer {key[:-1]}x",
        "Bearer short",
        f"Bearer {key} extra",
        "Bearer ",
        "Bearer " + "\u00e9" * 20,
    ):
        response = Client(headers={"Authorization": header}).get(url)
        assert response.status_code == 401, header
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client(headers={"Authorization": f"Bearer {key}"}).get(url).status_code == 401
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None, revoked_at=timezone.now())
    response = Client(headers={"Authorization": f"Bearer {key}"}).get(url)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_a_token_signs_in_with_its_roles_in_one_query_and_a_changed_role_counts_at_once(
    staff_user,
):
    """The address's lock, then the token with its user and every permission of their own
    and of their groups: the role checks ask the database nothing more."""
    api = token_client(staff_user)
    url = reverse("api:errors") + "?status=nope"  # refused by its filter, before any reading
    api.get(url)  # the token's first use is recorded once a minute
    with CaptureQueriesContext(connection) as queries:
        assert api.get(url).status_code == 400
    assert len(queries) == 1, [query["sql"] for query in queries]
    # A role taken away or given counts from the next request on: nothing outlives one.
    staff_user.groups.clear()
    assert api.get(url).status_code == 403
    staff_user.user_permissions.add(Permission.objects.get(codename="triage_coupled_errors"))
    assert api.get(url).status_code == 400
    assert api.post(reverse("api:cleanups"), {"all": True}, content_type=JSON).status_code == 403


def test_a_superusers_token_holds_every_permission(superuser):
    response = token_client(superuser).post(
        reverse("api:cleanups"), {"all": True}, content_type=JSON
    )
    assert response.status_code == 201, response.content


def test_only_the_hash_of_a_key_is_kept_and_use_is_recorded(staff_user):
    token, key = ApiToken.issue(staff_user, "script")
    assert key not in (token.key_hash, token.lookup) and len(key) > 40
    Client(headers={"Authorization": f"Bearer {key}"}).get(reverse("api:errors"))
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_the_console_session_works_but_needs_the_csrf_token(staff_user):
    make_error(category=Category.CONFLICT)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    assert browser.get(reverse("api:errors")).json()["total"] == 1
    response = browser.post(reverse("api:cleanups"), {"all": True}, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_the_sign_in_statement_reads_the_token_and_user_as_the_orm_does(staff_user, rf):
    """Every field of the token and its user, read by the one statement of the sign-in, is
    what Django's ORM reads: a field whose value the ORM converts would show here."""
    token, key = ApiToken.issue(staff_user, "script", expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    found = sign_in(rf.get("/"), key[:LOOKUP_LENGTH])
    assert found.wait == 0 and found.token is not None
    assert fields_of(found.token) == fields_of(ApiToken.objects.get(pk=token.pk))
    assert fields_of(found.token.user) == fields_of(type(staff_user).objects.get(pk=staff_user.pk))
    assert found.permissions == staff_user.get_all_permissions()
    assert sign_in(rf.get("/"), "nothing-like-it").token is None


def fields_of(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
