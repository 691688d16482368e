"""Edit and retry on the entry of a refused record: what may be edited, how typed values are
checked (nothing is kept when one is refused), the entry page's form and the admin, which
only shows the edits."""

from datetime import date

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import ErpCustomer
from errors.models import Category, SyncError
from sync.edits import DATE, NUMBER, TEXT, EditableField, checked_value, kind_of, length_limits
from sync.models import RecordEdit, SyncJob
from tests.factories import make_error
from triage.edits import EditRefused, edit_and_retry

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


def refusal(entry, values, user) -> EditRefused:
    with pytest.raises(EditRefused) as refused:
        edit_and_retry(entry, values, user=user)
    return refused.value


def test_values_are_checked_against_the_mapping_and_nothing_is_kept(refused, staff_user):
    too_long = refusal(refused, {"phoneNumber": "+45 3333 4444 ext. 5555 (office)"}, staff_user)
    assert too_long.fields == {"phoneNumber": "At most 30 characters: this is 32."}
    unknown = refusal(refused, {"faxNumber": "1", "currencyCode": "DKK"}, staff_user)
    assert set(unknown.fields) == {"faxNumber", "currencyCode"}  # a lookup is fixed at source
    assert "CUSTOMER writes no such field" in unknown.fields["faxNumber"]
    assert refusal(refused, {}, staff_user).fields == {}
    assert "At most 30" in refusal(refused, {"phoneNumber": LONG}, staff_user).fields["phoneNumber"]
    unchanged = {"city": refused.sent_values["read"]["address1_city"]}
    assert "Change at least one value" in str(refusal(refused, unchanged, staff_user))
    not_text = refusal(refused, {"phoneNumber": 4533334444}, staff_user)
    assert not_text.fields == {"phoneNumber": "Enter text."}

    assert not RecordEdit.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ENTRY_VALUES_EDITED).exists()
    assert not SyncJob.objects.filter(trigger=SyncJob.Trigger.RETRY).exists()


def test_only_the_entry_of_a_refused_write_is_edited(staff_user):
    job_entry = make_error(source_record_id="", category=Category.VALIDATION)
    assert "not one of a whole job" in str(refusal(job_entry, {"x": "1"}, staff_user))
    no_values = make_error(category=Category.VALIDATION)
    assert "not one of a whole job" in str(refusal(no_values, {"x": "1"}, staff_user))


def test_typed_values_by_kind():
    def field(kind, sent=None, limit=None):
        return EditableField("f", "r", kind, limit, sent)

    assert checked_value(field(NUMBER), "12.50") == 12.5
    assert checked_value(field(NUMBER), "7") == 7
    assert checked_value(field(NUMBER), "") is None
    with pytest.raises(ValueError, match="Enter a number"):
        checked_value(field(NUMBER), "twelve")
    assert checked_value(field("boolean"), "Yes") is True
    assert checked_value(field("boolean"), False) is False
    with pytest.raises(ValueError, match="true or false"):
        checked_value(field("boolean"), "maybe")
    assert checked_value(field(DATE), "2026-12-06") == "2026-12-06"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        checked_value(field(DATE), "06/12/2026")
    with pytest.raises(ValueError, match="At most 5 characters"):
        checked_value(field(TEXT, limit=5), "abcdef")
    assert (kind_of(True), kind_of(3.5), kind_of(date.today().isoformat()), kind_of("x")) == (
        "boolean",
        NUMBER,
        DATE,
        TEXT,
    )


def test_the_length_the_app_refused():
    sent = {"phoneNumber": LONG, "city": "Odense"}
    assert length_limits("Phone No. must not exceed 30 characters.", sent) == {"phoneNumber": 30}
    crm = (
        "A validation error occurred. The length of the 'telephone1' attribute of the 'account' "
        "entity exceeded the maximum allowed length of '50'."
    )
    assert length_limits(crm, {}) == {"telephone1": 50}
    assert length_limits("The email address is not valid.", sent) == {}


def test_the_entry_page_shows_the_form_and_its_errors_inline(refused, sync_user_client):
    page = sync_user_client.get(refused.get_absolute_url()).content.decode()
    assert 'id="edit-form"' in page and 'name="value_phoneNumber"' in page
    assert "Business Central now" in page and "Dynamics 365 Sales now" in page

    answer = sync_user_client.post(
        reverse("errors:edit", args=[refused.pk]), {"value_phoneNumber": "x" * 31}
    )
    assert answer.status_code == 200
    assert "At most 30 characters: this is 31." in answer.content.decode()
    assert not RecordEdit.objects.exists()


def test_no_form_on_an_entry_of_a_whole_job(staff_client):
    entry = make_error(source_record_id="", category=Category.VALIDATION)
    page = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "Edit and retry" not in page
    answer = staff_client.post(reverse("errors:edit", args=[entry.pk]), {"value_x": "1"})
    assert answer.status_code == 302
    assert not RecordEdit.objects.exists()


def test_the_admin_shows_edits_and_changes_none(refused, client, superuser, staff_user):
    outcome = edit_and_retry(refused, {"phoneNumber": "+45 3333 4444"}, user=staff_user)
    client.force_login(superuser)
    listing = client.get(reverse("admin:sync_recordedit_changelist"))
    assert listing.status_code == 200 and f"#{refused.pk}" in listing.content.decode()
    change = reverse("admin:sync_recordedit_change", args=[outcome.edit.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"state": "lapsed"}).status_code == 403
    assert client.get(reverse("admin:sync_recordedit_add")).status_code == 403
    delete = reverse("admin:sync_recordedit_delete", args=[outcome.edit.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    outcome.edit.refresh_from_db()
    assert outcome.edit.state == RecordEdit.State.PENDING
