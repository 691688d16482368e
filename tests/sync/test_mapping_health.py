"""Health per table mapping: records in sync, failing and skipped, the last successful sync,
the open entries, and the backlog trend drawn from one snapshot per mapping and day."""

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from demo.models import CrmAccount
from errors.models import Category, Status
from sync.mapping_health import backlog_trends, failing_not_coupled, record_snapshot
from sync.models import MappingHealthSnapshot, SyncJob
from tests.factories import make_coupling, make_error, make_mapping

FULL = SyncJob.Kind.FULL


def figures(page: str, mapping_id: int) -> dict[str, str]:
    row = re.search(rf'<tr data-mapping="{mapping_id}".*?</tr>', page, re.S).group(0)
    return {
        name: re.sub(r"<[^>]+>", "", value)
        for name, value in re.findall(r'data-figure="(\w+)">(.*?)</td>', row, re.S)
    }


def break_one_account(demo_apps) -> None:
    """A telephone number the ERP refuses: that record fails from the CRM side."""
    account = CrmAccount.objects.exclude(account_number="").order_by("account_number").first()
    CrmAccount.objects.filter(pk=account.pk).update(
        telephone="+45 3333 4444 ext. 5555 (reception)", modified_on=timezone.now()
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("uncoupled_not_retried")
def test_the_mappings_page_shows_each_mappings_health(
    demo_apps, staff_client, django_assert_max_num_queries
):
    demo_apps.run("CUSTOMER", FULL)
    break_one_account(demo_apps)
    last = demo_apps.run("CUSTOMER")
    mapping = demo_apps.mapping("CUSTOMER")
    # More mappings do not make more queries.
    for _ in range(15):
        make_mapping(demo_apps.connection)

    with django_assert_max_num_queries(10):
        page = staff_client.get(reverse("sync:mappings")).content.decode()

    # 11 coupled: 10 in step, one failing; the SEK customer never coupled (its create
    # failed): it fails too, and has no coupling to be counted by.
    assert figures(page, mapping.pk) == {
        "in_sync": "10",
        "failing": "1+1 not coupled",
        "skipped": "0",
        "open_errors": "2",
    }
    assert f'href="{last.get_absolute_url()}"' in page
    assert timezone.localtime(last.finished_at).strftime("%Y-%m-%d %H:%M") in page
    assert page.count('<svg class="trend"') == 4 + 15
    assert reverse("sync:mapping_health", args=[mapping.pk]) in page
    currency = demo_apps.mapping("CURRENCY")
    assert figures(page, currency.pk)["in_sync"] == "0"


@pytest.mark.django_db
def test_the_health_page_shows_the_figures_the_last_job_and_the_days(demo_apps, staff_client):
    demo_apps.run("CUSTOMER", FULL)
    break_one_account(demo_apps)
    last = demo_apps.run("CUSTOMER")
    mapping = demo_apps.mapping("CUSTOMER")

    page = staff_client.get(reverse("sync:mapping_health", args=[mapping.pk])).content.decode()

    assert re.search(r'data-figure="in_sync">10<', page)
    assert re.search(r'data-figure="failing">1<', page)
    # The SEK customer, never coupled: its create failed.
    assert re.search(r'data-figure="failing_not_coupled"><a [^>]*>1</a>', page)
    assert f'href="{last.get_absolute_url()}"' in page
    today = timezone.localdate().isoformat()
    cell = r"<td[^>]*>"
    assert re.search(rf"{cell}{today}</td>{cell}10</td>{cell}1</td>{cell}1</td>{cell}0</td>", page)
    assert f"<title>{today}: 2</title>" in page  # today's bar: both failing records
    assert staff_client.get(reverse("sync:mapping_health", args=[9999])).status_code == 404


@pytest.mark.django_db
def test_the_health_pages_are_for_staff_only(demo_apps, client, plain_user):
    mapping = demo_apps.mapping("CUSTOMER")
    client.force_login(plain_user)
    assert client.get(reverse("sync:mapping_health", args=[mapping.pk])).status_code == 403
    assert client.post(reverse("sync:mapping_resume", args=[mapping.pk])).status_code == 403


@pytest.mark.django_db
def test_each_job_writes_one_snapshot_per_day(demo_apps):
    demo_apps.run("CUSTOMER", FULL)
    break_one_account(demo_apps)
    demo_apps.run("CUSTOMER")
    snapshot = MappingHealthSnapshot.objects.get(mapping__name="CUSTOMER")
    assert (
        snapshot.day,
        snapshot.in_sync,
        snapshot.failing,
        snapshot.failing_not_coupled,
        snapshot.skipped,
    ) == (timezone.localdate(), 10, 1, 1, 0)
    demo_apps.run("CUSTOMER")  # the same failure again: the record is skipped
    snapshot.refresh_from_db()
    assert (snapshot.in_sync, snapshot.failing, snapshot.skipped) == (10, 0, 1)
    assert MappingHealthSnapshot.objects.filter(mapping__name="CUSTOMER").count() == 1


def test_the_trend_is_failing_and_skipped_per_day_carried_over_days_without_a_job(db):
    mapping, quiet = make_mapping(), make_mapping()
    today = date(2026, 3, 20)
    for days_ago, failing, skipped in ((20, 4, 1), (10, 2, 0), (3, 1, 2)):
        MappingHealthSnapshot.objects.create(
            mapping=mapping,
            day=today - timedelta(days=days_ago),
            in_sync=5,
            failing=failing,
            skipped=skipped,
            updated_at=timezone.now(),
        )

    trends = backlog_trends([mapping.pk, quiet.pk], today)

    counts = [bar.count for bar in trends[mapping.pk]]
    # 14 days: the snapshot from before the window until day 10 ago, then 2, then 3.
    assert counts == [5] * 3 + [2] * 7 + [3] * 4
    assert trends[mapping.pk][0].day == today - timedelta(days=13)
    assert [bar.height for bar in trends[mapping.pk]][:4] == [20, 20, 20, 8]
    assert [bar.count for bar in trends[quiet.pk]] == [0] * 14


def test_a_snapshot_counts_the_couplings_by_their_last_results(db):
    mapping = make_mapping()
    make_coupling(mapping, last_result_to_destination="success")
    make_coupling(
        mapping, last_result_to_destination="success", last_result_from_destination="success"
    )
    make_coupling(
        mapping, last_result_to_destination="success", last_result_from_destination="failure"
    )
    make_coupling(mapping, last_result_to_destination="failure", is_skipped=True)
    make_coupling(mapping)  # never synchronized

    snapshot = record_snapshot(mapping.pk)

    assert (snapshot.in_sync, snapshot.failing, snapshot.skipped) == (2, 1, 1)


def test_failing_not_coupled_counts_each_record_whose_create_failed_once(db):
    mapping, other = make_mapping(), make_mapping()
    # One record that failed twice, another that failed once: two records.
    make_error(mapping=mapping, source_record_id="C1", category=Category.CURRENCY)
    make_error(mapping=mapping, source_record_id="C1", category=Category.CURRENCY)
    make_error(mapping=mapping, source_record_id="C2", category=Category.VALIDATION)
    # Not counted: a coupled record (its coupling counts it), a record on one side only (it
    # waits for a choice, not a fix), an entry set aside, a setup entry (no record), another
    # mapping's record.
    make_error(mapping=mapping, source_record_id="C3", coupling=make_coupling(mapping))
    make_error(mapping=mapping, source_record_id="C4", category=Category.NOT_COUPLED)
    make_error(mapping=mapping, source_record_id="C5", status=Status.RESOLVED)
    make_error(mapping=mapping, source_record_id="", category=Category.PERMISSION)
    make_error(mapping=other, source_record_id="C6")
    assert failing_not_coupled(mapping.pk) == 2
    assert record_snapshot(mapping.pk).failing_not_coupled == 2
