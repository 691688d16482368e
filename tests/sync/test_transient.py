"""Transient failures of one record (no connection, timeout, 5xx after the connector's own
retries; an app that throttles pauses the job instead) stay out of triage: the record is tried
again at later runs, backing off, and becomes an entry only when it keeps failing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors import policies
from errors.models import Category, Status, SyncError
from sync import engine
from sync.models import SyncJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]


@pytest.fixture
def one_record_changed(demo_apps, monkeypatch):
    """CUSTOMER synchronized, then C00030 changed in the ERP; the CRM side answers each
    call once, without the connector's retries, so one fault fails one record."""
    monkeypatch.setattr(engine, "WATERMARK_OVERLAP", timedelta(0))
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    demo_apps.connection.destination_settings["max_retries"] = 0
    demo_apps.connection.save()
    customer = ErpCustomer.objects.get(number="C00030")
    customer.city = "Aalborg"
    customer.save()
    return Coupling.objects.get(source_record_id=str(customer.pk))


def open_entries_of(coupling: Coupling):
    return SyncError.objects.filter(coupling=coupling, status=Status.OPEN)


def test_one_transient_failure_is_no_entry_and_the_record_goes_through_later(
    demo_apps, one_record_changed, staff_client
):
    coupling = one_record_changed
    demo_apps.fault("crm", "server_error", remaining=1, entity="accounts")

    job = demo_apps.run("CUSTOMER")

    assert (job.status, job.failed, job.retrying) == (SyncJob.Status.SUCCEEDED, 0, 1)
    assert "1 records failed transiently and are tried again later" in job.message
    assert not open_entries_of(coupling).exists()
    page = staff_client.get(job.get_absolute_url()).content.decode()
    assert "1 record failed transiently and is tried again at a later run" in page
    coupling.refresh_from_db()
    assert coupling.last_result_to_destination == Coupling.Result.FAILURE
    assert (coupling.transient_failure_count, coupling.failure_count) == (1, 0)
    assert coupling.retry_not_before > timezone.now() + timedelta(seconds=30)

    # Backing off: a run right after leaves it alone.
    assert demo_apps.run("CUSTOMER").records_read == 0
    # Later, the run takes it again, and it goes through.
    Coupling.objects.filter(pk=coupling.pk).update(retry_not_before=timezone.now())
    later = demo_apps.run("CUSTOMER")
    assert (later.modified, later.failed, later.retrying) == (1, 0, 0)
    coupling.refresh_from_db()
    assert coupling.last_result_to_destination == Coupling.Result.SUCCESS
    assert (coupling.transient_failure_count, coupling.retry_not_before) == (0, None)
    assert CrmAccount.objects.get(pk=coupling.destination_record_id).city == "Aalborg"
    assert not SyncError.objects.filter(coupling=coupling).exists()


def test_the_back_off_doubles_at_each_failure_in_a_row(settings):
    settings.SYNC_RETRY_BACKOFF_SECONDS = 60
    delays = [engine.record_retry_delay(n).total_seconds() for n in (1, 2, 3)]
    assert delays == [60, 120, 240]
    assert engine.record_retry_delay(30) == engine.MAX_RECORD_RETRY_DELAY


def test_a_transient_failure_that_keeps_coming_becomes_an_open_connection_entry(
    demo_apps, one_record_changed, settings
):
    settings.SYNC_RETRY_BACKOFF_SECONDS = 0  # each run tries it again
    coupling = one_record_changed
    jobs = []
    for _ in range(3):
        demo_apps.fault("crm", "server_error", remaining=1, entity="accounts")
        jobs.append(demo_apps.run("CUSTOMER"))

    assert [(j.failed, j.retrying) for j in jobs] == [(0, 1), (0, 1), (1, 0)]
    entry = open_entries_of(coupling).get()
    assert entry.job == jobs[-1] and entry.category == Category.CONNECTION
    assert "An unexpected error occurred" in entry.message
    assert "It failed in 3 runs in a row." in entry.message
    coupling.refresh_from_db()
    # Not the record's fault: it is not skipped, and the next run tries it again.
    assert (coupling.is_skipped, coupling.failure_count) == (False, 0)
    fixed = demo_apps.run("CUSTOMER")
    assert fixed.modified == 1
    entry.refresh_from_db()
    assert entry.status == Status.RESOLVED


def test_a_mapping_s_first_delay_doubles_at_each_failure(settings):
    settings.SYNC_RETRY_BACKOFF_SECONDS = 60
    delays = [engine.record_retry_delay(n, 600).total_seconds() for n in (1, 2, 3)]
    assert delays == [600, 1200, 2400]
    assert engine.record_retry_delay(1, 0) == timedelta(0)
    assert engine.record_retry_delay(1000, 600) == engine.MAX_RECORD_RETRY_DELAY


@pytest.mark.parametrize("retries", [0, 4])
def test_a_mapping_s_automatic_retries_come_before_the_entry(
    demo_apps, one_record_changed, retries
):
    mapping = demo_apps.mapping("CUSTOMER")
    mapping.transient_retries = retries
    mapping.retry_delay_seconds = 0  # each run tries it again
    mapping.save()
    coupling = one_record_changed
    jobs = []
    for _ in range(retries + 1):
        demo_apps.fault("crm", "server_error", remaining=1, entity="accounts")
        jobs.append(demo_apps.run("CUSTOMER"))

    assert [(j.failed, j.retrying) for j in jobs] == [(0, 1)] * retries + [(1, 0)]
    entry = open_entries_of(coupling).get()
    assert entry.category == Category.CONNECTION
    assert f"It failed in {retries + 1} runs in a row." in entry.message
    fixed = demo_apps.run("CUSTOMER")
    assert fixed.modified == 1


def test_a_mapping_s_first_delay_spaces_the_retries(demo_apps, one_record_changed, settings):
    settings.SYNC_RETRY_BACKOFF_SECONDS = 0
    mapping = demo_apps.mapping("CUSTOMER")
    mapping.retry_delay_seconds = 600
    mapping.save()
    coupling = one_record_changed
    waits = []
    for _ in range(2):
        demo_apps.fault("crm", "server_error", remaining=1, entity="accounts")
        before = timezone.now()
        demo_apps.run("CUSTOMER")
        coupling.refresh_from_db()
        waits.append((coupling.retry_not_before - before).total_seconds())
        # A run right after leaves it alone; once the wait is over, a run takes it.
        assert demo_apps.run("CUSTOMER").records_read == 0
        Coupling.objects.filter(pk=coupling.pk).update(retry_not_before=timezone.now())
    assert 600 <= waits[0] < 630
    assert 1200 <= waits[1] < 1230


def test_a_problem_s_own_retries_and_wait_win_over_the_mapping_s(
    demo_apps, one_record_changed, staff_user
):
    """The problem of a transient failure, once it exists, may set its own retry policy: more
    retries before its next entry, and a longer first wait."""
    mapping = demo_apps.mapping("CUSTOMER")
    mapping.transient_retries, mapping.retry_delay_seconds = 0, 0
    mapping.save()
    coupling = one_record_changed
    demo_apps.fault("crm", "server_error", remaining=1, entity="accounts")
    assert demo_apps.run("CUSTOMER").failed == 1  # no retries: an entry at once
    problem = open_entries_of(coupling).get().group
    problem = policies.set_retries(problem, staff_user, 3, 900)
    event = AuditEvent.objects.get(action=AuditEvent.Action.PROBLEM_POLICY_CHANGED)
    assert (
        event.summary == "Retry policy of the problem: 3 automatic retries, the first after 900 s"
    )
    assert event.details == {
        "transient_retries": 3,
        "retry_delay_seconds": 900,
        "previous": {"transient_retries": None, "retry_delay_seconds": None},
    }

    Coupling.objects.filter(pk=coupling.pk).update(retry_not_before=None)
    demo_apps.fault("crm", "server_error", remaining=1, entity="accounts")
    job = demo_apps.run("CUSTOMER")
    # The second failure in a row is within the problem's three retries: no new entry, and
    # the next try waits the problem's 900 s (doubled, the second failure in a row).
    assert (job.failed, job.retrying) == (0, 1)
    coupling.refresh_from_db()
    wait = coupling.retry_not_before - timezone.now()
    assert timedelta(seconds=1700) < wait <= timedelta(seconds=1800)
    assert open_entries_of(coupling).count() == 1


@pytest.mark.parametrize(
    ("retries", "delay", "refusal"),
    [(11, None, "from 0 to 10"), (-1, None, "from 0 to 10"), (None, 0, "1 to 21600")],
)
def test_the_service_refuses_retries_out_of_range(
    demo_apps, one_record_changed, staff_user, retries, delay, refusal
):
    demo_apps.fault("crm", "server_error", remaining=1, entity="accounts")
    mapping = demo_apps.mapping("CUSTOMER")
    mapping.transient_retries = 0
    mapping.save()
    demo_apps.run("CUSTOMER")
    problem = open_entries_of(one_record_changed).get().group
    with pytest.raises(policies.PolicyRefused, match=refusal):
        policies.set_retries(problem, staff_user, retries, delay)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PROBLEM_POLICY_CHANGED).exists()
