from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from errors import pagination
from errors.models import Category, Status
from tests.factories import make_connection, make_error, make_errors, make_job, make_mapping

pytestmark = pytest.mark.django_db
LIST = reverse("errors:list")


def listed_ids(response) -> list[int]:
    return [error.pk for error in response.context["page"].items]


def test_lists_entries_newest_first(staff_client):
    old = make_error(age=timedelta(days=3))
    new = make_error(age=timedelta(minutes=1))
    middle = make_error(age=timedelta(hours=5))
    response = staff_client.get(LIST)
    assert response.status_code == 200
    assert listed_ids(response) == [new.pk, middle.pk, old.pk]


def test_shows_the_columns_and_record_links(staff_client):
    job = make_job()
    error = make_error(
        job=job,
        mapping=job.mapping,
        category=Category.PERMISSION,
        message="Principal user (Id=1, type=8) is missing prvWriteAccount privilege",
    )
    html = staff_client.get(LIST).content.decode()
    assert "Integration Synchronization Errors" in html
    assert "Principal user (Id=1, type=8) is missing prvWriteAccount privilege" in html
    assert "Permission" in html
    assert job.mapping.name in html
    assert f"#{job.pk}" in html
    assert f'href="{error.source_url}"' in html
    assert f'href="{error.destination_url}"' in html
    assert ">Source<" in html and ">Destination<" in html


def test_hostile_text_is_escaped_and_unsafe_links_are_not_links(staff_client):
    make_error(
        message='<script>alert("x")</script><img src=x onerror=alert(1)>',
        source_url="javascript:alert(1)",
        destination_url='https://crm.example.com/" onmouseover="alert(1)',
        source_record_id="<b>C1</b>",
    )
    html = staff_client.get(LIST).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert "&lt;b&gt;C1&lt;/b&gt;" in html
    assert '" onmouseover="alert(1)' not in html


def test_filters_by_category(staff_client):
    wanted = make_error(category=Category.CURRENCY)
    make_error(category=Category.CONFLICT)
    assert listed_ids(staff_client.get(LIST, {"category": "currency"})) == [wanted.pk]


def test_filters_by_status(staff_client):
    make_error(status=Status.OPEN)
    resolved = make_error(status=Status.RESOLVED)
    assert listed_ids(staff_client.get(LIST, {"status": "resolved"})) == [resolved.pk]


def test_filters_by_mapping_and_by_connection(staff_client):
    connection_a = make_connection()
    mapping_a1 = make_mapping(connection_a)
    mapping_a2 = make_mapping(connection_a)
    mapping_b = make_mapping()
    a1 = make_error(mapping=mapping_a1)
    a2 = make_error(mapping=mapping_a2)
    make_error(mapping=mapping_b)
    assert listed_ids(staff_client.get(LIST, {"mapping": mapping_a1.pk})) == [a1.pk]
    by_connection = listed_ids(staff_client.get(LIST, {"connection": connection_a.pk}))
    assert sorted(by_connection) == sorted([a1.pk, a2.pk])


def test_filters_by_date_range(staff_client):
    today = timezone.localdate()
    make_error(age=timedelta(days=10))
    inside = make_error(age=timedelta(days=4))
    make_error(age=timedelta(minutes=5))
    response = staff_client.get(
        LIST,
        {
            "created_after": (today - timedelta(days=5)).isoformat(),
            "created_before": (today - timedelta(days=3)).isoformat(),
        },
    )
    assert listed_ids(response) == [inside.pk]


def test_search_matches_message_text_case_insensitively(staff_client):
    wanted = make_error(message="The currency NOK does not have an exchange rate")
    make_error(message="Something else entirely")
    assert listed_ids(staff_client.get(LIST, {"q": "exchange RATE"})) == [wanted.pk]


def test_search_matches_only_the_messages_that_hold_the_text(staff_client):
    # One problem: its title is the first message, which names C1; the second entry does not.
    first = make_error(message="Customer C1 is blocked")
    make_error(message="Customer C2 is blocked")
    assert first.group_id is not None
    assert listed_ids(staff_client.get(LIST, {"q": "c1 is"})) == [first.pk]
    assert len(listed_ids(staff_client.get(LIST, {"q": "is blocked"}))) == 2


def test_search_matches_whole_record_ids_on_either_side(staff_client):
    # Not the factory's own record ids (C00001, C00002, ...), which another entry may hold.
    by_source = make_error(source_record_id="K00042")
    by_destination = make_error(destination_record_id="7b3c2a10-aaaa-bbbb-cccc-000000000001")
    make_error(source_record_id="K000421")
    assert listed_ids(staff_client.get(LIST, {"q": "k00042"})) == [by_source.pk]
    found = listed_ids(staff_client.get(LIST, {"q": "7B3C2A10-AAAA-BBBB-CCCC-000000000001"}))
    assert found == [by_destination.pk]


def test_filters_combine(staff_client):
    mapping = make_mapping()
    wanted = make_error(mapping=mapping, category=Category.CONFLICT, message="modified in both")
    make_error(mapping=mapping, category=Category.VALIDATION, message="modified in both")
    make_error(category=Category.CONFLICT, message="modified in both")
    response = staff_client.get(
        LIST, {"mapping": mapping.pk, "category": "conflict", "q": "modified"}
    )
    assert listed_ids(response) == [wanted.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"category": "nonsense"},
        {"status": "deleted"},
        {"mapping": "abc"},
        {"mapping": "999999"},
        {"connection": "-1"},
        {"created_after": "yesterday"},
        {"q": "x" * 201},
    ],
)
def test_bad_filter_values_get_a_clear_400(staff_client, params):
    make_error()
    response = staff_client.get(LIST, params)
    assert response.status_code == 400
    assert listed_ids(response) == []
    assert 'class="form-errors"' in response.content.decode()


def test_keyset_pages_walk_the_whole_list_without_gaps_or_repeats(staff_client, settings):
    settings.SYNC_ERRORS_PER_PAGE = 4
    moment = timezone.now() - timedelta(hours=1)
    # Several entries share a timestamp: the id breaks the tie.
    errors = [make_error(created_at=moment - timedelta(minutes=i // 3)) for i in range(10)]
    expected = [e.pk for e in sorted(errors, key=lambda e: (e.created_at, e.pk), reverse=True)]

    seen, pages, params = [], [], {}
    while True:
        response = staff_client.get(LIST, params)
        page = response.context["page"]
        pages.append(page)
        seen += [e.pk for e in page.items]
        if not page.has_older:
            break
        params = {"before": page.older_cursor}
    assert seen == expected
    assert [len(p.items) for p in pages] == [4, 4, 2]
    assert not pages[0].has_newer and pages[1].has_newer

    # And back again, newer.
    back = staff_client.get(LIST, {"after": pages[2].newer_cursor}).context["page"]
    assert [e.pk for e in back.items] == expected[4:8]
    assert back.has_newer and back.has_older


def test_paging_keeps_the_filters(staff_client, settings):
    settings.SYNC_ERRORS_PER_PAGE = 2
    for _ in range(3):
        make_error(category=Category.CONFLICT)
    make_error(category=Category.OTHER)
    first = staff_client.get(LIST, {"category": "conflict"})
    html = first.content.decode()
    assert "category=conflict&amp;before=" in html
    page = first.context["page"]
    second = staff_client.get(LIST, {"category": "conflict", "before": page.older_cursor})
    assert len(second.context["page"].items) == 1
    assert second.context["page"].items[0].category == Category.CONFLICT


@pytest.mark.parametrize("cursor", ["garbage", "eyJhIjoxfQ", "W10", "WyIyMDI2LTAxLTAxIiwgMV0"])
def test_a_broken_page_link_shows_the_newest_page_with_a_message(staff_client, cursor):
    newest = make_error(age=timedelta(seconds=1))
    response = staff_client.get(LIST, {"before": cursor})
    assert response.status_code == 200
    assert listed_ids(response)[0] == newest.pk
    assert "That page link is not valid" in response.content.decode()


def test_small_totals_are_exact(staff_client):
    for _ in range(3):
        make_error()
    response = staff_client.get(LIST)
    assert response.context["total"].exact
    assert response.context["total"].value == 3
    assert "3 entries" in response.content.decode()


def test_a_total_that_fits_on_the_page_is_not_counted(staff_client):
    make_errors(3)
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(LIST)
    assert response.context["total"] == pagination.Total(3, True)
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"]]


def test_large_totals_are_estimated_without_counting_the_table(staff_client, monkeypatch, settings):
    monkeypatch.setattr(pagination, "EXACT_COUNT_LIMIT", 5)
    settings.SYNC_ERRORS_PER_PAGE = 4
    for _ in range(12):
        make_error()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE errors_syncerror")
    response = staff_client.get(LIST)
    total = response.context["total"]
    assert not total.exact
    assert total.value >= 6
    assert "About" in response.content.decode()


def test_the_list_costs_the_same_few_queries_however_many_entries(staff_client):
    job = make_job()
    for _ in range(3):
        make_error(job=job, mapping=job.mapping)
    with CaptureQueriesContext(connection) as few:
        staff_client.get(LIST)
    for _ in range(30):
        make_error(job=make_job(), mapping=make_mapping())
    with CaptureQueriesContext(connection) as many:
        staff_client.get(LIST)
    assert len(many) == len(few)
    assert len(many) <= 8


def test_empty_list_says_so(staff_client):
    html = staff_client.get(LIST).content.decode()
    assert "No sync errors" in html
    html = staff_client.get(LIST, {"category": "conflict"}).content.decode()
    assert "No sync errors match these filters" in html


def test_a_large_planner_estimate_is_shown_without_counting(staff_client, monkeypatch, settings):
    monkeypatch.setattr(pagination, "TRUSTED_ESTIMATE_FROM", 5)
    settings.SYNC_ERRORS_PER_PAGE = 4
    make_errors(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE errors_syncerror")
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(LIST)
    total = response.context["total"]
    assert not total.exact and total.value >= 12
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert f"About {total.value} entries" in response.content.decode()


def test_a_small_planner_estimate_is_checked_by_counting(staff_client, settings):
    settings.SYNC_ERRORS_PER_PAGE = 4
    make_errors(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE errors_syncerror")
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(LIST)
    assert response.context["total"] == pagination.Total(12, True)
    assert [q for q in queries.captured_queries if "COUNT(" in q["sql"]]


def test_a_row_cuts_long_messages_and_links_its_job_without_reading_it(staff_client):
    job = make_job()
    entry = make_error(job=job, mapping=job.mapping, message="Too long. " * 30)
    other = make_error(mapping=None, integration="Payroll <sync>", message="Short & sweet")
    with CaptureQueriesContext(connection) as queries:
        html = staff_client.get(LIST).content.decode()
    assert not [q for q in queries.captured_queries if "sync_syncjob" in q["sql"]]
    assert f'<a href="{job.get_absolute_url()}">#{job.pk}</a>' in html
    assert f'<a href="{entry.get_absolute_url()}">{("Too long. " * 14)[:139]}…</a>' in html
    assert f'<a href="{other.get_absolute_url()}">Short &amp; sweet</a>' in html
    assert '<span title="Sent by another integration">Payroll &lt;sync&gt;</span>' in html
