"""The overview, the console's home page: each mapping's state, its last successful sync and
the lag since, its open problems by severity, the new and resolved entries of the last 30
days with the changes marked on the same days, and what a Sync user may see of it."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from couplings.models import Coupling
from errors import services
from errors.models import Category, ErrorGroup, Severity, Status, SyncError, SyncErrorCleanup
from overview.chart import scale_top
from overview.figures import DAYS, LATE_AFTER, State, overview_for
from overview.severity import severity_of
from sync import breaker
from sync.health import Finding
from sync.mapping_health import record_snapshot
from sync.models import ConnectionCheck, SyncJob
from tests.factories import make_connection, make_coupling, make_error, make_job, make_mapping
from tests.security.test_audit import form_data

pytestmark = pytest.mark.django_db

R = Coupling.Result


def page(client) -> str:
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return response.content.decode()


def row_of(html: str, mapping) -> str:
    """The table row of one mapping."""
    found = re.search(rf'<tr data-mapping="{mapping.pk}".*?</tr>', html, re.S)
    assert found, f"no row for {mapping.name}"
    return found.group(0)


def states(user) -> dict[str, State]:
    return {m.mapping.name: m.state for m in overview_for(user).mappings}


def succeeded(mapping, ago=timedelta(minutes=10)) -> SyncJob:
    moment = timezone.now() - ago
    job = make_job(mapping)
    SyncJob.objects.filter(pk=job.pk).update(
        created_at=moment, started_at=moment, finished_at=moment
    )
    return job


def test_the_console_opens_on_the_overview(staff_client):
    response = staff_client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Overview</h1>" in html
    assert re.search(r'<a href="/" aria-current="page">Overview</a>', html)
    # First in the navigation.
    nav = html.split('class="mainnav"')[1]
    assert nav.index(">Overview<") < nav.index(">Problems<")


def test_each_state_of_a_mapping(staff_user, staff_client):
    connection = make_connection(name="Production")
    healthy = make_mapping(connection, name="CURRENCY")
    succeeded(healthy)
    record_snapshot(healthy.pk)

    job_failed = make_mapping(connection, name="CONTACT")
    succeeded(job_failed, ago=timedelta(hours=5))
    failed = make_job(job_failed, status=SyncJob.Status.FAILED)
    make_error(
        mapping=job_failed,
        job=failed,
        category=Category.PERMISSION,
        message="The integration user is missing the prvCreateContact privilege.",
        source_record_id="",
        destination_record_id="",
    )

    records_failing = make_mapping(connection, name="ITEM-PRODUCT")
    succeeded(records_failing)
    for _ in range(3):
        make_coupling(records_failing, last_result_to_destination=R.FAILURE)
    make_coupling(records_failing, last_result_to_destination=R.SUCCESS)
    record_snapshot(records_failing.pk)

    skipped = make_mapping(connection, name="CUSTOMER")
    succeeded(skipped)
    make_coupling(skipped, is_skipped=True, last_result_to_destination=R.FAILURE)
    make_coupling(skipped, is_skipped=True, last_result_to_destination=R.FAILURE)
    record_snapshot(skipped.pk)

    paused = make_mapping(connection, name="SALESORDER")
    succeeded(paused, ago=timedelta(days=2))
    breaker.pause(paused, "The integration user has no roles.", None)

    stopped = make_mapping(connection, name="VENDOR")
    succeeded(stopped, ago=timedelta(hours=1))
    ConnectionCheck.objects.create(
        connection=connection,
        checked_at=timezone.now(),
        findings=[
            Finding("sign_in", "ok", "Signed in.").as_dict(),
            Finding(
                "missing_privilege",
                "error",
                "The integration user is missing the prvReadVendor privilege.",
                mapping="VENDOR",
            ).as_dict(),
            Finding("currency_missing", "warning", "DKK is missing.").as_dict(),
        ],
    )
    never = make_mapping(connection, name="NEW")
    disabled = make_mapping(make_connection(name="Old", is_enabled=False), name="LEGACY")

    assert states(staff_user) == {
        "CURRENCY": State.HEALTHY,
        "CONTACT": State.FAILING,
        "ITEM-PRODUCT": State.FAILING,
        "CUSTOMER": State.SKIPPED,
        "SALESORDER": State.PAUSED,
        "VENDOR": State.BLOCKED,
        "NEW": State.NOT_RUN,
        "LEGACY": State.DISABLED,
    }
    html = page(staff_client)
    expected = {
        healthy: ("healthy", "Healthy"),
        job_failed: ("failing", "Its last job failed."),
        records_failing: ("failing", "3 records failing."),
        skipped: ("skipped", "2 records left out after failing twice"),
        paused: ("paused", "The integration user has no roles."),
        stopped: ("blocked", "missing the prvReadVendor privilege"),
        never: ("not_run", "Not synchronized yet"),
        disabled: ("disabled", "The connection Old is disabled."),
    }
    for mapping, (state, words) in expected.items():
        row = row_of(html, mapping)
        assert f'data-state="{state}"' in row, mapping.name
        assert words in row, (mapping.name, row)
    # The failing and skipped records lead to them, the problems and jobs to the mapping's.
    assert f"/sync/couplings/?mapping={records_failing.pk}&amp;result=failure" in html
    assert f"/sync/skipped/?mapping={skipped.pk}" in html
    assert f"/errors/groups/?mapping={job_failed.pk}&amp;status=open" in row_of(html, job_failed)
    assert f"/sync/jobs/?mapping={job_failed.pk}" in row_of(html, job_failed)
    # Each connection reads as its worst mapping.
    production = re.search(rf'data-connection="{connection.pk}".*?</th>', html, re.S).group(0)
    assert 'data-state="paused"' in production
    assert "6 of 8 table mappings need attention" not in html  # disabled and new are not
    assert "5 of 8 table mappings need attention" in html


def test_a_job_that_succeeds_after_the_setup_check_ends_its_stop(staff_user):
    mapping = make_mapping(name="VENDOR")
    ConnectionCheck.objects.create(
        connection=mapping.connection,
        checked_at=timezone.now() - timedelta(hours=1),
        findings=[Finding("no_roles", "error", "The integration user has no roles.").as_dict()],
    )
    assert states(staff_user) == {"VENDOR": State.BLOCKED}
    succeeded(mapping)
    assert states(staff_user) == {"VENDOR": State.HEALTHY}


def test_the_lag_since_the_last_successful_sync(staff_user, staff_client, midday):
    recent = make_mapping(name="RECENT")
    succeeded(recent, ago=timedelta(minutes=20))
    make_job(recent, status=SyncJob.Status.FAILED)  # a later failure is no success
    behind = make_mapping(name="BEHIND")
    succeeded(behind, ago=timedelta(hours=3, minutes=5))
    queued = make_job(behind, status=SyncJob.Status.QUEUED, finished_at=None)

    now = timezone.now()
    rows = {m.mapping.name: m for m in overview_for(staff_user, now=now).mappings}
    assert rows["RECENT"].lag == pytest.approx(timedelta(minutes=20), abs=timedelta(seconds=30))
    assert rows["BEHIND"].lag == pytest.approx(
        timedelta(hours=3, minutes=5), abs=timedelta(seconds=30)
    )
    assert not rows["RECENT"].is_late and rows["BEHIND"].is_late
    assert rows["BEHIND"].lag > LATE_AFTER
    # The state follows the last finished job, not one still queued.
    assert rows["BEHIND"].last_job.pk != queued.pk

    html = page(staff_client)
    assert re.search(r'class="nowrap lag"[^>]*>20\xa0minutes<', row_of(html, recent))
    assert re.search(
        r'class="nowrap lag late"[^>]*>3\xa0hours, 5\xa0minutes<', row_of(html, behind)
    )
    assert "oldest last successful sync" in html


VALIDATION_RECORDS = 50


def test_open_problems_by_severity(staff_user, staff_client):
    mapping = make_mapping(name="CUSTOMER")
    # Whole jobs failed on their setup: the mapping stops there.
    for category, message in ((Category.INTEGRATION_USER, "User disabled."),
                              (Category.CONNECTION, "Timeout.")):  # fmt: skip
        make_error(mapping=mapping, category=category, message=message, source_record_id="")
    for _ in range(3):
        make_error(mapping=mapping, category=Category.CONFLICT, message="Changed in both.")
    many = [
        make_error(mapping=mapping, category=Category.VALIDATION, message="Phone too long.")
        for _ in range(VALIDATION_RECORDS)
    ]
    resolved = make_error(mapping=mapping, category=Category.CONFLICT, message="Other conflict.")
    services.set_group_status(
        ErrorGroup.objects.get(pk=resolved.group_id), Status.RESOLVED, staff_user
    )

    [row] = overview_for(staff_user).mappings
    assert [(c.severity, c.problems, c.records) for c in row.problems] == [
        (Severity.BLOCKING, 2, 0),
        (Severity.RECORDS, 2, VALIDATION_RECORDS + 3),
    ]
    # The same severity as the Problems page sorts by.
    problem = ErrorGroup.objects.get(pk=many[0].group_id)
    assert severity_of(problem) == problem.severity_level == Severity.RECORDS
    cell = row_of(page(staff_client), mapping)
    listed = re.findall(
        r'<li data-severity="(\w+)"><span[^>]*>([^<]+)</span>: <a [^>]*>([^<]+)</a>', cell
    )
    assert listed == [
        ("blocking", "Blocking", "2 problems"),
        ("records", "Records", "2 problems"),
    ]
    assert f"({VALIDATION_RECORDS + 3} records)" in cell


def new_and_resolved(overview) -> dict:
    return {d.day: (d.new, d.resolved) for d in overview.days if d.new or d.resolved}


def test_the_last_30_days_of_new_and_resolved_entries(staff_user, staff_client, midday):
    today = midday.date()
    mapping = make_mapping()
    ages = {0: 2, 1: 1, 5: 3, DAYS - 1: 1, DAYS: 4}  # days ago: entries (30 days ago is out)
    entries = {
        age: [
            make_error(mapping=mapping, message=f"Refused {age}", age=timedelta(days=age))
            for _ in range(n)
        ]
        for age, n in ages.items()
    }
    with time_machine.travel(midday - timedelta(days=3), tick=False):
        services.set_status(
            SyncError.objects.filter(pk__in=[e.pk for e in entries[5][:2]]), "resolved", None
        )
    services.set_status(SyncError.objects.filter(pk=entries[DAYS][0].pk), "resolved", staff_user)
    services.set_status(SyncError.objects.filter(pk=entries[1][0].pk), "ignored", staff_user)

    overview = overview_for(staff_user)
    assert len(overview.days) == DAYS
    assert overview.days[0].day == today - timedelta(days=DAYS - 1)
    assert overview.days[-1].day == today
    assert new_and_resolved(overview) == {
        today: (2, 1),
        today - timedelta(days=1): (1, 0),
        today - timedelta(days=3): (0, 2),
        today - timedelta(days=5): (3, 0),
        today - timedelta(days=DAYS - 1): (1, 0),
    }
    assert (overview.new, overview.resolved) == (7, 3)

    html = page(staff_client)
    five = re.search(
        rf'<tr data-day="{today - timedelta(days=5):%Y-%m-%d}">.*?</tr>', html, re.S
    ).group(0)
    assert 'data-figure="new">3<' in five and 'data-figure="resolved">0<' in five
    assert f"{7} entries came and 3 were resolved" in html
    # The chart: one bar of each kind per day, with a title and a description.
    assert html.count('<rect class="new"') == DAYS
    assert html.count('<rect class="resolved"') == DAYS
    assert 'aria-labelledby="chart-title chart-desc"' in html
    assert f"{today - timedelta(days=5):%Y-%m-%d}: 3 new" in html


def test_changes_from_the_audit_log_are_marked_on_their_days(
    admin_client, superuser, staff_user, midday
):
    mapping = make_mapping(name="CUSTOMER")
    connection = mapping.connection
    today = midday.date()
    with time_machine.travel(midday - timedelta(days=4), tick=False):
        url = reverse("admin:sync_tablemapping_change", args=[mapping.pk])
        data = form_data(admin_client.get(url))
        data["source_filter"] = "city eq 'Oslo'"
        assert admin_client.post(url, data).status_code == 302
    with time_machine.travel(midday - timedelta(days=2), tick=False):
        url = reverse("admin:sync_connection_change", args=[connection.pk])
        data = form_data(admin_client.get(url))
        data.update(destination_secret="a-new-client-secret")
        assert admin_client.post(url, data).status_code == 302
        data = form_data(admin_client.get(url))
        data.update(name="Production EU")
        assert admin_client.post(url, data).status_code == 302
    make_error(mapping=mapping, age=timedelta(days=9))
    services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.CONSOLE, user=staff_user)
    with time_machine.travel(midday - timedelta(days=DAYS + 1), tick=False):
        services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.CONSOLE, user=staff_user)

    overview = overview_for(staff_user)
    marked = {d.day: [c.kind for c in d.changes] for d in overview.days if d.changes}
    assert marked == {
        today - timedelta(days=4): ["mapping"],
        today - timedelta(days=2): ["connection", "credentials"],
        today: ["cleanup"],
    }
    assert [c.label for c in overview.changes] == [
        "Entries deleted",
        "Connection changed",
        "Sign-in changed",
        "Table mapping changed",
    ]

    html = page(admin_client)
    for day in marked:
        assert f'<g class="mark" data-day="{day:%Y-%m-%d}">' in html
    assert html.count('<g class="mark"') == 3
    assert "Delete Entries Older than 7 Days: 1 entries" in html
    assert f"Changed connection {connection.name}: destination_secret" in html
    assert "a-new-client-secret" not in html


def test_a_sync_user_sees_coupled_record_problems_and_no_audit_log(
    staff_user, sync_user, sync_user_client, midday
):
    mapping = make_mapping(name="CUSTOMER")
    make_error(mapping=mapping, category=Category.PERMISSION, message="No privilege.")
    make_error(mapping=mapping, category=Category.CONNECTION, message="Timeout.")
    make_error(mapping=mapping, category=Category.CONFLICT, message="Changed in both.")
    make_error(mapping=mapping, category=Category.CONFLICT, message="Changed in both.")
    make_error(integration="Webshop", category=Category.AUTHENTICATION, message="Signed out.")
    services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.CONSOLE, user=staff_user)

    admin_view = overview_for(staff_user)
    user_view = overview_for(sync_user)
    assert [(c.severity, c.problems) for c in user_view.mappings[0].problems] == [
        (Severity.RECORDS, 1)
    ]
    assert user_view.mappings[0].setup_problems_hidden == 2
    assert user_view.setup_problems_hidden == 3  # another integration's too
    assert not user_view.integrations and admin_view.integrations
    assert (user_view.new, admin_view.new) == (2, 5)
    assert admin_view.changes and not user_view.changes

    html = page(sync_user_client)
    assert "3 open setup or connection problems are left to administrators" in html
    assert "2 setup problems for administrators" in row_of(html, mapping)
    assert "Stops the mapping" not in html and "Temporary" not in html
    assert '<g class="mark"' not in html and "Changes that may explain a rise" not in html
    assert reverse("audit:events") not in html
    assert reverse("sync:connection_health", args=[mapping.connection_id]) not in html


def test_problems_of_other_integrations_are_listed_apart(staff_client):
    make_error(integration="Webshop", category=Category.VALIDATION, message="Bad address.")
    html = page(staff_client)
    assert "Sent by other integrations" in html
    assert "/errors/groups/?integration=Webshop&amp;status=open" in html


def test_hostile_names_are_shown_as_text(staff_user, admin_client, midday):
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    connection = make_connection(name=hostile)
    mapping = make_mapping(connection, name=hostile[:50], source_entity=hostile)
    breaker.pause(mapping, hostile, None)
    make_error(mapping=mapping, integration="", message=hostile)
    make_error(integration=hostile[:100], message=hostile)
    url = reverse("admin:sync_tablemapping_change", args=[mapping.pk])
    data = form_data(admin_client.get(url))
    data["source_filter"] = hostile
    assert admin_client.post(url, data).status_code == 302

    html = page(admin_client)
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # In the mark's title and the list of changes alike.
    assert html.count("&lt;img src=x onerror=alert(2)&gt;") >= 4


def test_a_real_job_failing_for_its_setup_pauses_the_mapping_on_the_overview(demo_apps, staff_user):
    from demo.models import CrmSystemUser

    demo_apps.connection.mappings.exclude(name="CUSTOMER").update(is_enabled=False)
    assert demo_apps.run("CUSTOMER", SyncJob.Kind.FULL).status == SyncJob.Status.SUCCEEDED
    before = {m.mapping.name: m for m in overview_for(staff_user).mappings}["CUSTOMER"]
    assert before.last_success is not None
    assert before.state in (State.HEALTHY, State.FAILING)

    user = CrmSystemUser.objects.get(domain_name=demo_apps.connection.destination_username)
    user.roles.clear()
    for _ in range(breaker.SETUP_FAILURES_BEFORE_PAUSE):
        demo_apps.run("CUSTOMER")
    after = {m.mapping.name: m for m in overview_for(staff_user).mappings}["CUSTOMER"]
    assert after.state == State.PAUSED
    assert after.last_success == before.last_success
    assert after.problems[0].severity == Severity.BLOCKING


def test_the_scale_of_the_chart_is_round_and_holds_the_peak():
    assert [scale_top(n) for n in (0, 1, 2, 7, 22, 45, 99, 101, 1_234, 70_000)] == [
        1,
        1,
        2,
        8,
        30,
        50,
        100,
        200,
        2_000,
        80_000,
    ]
