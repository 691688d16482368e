"""Text from other systems is hostile: on every console page, in the Django admin, in alert
e-mails and in the API it is shown as text, and links to records are only http(s)."""

import json
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from errors import alerts, ownership
from errors.models import AlertEvent
from syncconsole.permissions import SYNC_USERS
from tests.api.conftest import token_client
from tests.conftest import user_in_role

from .conftest import (
    HOSTILE,
    assert_harmless,
    escaped_payload_shown,
    threats_in,
)
from .pages import PATH_OBJECTS, console_url_names, page_variants

pytestmark = pytest.mark.django_db

# The pages that show the hostile objects' text: each must really show it (escaped), or the
# walk would prove nothing about them.
SHOWN_TO_EVERYONE = {
    "home",
    "errors:list",
    "errors:groups",
    "errors:detail",
    "errors:bulk_progress",
    "errors:cleanup",
    "sync:mappings",
    "sync:mapping_health",
    "sync:jobs",
    "sync:job",
    "sync:couplings",
    "sync:skipped",
    "couplings:couple",
    "couplings:run",
}
SHOWN_TO_ADMINISTRATORS = {
    "errors:alerts",
    "errors:ownership_rules",
    "sync:connections",
    "sync:connection_health",
}


def test_every_console_url_is_walked():
    for name, pattern in console_url_names().items():
        converters = set(pattern.pattern.converters)
        assert converters <= {"pk", "action"}, f"{name}: fill {converters} in tests/security/pages"
        if "pk" in converters:
            assert name in PATH_OBJECTS, f"{name}: say which hostile object its pk names"


def html_of(response) -> str | None:
    if response.streaming or not response["Content-Type"].startswith("text/html"):
        return None
    return response.content.decode()


@pytest.fixture
def sync_user_of_hostile(db):
    return user_in_role("hostile-fixer", SYNC_USERS)


@pytest.mark.parametrize("role", ["administrator", "user"])
def test_console_pages_show_hostile_text_as_text(hostile, staff_user, role, request):
    client = Client()
    client.force_login(
        staff_user if role == "administrator" else request.getfixturevalue("sync_user_of_hostile")
    )
    shown, threats = set(), {}
    for name, url in page_variants(hostile):
        response = client.get(url)
        assert response.status_code < 500, url
        if response["Content-Type"].startswith("application/json"):
            json.loads(response.content)  # JSON, whatever it holds
            continue
        html = html_of(response)
        if html is None:
            continue
        if found := threats_in(html):
            threats[url] = found
        if escaped_payload_shown(html):
            shown.add(name)
    assert not threats
    expected = SHOWN_TO_EVERYONE | (SHOWN_TO_ADMINISTRATORS if role == "administrator" else set())
    assert expected <= shown, f"never showed the hostile text: {expected - shown}"


def test_pages_drawn_after_a_post_show_hostile_text_as_text(hostile, staff_client):
    mapping = hostile.mapping.pk
    filter_query = urlencode({"mapping": mapping, "integration": HOSTILE[:30]})
    posts = [
        # The confirmation of "all matching" shows the filters and the note.
        (reverse("errors:bulk"), {"scope": "filter", "action": "resolve", "note": HOSTILE,
                                  "filter_query": urlencode({"mapping": mapping})}),
        (reverse("errors:bulk"), {"scope": "filter", "action": "resolve", "note": HOSTILE,
                                  "filter_query": filter_query}),
        (reverse("errors:bulk"), {"scope": "selection", "action": "couple",
                                  "ids": [hostile.uncoupled.pk], "filter_query": ""}),
        # Finding candidates asks the apps, which are not there: the failure is shown.
        (reverse("couplings:couple"), {"mapping": mapping, "action": "preview", "side": "source",
                                       "record_ids": HOSTILE, "criteria-TOTAL_FORMS": "1"}),
        (reverse("couplings:couple"), {"mapping": mapping, "action": "couple",
                                       "source_record_id": HOSTILE,
                                       "destination_record_id": HOSTILE}),
        (reverse("errors:alerts"), {"new-connection": HOSTILE, "new-mapping": HOSTILE}),
        (reverse("errors:alert_change", args=[hostile.subscription.pk]),
         {f"s{hostile.subscription.pk}-mapping": HOSTILE}),
        # A comment is shown on the problem's page it leads back to; a refused assignee or
        # rule is quoted in the message or the form.
        (reverse("errors:group_comment", args=[hostile.group.pk]), {"text": HOSTILE}),
        (reverse("errors:group_assignment", args=[hostile.group.pk]),
         {"action": "assign", "assignee": HOSTILE}),
        (reverse("errors:ownership_rules"), {"scope": HOSTILE, "assignee": HOSTILE,
                                             "category": HOSTILE}),
    ]  # fmt: skip
    for url, data in posts:
        response = staff_client.post(url, data, follow=True)
        assert response.status_code < 500, url
        html = html_of(response)
        assert html is not None, url
        assert_harmless(html, url)


def test_messages_that_quote_hostile_text_are_escaped(hostile, staff_client):
    for action in ("retry", "check_records", "remove_coupling"):
        response = staff_client.post(
            reverse("errors:fix", args=[hostile.error.pk]), {"action": action}, follow=True
        )
        assert_harmless(response.content.decode(), action)


def test_links_to_records_are_only_http_or_https(hostile, staff_client):
    html = staff_client.get(hostile.error.get_absolute_url()).content.decode()
    assert_harmless(html, "detail")
    # The stored address is shown as text, said not to be a link.
    assert "The stored link is not an http(s) address" in html
    for url in (
        reverse("errors:list"),
        reverse("sync:couplings"),
        reverse("sync:skipped"),
        hostile.run.get_absolute_url(),
    ):
        page = staff_client.get(url).content.decode()
        assert "javascript:" not in page.lower() and "data:text" not in page, url


ADMIN_OBJECTS = 3


def admin_urls():
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        yield changelist
        yield f"{changelist}?{urlencode({'q': HOSTILE})}"
        for obj in model_admin.get_queryset(None).order_by("-pk")[:ADMIN_OBJECTS]:
            yield reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def test_the_admin_shows_hostile_text_as_text(hostile, client, superuser):
    client.force_login(superuser)
    shown = 0
    for url in list(admin_urls()):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert_harmless(html, url)
        shown += escaped_payload_shown(html)
    assert shown > 10


def test_alert_emails_show_hostile_text_as_text(hostile, staff_user, settings):
    settings.SYNC_CONSOLE_URL = "https://console.example.com"
    url = alerts.console_url(hostile.group.get_absolute_url())
    message = alerts.alert_message(
        staff_user, [alerts.AlertedProblem(hostile.group, [AlertEvent.NEW], url)]
    )
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert_harmless(html, "alert e-mail")
    assert escaped_payload_shown(html)
    # The plain-text part is text: the payload as it is, nothing made of it.
    assert HOSTILE.split("{{")[0] in message.body
    # One line of subject, whatever the title holds.
    assert "\n" not in message.subject and "\r" not in message.subject
    hostile.group.title = "Broken\r\nBcc: victim@example.com\nX: " + HOSTILE
    message = alerts.alert_message(
        staff_user,
        [alerts.AlertedProblem(hostile.group, [AlertEvent.NEW], "https://console.example.com/")],
    )
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.message()["Bcc"] is None


def test_assignment_emails_show_hostile_text_as_text(hostile, settings):
    settings.SYNC_CONSOLE_URL = "https://console.example.com"
    owner = hostile.group.assigned_user
    (message,) = ownership.notice_messages({owner.pk: [hostile.group.pk]})
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert_harmless(html, "assignment e-mail")
    assert escaped_payload_shown(html)
    assert HOSTILE.split("{{")[0] in message.body
    assert "\n" not in message.subject and "\r" not in message.subject


def api_get_urls(world):
    return [
        reverse("api:errors"),
        reverse("api:error", args=[world.error.pk]),
        reverse("api:error", args=[world.integration_error.pk]),
        reverse("api:problems"),
        reverse("api:problem", args=[world.group.pk]),
        reverse("api:problem_comments", args=[world.group.pk]),
        reverse("api:jobs"),
        reverse("api:job", args=[world.job.pk]),
        reverse("api:cleanup", args=[world.cleanup.pk]),
        reverse("api:bulk_action", args=[world.bulk.pk]),
        reverse("api:mappings"),
        reverse("api:connections"),
        reverse("api:couplings"),
        reverse("api:coupling", args=[world.coupling.pk]),
        reverse("api:coupling_run", args=[world.run.pk]),
        reverse("api:errors") + "?" + urlencode({"q": HOSTILE}),
        reverse("api:errors") + "?" + urlencode({"created_after": HOSTILE}),
    ]


def test_api_answers_are_json_with_markup_escaped(hostile, staff_user):
    api = token_client(staff_user)
    for url in api_get_urls(hostile):
        response = api.get(url)
        assert response.status_code in (200, 400), url
        assert response["Content-Type"] == "application/json", url
        assert response["X-Content-Type-Options"] == "nosniff", url
        body = response.content.decode()
        # Even a client that sniffs, or pastes the answer into a page, finds no tag in it.
        assert "<" not in body and ">" not in body, url
        json.loads(body)
    entry = api.get(reverse("api:error", args=[hostile.error.pk])).json()
    assert entry["message"] == HOSTILE
    # Only addresses a browser may follow are given out as links.
    assert entry["source_url"] is None and entry["destination_url"] is None


def test_a_page_showing_a_job_keeps_its_state_json_inert(hostile, staff_client):
    hostile.job.message = "</script><script>alert(1)</script>"
    hostile.job.save(update_fields=["message"])
    html = staff_client.get(hostile.job.get_absolute_url()).content.decode()
    assert_harmless(html, "job page")
