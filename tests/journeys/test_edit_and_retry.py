"""Edit, then retry: the ERP refuses a phone number typed into the CRM with its extension (too
long for its 30 characters). On the entry's page someone types the number the ERP should
hold and retries: the ERP gets that number in one write, and the entry and its problem close
by themselves. The edit is kept on the entry; a later edit supersedes it, a later change at
the source makes it lapse, and a later sync never brings the refused number back."""

import httpx
import pytest
from django.urls import reverse

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import ErpCustomer
from errors.models import Category, SyncError
from sync.connectors import odata
from sync.models import RecordEdit, SyncJob
from tests.demo_apps import IN_PROCESS_URL
from triage.edits import edit_and_retry

from .closing import assert_closed_by, run_queued_jobs

# The demo apps lack SEK in the CRM: a scheduled run would try its customer again too.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]
LONG = "+45 3333 4444 ext. 5555 (reception)"
EDITED = "+45 3333 4444"


class RecordedTransport(httpx.BaseTransport):
    """Passes every request on to the demo apps, keeping what was asked of the ERP."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner
        self.erp_writes: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if "/demo/erp/" in request.url.path and request.method in ("POST", "PATCH"):
            self.erp_writes.append(request.content.decode(errors="replace"))
        return self.inner.handle_request(request)

    def writes_of(self, value: str) -> int:
        """The writes that sent exactly this value (as a JSON string)."""
        return sum(f'"{value}"' in body for body in self.erp_writes)


@pytest.fixture
def erp_requests(demo_apps, monkeypatch) -> RecordedTransport:
    recorder = RecordedTransport(odata.TRANSPORTS[IN_PROCESS_URL])
    monkeypatch.setitem(odata.TRANSPORTS, IN_PROCESS_URL, recorder)
    return recorder


@pytest.fixture
def coupled(demo_apps) -> Coupling:
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    return Coupling.objects.get(mapping__name="CUSTOMER", source_record_id=str(customer.pk))


def type_in_the_crm(demo_apps, coupling: Coupling, **values) -> None:
    with demo_apps.crm() as crm:
        answer = crm.patch(f"accounts({coupling.destination_record_id})", json=values)
    assert answer.status_code == 204, answer.text


@pytest.fixture
def refused(coupled, demo_apps) -> SyncError:
    type_in_the_crm(demo_apps, coupled, telephone1=LONG)
    entry = SyncError.objects.get(job=demo_apps.run("CUSTOMER"), coupling=coupled)
    assert entry.category == Category.VALIDATION
    assert entry.message == "Phone No. must not exceed 30 characters."
    return entry


def erp_phone(coupling: Coupling) -> str:
    return ErpCustomer.objects.get(pk=coupling.source_record_id).phone_number


def form_of(page: str) -> dict[str, str]:
    """The values the entry's Edit and retry form shows, as a browser would post them."""
    form = page.split('id="edit-form"')[1].split("</form>")[0]
    fields = {}
    for part in form.split('name="value_')[1:]:
        name = part.split('"')[0]
        value = part.split('value="')[1].split('"')[0] if 'value="' in part.split(">")[0] else ""
        fields[f"value_{name}"] = value
    return fields


def test_the_phone_edited_on_the_entry_page_is_written_once(
    refused, coupled, demo_apps, staff_client, staff_user, celery_queue, erp_requests
):
    page = staff_client.get(refused.get_absolute_url()).content.decode()
    assert "Edit and retry" in page
    assert "text, at most 30 characters" in page
    shown = form_of(page)
    assert shown["value_phoneNumber"] == LONG
    original = erp_phone(coupled)

    answer = staff_client.post(
        reverse("errors:edit", args=[refused.pk]),
        {**shown, "value_phoneNumber": EDITED},
        follow=True,
    )
    assert "Retrying with your values: queued as job #" in answer.content.decode()
    (job,) = run_queued_jobs()

    assert (job.trigger, job.failed) == (SyncJob.Trigger.RETRY, 0)
    assert erp_phone(coupled) == EDITED
    assert erp_requests.writes_of(EDITED) == 1
    assert erp_requests.writes_of(LONG) == 0 and erp_requests.writes_of(original) == 0
    assert_closed_by(refused, job)
    edit = RecordEdit.objects.get(entry_id=refused.pk)
    assert (edit.state, edit.written_in_job, edit.made_by) == ("written", job.pk, staff_user)
    assert (edit.before, edit.after) == ({"phoneNumber": LONG}, {"phoneNumber": EDITED})
    assert edit.based_on == {"telephone1": LONG}
    event = AuditEvent.objects.get(action=AuditEvent.Action.ENTRY_VALUES_EDITED)
    assert (event.actor, event.object_id) == (staff_user, str(refused.pk))
    assert event.details["before"] == {"phoneNumber": LONG}
    assert event.details["after"] == {"phoneNumber": EDITED}
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.RECORD_EDITS_SETTLED, actor_label=f"sync engine (job #{job.pk})"
    ).exists()
    page = staff_client.get(refused.get_absolute_url()).content.decode()
    assert 'id="record-edits"' in page and f"in job #{job.pk}" in page
    assert 'id="edit-form"' not in page  # resolved: nothing left to edit


def test_a_later_sync_never_brings_the_refused_value_back(
    refused, coupled, demo_apps, staff_user, celery_queue, erp_requests
):
    edit_and_retry(refused, {"phoneNumber": EDITED}, user=staff_user)
    run_queued_jobs()
    type_in_the_crm(demo_apps, coupled, address1_city="Odense")  # another field changes

    job = demo_apps.run("CUSTOMER")

    assert (job.failed, job.modified) == (0, 1)
    customer = ErpCustomer.objects.get(pk=coupled.source_record_id)
    assert (customer.city, customer.phone_number) == ("Odense", EDITED)
    assert erp_requests.writes_of(LONG) == 0
    assert RecordEdit.objects.get(entry_id=refused.pk).state == RecordEdit.State.WRITTEN


def test_a_later_edit_supersedes_and_carries_the_earlier_on(
    refused, coupled, staff_user, sync_user, celery_queue, erp_requests
):
    first = edit_and_retry(refused, {"phoneNumber": "+45 1111 2222"}, user=staff_user)
    second = edit_and_retry(refused, {"phoneNumber": EDITED}, user=sync_user)

    assert first.job is not None and second.job is None  # the first retry is still queued
    assert f"already queued (#{first.job.pk})" in second.message
    assert second.superseded == [first.edit.pk]
    (job,) = run_queued_jobs()
    assert erp_phone(coupled) == EDITED
    assert erp_requests.writes_of(EDITED) == 1 and erp_requests.writes_of("+45 1111 2222") == 0
    first.edit.refresh_from_db()
    second.edit.refresh_from_db()
    assert (first.edit.state, second.edit.state) == ("superseded", "written")
    assert second.edit.before == {"phoneNumber": LONG}  # what the engine computes, not an edit
    assert_closed_by(refused, job)


def test_a_change_at_the_source_wins_and_the_edit_lapses(
    refused, coupled, demo_apps, staff_user, celery_queue, erp_requests
):
    edit_and_retry(refused, {"phoneNumber": EDITED}, user=staff_user)
    type_in_the_crm(demo_apps, coupled, telephone1="+45 7070 8080")  # fixed where it was typed

    (job,) = run_queued_jobs()

    assert erp_phone(coupled) == "+45 7070 8080"
    assert erp_requests.writes_of(EDITED) == 0
    assert RecordEdit.objects.get(entry_id=refused.pk).state == RecordEdit.State.LAPSED
    assert_closed_by(refused, job)


def test_a_new_record_is_created_once_with_the_edited_value(
    demo_apps, staff_user, celery_queue, erp_requests
):
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    with demo_apps.crm() as crm:
        answer = crm.post(
            "accounts", json={"name": "Nordlys AS", "accountnumber": "N-1", "telephone1": LONG}
        )
    assert answer.status_code == 204, answer.text
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    entry = SyncError.objects.get(job=job, message__startswith="Phone No.")
    assert entry.coupling is None and entry.sent_values["kind"] == "create"

    outcome = edit_and_retry(entry, {"phoneNumber": EDITED}, user=staff_user)
    erp_requests.erp_writes.clear()  # the full job's refused create
    (job,) = run_queued_jobs()

    assert (job.inserted, job.failed) == (1, 0)
    coupling = Coupling.objects.get(
        mapping__name="CUSTOMER", destination_record_id=entry.source_record_id
    )
    assert erp_phone(coupling) == EDITED
    assert erp_requests.writes_of(EDITED) == 1 and erp_requests.writes_of(LONG) == 0
    outcome.edit.refresh_from_db()
    assert (outcome.edit.state, outcome.edit.written_in_job) == ("written", job.pk)
    assert_closed_by(entry, job)
