"""Every page of the console that lists things runs the same few queries for 3 rows as for 30:
no query per row."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from errors.models import BulkAction, Category, ErrorGroup, SyncErrorCleanup
from sync.models import ConnectionCheck, MappingHealthSnapshot
from tests.factories import make_connection, make_coupling, make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db

FEW, MANY = 3, 30


def queries_of(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured.captured_queries)


def assert_rows_cost_nothing(client, url, add_rows, *, at_most: int) -> None:
    """The page's query count with FEW rows, then with MANY: the same, and within `at_most`."""
    add_rows(FEW)
    few = queries_of(client, url)
    add_rows(MANY - FEW)
    many = queries_of(client, url)
    assert many == few, f"{url}: {few} queries for {FEW} rows, {many} for {MANY}"
    assert many <= at_most, f"{url}: {many} queries"


def entries(n: int, **fields) -> None:
    """Entries that each have their own mapping, job, coupling and problem, so that any
    related object read per row would cost a query per row."""
    for i in range(n):
        mapping = make_mapping()
        make_error(
            mapping=mapping,
            job=make_job(mapping),
            coupling=make_coupling(mapping),
            category=Category.VALIDATION if i % 2 else Category.PERMISSION,
            **fields,
        )


def test_errors_list(staff_client):
    assert_rows_cost_nothing(staff_client, reverse("errors:list"), entries, at_most=12)


def test_errors_list_of_a_sync_user(sync_user_client):
    # Coupled-record entries only, and the count of hidden setup entries.
    assert_rows_cost_nothing(sync_user_client, reverse("errors:list"), entries, at_most=12)


def test_errors_list_of_a_problem(staff_client):
    mapping = make_mapping()
    first = make_error(mapping=mapping, message="The phone number is too long.")
    url = reverse("errors:list") + f"?group={first.group_id}"

    def more(n):
        for _ in range(n):
            make_error(
                mapping=mapping,
                job=make_job(mapping),
                coupling=make_coupling(mapping),
                message="The phone number is too long.",
            )

    assert_rows_cost_nothing(staff_client, url, more, at_most=13)


def test_groups_list(staff_client):
    # Each entry has its own mapping, so each is its own problem.
    assert_rows_cost_nothing(staff_client, reverse("errors:groups"), entries, at_most=10)
    assert ErrorGroup.objects.count() == MANY


def test_groups_list_with_root_causes(staff_client):
    # Every other problem is blocked by the one before, a root cause of its own mapping: the
    # root causes' figures and the blocked problems' links are read with the rows.
    roots: list = []

    def problems(n):
        for _ in range(n):
            mapping = make_mapping()
            if not roots:
                roots.append(make_error(mapping=mapping, category=Category.VALIDATION))
                continue
            root = roots.pop()
            make_error(
                mapping=mapping,
                category=Category.VALIDATION,
                blocked_by_mapping=root.mapping,
                blocked_by_side="source",
                blocked_by_record=root.source_record_id,
            )

    assert_rows_cost_nothing(staff_client, reverse("errors:groups"), problems, at_most=10)
    assert ErrorGroup.objects.filter(blocks_records=1).count() == MANY // 2
    assert ErrorGroup.objects.filter(blocked_by__isnull=False).count() == MANY // 2


def test_entry_detail(staff_client):
    mapping = make_mapping()
    coupling = make_coupling(mapping)
    error = make_error(
        mapping=mapping, job=make_job(mapping), coupling=coupling, source_url="", destination_url=""
    )
    url = reverse("errors:detail", args=[error.pk])
    # Other entries of the same record and coupling change nothing on its page.
    assert_rows_cost_nothing(
        staff_client,
        url,
        lambda n: [make_error(mapping=mapping, coupling=coupling) for _ in range(n)],
        at_most=12,
    )


def test_jobs_list(staff_client):
    assert_rows_cost_nothing(
        staff_client,
        reverse("sync:jobs"),
        lambda n: [make_job(make_mapping()) for _ in range(n)],
        at_most=8,
    )


def test_job_detail(staff_client):
    mapping = make_mapping()
    job = make_job(mapping)
    assert_rows_cost_nothing(
        staff_client,
        reverse("sync:job", args=[job.pk]),
        lambda n: [
            make_error(mapping=mapping, job=job, coupling=make_coupling(mapping)) for _ in range(n)
        ],
        at_most=10,
    )


def test_table_mappings(staff_client):
    def mappings(n):
        for _ in range(n):
            mapping = make_mapping()
            make_job(mapping)
            make_error(mapping=mapping, coupling=make_coupling(mapping))

    assert_rows_cost_nothing(staff_client, reverse("sync:mappings"), mappings, at_most=10)


def test_mapping_health(staff_client):
    mapping = make_mapping()
    today = timezone.localdate()

    def history(n):
        start = MappingHealthSnapshot.objects.filter(mapping=mapping).count()
        for i in range(start, start + n):
            make_job(mapping)
            make_coupling(mapping)
            MappingHealthSnapshot.objects.create(
                mapping=mapping,
                day=today - timedelta(days=i),
                failing=i,
                updated_at=timezone.now(),
            )

    url = reverse("sync:mapping_health", args=[mapping.pk])
    assert_rows_cost_nothing(staff_client, url, history, at_most=13)


def test_couplings(staff_client):
    def couplings(n):
        for _ in range(n):
            mapping = make_mapping(connection=make_connection())
            make_error(mapping=mapping, coupling=make_coupling(mapping))

    assert_rows_cost_nothing(staff_client, reverse("sync:couplings"), couplings, at_most=8)


def test_skipped_records(staff_client):
    def skipped(n):
        for _ in range(n):
            mapping = make_mapping(connection=make_connection())
            coupling = make_coupling(mapping, is_skipped=True, last_failed_job=make_job(mapping))
            make_error(mapping=mapping, coupling=coupling)

    assert_rows_cost_nothing(staff_client, reverse("sync:skipped"), skipped, at_most=8)


def test_connections(staff_client, staff_user):
    def connections(n):
        for _ in range(n):
            checked = make_connection()
            make_mapping(connection=checked)
            ConnectionCheck.objects.create(
                connection=checked,
                checked_at=timezone.now(),
                checked_by=staff_user,
                findings=[
                    {
                        "code": "no_roles",
                        "severity": "error",
                        "side": "destination",
                        "message": "No roles.",
                        "remedy": "Give it a role.",
                    }
                ],
            )

    assert_rows_cost_nothing(staff_client, reverse("sync:connections"), connections, at_most=8)


def test_connection_health(staff_client, staff_user):
    checked = make_connection()

    def mappings_and_checks(n):
        findings = [
            {
                "code": "missing_privilege",
                "severity": "error",
                "side": "destination",
                "message": f"Missing privilege {i}.",
                "remedy": "Grant it.",
            }
            for i in range(n)
        ]
        for _ in range(n):
            make_mapping(connection=checked)
        ConnectionCheck.objects.create(
            connection=checked,
            checked_at=timezone.now(),
            checked_by=staff_user,
            findings=findings,
        )

    url = reverse("sync:connection_health", args=[checked.pk])
    assert_rows_cost_nothing(staff_client, url, mappings_and_checks, at_most=8)


def test_cleanup_confirmation(staff_client):
    url = reverse("errors:cleanup_confirm", args=["older_than"]) + "?days=7"
    assert_rows_cost_nothing(
        staff_client,
        url,
        lambda n: entries(n, created_at=timezone.now() - timedelta(days=9)),
        at_most=8,
    )


def test_cleanup_progress(staff_client, staff_user):
    cleanup = SyncErrorCleanup.objects.create(
        action=SyncErrorCleanup.Action.OLDER_THAN,
        days=7,
        cutoff=timezone.now(),
        trigger=SyncErrorCleanup.Trigger.CONSOLE,
        requested_by=staff_user,
        state=SyncErrorCleanup.State.RUNNING,
    )
    url = reverse("errors:cleanup", args=[cleanup.pk])
    assert_rows_cost_nothing(staff_client, url, entries, at_most=6)


def test_bulk_progress(staff_client, staff_user):
    # Done, with filters: the page reads its jobs (one query, their mappings joined) and
    # counts the entries resolved since (the filter's mapping, then the count).
    bulk = BulkAction.objects.create(
        action=BulkAction.Action.RETRY,
        scope=BulkAction.Scope.FILTER,
        filter_query=f"status=open&mapping={make_mapping().pk}",
        requested_by=staff_user,
        state=BulkAction.State.DONE,
    )

    def jobs(n):
        bulk.job_ids += [make_job(make_mapping()).pk for _ in range(n)]
        bulk.save(update_fields=["job_ids"])

    url = reverse("errors:bulk_progress", args=[bulk.pk])
    assert_rows_cost_nothing(staff_client, url, jobs, at_most=8)
