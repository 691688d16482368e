"""Every query the errors list runs on the entries, at a size where the planner prefers
indexes, is planned without a sequential scan of the entries table."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.data import clear_errors, generate_errors, indexes_built_after
from errors.models import ErrorGroup, SyncError
from errors.pagination import encode_cursor, planner_estimate
from errors.partitions import day_bounds, day_of, ensure_partitions
from errors.search import search
from sync.models import Connection
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.factories import make_job

ENTRIES = 60_000
# As many entries a day as a million over a month: partitions of a size where the planner
# prefers indexes (it rightly scans a partition of a few thousand rows whole).
DAYS = 2
TABLE = SyncError._meta.db_table
COPIED = ", ".join(
    f'"{f.column}"' for f in SyncError._meta.concrete_fields if f.column not in ("id", "created_at")
)
LIST = reverse("errors:list")


@pytest.fixture(scope="module")
def entries(django_db_setup, django_db_blocker):
    """Entries as the sync engine writes them, committed and analyzed, emptied afterwards."""
    with django_db_blocker.unblock():
        # Whole days, up to today's midnight: every day partition holds as many entries.
        midnight = day_bounds(day_of(timezone.now()))[0]
        generated = generate_errors(ENTRIES, days=DAYS, now=midnight, seed=5)
        with connection.cursor() as cursor:
            # Entries dated outside the day partitions' window land in the default one.
            cursor.execute(
                f"INSERT INTO {TABLE} ({COPIED}, created_at) SELECT {COPIED}, "  # noqa: S608
                f"created_at - interval '5 years' FROM {TABLE} WHERE id % 6 = 0"
            )
            cursor.execute(f"ANALYZE {TABLE}")
        yield generated
        clear_errors()
        # The mappings the data names: later tests expect an empty database.
        Connection.objects.filter(name="Benchmark").delete()


def cases(generated) -> dict[str, str]:
    ordered = SyncError.objects.order_by("-created_at", "-pk")
    deep = ordered.values("created_at", "pk")[ENTRIES // 2]
    newest = ordered.values("created_at", "source_record_id", "group_id", "mapping_id").first()
    mapping = newest["mapping_id"]
    day = (newest["created_at"] - timedelta(days=1)).date().isoformat()
    job = make_job()
    SyncError.objects.filter(pk__gt=ordered.values_list("pk", flat=True)[0] - 500).update(job=job)
    # A later job's attempts counted on a few of them.
    later = make_job(job.mapping)
    SyncError.objects.filter(pk__gt=ordered.values_list("pk", flat=True)[0] - 50).update(
        last_attempt_job_id=later.pk
    )
    cursor = encode_cursor(deep["created_at"], deep["pk"])
    connection_id = SyncError.objects.get(pk=deep["pk"]).mapping.connection_id
    # The newest entry's problem is the Sync administrators' (the staff user's role).
    ErrorGroup.objects.filter(pk=newest["group_id"]).update(
        assigned_group=Group.objects.get(name=SYNC_ADMINISTRATORS)
    )
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
        "attempted again in a job": f"attempted_in={later.pk}",
        "date range": f"created_after={day}&created_before={day}",
        "date range, deep page": f"created_before={day}&before={cursor}",
        "search: a word": "q=exchange",
        "search: a record id": f"q={newest['source_record_id']}",
        "search and filters": f"q=Fabrikam&category=validation&status=open&mapping={mapping}",
        "assigned to me": "assigned=me",
        "assigned to nobody": "assigned=nobody",
    }


def entries_relations() -> dict[str, float]:
    """The entries table and its partitions (the default one too), with the rows the
    planner knows each holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples FROM pg_partition_tree(%s::regclass) p "
            "JOIN pg_class c ON c.oid = p.relid",
            [TABLE],
        )
        return dict(cursor.fetchall())


# A partition the planner knows to hold fewer rows than this may be read whole: reading a few
# thousand rows costs less than several index scans, and the planner rightly chooses so once
# (auto)vacuum has seen it. The day partitions here hold 30,000 each; the default one, the
# entries dated outside the days' window, 10,000.
SMALL_PARTITION = 15_000


def seq_scans(node: dict, relations: dict[str, float]) -> list[str]:
    """Sequential scans of the entries table or of any of its partitions but a small one (an
    empty partition, a day ahead, costs nothing to scan)."""
    found = []
    name = node.get("Relation Name")
    if node.get("Node Type") == "Seq Scan" and relations.get(name, 0) >= SMALL_PARTITION:
        found.append(f"{name}: {node.get('Filter', '(no filter)')}")
    for child in node.get("Plans", []):
        found += seq_scans(child, relations)
    return found


def node_types(node: dict) -> list[str]:
    return [node["Node Type"]] + [t for child in node.get("Plans", []) for t in node_types(child)]


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
    relations = entries_relations()
    assert relations[f"{TABLE}_default"] > 0
    assert len([name for name, rows in relations.items() if rows > 0]) > DAYS
    problems = []
    checked = 0
    for title, query in cases(entries).items():
        for client, who in clients:
            if who == sync_user.username and "category=currency" in query:
                continue  # a setup category is not a Sync user's to ask for (a 400)
            for sql in entry_queries(client, query):
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                    plan = cursor.fetchone()[0]
                checked += 1
                for scan in seq_scans(plan[0]["Plan"], relations):
                    problems.append(f"{title} ({who}): Seq Scan of {scan}\n  {sql[:400]}")
    # Each case runs its page, and most their total too.
    assert checked >= 2 * 14
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_a_page_merges_the_partitions_index_scans_and_stops(entries, staff_user):
    """The newest page, and a page deep in the list, read each day's index in order and stop
    after a page: no sort of a whole day, no scan of a day it does not need."""
    client = Client()
    client.force_login(staff_user)
    every = cases(entries)
    for title in ("first page", "deep page"):
        page_sql = entry_queries(client, every[title])[0]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + page_sql)
            plan = cursor.fetchone()[0][0]["Plan"]
        types = node_types(plan)
        assert types[0] == "Limit", (title, types)
        assert "Merge Append" in types, (title, types)
        assert "Sort" not in types, (title, types)


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


def plan_of(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        return cursor.fetchone()[0][0]["Plan"]


def index_names(node: dict) -> list[str]:
    own = [node["Index Name"]] if "Index Name" in node else []
    return own + [name for child in node.get("Plans", []) for name in index_names(child)]


@pytest.mark.django_db
def test_message_search_reads_the_problems_title_index_not_an_index_of_every_message(
    entries, staff_user
):
    """The entries carry no index of their message (it cost a third of an insert): the text
    is looked up in the problems' titles, by their trigram index, and the entries of those
    problems by their problem index."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [TABLE])
        assert not [d for (d,) in cursor.fetchall() if "message" in d]
    client = Client()
    client.force_login(staff_user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"{LIST}?q=exchange").status_code == 200
    titles = [
        q["sql"]
        for q in captured.captured_queries
        if f'"{ErrorGroup._meta.db_table}"' in q["sql"] and "LIKE" in q["sql"]
    ]
    assert len(titles) == 1
    page = plan_of(entry_queries(client, "q=exchange")[0])
    assert not seq_scans(page, entries_relations())
    assert [kind for kind in node_types(page) if "Index" in kind], node_types(page)
    # The problems are few here, and a table of a few pages is rightly read whole: the
    # index must serve the search once reading them whole is not an option.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    assert "group_title_trgm" in index_names(plan_of(titles[0]))


@pytest.mark.django_db
def test_a_search_is_estimated_from_the_messages_statistics(entries):
    """The list's total for a search is the planner's estimate once it is large: the message
    is matched on the column itself, so the estimate reads its statistics (by UPPER(message)
    the planner guessed a hundredth of the matches, and counted them all for a total)."""
    matching = search(SyncError.objects.all(), "exchange")
    real = matching.count()
    assert real > 1000
    estimate = planner_estimate(matching)
    # Within the factor of ten the list's totals allow for (errors.pagination).
    assert real / 10 <= estimate <= real * 10, (estimate, real)


@pytest.mark.django_db
def test_the_console_sessions_run_without_the_jit_compiler():
    """A page over every day partition is costly by estimate and cheap to run: PostgreSQL's
    JIT compiler, started by the estimate, took seconds to compile it."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
