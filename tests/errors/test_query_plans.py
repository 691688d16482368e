"""Every query the errors list runs on the entries, at a size where the planner prefers
indexes, is planned without a sequential scan of the entries table."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.data import clear_errors, generate_errors, indexes_built_after
from errors.models import SyncError
from errors.pagination import encode_cursor
from errors.partitions import day_of, ensure_partitions
from tests.factories import make_job

ENTRIES = 60_000
TABLE = SyncError._meta.db_table
LIST = reverse("errors:list")


@pytest.fixture(scope="module")
def entries(django_db_setup, django_db_blocker):
    """Entries as the sync engine writes them, committed and analyzed, emptied afterwards."""
    with django_db_blocker.unblock():
        generated = generate_errors(ENTRIES, seed=5)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}")
        yield generated
        clear_errors()


def cases(generated) -> dict[str, str]:
    ordered = SyncError.objects.order_by("-created_at", "-pk")
    deep = ordered.values("created_at", "pk")[ENTRIES // 2]
    newest = ordered.values("created_at", "source_record_id", "group_id", "mapping_id").first()
    mapping = newest["mapping_id"]
    day = (newest["created_at"] - timedelta(days=3)).date().isoformat()
    job = make_job()
    SyncError.objects.filter(pk__gt=ordered.values_list("pk", flat=True)[0] - 500).update(job=job)
    cursor = encode_cursor(deep["created_at"], deep["pk"])
    connection_id = SyncError.objects.get(pk=deep["pk"]).mapping.connection_id
    return {
        "first page": "",
        "deep page": f"before={cursor}",
        "newer page": f"after={cursor}",
        "category": "category=currency",
        "status": "status=ignored",
        "mapping": f"mapping={mapping}",
        "connection": f"connection={connection_id}",
        "group": f"group={newest['group_id']}",
        "job": f"job={job.pk}",
        "date range": f"created_after={day}&created_before={day}",
        "date range, deep page": f"created_before={day}&before={cursor}",
        "search: a word": "q=exchange",
        "search: a record id": f"q={newest['source_record_id']}",
        "search and filters": f"q=Fabrikam&category=validation&status=open&mapping={mapping}",
    }


def seq_scans(node: dict) -> list[str]:
    found = []
    if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") == TABLE:
        found.append(node.get("Filter", "(no filter)"))
    for child in node.get("Plans", []):
        found += seq_scans(child)
    return found


def entry_queries(client, query: str) -> list[str]:
    """The SQL the list ran on the entries table (the planner's estimate is only EXPLAINed,
    never run, so it is left out)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"{LIST}?{query}")
    assert response.status_code == 200
    return [
        q["sql"]
        for q in captured.captured_queries
        if f'"{TABLE}"' in q["sql"] and not q["sql"].startswith("EXPLAIN")
    ]


@pytest.mark.django_db
def test_no_list_query_scans_the_entries_table(entries, staff_user, sync_user):
    clients = []
    for user in (staff_user, sync_user):
        client = Client()
        client.force_login(user)
        clients.append((client, user.username))
    problems = []
    checked = 0
    for title, query in cases(entries).items():
        for client, who in clients:
            for sql in entry_queries(client, query):
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                    plan = cursor.fetchone()[0]
                checked += 1
                for scan in seq_scans(plan[0]["Plan"]):
                    problems.append(f"{title} ({who}): Seq Scan, filter {scan}\n  {sql[:400]}")
    # Each case runs its page, and most their total too.
    assert checked >= 2 * 14
    assert not problems, "\n".join(problems)


def invalid_or_missing_indexes() -> list[str]:
    """Indexes of the entries table that are invalid, or that a partition lacks."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisvalid",
            [TABLE],
        )
        problems = [f"{name} is invalid" for (name,) in cursor.fetchall()]
        cursor.execute(
            "SELECT p.relid::regclass::text, "
            "(SELECT count(*) FROM pg_index i WHERE i.indrelid = p.relid) "
            "FROM pg_partition_tree(%s::regclass) p WHERE p.isleaf",
            [TABLE],
        )
        partitions = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [TABLE])
        expected = cursor.fetchone()[0]
    problems += [f"{name} has {n} of {expected}" for name, n in partitions if n != expected]
    return problems


@pytest.mark.django_db
def test_indexes_rebuilt_after_a_bulk_load_cover_every_partition():
    ensure_partitions([day_of(timezone.now())])
    with indexes_built_after(TABLE):
        pass
    assert not invalid_or_missing_indexes()
