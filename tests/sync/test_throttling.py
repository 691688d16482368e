"""An app that asks to slow down (Dataverse's service protection limits, Business Central's
rate limits, 503, 504 and 408) is waited for as it says, within one job's limits; beyond
them the job pauses and a job that goes on with it starts when the app said. No record
fails for it."""

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.core.signals import request_started

from demo.models import CrmAccount, DemoFault, ErpCustomer
from errors.models import SyncError
from sync import engine
from sync.connectors import Throttled, connector_for
from sync.connectors.pacing import MAX_RESUME_DELAY, backoff_delay, retry_after_seconds
from sync.models import SyncJob
from sync.services import request_sync
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db
FULL = SyncJob.Kind.FULL


def test_retry_after_is_read_in_seconds_or_as_a_date():
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0
    for odd in ("", "soon", "²", "-5", "1.5"):
        assert retry_after_seconds(odd) is None


def test_without_retry_after_the_waits_double_with_jitter_up_to_the_longest_wait():
    for attempt in range(1, 6):
        base = 0.5 * 2 ** (attempt - 1)
        assert base <= backoff_delay(attempt, 0.5, 60) <= base * 1.5
    assert backoff_delay(12, 0.5, 60) == 60
    waits = {backoff_delay(3, 0.5, 60) for _ in range(20)}
    assert len(waits) > 1  # jittered, so that clients held back together do not return at once


def test_dataverse_is_waited_for_as_long_as_its_retry_after_says(demo_apps):
    demo_apps.fault("crm", DemoFault.Mode.THROTTLE_CONCURRENCY, remaining=2, retry_after=1)
    connector = connector_for(
        demo_apps.connection, "destination", max_retry_after=5, throttle_budget=5
    )
    started = time.monotonic()
    assert connector.get("accounts", str(CrmAccount.objects.get().pk))
    assert time.monotonic() - started >= 2
    assert connector.pacer.waited == 2


@pytest.mark.parametrize(
    ("mode", "retry_after"),
    [
        (DemoFault.Mode.THROTTLE, None),  # Business Central's 429 need not say how long
        (DemoFault.Mode.UNAVAILABLE, None),
        (DemoFault.Mode.TIMEOUT, None),
        (DemoFault.Mode.REQUEST_TIMEOUT, None),
    ],
)
def test_business_central_is_backed_off_when_it_does_not_say_how_long(demo_apps, mode, retry_after):
    demo_apps.fault("erp", mode, remaining=2, retry_after=retry_after, delay=0)
    connector = connector_for(
        demo_apps.connection, "source", max_retries=0, backoff_seconds=0.05, throttle_budget=5
    )
    pages = list(connector.list_changes("customers", None))
    assert sum(len(page) for page in pages) == ErpCustomer.objects.count()
    # Two waits that double from 0.05 s, with jitter; max_retries does not stop them.
    assert 0.15 <= connector.pacer.waited <= 0.225


def test_a_wait_longer_than_one_may_be_pauses_the_job_at_once(demo_apps):
    fault = demo_apps.fault("crm", DemoFault.Mode.THROTTLE, retry_after=300)
    connector = connector_for(demo_apps.connection, "destination", max_retry_after=60)
    with pytest.raises(Throttled) as paused:
        connector.find("accounts", "accountnumber", "C00020")
    throttled = paused.value
    assert throttled.resume_after == 300 and throttled.transient
    assert "Dataverse's limit on the number of requests" in throttled.message
    assert "429 Too Many Requests" in throttled.message
    fault.refresh_from_db()
    assert fault.remaining is None and connector.pacer.waited == 0  # one request, no wait


def test_a_job_that_waited_its_budget_pauses(demo_apps):
    demo_apps.fault("crm", DemoFault.Mode.THROTTLE_EXECUTION_TIME, retry_after=1)
    connector = connector_for(
        demo_apps.connection, "destination", max_retry_after=1, throttle_budget=1.5
    )
    with pytest.raises(Throttled) as paused:
        connector.find("accounts", "accountnumber", "C00020")
    assert connector.pacer.waited == 1
    assert paused.value.resume_after == 1
    assert "combined execution time" in paused.value.message


def test_a_create_answered_too_late_is_not_sent_again_but_pauses_the_job(demo_apps):
    fault = demo_apps.fault("crm", DemoFault.Mode.TIMEOUT, remaining=2, entity="accounts", delay=0)
    connector = connector_for(demo_apps.connection, "destination", throttle_budget=5)
    with pytest.raises(Throttled):
        connector.create("accounts", {"name": "Tailspin Toys"})
    fault.refresh_from_db()
    assert fault.remaining == 1  # the app may have created it: one request only


def run_until_done(demo_apps, job: SyncJob, limit: int = 10) -> list[SyncJob]:
    """The job and the jobs that went on with it, run here as a worker runs them."""
    chain = [job]
    while job.throttled and job.successor is not None and len(chain) < limit:
        job = engine.run_job(job.successor.pk)
        chain.append(job)
    return chain


@pytest.mark.parametrize(
    ("app", "mode", "retry_after"),
    [
        ("crm", DemoFault.Mode.THROTTLE, 1),
        ("crm", DemoFault.Mode.THROTTLE_EXECUTION_TIME, 1),
        ("crm", DemoFault.Mode.THROTTLE_CONCURRENCY, 1),
        ("erp", DemoFault.Mode.THROTTLE, 1),
        ("erp", DemoFault.Mode.UNAVAILABLE, 1),
    ],
)
def test_a_job_facing_throttling_pauses_and_finishes_with_every_record_written(
    demo_apps, app, mode, retry_after
):
    ErpCustomer.objects.update(currency_code="EUR")  # every customer can be written
    demo_apps.fault(app, mode, remaining=3, retry_after=retry_after)

    chain = run_until_done(demo_apps, demo_apps.run("CUSTOMER", FULL))

    paused, last = chain[:-1], chain[-1]
    assert len(paused) == 3  # the app said to wait longer than a test's job waits
    for job in paused:
        assert (job.status, job.throttled, job.failed, job.retrying) == (
            SyncJob.Status.INTERRUPTED,
            True,
            0,
            0,
        )
        assert job.message.startswith("Paused: ")
        assert "No record failed." in job.message
        assert f"Job #{job.successor.pk} goes on with it in 1 second." in job.message
        assert job.successor_delay == 1
    assert (last.status, last.failed, last.throttled) == (SyncJob.Status.SUCCEEDED, 0, False)
    customers = set(ErpCustomer.objects.values_list("number", flat=True))
    assert set(CrmAccount.objects.values_list("account_number", flat=True)) == customers
    assert not SyncError.objects.exists()
    assert sum(job.failed + job.retrying for job in chain) == 0


def test_an_app_that_keeps_throttling_idle_jobs_counts_as_unavailable(demo_apps, monkeypatch):
    monkeypatch.setattr(engine, "THROTTLED_PAUSES_IN_A_ROW", 4)
    demo_apps.fault("crm", DemoFault.Mode.THROTTLE, entity="accounts", retry_after=1)

    chain = run_until_done(demo_apps, demo_apps.run("CUSTOMER", FULL))

    # More pauses in a row than a worker that dies may cost: the pauses go on all the same.
    assert [job.status for job in chain] == [SyncJob.Status.INTERRUPTED] * 3 + [
        SyncJob.Status.FAILED
    ]
    last = chain[-1]
    assert "kept Dynamics 365 Sales from answering for 4 jobs in a row" in last.message
    assert "tried again in" in last.message and last.retry_in
    # The first such failure is not logged yet: it may pass by itself.
    assert not SyncError.objects.exists()
    assert sum(job.failed for job in chain) == 0


def test_a_job_that_writes_between_pauses_is_not_taken_for_an_outage(demo_apps, monkeypatch):
    monkeypatch.setattr(engine, "THROTTLED_PAUSES_IN_A_ROW", 2)
    ErpCustomer.objects.update(currency_code="EUR")
    demo_apps.connection.destination_settings["batch_size"] = 1
    demo_apps.connection.save()
    creates: list[str] = []

    def throttle_every_third_create(sender, environ, **kwargs):
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/accounts"):
            creates.append(environ["PATH_INFO"])
            if len(creates) % 3 == 0:  # the app's limit is reached after this one
                DemoFault.objects.create(
                    app="crm", mode=DemoFault.Mode.THROTTLE, entity="accounts", remaining=1
                )

    request_started.connect(throttle_every_third_create)
    try:
        chain = run_until_done(demo_apps, demo_apps.run("CUSTOMER", FULL), limit=20)
    finally:
        request_started.disconnect(throttle_every_third_create)

    # Many more pauses in a row than an idle app is given: each one wrote records.
    assert len(chain) > 3
    assert all(job.inserted for job in chain[:-1])
    assert (chain[-1].status, sum(job.failed for job in chain)) == (SyncJob.Status.SUCCEEDED, 0)
    customers = set(ErpCustomer.objects.values_list("number", flat=True))
    assert set(CrmAccount.objects.values_list("account_number", flat=True)) == customers


def test_a_paused_job_is_not_taken_for_one_that_takes_its_worker_down(demo_apps):
    """After a pause, a job whose worker dies is still continued: only interruptions of that
    kind count towards the three in a row after which a job is no longer continued."""
    demo_apps.fault("crm", DemoFault.Mode.THROTTLE, remaining=2, retry_after=1)
    first = demo_apps.run("CUSTOMER", FULL)
    second = engine.run_job(first.successor.pk)
    assert first.throttled and second.throttled
    third = second.successor
    engine.interrupt(third, engine.WORKER_LOST)
    assert third.successor is not None


def test_a_reconciliation_that_is_throttled_pauses_too(demo_apps):
    demo_apps.fault("crm", DemoFault.Mode.THROTTLE, remaining=1, entity="accounts")
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.RECONCILE)
    assert (job.status, job.throttled) == (SyncJob.Status.INTERRUPTED, True)
    assert engine.run_job(job.successor.pk).status == SyncJob.Status.SUCCEEDED


def test_the_wait_before_the_job_goes_on_is_bounded():
    assert MAX_RESUME_DELAY <= 30 * 60 / 2  # well under the expiry of a queued job


@pytest.mark.worker
def test_a_worker_pauses_the_job_and_goes_on_with_it_when_the_app_said(demo_apps, celery_worker):
    ErpCustomer.objects.update(currency_code="EUR")
    demo_apps.fault("crm", DemoFault.Mode.THROTTLE, remaining=2, entity="accounts", retry_after=2)

    request_sync(demo_apps.mapping("CUSTOMER"), kind=FULL, trigger=SyncJob.Trigger.USER)

    def finished():
        jobs = list(SyncJob.objects.order_by("pk"))
        return jobs if jobs[-1].status == SyncJob.Status.SUCCEEDED else None

    chain = wait_until(finished, timeout=60, message=celery_worker.log_path.read_text())
    assert [job.throttled for job in chain] == [True, True, False]
    for paused, successor in zip(chain, chain[1:], strict=False):
        # Sent to the worker to start when the app said it may be called again.
        assert successor.started_at - paused.finished_at >= timedelta(seconds=1.9)
    customers = set(ErpCustomer.objects.values_list("number", flat=True))
    assert set(CrmAccount.objects.values_list("account_number", flat=True)) == customers
    assert not SyncError.objects.exists()
