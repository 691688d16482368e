"""GET and POST /api/v1/errors/<id>/edit/: the fields of a refused record to edit, with what
each app holds now, and the values to retry with."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import ErpCustomer
from errors.models import Category, SyncError
from sync.models import RecordEdit, SyncJob
from tests.factories import make_error

pytestmark = pytest.mark.django_db
LONG = "+45 3333 4444 ext. 5555 (reception)"


@pytest.fixture
def refused(demo_apps) -> SyncError:
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    coupling = Coupling.objects.get(mapping__name="CUSTOMER", source_record_id=str(customer.pk))
    with demo_apps.crm() as crm:
        crm.patch(f"accounts({coupling.destination_record_id})", json={"telephone1": LONG})
    return SyncError.objects.get(job=demo_apps.run("CUSTOMER"), coupling=coupling)


@pytest.mark.django_db(transaction=True)
@pytest.mark.over_http  # the apps are read in threads of their own, as on the entry's page
def test_the_fields_to_edit_with_what_each_app_holds(refused, user_api):
    answer = user_api.get(reverse("api:error_edit", args=[refused.pk]))
    assert answer.status_code == 200, answer.content
    fields = {field["name"]: field for field in answer.json()["fields"]}
    customer = ErpCustomer.objects.get(number="C00030")
    assert fields["phoneNumber"] == {
        "name": "phoneNumber",
        "read_field": "telephone1",
        "kind": "text",
        "max_length": 30,
        "value_to_send": LONG,
        "source_now": LONG,
        "destination_now": customer.phone_number,
    }
    assert "currencyCode" not in fields  # a lookup: its code is fixed at the source
    assert answer.json()["edits"] == []


def test_values_refused_field_by_field(refused, user_api):
    url = reverse("api:error_edit", args=[refused.pk])
    wrong = {"values": {"phoneNumber": "x" * 31, "faxNumber": "1"}}
    answer = user_api.post(url, wrong, content_type="application/json")
    assert answer.status_code == 409
    assert set(answer.json()["values"]) == {"phoneNumber", "faxNumber"}
    assert user_api.post(url, {"values": {}}, content_type="application/json").status_code == 400
    assert not RecordEdit.objects.exists()


def test_edit_and_retry_through_the_api(refused, user_api, sync_user, celery_queue):
    url = reverse("api:error_edit", args=[refused.pk])
    answer = user_api.post(
        url, {"values": {"phoneNumber": "+45 3333 4444"}}, content_type="application/json"
    )
    assert answer.status_code == 202, answer.content
    body = answer.json()
    job = SyncJob.objects.get(pk=body["job"])
    assert (job.trigger, job.status, job.requested_by) == ("retry", "queued", sync_user)
    assert body["edit"]["after"] == {"phoneNumber": "+45 3333 4444"}
    assert body["edit"]["state"] == "pending"
    event = AuditEvent.objects.get(action=AuditEvent.Action.ENTRY_VALUES_EDITED)
    assert (event.actor, event.details["via"]) == (sync_user, "api")
    listed = user_api.get(url).json()
    assert [edit["id"] for edit in listed["edits"]] == [body["edit"]["id"]]
    assert {f["name"]: f["value_to_send"] for f in listed["fields"]}["phoneNumber"] == (
        "+45 3333 4444"
    )


def test_an_entry_of_no_record_write_is_a_conflict(user_api, staff_user):
    entry = make_error(source_record_id="", category=Category.VALIDATION)
    url = reverse("api:error_edit", args=[entry.pk])
    assert user_api.get(url).status_code == 409
    answer = user_api.post(url, {"values": {"x": "1"}}, content_type="application/json")
    assert answer.status_code == 409


def test_setup_entries_are_for_administrators(user_api):
    entry = make_error(category=Category.PERMISSION)
    assert user_api.get(reverse("api:error_edit", args=[entry.pk])).status_code == 403
