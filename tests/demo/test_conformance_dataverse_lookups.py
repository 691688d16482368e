"""The demo CRM's lookups behave as the Dataverse Web API documents them: each test names the
behaviour and, in a comment, the Microsoft documentation page it follows."""

import uuid

import pytest

from demo.models import CrmAccount, CrmContact, CrmTransactionCurrency

pytestmark = pytest.mark.django_db

ALL_ANNOTATIONS = {"Prefer": 'odata.include-annotations="*"'}
ACCOUNT = "Microsoft.Dynamics.CRM.account"
CONTACT = "Microsoft.Dynamics.CRM.contact"
UNKNOWN = "00000000-0000-4000-8000-00000000abcd"


@pytest.fixture
def crm(demo_apps):
    with demo_apps.crm() as client:
        yield client


@pytest.fixture
def nok():
    return CrmTransactionCurrency.objects.get(iso_currency_code="NOK")


def created(answer) -> uuid.UUID:
    """The id of a record created without return=representation (OData-EntityId)."""
    assert answer.status_code == 204, answer.text
    return uuid.UUID(answer.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")"))


# Create a table row using the Web API, "Associate table rows on create":
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/create-entity-web-api#associate-table-rows-on-create
def test_associate_table_rows_on_create_with_odata_bind(crm, nok):
    account_id = created(
        crm.post(
            "accounts",
            json={
                "name": "Fjord AS",
                "transactioncurrencyid@odata.bind": f"/transactioncurrencies({nok.pk})",
            },
        )
    )
    assert CrmAccount.objects.get(pk=account_id).transaction_currency == nok
    # Without the leading slash, as the page's InitializeFrom example writes it.
    contact_id = created(
        crm.post(
            "contacts",
            json={
                "fullname": "Kari Nordmann",
                "parentcustomerid_account@odata.bind": f"accounts({account_id})",
            },
        )
    )
    assert CrmContact.objects.get(pk=contact_id).parent_account_id == account_id


# Associate and disassociate table rows using the Web API, "Associate tables on update":
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
def test_associate_on_update_with_odata_bind(crm, nok):
    account = CrmAccount.objects.create(name="Fjord AS")
    answer = crm.patch(
        f"accounts({account.pk})",
        json={"transactioncurrencyid@odata.bind": f"/transactioncurrencies({nok.pk})"},
        headers={"If-Match": "*"},
    )
    assert answer.status_code == 204
    account.refresh_from_db()
    assert account.transaction_currency == nok


# Associate and disassociate table rows using the Web API, "Disassociate tables on update":
# null, with the @odata.bind annotation or with the bare navigation property name.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
@pytest.mark.parametrize("key", ["transactioncurrencyid@odata.bind", "transactioncurrencyid"])
def test_disassociate_on_update_by_setting_null(crm, nok, key):
    account = CrmAccount.objects.create(name="Fjord AS", transaction_currency=nok)
    answer = crm.patch(f"accounts({account.pk})", json={key: None}, headers={"If-Match": "*"})
    assert answer.status_code == 204
    account.refresh_from_db()
    assert account.transaction_currency is None


# Web API Navigation Properties, "Multi-table lookups": setting one of the navigation
# properties of a multi-table lookup sets the others to null.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/web-api-navigation-properties#multi-table-lookups
def test_multi_table_lookup_setting_one_navigation_property_clears_the_other(crm):
    account = CrmAccount.objects.create(name="Fjord AS")
    manager = CrmContact.objects.create(full_name="Ola Nordmann")
    contact = CrmContact.objects.create(full_name="Kari Nordmann", parent_account=account)
    answer = crm.patch(
        f"contacts({contact.pk})",
        json={"parentcustomerid_contact@odata.bind": f"/contacts({manager.pk})"},
        headers={"If-Match": "*"},
    )
    assert answer.status_code == 204
    contact.refresh_from_db()
    assert (contact.parent_account, contact.parent_contact) == (None, manager)
    read = crm.get(f"contacts({contact.pk})", headers=ALL_ANNOTATIONS).json()
    assert read["_parentcustomerid_value"] == str(manager.pk)
    assert read["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"


# Web API Properties, "Lookup properties": a lookup column reads as the lookup property
# _<name>_value, a GUID; an account has no currency code column of its own.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/web-api-properties#lookup-properties
def test_lookup_properties_read_as_underscore_value_guids(crm, nok):
    with_currency = CrmAccount.objects.create(name="Fjord AS", transaction_currency=nok)
    without = CrmAccount.objects.create(name="Nowhere Ltd")
    read = crm.get(f"accounts({with_currency.pk})").json()
    assert read["_transactioncurrencyid_value"] == str(nok.pk)
    assert "isocurrencycode" not in read and "transactioncurrencyid" not in read
    # No annotations unless asked for, but the record's version (Web API "Perform
    # conditional operations using the Web API": every record read carries @odata.etag).
    assert [key for key in read if "@" in key] == ["@odata.etag"]
    assert crm.get(f"accounts({without.pk})").json()["_transactioncurrencyid_value"] is None


# Select columns using OData, "Lookup property data" and "Formatted values": with
# Prefer: odata.include-annotations, a lookup property comes with the related table's logical
# name, the navigation property and the related record's name.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/select-columns#lookup-property-data
def test_lookup_property_data_comes_with_the_annotations_asked_for(crm, nok):
    account = CrmAccount.objects.create(name="Fjord AS", transaction_currency=nok)
    contact = CrmContact.objects.create(full_name="Kari Nordmann", parent_account=account)

    answer = crm.get(
        "contacts",
        params={
            "$select": "fullname,_parentcustomerid_value",
            "$filter": f"contactid eq {contact.pk}",
        },
        headers=ALL_ANNOTATIONS,
    )
    assert answer.headers["Preference-Applied"] == 'odata.include-annotations="*"'
    (row,) = answer.json()["value"]
    lookup = "_parentcustomerid_value"
    assert row[lookup] == str(account.pk)
    assert row[f"{lookup}@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert row[f"{lookup}@Microsoft.Dynamics.CRM.associatednavigationproperty"] == (
        "parentcustomerid_account"
    )
    assert row[f"{lookup}@OData.Community.Display.V1.FormattedValue"] == "Fjord AS"

    only_table = {"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'}
    read = crm.get(f"accounts({account.pk})", headers=only_table).json()
    assert read["_transactioncurrencyid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == (
        "transactioncurrency"
    )
    assert "_transactioncurrencyid_value@OData.Community.Display.V1.FormattedValue" not in read


# Web API Properties, "Lookup properties": lookup properties may be used in a query filter to
# match the records associated to one record; Dataverse's In function takes them too.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/web-api-properties#lookup-properties
def test_filter_on_a_lookup_property(crm, nok):
    eur = CrmTransactionCurrency.objects.get(iso_currency_code="EUR")
    in_nok = CrmAccount.objects.create(name="Fjord AS", transaction_currency=nok)
    CrmAccount.objects.create(name="Euro GmbH", transaction_currency=eur)
    none = CrmAccount.objects.create(name="Nowhere Ltd")

    def names(condition: str) -> set[str]:
        answer = crm.get("accounts", params={"$filter": condition, "$select": "name"})
        assert answer.status_code == 200, answer.text
        return {row["name"] for row in answer.json()["value"]}

    assert names(f"_transactioncurrencyid_value eq {nok.pk}") == {in_nok.name}
    assert none.name in names("_transactioncurrencyid_value eq null")
    in_either = (
        "Microsoft.Dynamics.CRM.In(PropertyName='_transactioncurrencyid_value',"
        f"PropertyValues=['{nok.pk}','{eur.pk}'])"
    )
    assert {in_nok.name, "Euro GmbH"} <= names(in_either)
    assert none.name not in names(in_either)
    # PropertyValues as the JSON array of strings the In function documents, here an alias.
    aliased = crm.get(
        "accounts",
        params={
            "$select": "name",
            "$filter": "Microsoft.Dynamics.CRM.In(PropertyName='_transactioncurrencyid_value',"
            "PropertyValues=@ids)",
            "@ids": f'["{nok.pk}"]',
        },
    )
    assert {row["name"] for row in aliased.json()["value"]} == {in_nok.name}


# Web API Properties, "Lookup properties": lookup properties are computed and read-only; the
# navigation property they represent sets them. (The words of the refusal are the demo's.)
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/web-api-properties#lookup-properties
def test_a_lookup_property_is_read_only(crm, nok):
    answer = crm.post(
        "accounts", json={"name": "Fjord AS", "_transactioncurrencyid_value": str(nok.pk)}
    )
    assert answer.status_code == 400
    assert "transactioncurrencyid@odata.bind" in answer.json()["error"]["message"]
    assert not CrmAccount.objects.filter(name="Fjord AS").exists()


# Troubleshoot Dataverse Web API client errors, "Error identified in Payload provided by the
# user for Entity": parentcustomerid is a lookup column, not a navigation property; the
# customer lookup is bound through parentcustomerid_account (or _contact).
# https://learn.microsoft.com/en-us/troubleshoot/power-platform/power-apps/dataverse/web-api-client-errors
def test_an_undeclared_navigation_property_is_refused_as_a_payload_error(crm):
    account = CrmAccount.objects.create(name="Fjord AS")
    answer = crm.post(
        "contacts",
        json={
            "fullname": "Kari Nordmann",
            "parentcustomerid@odata.bind": f"accounts({account.pk})",
        },
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "0x80048d19"
    assert error["message"].startswith(
        "Error identified in Payload provided by the user for Entity :'contacts'"
    )
    assert (
        "An undeclared property 'parentcustomerid' which only has property annotations in the "
        "payload but no property value was found in the payload."
    ) in error["message"]
    assert not CrmContact.objects.filter(full_name="Kari Nordmann").exists()


# Troubleshoot Dataverse Web API client errors, "Invalid property {property name} was found in
# entity": an account has no isocurrencycode column (its currency is a lookup).
# https://learn.microsoft.com/en-us/troubleshoot/power-platform/power-apps/dataverse/web-api-client-errors
def test_a_property_the_table_does_not_have_is_refused(crm):
    answer = crm.post("accounts", json={"name": "Fjord AS", "isocurrencycode": "NOK"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith(
        "An error occurred while validating input parameters: Microsoft.Crm.CrmException: "
        "Invalid property 'isocurrencycode' was found in entity 'Microsoft.Dynamics.CRM.account'."
    )


# Web service error codes, ObjectDoesNotExist (0x80040217): binding a record that does not
# exist. (The message names the table and the id, as the demo's other not-found answers do.)
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/web-service-error-codes
def test_binding_a_record_that_does_not_exist_is_refused_with_object_does_not_exist(crm):
    answer = crm.post(
        "accounts",
        json={
            "name": "Fjord AS",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({UNKNOWN})",
        },
    )
    assert answer.status_code == 404
    assert answer.json()["error"] == {
        "code": "0x80040217",
        "message": f"transactioncurrency With Id = {UNKNOWN} Does Not Exist",
    }
    assert not CrmAccount.objects.filter(name="Fjord AS").exists()


# Select columns using OData, "Lookup property data": a lookup is a single-valued
# navigation property, which $select does not take (its lookup property it does); the answer
# is the documented one for a property the type does not have (Troubleshoot Dataverse Web API
# client errors, "Could not find a property named").
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/select-columns#lookup-property-data
def test_a_navigation_property_cannot_be_selected(crm):
    answer = crm.get("accounts", params={"$select": "name,transactioncurrencyid"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "Could not find a property named 'transactioncurrencyid' on type "
        "'Microsoft.Dynamics.CRM.account'."
    )


# Beyond the demo: Dataverse also expands a single-valued navigation property ("Join tables
# using OData"); the demo says so, and names the lookup property whose annotations name the
# related record.
def test_the_demo_says_it_does_not_expand_a_lookup(crm):
    answer = crm.get(
        "accounts", params={"$expand": "transactioncurrencyid($select=isocurrencycode)"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "0x80060888",
        "message": "The demo CRM does not expand the lookup 'transactioncurrencyid': select "
        "'_transactioncurrencyid_value' with Prefer: odata.include-annotations instead.",
    }


# Use bulk operation messages (CreateMultiple, UpdateMultiple): each target is a record as a
# create or update takes it, its lookups bound with @odata.bind.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/bulk-operations
def test_bulk_operation_targets_bind_lookups_as_a_create_does(crm, nok):
    account = CrmAccount.objects.create(name="Fjord AS")
    answer = crm.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={
            "Targets": [
                {
                    "@odata.type": CONTACT,
                    "fullname": "Kari Nordmann",
                    "parentcustomerid_account@odata.bind": f"/accounts({account.pk})",
                }
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    (contact_id,) = answer.json()["Ids"]
    assert CrmContact.objects.get(pk=contact_id).parent_account == account

    answer = crm.post(
        "accounts/Microsoft.Dynamics.CRM.UpdateMultiple",
        json={
            "Targets": [
                {
                    "@odata.type": ACCOUNT,
                    "accountid": str(account.pk),
                    "transactioncurrencyid@odata.bind": f"/transactioncurrencies({nok.pk})",
                }
            ]
        },
    )
    assert answer.status_code == 204, answer.text
    account.refresh_from_db()
    assert account.transaction_currency == nok


# Transaction Currency (currency) table: every record of a table with money columns has its
# transaction currency, and the organization's base currency (Organization.BaseCurrencyId) is
# the one the others are quoted in. A record created without a currency gets the creating
# user's own currency, else the base currency; the page does not spell that filling in, and
# the demo's users have no currency of their own: a new account gets DEMO_CRM_BASE_CURRENCY.
# A currency bound, or cleared with null on purpose, is kept; so is one on update.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/transaction-currency-currency-entity
def test_an_account_created_without_a_currency_gets_the_base_currency(crm, nok, settings):
    base = CrmTransactionCurrency.objects.get(iso_currency_code=settings.DEMO_CRM_BASE_CURRENCY)
    plain = created(crm.post("accounts", json={"name": "Fjord AS"}))
    assert CrmAccount.objects.get(pk=plain).transaction_currency == base
    read = crm.get(f"accounts({plain})", params={"$select": "_transactioncurrencyid_value"})
    assert read.json()["_transactioncurrencyid_value"] == str(base.pk)

    bound = created(
        crm.post(
            "accounts",
            json={
                "name": "Nordlys AS",
                "transactioncurrencyid@odata.bind": f"/transactioncurrencies({nok.pk})",
            },
        )
    )
    assert CrmAccount.objects.get(pk=bound).transaction_currency == nok
    cleared = created(
        crm.post("accounts", json={"name": "Tromsø AS", "transactioncurrencyid@odata.bind": None})
    )
    assert CrmAccount.objects.get(pk=cleared).transaction_currency is None

    answer = crm.post(
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": [{"@odata.type": ACCOUNT, "name": "Bulk AS"}]},
    )
    assert answer.status_code == 200, answer.text
    (bulk,) = answer.json()["Ids"]
    assert CrmAccount.objects.get(pk=bulk).transaction_currency == base

    untouched = CrmAccount.objects.create(name="Old AS")
    assert (
        crm.patch(
            f"accounts({untouched.pk})", json={"name": "Old ASA"}, headers={"If-Match": "*"}
        ).status_code
        == 204
    )
    assert CrmAccount.objects.get(pk=untouched.pk).transaction_currency is None

    settings.DEMO_CRM_BASE_CURRENCY = "XTS"  # a base currency the CRM does not have (yet)
    assert (
        CrmAccount.objects.get(
            pk=created(crm.post("accounts", json={"name": "Test AS"}))
        ).transaction_currency
        is None
    )
