"""The demo ERP's contacts and customers have the fields the Business Central API v2.0
documents for them, and the relations Business Central keeps between them (company contacts,
their business relations to customers, contactsInformation): each test names the behaviour
and, in a comment, the Microsoft documentation page it follows."""

import pytest
from django.conf import settings

from demo.models import ErpContact, ErpContactBusinessRelation, ErpCustomer

CONTACT_INFORMATION_FIELDS = {
    "contactId",
    "contactNumber",
    "contactName",
    "contactType",
    "relatedId",
    "relatedType",
}

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


def company_contact(customer: ErpCustomer) -> ErpContact:
    return ErpContactBusinessRelation.objects.get(customer=customer).contact


def a_customer_with_people() -> ErpCustomer:
    people = ErpContact.objects.filter(type=ErpContact.Type.PERSON).order_by("number")
    return ErpContactBusinessRelation.objects.get(contact__number=people[0].company_number).customer


# Get contactInformation (Business Central API v2.0): GET customers({id})/contactsInformation
# lists the customer's contacts, the company contact and its people, each with relatedId the
# customer's id and relatedType "Customer" (contactInformation resource type: contactId,
# contactNumber, contactName, contactType "Company" or "Person", relatedId, relatedType).
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/api/dynamics_contactinformation_get
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_contactinformation
def test_a_customers_contacts_information_lists_its_company_contact_and_its_people(erp):
    customer = a_customer_with_people()
    company = company_contact(customer)
    answer = erp.get(f"customers({customer.pk})/contactsInformation")
    assert answer.status_code == 200, answer.text
    rows = answer.json()["value"]
    assert all(set(row) == CONTACT_INFORMATION_FIELDS for row in rows)
    assert {(row["relatedId"], row["relatedType"]) for row in rows} == {
        (str(customer.pk), "Customer")
    }
    members = ErpContact.objects.filter(company_number=company.number)
    assert {(row["contactId"], row["contactNumber"], row["contactType"]) for row in rows} == {
        (str(c.pk), c.number, c.type) for c in members
    }
    assert {row["contactType"] for row in rows} == {"Company", "Person"}
    (company_row,) = [row for row in rows if row["contactType"] == "Company"]
    assert (company_row["contactNumber"], company_row["contactName"]) == (
        company.number,
        company.display_name,
    )
    # $select names the fields wanted.
    answer = erp.get(
        f"customers({customer.pk})/contactsInformation", params={"$select": "contactNumber"}
    )
    assert {tuple(row) for row in answer.json()["value"]} == {("contactNumber",)}


# contact resource type (Business Central API v2.0): a contact has the navigation
# contactInformation. What it holds is the demo's reading: the contact itself, related to the
# customer of its company contact's business relation; a contact that is no customer's,
# nothing.
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_contact
def test_a_contacts_information_names_the_customer_it_is_related_to(erp):
    customer = a_customer_with_people()
    company = company_contact(customer)
    person = ErpContact.objects.filter(company_number=company.number, type="Person").first()
    for contact in (company, person):
        rows = erp.get(f"contacts({contact.pk})/contactsInformation").json()["value"]
        assert rows == [
            {
                "contactId": str(contact.pk),
                "contactNumber": contact.number,
                "contactName": contact.display_name,
                "contactType": contact.type,
                "relatedId": str(customer.pk),
                "relatedType": "Customer",
            }
        ]
    alone = erp.post("contacts", json={"displayName": "Kari Nordmann"}).json()
    assert erp.get(f"contacts({alone['id']})/contactsInformation").json()["value"] == []


# contactInformation resource type: GET is its one method (page 30072 "APIV2 - Contacts
# Information" allows no insert, modify or delete). The words of the refusal are those the
# demo ERP gives every read-only resource.
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_contactinformation
def test_contacts_information_is_read_only(erp):
    customer = a_customer_with_people()
    path = f"customers({customer.pk})/contactsInformation"
    for method in ("POST", "PATCH", "DELETE"):
        answer = erp.request(method, path, json={}, headers={"If-Match": "*"})
        assert answer.status_code == 405, method
        assert answer.json()["error"]["code"] == "BadRequest_MethodNotAllowed"
    missing = erp.get("customers(00000000-0000-4000-8000-00000000abcd)/contactsInformation")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Internal_RecordNotFound"
    assert erp.get(
        "items(00000000-0000-4000-8000-00000000abcd)/contactsInformation"
    ).status_code == (404)


# customer resource type: contactsInformation is a navigation of the customer, read with
# $expand as any navigation of the API ("Using OData with Business Central APIs", $expand);
# with its own $select. A navigation the table does not have is refused.
# https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_customer
def test_customers_and_contacts_expand_their_contacts_information(erp):
    customer = a_customer_with_people()
    company = company_contact(customer)
    answer = erp.get(
        "customers",
        params={
            "$filter": f"number eq '{customer.number}'",
            "$select": "number",
            "$expand": "contactsInformation($select=contactNumber,contactType)",
        },
    )
    assert answer.status_code == 200, answer.text
    (read,) = answer.json()["value"]
    assert read["number"] == customer.number
    assert {"contactNumber": company.number, "contactType": "Company"} in read[
        "contactsInformation"
    ]
    assert all(set(row) == {"contactNumber", "contactType"} for row in read["contactsInformation"])

    answer = erp.get(
        "contacts",
        params={"$filter": f"number eq '{company.number}'", "$expand": "contactsInformation"},
    )
    (read,) = answer.json()["value"]
    assert [row["relatedId"] for row in read["contactsInformation"]] == [str(customer.pk)]

    refused = erp.get("customers", params={"$expand": "picture"})
    assert refused.status_code == 400
    assert "Could not find a property named 'picture'" in refused.json()["error"]["message"]
    assert erp.get("items", params={"$expand": "contactsInformation"}).status_code == 400


# Synchronizing Contacts With Customers, Vendors, and Bank Accounts: with a business relation
# code for customers and a number series for contacts in the marketing setup, a contact card is
# created automatically for a new customer; deleting the customer leaves the contact.
# Setting Up Relationship Management, "Assigning a Number Series to Contacts": a new contact
# takes the next number of the contacts' series.
# https://learn.microsoft.com/en-us/dynamics365/business-central/marketing-synchronize-contacts-customers-vendors-bank-accounts
# https://learn.microsoft.com/en-us/dynamics365/business-central/marketing-setup-marketing
def test_a_new_customer_gets_its_company_contact_numbered_from_the_contacts_series(erp):
    last = ErpContact.objects.order_by("-number").values_list("number", flat=True).first()
    answer = erp.post(
        "customers", json={"number": "C90000", "displayName": "Nordlys AS", "email": "a@n.example"}
    )
    assert answer.status_code == 201, answer.text
    customer = ErpCustomer.objects.get(number="C90000")
    company = company_contact(customer)
    assert company.number != customer.number
    assert company.number == f"CT{int(last[2:]) + 1:06d}"
    assert (company.type, company.display_name, company.email) == (
        "Company",
        "Nordlys AS",
        "a@n.example",
    )
    assert company.company_number == company.number
    rows = erp.get(f"customers({customer.pk})/contactsInformation").json()["value"]
    assert [(row["contactNumber"], row["contactType"]) for row in rows] == [
        (company.number, "Company")
    ]

    # A contact given a number by hand keeps it; the series passes that number over.
    taken = f"CT{int(company.number[2:]) + 1:06d}"
    assert erp.post("contacts", json={"number": taken, "displayName": "X"}).status_code == 201
    person = erp.post("contacts", json={"displayName": "Kari Nordmann"}).json()
    assert person["number"] == f"CT{int(company.number[2:]) + 2:06d}"

    answer = erp.delete(f"customers({customer.pk})", headers={"If-Match": "*"})
    assert answer.status_code == 204
    company.refresh_from_db()  # the contact remains
    assert not ErpContactBusinessRelation.objects.filter(contact=company).exists()
    assert erp.get(f"contacts({company.pk})/contactsInformation").json()["value"] == []
