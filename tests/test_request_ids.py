"""The request id: kept from a proxy when safe, made otherwise, answered in X-Request-ID,
bound to the request's log lines and shown on the error pages."""

import logging
import re

import pytest
from django.test import Client

HEX = re.compile(r"[0-9a-f]{32}")


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["abc-123.X_y", "a", "7" * 64])
def test_a_safe_incoming_request_id_is_kept(client, sent):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-ID"] == sent


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sent", ["", "7" * 65, "two words", "a\r\nSet-Cookie: x=1", "<script>", "é", "a;b"]
)
def test_an_unsafe_or_missing_request_id_is_replaced(client, sent):
    headers = {"HTTP_X_REQUEST_ID": sent} if sent else {}
    response = client.get("/accounts/login/", **headers)
    assert HEX.fullmatch(response["X-Request-ID"])
    assert response["X-Request-ID"] != sent


@pytest.mark.django_db
def test_each_request_has_its_own_id(client):
    first, second = client.get("/accounts/login/"), client.get("/accounts/login/")
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.django_db
def test_the_request_line_names_the_request_without_its_query(client, staff_user, caplog):
    client.force_login(staff_user)
    with caplog.at_level(logging.INFO, logger="syncconsole.requests"):
        response = client.get("/errors/?q=secret-token", HTTP_X_REQUEST_ID="req-1")
    (line,) = [r for r in caplog.records if r.name == "syncconsole.requests"]
    assert (line.method, line.path, line.status) == ("GET", "/errors/", response.status_code)
    assert line.user_id == staff_user.pk and line.duration_ms >= 0
    assert "secret-token" not in line.getMessage()


@pytest.mark.django_db
def test_the_not_found_page_and_the_api_s_404_show_the_request_id(client, staff_user):
    client.force_login(staff_user)
    page = client.get("/nothing-here/", HTTP_X_REQUEST_ID="req-404")
    assert page.status_code == 404
    assert 'Request id: <code id="request-id">req-404</code>' in page.content.decode()

    api = client.get("/api/v1/nothing-here/", HTTP_X_REQUEST_ID="req-api-404")
    assert api.status_code == 404
    assert api.json() == {"detail": "No such endpoint.", "request_id": "req-api-404"}
    assert api["X-Request-ID"] == "req-api-404"

    # An object the API does not find, through its exception handler.
    job = client.get("/api/v1/jobs/999999/", HTTP_X_REQUEST_ID="req-job-404")
    assert job.status_code == 404
    assert job.json()["request_id"] == "req-job-404"
    # Other refusals are the caller's to read: no id in the body, only in the header.
    refused = client.get("/api/v1/jobs/?status=nonsense", HTTP_X_REQUEST_ID="req-400")
    assert refused.status_code == 400 and "request_id" not in refused.json()
    assert refused["X-Request-ID"] == "req-400"


@pytest.mark.django_db
def test_the_forbidden_page_shows_the_request_id(client, plain_user):
    client.force_login(plain_user)
    page = client.get("/errors/", HTTP_X_REQUEST_ID="req-403")
    assert page.status_code == 403
    assert "req-403" in page.content.decode()


# No database: the 500 page must render when the database is what failed.
@pytest.mark.urls("tests.raising_urls")
def test_the_server_error_page_shows_the_request_id_without_the_database(settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)

    page = client.get("/boom/", HTTP_X_REQUEST_ID="req-500")
    assert page.status_code == 500
    assert page["X-Request-ID"] == "req-500"
    body = page.content.decode()
    assert "<h1>Server error</h1>" in body
    assert 'Request id: <code id="request-id">req-500</code>' in body

    made = client.get("/boom/")
    assert HEX.fullmatch(made["X-Request-ID"])
    assert made["X-Request-ID"] in made.content.decode()

    api = client.get("/api/v1/boom/", HTTP_X_REQUEST_ID="req-api-500")
    assert api.status_code == 500
    assert api.json() == {"detail": "Server error.", "request_id": "req-api-500"}
