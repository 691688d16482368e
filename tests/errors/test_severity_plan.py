"""The problems page by severity costs what it costs by recency: its pages are read from the
severity index in order and stop after a page, never a sort or a scan of the problems, with
as many problems as a million entries make."""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from errors.models import ErrorGroup
from errors.pagination import encode_cursor

PROBLEMS = 50_000
TABLE = ErrorGroup._meta.db_table
PAGE = reverse("errors:groups")


@pytest.fixture(scope="module")
def problems(django_db_setup, django_db_blocker):
    """Problems of every kind and status, one in 97 owned by the Sync administrators role,
    committed and analyzed; removed afterwards."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {TABLE} (fingerprint, category, title, first_seen, last_seen, count,
                                 records, status, status_note, integration, assigned_group_id)
            SELECT 'plan-' || i,
                   (ARRAY['permission', 'currency', 'conflict', 'validation', 'not_coupled',
                          'other', 'coupled_record_deleted'])[1 + i %% 7],
                   'Problem ' || i,
                   now() - (i %% 40000) * interval '1 minute' - interval '1 day',
                   now() - (i %% 40000) * interval '1 minute',
                   1 + i %% 50,
                   CASE WHEN i %% 7 = 0 THEN 0 ELSE (i * 7919) %% 500 END,
                   CASE WHEN i %% 10 = 0 THEN 'resolved' WHEN i %% 13 = 0 THEN 'ignored'
                        ELSE 'open' END,
                   '', '',
                   CASE WHEN i %% 97 = 0 THEN (SELECT id FROM auth_group
                                              WHERE name = 'Sync administrators') END
            FROM generate_series(1, %s) AS i
            """,  # noqa: S608 - our table
            [PROBLEMS],
        )
        cursor.execute(f"ANALYZE {TABLE}")
        yield
        cursor.execute(f"DELETE FROM {TABLE} WHERE fingerprint LIKE 'plan-%%'")  # noqa: S608


def plan_of(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def nodes(node: dict) -> list[dict]:
    return [node] + [n for child in node.get("Plans", []) for n in nodes(child)]


def page_queries(client: Client, query: dict) -> list[str]:
    """The statements the page ran on the problems table (its page and its count)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(PAGE, query)
    assert response.status_code == 200
    return [
        q["sql"]
        for q in captured.captured_queries
        if f'FROM "{TABLE}"' in q["sql"] and not q["sql"].startswith("EXPLAIN")
    ]


def deep_cursor() -> str:
    deep = ErrorGroup.objects.order_by("-severity", "-pk").values("severity", "pk")[PROBLEMS // 2]
    return encode_cursor(deep["severity"], deep["pk"])


@pytest.mark.django_db
def test_the_severity_order_reads_its_index_and_stops_after_a_page(problems, staff_user, sync_user):
    cases = {
        "first page": {},
        "deep page": {"before": deep_cursor()},
        "open ones": {"status": "open"},
        "of a category": {"category": "validation"},
        "mine (my role's)": {"assigned": "me"},
        "nobody's": {"assigned": "nobody"},
    }
    checked = []
    for user in (staff_user, sync_user):
        client = Client()
        client.force_login(user)
        for title, query in cases.items():
            for sql in page_queries(client, query):
                plan = plan_of(sql)
                found = nodes(plan)
                scans = [
                    n
                    for n in found
                    if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == TABLE
                ]
                assert not scans, f"{title} ({user}): {sql}\n{json.dumps(plan, indent=1)}"
                if " LIMIT 51" in sql and "severity" in sql and title != "mine (my role's)":
                    # The page itself: the severity index, in order, under the LIMIT.
                    indexes = {n.get("Index Name") for n in found}
                    assert "group_severity" in indexes, f"{title}: {json.dumps(plan, indent=1)}"
                    assert not [n for n in found if n["Node Type"] == "Sort"], title
                checked.append(title)
    assert len(checked) >= len(cases) * 2


@pytest.mark.django_db
def test_the_plan_of_the_default_page(problems, staff_user, capsys):
    """The plan of the problems page's default order, as it is run: an index scan that
    returns the first 51 rows, whatever the number of problems."""
    client = Client()
    client.force_login(staff_user)
    (page,) = [sql for sql in page_queries(client, {}) if " LIMIT 51" in sql]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + page)
        shown = "\n".join(row[0] for row in cursor.fetchall())
    print(shown)  # pytest -s shows it
    assert "Index Scan using group_severity" in shown
    assert "Sort" not in shown
    assert "rows=51" in shown.splitlines()[0]
