"""The demo ERP's contacts and customers have the fields the Business Central API v2.0
documents for them: each test names the behaviour and, in a comment, the Microsoft
documentation page it follows."""

import pytest
from django.conf import settings

from demo.models import ErpContact, ErpCustomer

pytestmark = pytest.mark.django_db


@pytest.fixture
def erp(demo_apps):
    with demo_apps.client(
        base_url=demo_apps.connection.source_base_url,
        auth=(settings.DEMO_ERP_USER, settings.DEMO_ERP_PASSWORD),
    ) as client:
        yield client


# contact resource type (Business Central API v2.0): number, type ("Company" or "Person"),
# displayName, companyNumber and companyName.
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_contact
def test_a_contact_has_its_type_and_its_company_number_and_name(erp):
    company = ErpContact.objects.filter(type=ErpContact.Type.COMPANY).order_by("number").first()
    answer = erp.post(
        "contacts",
        json={"number": "CT90001", "displayName": "Kari Nordmann", "companyNumber": company.number},
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert (created["type"], created["companyNumber"]) == ("Person", company.number)
    # The company's name comes with its number, as Business Central fills it in.
    assert created["companyName"] == company.display_name

    read = erp.get(f"contacts({company.pk})").json()
    assert read["type"] == "Company"
    assert (read["companyNumber"], read["companyName"]) == (company.number, company.display_name)


# contact resource type (Business Central API v2.0): type is "Company" or "Person". (The words
# of the refusal of another value are the demo's.)
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_contact
def test_a_contact_type_is_company_or_person(erp):
    answer = erp.post("contacts", json={"number": "CT90002", "displayName": "X", "type": "Robot"})
    assert answer.status_code == 400
    assert "Company, Person" in answer.json()["error"]["message"]
    assert not ErpContact.objects.filter(number="CT90002").exists()


# customer resource type (Business Central API v2.0): the customer's currency is the code
# currencyCode (the CRM's account refers to its currency by a lookup instead).
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_customer
def test_a_customer_keeps_its_currency_code(erp):
    customer = ErpCustomer.objects.exclude(currency_code="").first()
    read = erp.get(f"customers({customer.pk})").json()
    assert read["currencyCode"] == customer.currency_code


# contact resource type (Business Central API v2.0): contacts are filtered by their type, as
# the CONTACT mapping reads only people.
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_contact
def test_contacts_filter_by_type(erp):
    answer = erp.get("contacts", params={"$filter": "type eq 'Person'"})
    assert answer.status_code == 200
    types = {row["type"] for row in answer.json()["value"]}
    assert types == {"Person"}
    assert len(answer.json()["value"]) == ErpContact.objects.filter(type="Person").count()
