"""The Couple page: reached from an entry, a mapping and the couplings; forms that validate
every input; synchronize-after and large runs in a real worker."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from couplings.models import Coupling, CouplingRun
from demo.models import CrmAccount, ErpCustomer
from errors.models import SyncError
from sync.models import SyncJob, TableMapping
from tests.conftest import wait_until
from tests.factories import make_coupling, make_error

pytestmark = pytest.mark.django_db
COUPLE = reverse("couplings:couple")


def customer_id(number: str) -> str:
    return str(ErpCustomer.objects.get(number=number).pk)


def match_form(mapping, record_ids, *, action="match", **extra) -> dict:
    """Match on number = accountnumber (the mapping's second field pair)."""
    return {
        "mapping": mapping.pk,
        "action": action,
        "side": "source",
        "record_ids": "\n".join(record_ids),
        "match_1": "on",
        "priority_1": "1",
        "case_1": "on",
        **extra,
    }


def finished(model, pk, worker):
    def done():
        row = model.objects.get(pk=pk)
        return row if row.is_finished else None

    return wait_until(done, timeout=60, message=worker.log_path.read_text())


def test_an_entry_of_an_uncoupled_record_offers_couple_and_is_resolved_by_it(
    demo_apps, staff_client
):
    first = CrmAccount.objects.create(name="Adatum GmbH", account_number="C00030")
    CrmAccount.objects.create(name="Adatum", account_number="C00030")
    TableMapping.objects.filter(name="CUSTOMER").update(direction="to_destination")
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    entry = SyncError.objects.get(job=job, source_record_id=customer_id("C00030"))
    assert entry.coupling is None and "Cannot couple: 2 records" in entry.message

    page = staff_client.get(entry.get_absolute_url()).content.decode()
    assert "Couple…" in page
    form = staff_client.get(
        COUPLE,
        {
            "mapping": entry.mapping_id,
            "side": "source",
            "record": entry.source_record_id,
            "error": entry.pk,
        },
    )
    assert form.status_code == 200
    assert f'value="{entry.source_record_id}"' in form.content.decode()

    response = staff_client.post(
        COUPLE,
        {
            "mapping": entry.mapping_id,
            "error": entry.pk,
            "action": "couple",
            "source_record_id": entry.source_record_id,
            "destination_record_id": str(first.pk),
        },
    )
    assert response["Location"] == entry.get_absolute_url()
    entry.refresh_from_db()
    coupling = Coupling.objects.get(source_record_id=customer_id("C00030"))
    assert (entry.status, entry.coupling) == ("resolved", coupling)
    assert entry.status_note == f"Coupled by hand to record {first.pk} by triager."
    assert "Couple…" not in staff_client.get(entry.get_absolute_url()).content.decode()


def test_the_couplings_page_and_the_mappings_link_to_couple(demo_apps, staff_client):
    mapping = demo_apps.mapping("CUSTOMER")
    couple_url = f"{COUPLE}?mapping={mapping.pk}"
    assert couple_url in staff_client.get(reverse("sync:mappings")).content.decode()
    couplings = staff_client.get(reverse("sync:couplings"), {"mapping": mapping.pk})
    assert couple_url in couplings.content.decode()
    chooser = staff_client.get(COUPLE).content.decode()
    assert couple_url in chooser
    page = staff_client.get(couple_url).content.decode()
    assert "accountnumber" in page and "Case-sensitive" in page


def test_find_candidates_shows_why_without_coupling_and_escapes_the_apps_values(
    demo_apps, staff_client
):
    mapping = demo_apps.mapping("CUSTOMER")
    CrmAccount.objects.create(name="<script>alert(1)</script>", account_number="C00030")
    CrmAccount.objects.create(name="Adatum", account_number="C00030")
    response = staff_client.post(
        COUPLE, match_form(mapping, [customer_id("C00030")], action="preview")
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Several matches" in page and "matches on number = accountnumber" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert not Coupling.objects.exists() and not CouplingRun.objects.exists()


def test_couple_by_match_then_synchronize_writes_the_values(demo_apps, staff_client, celery_worker):
    mapping = demo_apps.mapping("CUSTOMER")
    account = CrmAccount.objects.create(name="Old name", account_number="C00030", city="Nowhere")
    response = staff_client.post(
        COUPLE, match_form(mapping, [customer_id("C00030")], synchronize_after="on")
    )
    run = CouplingRun.objects.get()
    assert response["Location"] == run.get_absolute_url()
    assert run.results[0]["outcome"] == "coupled"
    job = finished(SyncJob, run.sync_job_id, celery_worker)
    assert (job.kind, job.status, job.modified) == ("coupled", "succeeded", 1)
    account.refresh_from_db()
    customer = ErpCustomer.objects.get(number="C00030")
    assert (account.name, account.city) == (customer.display_name, customer.city)
    page = staff_client.get(run.get_absolute_url()).content.decode()
    assert "1 of 1 records coupled." in page and f"job #{job.pk}" in page


def test_couple_by_hand_then_synchronize_writes_the_values(demo_apps, staff_client, celery_worker):
    mapping = demo_apps.mapping("CUSTOMER")
    account = CrmAccount.objects.create(name="Someone", account_number="", city="Nowhere")
    response = staff_client.post(
        COUPLE,
        {
            "mapping": mapping.pk,
            "action": "couple",
            "synchronize_after": "on",
            "source_record_id": customer_id("C00040"),
            "destination_record_id": str(account.pk),
        },
    )
    job = SyncJob.objects.get(kind=SyncJob.Kind.COUPLED)
    assert response["Location"] == job.get_absolute_url()
    finished(SyncJob, job.pk, celery_worker)
    account.refresh_from_db()
    customer = ErpCustomer.objects.get(number="C00040")
    assert (account.account_number, account.name, account.city) == (
        "C00040",
        customer.display_name,
        customer.city,
    )


def test_many_records_are_coupled_in_the_worker(demo_apps, staff_client, celery_worker, settings):
    settings.COUPLE_BY_MATCH_ASYNC_THRESHOLD = 1
    mapping = demo_apps.mapping("CUSTOMER")
    response = staff_client.post(
        COUPLE, match_form(mapping, [customer_id("C00020"), customer_id("C00030")])
    )
    run = CouplingRun.objects.get()
    assert response["Location"] == run.get_absolute_url()
    run = finished(CouplingRun, run.pk, celery_worker)
    assert [r["outcome"] for r in run.results] == ["coupled", "no_match"]
    assert run.message == "1 of 2 records coupled (no match: 1)."


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"action": "couple", "source_record_id": "C1"}, "This field is required."),
        ({"action": "couple", "source_record_id": "a\nb", "destination_record_id": "x"},
         "A record id cannot hold control characters or line breaks."),
        ({"action": "couple", "source_record_id": "x" * 101, "destination_record_id": "x"},
         "Ensure this value has at most 100 characters"),
        ({"action": "match", "side": "source", "record_ids": "x", "match_1": "on",
          "priority_1": "abc"}, "Enter a whole number."),
        ({"action": "match", "side": "source", "record_ids": "x", "match_1": "on",
          "priority_1": ""}, "Give number a priority from 1 to 99."),
        ({"action": "match", "side": "source", "record_ids": "x", "match_1": "on",
          "priority_1": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"action": "match", "side": "sideways", "record_ids": "x"},
         "Select a valid choice."),
        ({"action": "match", "side": "source", "record_ids": " \n "},
         "Enter at least one record id."),
        ({"action": "explode"}, "Choose Couple, Find candidates or Couple by match."),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_message_and_writes_nothing(
    demo_apps, staff_client, form, message
):
    mapping = demo_apps.mapping("CUSTOMER")
    response = staff_client.post(COUPLE, {"mapping": mapping.pk, **form})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Coupling.objects.exists() and not CouplingRun.objects.exists()


def test_a_refused_couple_says_why_and_writes_nothing(demo_apps, staff_client):
    mapping = demo_apps.mapping("CUSTOMER")
    response = staff_client.post(
        COUPLE,
        {
            "mapping": mapping.pk,
            "action": "couple",
            "source_record_id": customer_id("C00030"),
            "destination_record_id": "not-an-account",
        },
    )
    assert response.status_code == 409
    assert "There is no accounts record not-an-account in Dynamics 365 Sales." in (
        response.content.decode()
    )
    assert not Coupling.objects.exists()


def test_an_unknown_mapping_and_a_missing_csrf_token_are_refused(demo_apps, staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.get(COUPLE, {"mapping": "abc"}).status_code == 400
    assert client.get(COUPLE, {"mapping": "987654"}).status_code == 404
    mapping = demo_apps.mapping("CUSTOMER")
    response = client.post(COUPLE, match_form(mapping, [customer_id("C00020")]))
    assert response.status_code == 403
    assert not Coupling.objects.exists()


def test_the_pages_are_for_sync_users_only(demo_apps, client, plain_user, staff_user):
    run = CouplingRun.objects.create(mapping=demo_apps.mapping("CUSTOMER"), side="source")
    for url in (COUPLE, run.get_absolute_url()):
        assert client.get(url)["Location"].startswith(reverse("login")), url
    client.force_login(plain_user)
    for url in (COUPLE, run.get_absolute_url()):
        assert client.get(url).status_code == 403, url
    client.force_login(staff_user)
    state = client.get(run.get_absolute_url(), {"format": "json"}).json()
    assert (state["state"], state["finished"], state["done"]) == ("queued", False, 0)


def test_couple_by_match_on_chosen_entries_fills_in_their_uncoupled_records(
    demo_apps, staff_client
):
    for number in ("C00030", "C00040"):
        CrmAccount.objects.create(name="Twin A", account_number=number)
        CrmAccount.objects.create(name="Twin B", account_number=number)
    TableMapping.objects.filter(name="CUSTOMER").update(direction="to_destination")
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    uncoupled = list(SyncError.objects.filter(job=job, message__contains="Cannot couple"))
    assert {e.source_record_id for e in uncoupled} == {customer_id("C00030"), customer_id("C00040")}
    mapping = demo_apps.mapping("CUSTOMER")
    coupled = make_error(mapping=mapping, coupling=make_coupling(mapping), source_record_id="x1")

    assert 'value="couple"' in staff_client.get(reverse("errors:list")).content.decode()
    ids = [e.pk for e in uncoupled] + [coupled.pk]
    page = staff_client.post(
        reverse("errors:bulk"), {"action": "couple", "scope": "selection", "ids": ids}
    )
    assert page.status_code == 200
    form = page.context["match"]
    assert form.initial["side"] == "source"
    assert set(form.initial["record_ids"].splitlines()) == {e.source_record_id for e in uncoupled}
    text = page.content.decode()
    assert "Filled in with 2 records" in text and "1 entry is about coupled records" in text

    # Twins match on the account number, so the name decides: only one record gets coupled.
    CrmAccount.objects.filter(name="Twin B").update(account_number="")
    response = staff_client.post(COUPLE, match_form(mapping, form.initial["record_ids"].split()))
    run = CouplingRun.objects.get()
    assert response["Location"] == run.get_absolute_url()
    assert sorted(r["outcome"] for r in run.results) == ["coupled", "coupled"]
    assert set(
        SyncError.objects.filter(pk__in=[e.pk for e in uncoupled]).values_list("status", flat=True)
    ) == {"resolved"}


def test_couple_by_match_is_refused_with_a_reason_when_every_entry_is_coupled(
    demo_apps, staff_client
):
    mapping = demo_apps.mapping("CUSTOMER")
    entry = make_error(mapping=mapping, coupling=make_coupling(mapping), source_record_id="x1")
    response = staff_client.post(
        reverse("errors:bulk"),
        {"action": "couple", "scope": "filter", "filter_query": f"mapping={mapping.pk}"},
    )
    assert response["Location"] == reverse("errors:list") + f"?mapping={mapping.pk}"
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert shown and "not coupled" in shown[0]
    entry.refresh_from_db()
    assert entry.status == "open" and CouplingRun.objects.count() == 0
