"""A business app that misbehaves (never answers, answers 500s, an HTML error page, something
that is not JSON, JSON of the wrong shape, an answer cut off) is played by a real HTTP proxy
in front of the demo apps: every job finishes, each record it could not write is an entry
that says why, the calls are retried a bounded number of times, and a call that gets no
answer gives up after the connection's timeout."""

import pytest

from couplings.models import Coupling
from demo.models import CrmAccount
from errors.models import Category, Status, SyncError
from sync.models import SyncJob

from .fixtures_apps import FAULT_BODIES, FAULTS, FaultProxy, point_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.over_http]

MAX_RETRIES = 2
ATTEMPTS = MAX_RETRIES + 1
ACCOUNTS = r"/crm/api/data/v9\.2/accounts$"
CREATE_MULTIPLE = r"/accounts/Microsoft\.Dynamics\.CRM\.CreateMultiple$"
CRM = "Dynamics 365 Sales"
# What the entry says for each fault, and whether it is worth trying again (a connection
# error) or not (the app answered something the console cannot use).
SAYS = {
    "server_error": ("An unexpected error occurred.", True),
    "html_error_page": ("502 Bad Gateway", True),
    "not_json": (f"{CRM} answered with something that is not JSON.", True),
    "truncated_json": (f"{CRM} answered with something that is not JSON.", True),
    "json_list": (f"{CRM} answered with unexpected JSON.", True),
    "wrong_shape": (f"{CRM} answered without a list of records.", False),
    "cut_off": (f"The connection to {CRM} broke off before its answer was complete.", True),
    "never_answers": (f"{CRM} did not answer in time: the operation has timed out.", True),
}
READ_FAULTS = [fault for fault in FAULTS if fault != "held"]


@pytest.fixture
def proxy(demo_apps):
    """The demo apps behind a fault proxy; calls time out after a second (far more than
    the twelve records of the demo apps take, even on a busy machine)."""
    proxy = FaultProxy(demo_apps.base_url)
    point_at(
        demo_apps.connection,
        proxy,
        demo_apps.base_url,
        timeout=1,
        max_retries=MAX_RETRIES,
        backoff_seconds=0.01,
        max_retry_after=0.05,
    )
    yield proxy
    proxy.stop()


def test_every_fault_has_what_the_entry_says():
    assert set(SAYS) == set(READ_FAULTS) and set(FAULT_BODIES) <= set(SAYS)
    assert set(LOST_ANSWERS) <= set(READ_FAULTS)


@pytest.mark.parametrize("fault", READ_FAULTS)
def test_a_read_that_keeps_failing_fails_the_job_with_an_entry_per_record(demo_apps, proxy, fault):
    proxy.fault(fault, ACCOUNTS, method="GET")
    accounts_before = CrmAccount.objects.count()

    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)

    message, transient = SAYS[fault]
    assert job.status == SyncJob.Status.FAILED and job.finished_at is not None
    assert job.message.startswith(message)
    # Each customer read from the ERP could not be looked up in the CRM: one entry each.
    records = SyncError.objects.filter(job=job).exclude(source_record_id="")
    assert records.count() == job.failed == 12
    assert set(records.values_list("message", "status")) == {(message, Status.OPEN)}
    category = Category.CONNECTION if transient else Category.OTHER
    assert set(records.values_list("category", flat=True)) == {category}
    if transient:
        # The pass from the CRM could not read it either: the job is tried again later, and
        # logged only when that keeps failing.
        assert "This looks temporary: tried again in" in job.message
        assert not SyncError.objects.filter(job=job, source_record_id="").exists()
    else:
        (whole_job,) = SyncError.objects.filter(job=job, source_record_id="")
        assert whole_job.message == message
    # Two calls (the look-up, then the read of the CRM's changes), each tried at most
    # MAX_RETRIES more times when worth it, once otherwise.
    assert proxy.count(ACCOUNTS, "GET") == 2 * (ATTEMPTS if transient else 1)
    assert CrmAccount.objects.count() == accounts_before


# One fault of each way an answer can be lost: an error status, a body that is not JSON, JSON
# without the ids, an answer cut off, and none in time (the others take these paths too).
LOST_ANSWERS = ["server_error", "not_json", "wrong_shape", "cut_off", "never_answers"]


@pytest.mark.parametrize("fault", LOST_ANSWERS)
def test_a_lost_answer_to_a_bulk_create_is_never_sent_again_and_the_next_run_couples(
    demo_apps, proxy, fault
):
    # The CRM creates the accounts, then its answer is lost or garbled on the way back.
    proxy.fault(fault, CREATE_MULTIPLE, method="POST", after_success=True)

    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)

    assert job.status == SyncJob.Status.SUCCEEDED and job.failed == 11
    assert job.message == "11 records failed."
    # A create is never sent again after the app may have acted on it: no duplicates.
    creates = proxy.count(CREATE_MULTIPLE, "POST")
    assert creates == 1  # the customer in SEK is not sent: the CRM has no SEK
    assert proxy.count(ACCOUNTS, "POST") == 0
    assert_no_duplicates()
    # Each record of the batch failed with the lost answer; the customer in SEK, for its
    # currency, before anything was sent.
    entries = SyncError.objects.filter(job=job)
    lost = entries.exclude(category=Category.CURRENCY)
    assert lost.count() == 10 and entries.count() == 11
    assert {e.category for e in lost} == {Category.CONNECTION}
    assert {e.message for e in lost} == {
        SAYS[fault][0]
        if fault != "wrong_shape"
        else f"{CRM} answered CreateMultiple without the ids created."
    }

    # The pass from the CRM found the accounts created by their number and coupled them:
    # their customers' entries are settled; the one whose currency is missing stays open.
    resolved = lost.filter(status=Status.RESOLVED)
    assert resolved.count() == 10 and entries.filter(status=Status.OPEN).count() == 1
    assert {e.status_note for e in resolved} == {
        f"Resolved by itself: the record synchronized in job #{job.pk}."
    }
    assert all(e.coupling_id is not None for e in resolved)

    # The next run has nothing left to create, and says why the last one was refused.
    proxy.clear()
    again = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)

    assert again.status == SyncJob.Status.SUCCEEDED
    assert SyncError.objects.get(job=again).category == Category.CURRENCY
    assert_no_duplicates()
    # Every account in the CRM is coupled to its customer, once.
    assert Coupling.objects.filter(mapping=job.mapping).count() == CrmAccount.objects.count()


def assert_no_duplicates() -> None:
    numbers = list(CrmAccount.objects.values_list("account_number", flat=True))
    assert len(numbers) == len(set(numbers)) == 11
    for side in ("source_record_id", "destination_record_id"):
        ids = list(Coupling.objects.values_list(side, flat=True))
        assert len(ids) == len(set(ids))


def test_without_a_timeout_on_the_connection_sync_http_timeout_bounds_each_call(
    demo_apps, settings
):
    settings.SYNC_HTTP_TIMEOUT = 1
    proxy = FaultProxy(demo_apps.base_url)
    try:
        point_at(demo_apps.connection, proxy, demo_apps.base_url)  # no timeout of its own
        assert "timeout" not in demo_apps.connection.destination_settings
        proxy.fault("never_answers", r"^/demo/crm/")

        job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    finally:
        proxy.stop()

    assert job.status == SyncJob.Status.FAILED
    assert job.message.startswith(SAYS["never_answers"][0])
    # The sign-in check, tried as often as the connection allows (start_demo_apps: 2 retries).
    assert proxy.requests.count(("GET", "/demo/crm/api/data/v9.2/WhoAmI")) == 3
    assert proxy.count(r"^/demo/crm/") == 3
