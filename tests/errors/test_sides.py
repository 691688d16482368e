"""Source and Destination mean the mapping's source app and destination app on every page,
whichever way the write that failed went; each record says where its link goes, and a record
known to be gone is shown gone, not linked."""

import csv
import io

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.export import COLUMNS
from errors.models import Category, SyncError
from sync.models import SyncJob
from tests.errors.test_fixes import deleted_in_crm
from tests.sync.test_skipped import skip

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]
ERP, CRM = "Business Central", "Dynamics 365 Sales"


def cells(page: str, entry: SyncError) -> list[str]:
    """The cells of the entry's row in the list, from its Date/time on."""
    start = page.index(f'name="ids" value="{entry.pk}"')
    row = page[start : page.index("</tr>", start)]
    return [cell.split(">", 1)[1] for cell in row.split("<td")[1:]]


SOURCE, DESTINATION, DIRECTION = 5, 6, 7


def exported(client, **filters) -> list[dict[str, str]]:
    response = client.get(reverse("errors:export"), filters)
    body = b"".join(response.streaming_content).decode().lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(body)))


def test_an_entry_of_the_crm_to_erp_direction_shows_the_erp_record_as_source(
    demo_apps, staff_client
):
    (coupling,) = skip(demo_apps, "C00030")
    entry = SyncError.objects.filter(coupling=coupling).latest("pk")
    customer = ErpCustomer.objects.get(pk=coupling.source_record_id)
    account = CrmAccount.objects.get(pk=coupling.destination_record_id)
    # Stored as the sync ran: the account read, the customer written.
    assert (entry.source_app, entry.destination_app) == (CRM, ERP)

    source, destination = entry.sides.source, entry.sides.destination
    assert (source.app, source.record_id) == (ERP, str(customer.pk))
    assert (destination.app, destination.record_id, destination.name) == (
        CRM,
        str(account.pk),
        "C00030",
    )
    assert entry.sides.direction == f"{CRM} → {ERP}"

    erp_url = f"{demo_apps.base_url}/demo/erp/customers/{customer.pk}/"
    crm_url = f"{demo_apps.base_url}/demo/crm/accounts/{account.pk}/"
    listed = cells(staff_client.get(reverse("errors:list")).content.decode(), entry)
    source_cell, destination_cell, direction_cell = listed[SOURCE : DIRECTION + 1]
    assert f'href="{erp_url}"' in source_cell and f">{ERP} · {str(customer.pk)[:8]}…</a>" in (
        source_cell
    )
    assert f'href="{crm_url}"' in destination_cell and f">{CRM} · C00030</a>" in destination_cell
    assert direction_cell.startswith(f"{CRM} → {ERP}<")

    page = staff_client.get(entry.get_absolute_url()).content.decode()
    source_card = page.split('id="record-source"')[1].split('id="record-destination"')[0]
    destination_card = page.split('id="record-destination"')[1]
    assert ERP in source_card and erp_url in source_card and crm_url not in source_card
    assert CRM in destination_card and crm_url in destination_card
    assert f"{CRM} → {ERP}" in page.split('id="direction"')[1][:200]

    # The Skipped page calls the same account the destination.
    skipped = staff_client.get(reverse("sync:skipped")).content.decode()
    row = skipped.split(f'data-coupling="{coupling.pk}"')[1].split("</tr>")[0]
    assert row.index(erp_url) < row.index(crm_url)
    assert f">{ERP} · {str(customer.pk)[:8]}…</a>" in row

    (line,) = exported(staff_client, job=entry.job_id)
    assert (line["Source app"], line["Source record"], line["Source link"]) == (
        ERP,
        str(customer.pk),
        erp_url,
    )
    assert (line["Destination app"], line["Destination number"]) == (CRM, "C00030")
    assert line["Direction"] == f"{CRM} → {ERP}"


def test_a_whole_job_failure_names_the_app_on_its_side_of_the_mapping(demo_apps, staff_client):
    job = demo_apps.run("CURRENCY", SyncJob.Kind.FULL)  # the CRM refuses to create currencies
    entry = SyncError.objects.get(job=job)
    assert entry.category == Category.PERMISSION
    assert (entry.source_app, entry.destination_app) == (CRM, "")

    assert entry.sides.source.label == ""
    assert entry.sides.destination.label == f"{CRM} · transactioncurrencies"
    assert entry.sides.direction == f"{ERP} → {CRM}"
    listed = cells(staff_client.get(reverse("errors:list")).content.decode(), entry)
    assert listed[SOURCE] == '<span class="muted">—</span></td>'
    assert f"{CRM} · transactioncurrencies (no record)" in listed[DESTINATION]
    assert listed[DIRECTION].startswith(f"{ERP} → {CRM}<")
    page = staff_client.get(entry.get_absolute_url()).content.decode()
    destination_card = page.split('id="record-destination"')[1]
    assert f"No {CRM} record is named: the whole job failed there." in destination_card


def test_a_deleted_coupled_record_is_shown_gone_not_linked(demo_apps, staff_client):
    entry = deleted_in_crm(demo_apps)
    account_url = entry.destination_url
    assert entry.sides.destination.gone and not entry.sides.source.gone

    listed = cells(staff_client.get(reverse("errors:list")).content.decode(), entry)
    assert f'href="{account_url}"' not in listed[DESTINATION]
    assert '<span class="badge gone">deleted</span>' in listed[DESTINATION]
    assert 'href="' in listed[SOURCE]  # the customer is still there
    page = staff_client.get(entry.get_absolute_url()).content.decode()
    assert f'href="{account_url}"' not in page
    assert f"<strong>Deleted</strong> in {CRM}" in page
    (line,) = exported(staff_client, job=entry.job_id)
    assert (line["Destination link"], line["Destination deleted"]) == ("", "yes")


def test_a_record_its_coupling_found_gone_is_shown_gone_on_every_page(demo_apps, staff_client):
    (coupling,) = skip(demo_apps, "C00030")
    Coupling.objects.filter(pk=coupling.pk).update(source_exists=False, destination_exists=True)
    customer_url = f"{demo_apps.base_url}/demo/erp/customers/{coupling.source_record_id}/"
    entry = SyncError.objects.filter(coupling=coupling).latest("pk")

    for url in (reverse("errors:list"), entry.get_absolute_url(), reverse("sync:skipped")):
        page = staff_client.get(url).content.decode()
        assert f'href="{customer_url}"' not in page, url
        assert "deleted" in page.lower(), url
    couplings = staff_client.get(reverse("sync:couplings"), {"skipped": "true"}).content.decode()
    assert f'href="{customer_url}"' not in couplings
    assert '<span class="badge gone">deleted</span>' in couplings


def test_remedy_links_say_which_record_they_open(demo_apps):
    from errors.remedies import remedy_for

    entry = deleted_in_crm(demo_apps)
    labels = [label for label, _ in remedy_for(entry).links]
    assert any(label.startswith(f"Source: {ERP} · ") for label in labels)
    assert not any(label.startswith("Destination") for label in labels)  # gone


def test_the_export_headers_are_the_mapping_sides():
    labels = [label for _, label in COLUMNS]
    assert labels.index("Source app") < labels.index("Destination app")
    assert "Direction" in labels
