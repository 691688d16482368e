"""On a record-level entry: what the job sent, what the other app holds now and what the source
app holds now, side by side, read from the demo apps over HTTP."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from couplings.models import Coupling
from demo.models import (
    CrmAccount,
    CrmTransactionCurrency,
    ErpCurrency,
    ErpCurrencyExchangeRate,
    ErpCustomer,
)
from errors.models import Category, SyncError
from sync.models import SyncJob
from tests.errors.test_fixes import conflict, deleted_in_crm
from tests.factories import make_error, make_mapping

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.over_http]
TOO_LONG = "+45 3333 4444 ext. 5555 (reception)"


def refused_phone(demo_apps, telephone: str = TOO_LONG) -> SyncError:
    """An entry for C00030 whose CRM telephone the ERP refuses (at most 30 characters)."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    coupling = Coupling.objects.get(source_record_id=str(customer.pk))
    account = CrmAccount.objects.get(pk=coupling.destination_record_id)
    account.telephone = telephone
    account.save()  # through save(), so its modified time moves on as an edit's does
    job = demo_apps.run("CUSTOMER")
    return SyncError.objects.get(job=job, category=Category.VALIDATION)


def differing_rows(html: str) -> list[str]:
    return re.findall(r'<tr class="differs">(.*?)</tr>', html, re.S)


def test_a_refused_update_keeps_what_was_sent_and_what_was_read(demo_apps):
    entry = refused_phone(demo_apps)
    stored = entry.sent_values
    assert (stored["kind"], stored["direction"]) == ("update", "from_destination")
    # Only the changed field was sent, by the ERP's name; the read values by the CRM's names.
    assert stored["sent"] == {"phoneNumber": TOO_LONG}
    assert stored["read"]["telephone1"] == TOO_LONG
    assert stored["read"]["accountnumber"] == "C00030"
    assert set(stored["read"]) == {
        "name",
        "accountnumber",
        "emailaddress1",
        "telephone1",
        "address1_city",
        "address1_country",
        "_transactioncurrencyid_value",
    }
    assert stored["truncated"] == []


def test_the_page_shows_sent_against_now_and_marks_the_refused_field(demo_apps, staff_client):
    entry = refused_phone(demo_apps)
    erp_phone = ErpCustomer.objects.get(number="C00030").phone_number
    html = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "What was sent and what the apps hold now" in html
    assert "Business Central now" in html and "Dynamics 365 Sales now" in html
    rows = differing_rows(html)
    assert len(rows) == 1
    assert "<code>telephone1</code> → <code>phoneNumber</code>" in rows[0]
    assert TOO_LONG in rows[0] and erp_phone in rows[0] and "differs" in rows[0]
    assert "not sent (already equal)" in html  # the other fields were in step


def test_a_crm_refusal_of_a_new_record_keeps_what_was_sent_with_nothing_to_compare(
    demo_apps, staff_client
):
    customer = ErpCustomer.objects.exclude(
        number__in=CrmAccount.objects.values("account_number")
    ).first()
    # A currency the CRM has without an exchange rate: it refuses the account.
    ErpCurrency.objects.create(code="XTS")
    ErpCurrencyExchangeRate.objects.create(
        currency_code="XTS", starting_date=timezone.localdate() - timedelta(days=1)
    )
    xts = CrmTransactionCurrency.objects.create(iso_currency_code="XTS", exchange_rate=None)
    ErpCustomer.objects.filter(pk=customer.pk).update(currency_code="XTS")
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    entry = SyncError.objects.get(job=job, source_record_id=str(customer.pk))
    assert "XTS does not have an exchange rate" in entry.message
    assert entry.sent_values["kind"] == "create"
    sent = entry.sent_values["sent"]
    assert sent["transactioncurrencyid@odata.bind"] == f"/transactioncurrencies({xts.pk})"
    assert entry.sent_values["sent"]["accountnumber"] == customer.number

    html = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "No coupled record in Dynamics 365 Sales: nothing to compare." in html
    assert "XTS" in html and "Value sent" in html


def test_a_conflict_shows_what_each_side_holds_and_the_field_that_differs(demo_apps, staff_client):
    entry = conflict(demo_apps)
    stored = entry.sent_values
    assert stored["kind"] == "conflict"
    assert stored["read"]["city"] == "Malmö"
    assert stored["held"]["address1_city"] == "Bergen"

    html = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "What each side holds" in html
    assert "Business Central at the conflict" in html
    assert "Dynamics 365 Sales at the conflict" in html
    rows = differing_rows(html)
    assert len(rows) == 1
    assert "<code>city</code> → <code>address1_city</code>" in rows[0]
    assert "Malmö" in rows[0] and "Bergen" in rows[0]


def test_a_deleted_destination_record_is_shown_as_gone(demo_apps, staff_client):
    entry = deleted_in_crm(demo_apps)
    html = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "The Dynamics 365 Sales record is gone</strong>" in html
    assert "Aarhus" in html  # the ERP record as it is now
    assert differing_rows(html) == []


def test_an_app_that_refuses_still_renders_the_page_with_its_message(demo_apps, staff_client):
    entry = conflict(demo_apps)
    demo_apps.fault("crm", "unavailable", entity="accounts")
    response = staff_client.get(entry.get_absolute_url())
    html = response.content.decode()
    assert response.status_code == 200
    assert "Could not read the record in Dynamics 365 Sales now:" in html
    assert "Malmö" in html  # the ERP side and the stored values are still shown


def test_an_app_that_does_not_answer_costs_the_page_one_short_timeout(demo_apps, staff_client):
    entry = conflict(demo_apps)
    demo_apps.fault("crm", "timeout", entity="accounts", delay=8)
    started = time.monotonic()
    html = staff_client.get(entry.get_absolute_url()).content.decode()
    assert time.monotonic() - started < 6
    assert "Dynamics 365 Sales did not answer in time" in html


def test_hostile_values_are_escaped_and_long_ones_cut_with_the_full_value_at_hand(
    demo_apps, staff_client
):
    hostile = "<script>steal()</script>" + "9" * 30
    entry = refused_phone(demo_apps, telephone=hostile)
    assert entry.sent_values["sent"] == {"phoneNumber": hostile}
    html = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "<script>steal()" not in html
    assert "&lt;script&gt;steal()&lt;/script&gt;" in html
    assert 'title="&lt;script&gt;steal()&lt;/script&gt;' + "9" * 30 + '"' in html
    assert "<details" in html


def test_an_entry_of_a_whole_job_has_no_comparison(staff_client):
    entry = make_error(source_record_id="", destination_record_id="", mapping=make_mapping())
    html = staff_client.get(entry.get_absolute_url()).content.decode()
    assert 'id="comparison"' not in html
