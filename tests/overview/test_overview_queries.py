"""The overview costs a fixed number of queries, whatever the number of connections, mappings,
problems, entries and audit events, and none of them reads the entries table: its figures are
those kept on write."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import services as audit
from bench.data import clear_errors, generate_errors
from errors.models import Category, SyncError
from errors.partitions import day_bounds, day_of
from sync.mapping_health import record_snapshot
from sync.models import Connection, ConnectionCheck
from tests.errors.test_query_plans import entries_relations, seq_scans
from tests.factories import make_connection, make_coupling, make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db

TABLE = SyncError._meta.db_table
# Sign-in (session, user, permissions) and the overview's own: connections, mappings with
# their jobs, the last jobs, snapshots, setup checks, problems, lag probes' latest markers, day
# figures, audit events.
AT_MOST = 13


def captured(client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("home"))
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries]


def world(n: int) -> None:
    """n connections, each with two mappings that have jobs, couplings, snapshots, a setup
    check, problems of every kind and audit events."""
    for i in range(n):
        linked = make_connection()
        ConnectionCheck.objects.create(
            connection=linked, checked_at=timezone.now(), findings=[{"code": "sign_in"}]
        )
        for name in ("CUSTOMER", "CONTACT"):
            mapping = make_mapping(linked, name=f"{name}-{i}")
            job = make_job(mapping)
            make_coupling(mapping, is_skipped=True)
            record_snapshot(mapping.pk)
            for category in (Category.PERMISSION, Category.CONFLICT, Category.CONNECTION):
                make_error(mapping=mapping, job=job, category=category, message=f"{category}")
            for action in (audit.Action.MAPPING_CHANGED, audit.Action.CONNECTION_CHANGED):
                audit.record(action, f"Changed {mapping.name}", target=mapping)
    make_error(integration=f"Webshop {n}")


@pytest.mark.parametrize("role", ["staff", "sync_user"])
def test_the_overview_costs_the_same_queries_for_few_or_many(role, request):
    client = request.getfixturevalue(f"{role}_client")
    world(1)
    few = captured(client)
    world(9)
    many = captured(client)
    assert len(many) == len(few), "\n\n".join(many)
    assert len(many) <= AT_MOST, "\n\n".join(many)


@pytest.fixture(scope="module")
def entries(django_db_setup, django_db_blocker):
    """Entries as the engine writes them over a month, committed and analyzed, and a year of
    audit events; emptied afterwards."""
    with django_db_blocker.unblock():
        midnight = day_bounds(day_of(timezone.now()))[0]
        generate_errors(40_000, days=30, now=midnight, seed=11)
        for day in range(365):
            audit.record(audit.Action.ENTRIES_RESOLVED, f"Resolved {day}")
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET at = now() - (id % 365) * interval '1 day'")
            cursor.execute(f"ANALYZE {TABLE}")
            cursor.execute("ANALYZE errors_groupday")
            cursor.execute("ANALYZE audit_auditevent")
        yield
        clear_errors()
        Connection.objects.filter(name="Benchmark").delete()
        from audit.models import AuditEvent

        AuditEvent.objects.all().delete()


def test_no_query_of_the_overview_reads_the_entries_table(entries, staff_user, sync_user):
    relations = entries_relations()
    assert sum(relations.values()) >= 40_000
    checked = 0
    for user in (staff_user, sync_user):
        client = Client()
        client.force_login(user)
        for sql in captured(client):
            assert f'"{TABLE}' not in sql and f" {TABLE}" not in sql, sql
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
            assert not seq_scans(plan[0]["Plan"], relations), sql
            checked += 1
    assert checked >= 2 * 8
    # The figures it shows are those of the entries all the same.
    client = Client()
    client.force_login(staff_user)
    html = client.get(reverse("home")).content.decode()
    came = SyncError.objects.filter(
        created_at__gte=timezone.now() - timedelta(days=29, hours=timezone.localtime().hour)
    )
    assert came.exists()
    assert "Benchmark" in html
