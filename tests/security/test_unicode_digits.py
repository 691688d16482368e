"""Ids arrive as text: "²", "٣" and other characters that Unicode counts as digits are not
ids, and a page that reads one answers as for any other wrong id, never a server error."""

import httpx
import pytest
from django.urls import reverse

from sync.connectors.odata import _error_from

pytestmark = pytest.mark.django_db

# A superscript two (isdigit, refused by int), an Arabic-Indic three (isdecimal, read by int
# as 3) and a fullwidth one.
ODD_DIGITS = ["²", "٣", "１"]


@pytest.mark.parametrize("digit", ODD_DIGITS)
def test_the_couple_page_refuses_an_odd_mapping_id(sync_user_client, digit):
    for data in ({"mapping": digit}, {"mapping": "1", "error": digit}):
        response = sync_user_client.get(reverse("couplings:couple"), data)
        assert response.status_code in (400, 404), (data, response.status_code)


@pytest.mark.parametrize("digit", ODD_DIGITS)
def test_the_couplings_pages_ignore_an_odd_cursor_and_selection(sync_user_client, digit):
    for name in ("sync:couplings", "sync:skipped"):
        assert sync_user_client.get(reverse(name), {"before": digit}).status_code == 200
    for action in ("retry", "retry_all", "find_deleted"):
        response = sync_user_client.post(
            reverse("sync:skipped_action"),
            {"action": action, "coupling": digit, "mapping": digit},
        )
        assert response.status_code == 302, action


def test_an_odd_retry_after_header_is_no_delay():
    response = httpx.Response(
        429,
        headers=[(b"Retry-After", "²".encode())],
        request=httpx.Request("GET", "http://erp.example/api/customers"),
    )
    assert _error_from(response, "ERP").retry_after is None
