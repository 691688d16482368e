"""The evidence archive of an entry or a problem: what is inside, no credential in any
spelling, who may download it, and the audit event of each download."""

import base64
import io
import json
import time
import zipfile
from datetime import timedelta
from urllib.parse import quote, quote_plus

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from audit.models import AuditEvent
from errors.evidence import MAX_ENTRIES, problem_evidence
from errors.grouping import record_errors
from errors.models import Category, SyncError
from sync.connectors import signin
from sync.models import Connection, ConnectionCheck
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import user_in_role
from tests.factories import make_connection, make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db

# Characters that change when a secret is sent in a form or a URL, or echoed inside JSON.
SECRET = 'hunter2+never/stored="in"\\clear&whole'
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOi.access-token-of-the-app"
FILES = {
    "README.txt",
    "problem.json",
    "entries.json",
    "jobs.json",
    "mapping.json",
    "connection.json",
    "health_check.json",
}


def spellings(connection: Connection) -> set[str]:
    """Every form in which an echo may carry a credential of the connection."""
    basic = base64.b64encode(f"{connection.source_username}:{SECRET}".encode()).decode()
    return {
        SECRET,
        quote_plus(SECRET),
        quote(SECRET, safe=""),
        json.dumps(SECRET)[1:-1],
        basic,
        TOKEN,
        connection.notification_token(),
    }


def echoes(connection: Connection) -> str:
    """A stored answer that echoes every credential, in each spelling, and JSON-escaped."""
    text = " | ".join(sorted(spellings(connection)))
    return f"POST /token -> 400 {text} {json.dumps({'echo': text})}"


@pytest.fixture
def leaky_problem():
    """A problem of a Basic sign-in connection whose entries echo its secrets and the access
    token kept for its other side, with a job and a health check."""
    connection = make_connection(
        auth_method=Connection.AuthMethod.BASIC,
        source_username="svc",
        source_secret=SECRET,
        destination_secret=SECRET,
        source_settings={"timeout": 30, "api_key": "k-123456"},
    )
    # An OAuth 2.0 connection with the same secret, whose access token is kept in memory.
    oauth = make_connection(destination_username="app-id", destination_secret=SECRET)
    config = oauth.side_config("destination")
    signin.TOKENS.put(
        signin.TokenCache.key(config.token_url, config.username, config.token_scope, SECRET),
        TOKEN,
        3600,
    )
    mapping = make_mapping(
        connection,
        field_mappings=[{"source": "name", "destination": "name"}],
        source_filter=f"name ne '{SECRET}'",
    )
    job = make_job(mapping, message=f"Failed: {SECRET}", failed=2)
    ConnectionCheck.objects.create(
        connection=connection,
        checked_at=timezone.now(),
        findings=[{"code": "signin", "severity": "error", "message": f"Refused {TOKEN}"}],
    )
    entries = [
        make_error(
            mapping=mapping,
            job=job,
            category=Category.VALIDATION,
            message=f"Customer C{n} was refused: {SECRET}",
            detail=echoes(connection),
            sent_values={"name": SECRET, quote(SECRET, safe=""): TOKEN},
        )
        for n in range(2)
    ]
    group = SyncError.objects.get(pk=entries[0].pk).group
    return connection, group, entries


def unzip(content: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def assert_no_credential(files: dict[str, str], connection: Connection) -> None:
    for name, text in files.items():
        for spelling in spellings(connection):
            assert spelling not in text, (name, spelling)


def api(user) -> Client:
    _, key = ApiToken.issue(user, "tests")
    return Client(headers={"Authorization": f"Bearer {key}"})


def test_a_problems_archive_holds_its_entries_jobs_mapping_connection_and_check(
    leaky_problem, staff_client
):
    connection, group, entries = leaky_problem
    response = staff_client.post(reverse("errors:group_evidence", args=[group.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'filename="problem-{group.pk}-evidence.zip"' in response["Content-Disposition"]
    files = unzip(response.content)
    assert set(files) == FILES
    assert_no_credential(files, connection)
    stored = json.loads(files["entries.json"])
    newest_first = sorted(entries, key=lambda e: e.created_at, reverse=True)
    assert [entry["id"] for entry in stored] == [e.pk for e in newest_first]
    assert stored[0]["detail"].startswith("POST /token -> 400 ")
    assert stored[0]["sent_values"]["name"] == "[secret]"
    problem = json.loads(files["problem.json"])
    assert (problem["id"], problem["seen_total"]) == (group.pk, 2)
    (job,) = json.loads(files["jobs.json"])
    assert (job["status"], job["failed"], job["message"]) == ("succeeded", 2, "Failed: [secret]")
    mapping = json.loads(files["mapping.json"])
    assert mapping["field_mappings"] == [{"source": "name", "destination": "name"}]
    saved = json.loads(files["connection.json"])
    assert "source_secret" not in saved and saved["source_secret_set"] is True
    assert saved["source_settings"] == {"timeout": 30, "api_key": "[secret]"}
    check = json.loads(files["health_check.json"])
    assert check["findings"][0]["message"] == "Refused [secret]"
    assert f"Evidence of problem {group.pk}" in files["README.txt"]
    assert "entries.json" in files["README.txt"]


def test_an_entrys_archive_holds_no_credential_in_any_spelling(leaky_problem, staff_client):
    connection, _, entries = leaky_problem
    response = staff_client.post(reverse("errors:evidence", args=[entries[0].pk]))
    assert response.status_code == 200
    files = unzip(response.content)
    assert_no_credential(files, connection)
    assert [e["id"] for e in json.loads(files["entries.json"])] == [entries[0].pk]


def test_the_api_gives_the_same_archives(leaky_problem, staff_user):
    connection, group, entries = leaky_problem
    client = api(staff_user)
    for url in (
        reverse("api:problem_evidence", args=[group.pk]),
        reverse("api:error_evidence", args=[entries[0].pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == "application/zip"
        files = unzip(response.content)
        assert set(files) == FILES
        assert_no_credential(files, connection)
    assert client.get(reverse("api:problem_evidence", args=[10**9])).status_code == 404


def test_a_problems_archive_holds_its_newest_entries_only():
    mapping = make_mapping()
    now = timezone.now()
    entries = record_errors(
        SyncError(
            mapping=mapping,
            created_at=now - timedelta(seconds=n),
            category=Category.VALIDATION,
            message="Customer C1 has no name.",
        )
        for n in range(MAX_ENTRIES + 3)
    )
    group = entries[0].group
    user = user_in_role(f"admin{time.monotonic_ns()}", SYNC_ADMINISTRATORS)
    files = unzip(problem_evidence(group, user).content)
    stored = json.loads(files["entries.json"])
    assert len(stored) == MAX_ENTRIES
    assert stored[0]["id"] == entries[0].pk  # the newest


def test_a_sync_user_downloads_coupled_record_problems_never_setup_ones(
    leaky_problem, sync_user, sync_user_client
):
    _, group, entries = leaky_problem
    setup = make_error(category=Category.AUTHENTICATION, message="Sign-in refused.")
    assert (
        sync_user_client.post(reverse("errors:group_evidence", args=[group.pk])).status_code == 200
    )
    assert (
        sync_user_client.post(reverse("errors:evidence", args=[entries[0].pk])).status_code == 200
    )
    for url in (
        reverse("errors:group_evidence", args=[setup.group_id]),
        reverse("errors:evidence", args=[setup.pk]),
    ):
        assert sync_user_client.post(url).status_code == 403
    client = api(sync_user)
    assert client.get(reverse("api:problem_evidence", args=[setup.group_id])).status_code == 403
    assert client.get(reverse("api:error_evidence", args=[setup.pk])).status_code == 403


def test_signed_out_people_are_sent_to_sign_in(leaky_problem, client, plain_user):
    _, group, _ = leaky_problem
    response = client.post(reverse("errors:group_evidence", args=[group.pk]))
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(plain_user)
    assert client.post(reverse("errors:group_evidence", args=[group.pk])).status_code == 403


def test_each_download_is_in_the_audit_log(leaky_problem, staff_client, staff_user):
    _, group, entries = leaky_problem
    staff_client.post(reverse("errors:group_evidence", args=[group.pk]))
    staff_client.post(reverse("errors:evidence", args=[entries[0].pk]))
    events = AuditEvent.objects.filter(action=AuditEvent.Action.EVIDENCE_DOWNLOADED).order_by("pk")
    assert [(e.actor, e.object_type, e.object_id) for e in events] == [
        (staff_user, "error group", str(group.pk)),
        (staff_user, "sync error", str(entries[0].pk)),
    ]
    assert "2 entries" in events[0].summary


def test_both_pages_offer_the_download(leaky_problem, staff_client):
    _, group, entries = leaky_problem
    entry_page = staff_client.get(reverse("errors:detail", args=[entries[0].pk])).content.decode()
    assert reverse("errors:evidence", args=[entries[0].pk]) in entry_page
    problem_page = staff_client.get(reverse("errors:list"), {"group": group.pk}).content.decode()
    assert reverse("errors:group_evidence", args=[group.pk]) in problem_page
    assert "2 failures in all" in problem_page


def test_a_get_of_the_console_download_changes_nothing(leaky_problem, staff_client):
    """The download is recorded, so the console asks for it with a POST (the button)."""
    _, group, entries = leaky_problem
    for url in (
        reverse("errors:group_evidence", args=[group.pk]),
        reverse("errors:evidence", args=[entries[0].pk]),
    ):
        assert staff_client.get(url).status_code == 405
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EVIDENCE_DOWNLOADED).exists()
