"""The role tables (tests/test_roles.py, tests/api/test_access.py) hold a rule for every URL
and every method its view answers, so a new view or method without one fails them; and every
method, not only GET and POST, is refused to those without a role."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.api import test_access as api_rules
from tests.test_roles import OUTSIDE, OUTSIDE_NAMESPACES, RULES, named_urls

from .pages import console_urls

pytestmark = pytest.mark.django_db

EVERY_METHOD = ["get", "head", "post", "put", "patch", "delete", "options"]


def test_the_console_rules_name_exactly_the_console_urls():
    console = {
        name
        for name, _ in named_urls()
        if name not in OUTSIDE and name.split(":")[0] not in OUTSIDE_NAMESPACES
    }
    assert console == set(RULES)


def test_the_api_rules_name_exactly_the_endpoints_and_their_methods():
    answered = set()
    for name, pattern in named_urls():
        if not name.startswith("api:"):
            continue
        view = pattern.callback.cls
        methods = {m for m in view.http_method_names if hasattr(view, m)} - {"options", "head"}
        answered |= {(name, method) for method in methods}
    assert answered == set(api_rules.RULES)


@pytest.mark.parametrize("method", EVERY_METHOD)
def test_every_method_sends_anonymous_visitors_to_sign_in(hostile, method):
    for name, url in console_urls(hostile):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302, (method, name)
        assert response["Location"].startswith(reverse("login")), (method, name)


@pytest.mark.parametrize("method", EVERY_METHOD)
def test_every_method_is_refused_to_accounts_without_a_role(hostile, client, method):
    client.force_login(get_user_model().objects.create_user("nobody", is_staff=True))
    for name, url in console_urls(hostile):
        assert getattr(client, method)(url).status_code == 403, (method, name)
