import pytest
from django.urls import reverse

from demo.entities import ENTITIES, record_url
from demo.models import CrmAccount, ErpCustomer

pytestmark = pytest.mark.django_db


def test_a_record_page_shows_its_fields_without_sign_in(client):
    customer = ErpCustomer.objects.create(
        number="C00010", display_name="Fabrikam Inc.", city="Oslo", currency_code="NOK"
    )
    response = client.get(reverse("demo:record", args=["erp", "customers", customer.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Demo ERP (Business Central)" in html
    assert "Fabrikam Inc." in html and "C00010" in html and "NOK" in html


def test_a_crm_record_page_names_the_records_its_lookups_refer_to(client):
    from demo.models import CrmContact, CrmTransactionCurrency

    nok = CrmTransactionCurrency.objects.create(iso_currency_code="NOK", currency_name="Krone")
    account = CrmAccount.objects.create(name="Fjord AS", transaction_currency=nok)
    contact = CrmContact.objects.create(full_name="Kari Nordmann", parent_account=account)
    html = client.get(reverse("demo:record", args=["crm", "accounts", account.pk])).content
    assert "<dd>NOK</dd>" in html.decode()
    html = client.get(reverse("demo:record", args=["crm", "contacts", contact.pk])).content
    assert "<dd>Fjord AS</dd>" in html.decode()
    listed = client.get(reverse("demo:record_list", args=["crm", "contacts"])).content.decode()
    assert "Fjord AS" in listed


def test_a_crm_record_page_shows_and_changes_its_owner(client, staff_user):
    """Who owns an account decides which access levels reach it: its page says, and an
    administrator gives it to another owner there."""
    from demo.models import CrmSystemUser

    kari = CrmSystemUser.objects.create(full_name="Kari", domain_name="kari@crm.example")
    ola = CrmSystemUser.objects.create(full_name="Ola", domain_name="ola@crm.example")
    account = CrmAccount.objects.create(name="Fjord AS", owner=kari)
    page = reverse("demo:record", args=["crm", "accounts", account.pk])
    assert "<dd>kari@crm.example</dd>" in client.get(page).content.decode()
    client.force_login(staff_user)
    assert client.post(page, {"name": "Fjord AS", "owner": str(ola.pk)}).status_code == 302
    account.refresh_from_db()
    assert account.owner == ola


def test_record_pages_escape_what_is_stored(client):
    account = CrmAccount.objects.create(name="<script>alert(1)</script>")
    html = client.get(reverse("demo:record", args=["crm", "accounts", account.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("record_id", ["8116b964-59c0-4249-8507-9a6d7ff8b6f2", "not-a-uuid"])
def test_a_missing_record_answers_404_with_a_friendly_page(client, record_id):
    response = client.get(reverse("demo:record", args=["crm", "accounts", record_id]))
    assert response.status_code == 404
    assert "This record no longer exists in the Demo CRM" in response.content.decode()


def test_unknown_apps_and_tables_are_404(client):
    assert client.get("/demo/pos/").status_code == 404
    assert client.get("/demo/erp/invoices/").status_code == 404


def test_every_table_has_an_index_entry_and_a_list(client):
    for app in ("erp", "crm"):
        assert client.get(reverse("demo:app_index", args=[app])).status_code == 200
    for app, entity in ENTITIES:
        assert client.get(reverse("demo:record_list", args=[app, entity])).status_code == 200


def test_record_url_is_absolute_on_the_demo_base(settings):
    settings.DEMO_BASE_URL = "http://127.0.0.1:8123/"
    url = record_url("erp", "customers", "abc")
    assert url == "http://127.0.0.1:8123/demo/erp/customers/abc/"


def test_a_signed_in_person_changes_a_record_in_its_app(client, staff_user):
    from demo.models import CrmTransactionCurrency

    currency = CrmTransactionCurrency.objects.create(iso_currency_code="DKK", exchange_rate=None)
    url = f"/demo/crm/transactioncurrencies/{currency.pk}/"
    fields = {"iso_currency_code": "DKK", "currency_name": "Danish krone", "exchange_rate": "7.46"}
    assert client.post(url, fields).status_code == 403
    assert 'name="exchange_rate"' not in client.get(url).content.decode()

    client.force_login(staff_user)
    bad = client.post(url, {**fields, "exchange_rate": "lots"})
    assert "Enter a number." in bad.content.decode()
    response = client.post(url, fields, follow=True)
    assert "Transaction currency DKK is saved." in response.content.decode()
    currency.refresh_from_db()
    assert str(currency.exchange_rate) == "7.460000"


def test_an_erp_contact_saved_on_its_page_takes_its_company_name(client, staff_user):
    from demo.models import ErpContact

    company = ErpContact.objects.create(number="C00010", type="Company", display_name="Fabrikam")
    person = ErpContact.objects.create(number="CT1", display_name="Kari Nordmann")
    assert (company.company_number, company.company_name) == ("C00010", "Fabrikam")
    client.force_login(staff_user)
    fields = {"number": "CT1", "type": "Person", "display_name": "Kari Nordmann"}
    url = reverse("demo:record", args=["erp", "contacts", person.pk])
    response = client.post(url, {**fields, "company_number": "C00010", "company_name": ""})
    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.company_number, person.company_name) == ("C00010", "Fabrikam")


def test_a_person_fixes_the_integration_user_on_the_crm_security_pages(client, staff_user):
    """The user, role and team pages show the security model and change it, as the CRM's
    administrator does in Dataverse."""
    from demo import security
    from demo.models import CrmSystemUser, CrmTeam

    root = security.install_security()
    user = CrmSystemUser(full_name="Integration", domain_name="i@crm.example")
    security.add_users([(user, root, ("Salesperson",))])
    admin_role = security.role_named("Integration Administrator")

    page = client.get(f"/demo/crm/systemusers/{user.pk}/").content.decode()
    assert "Salesperson (demo-crm)" in page and "Read-Write" in page
    role_page = client.get(f"/demo/crm/roles/{admin_role.pk}/").content.decode()
    assert str(admin_role.pk) in role_page and "prvWriteProduct (Global)" in role_page
    assert "prvAppendToAccount (Global)" in role_page  # each privilege with its access level
    team_list = client.get("/demo/crm/teams/").content.decode()
    assert "demo-crm" in team_list and "i@crm.example" in team_list

    client.force_login(staff_user)
    team = CrmTeam.objects.create(name="Integration team", business_unit=root)
    response = client.post(
        f"/demo/crm/teams/{team.pk}/",
        {
            "name": "Integration team",
            "business_unit": str(root.pk),
            "team_type": "0",
            "roles": [str(admin_role.pk)],
            "members": [str(user.pk)],
        },
        follow=True,
    )
    assert "Team Integration team is saved." in response.content.decode()
    assert security.privileges_of(user) >= {"prvCreateProduct", "prvWriteProduct"}
