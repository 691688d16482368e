"""The demo CRM answers as the Dataverse Web API is documented to: each test is one documented
behaviour, with the Microsoft page it comes from. Where the demo goes beyond the documentation
the test says so."""

import uuid

import pytest

from demo.models import CrmAccount, CrmRole, CrmSystemUser, CrmTeam, CrmTransactionCurrency
from demo.security import (
    INTEGRATION_USER_ROLE,
    SYSTEM_ADMINISTRATOR_TEMPLATE,
    create_role,
    role_named,
    root_business_unit,
)
from demo.seed import INTEGRATION_PASSWORD, INTEGRATION_USER, NORDICS

pytestmark = pytest.mark.django_db

COMMA_EXPECTED = (
    "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two elements in "
    "an array and properties of an object must be separated by commas."
)


def integration_user() -> CrmSystemUser:
    return CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)


def as_integration_user(demo_apps):
    return demo_apps.client(
        base_url=demo_apps.base_url + "/demo/crm/api/data/v9.2/",
        auth=(INTEGRATION_USER, INTEGRATION_PASSWORD),
    )


# -- the In query function ---------------------------------------------------------------------
# "Filter rows using OData", Manage single quotes:
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/filter-rows
def test_in_takes_property_values_as_a_json_array_of_strings(demo_apps):
    odd = 'O\'Brien "Bob" Ærø'
    CrmAccount.objects.create(name="Plain", account_number="A1")
    CrmAccount.objects.create(name="Odd", account_number=odd)
    with demo_apps.crm() as crm:
        answer = crm.get(
            "accounts",
            params={
                "$select": "accountnumber",
                "$filter": "Microsoft.Dynamics.CRM.In(PropertyName='accountnumber',"
                'PropertyValues=["A1","O\'Brien \\"Bob\\" Ærø","Z, and Y"])',
            },
        )
    assert answer.status_code == 200, answer.text
    assert sorted(row["accountnumber"] for row in answer.json()["value"]) == ["A1", odd]


# "Filter rows using OData": filter conditions on string values are case insensitive, for eq
# and for the In function alike.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/filter-rows
def test_text_is_compared_without_regard_to_case(demo_apps):
    CrmAccount.objects.create(name="Fabrikam Nord", account_number="fab-10")
    CrmAccount.objects.create(name="Contoso", account_number="CON-20")
    with demo_apps.crm() as crm:
        by_eq = crm.get(
            "accounts", params={"$select": "name", "$filter": "accountnumber eq 'FAB-10'"}
        )
        by_in = crm.get(
            "accounts",
            params={
                "$select": "accountnumber",
                "$filter": "Microsoft.Dynamics.CRM.In(PropertyName='accountnumber',"
                'PropertyValues=["Fab-10","con-20","nobody"])',
            },
        )
        grouped = crm.get(
            "accounts",
            params={
                "$select": "name",
                "$filter": "(name eq 'fabrikam nord' or name eq 'CONTOSO')",
            },
        )
    assert [row["name"] for row in by_eq.json()["value"]] == ["Fabrikam Nord"]
    assert sorted(row["accountnumber"] for row in by_in.json()["value"]) == ["CON-20", "fab-10"]
    assert sorted(row["name"] for row in grouped.json()["value"]) == ["Contoso", "Fabrikam Nord"]


# "Filter rows using OData", Manage single quotes: the same query with parameter aliases.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/filter-rows
def test_in_takes_its_parameters_as_aliases(demo_apps):
    for name in ("OBrian", "O'Brian", "Smith"):
        CrmAccount.objects.create(name=name, account_number=name)
    with demo_apps.crm() as crm:
        answer = crm.get(
            "accounts",
            params={
                "$select": "name",
                "$filter": "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)",
                "@p1": "'name'",
                "@p2": '["OBrian","OBryan","O\'Brian","O\'Bryan"]',
            },
        )
    assert sorted(row["name"] for row in answer.json()["value"]) == ["O'Brian", "OBrian"]


# "Filter rows using OData", Manage single quotes: a value with an apostrophe in single quotes
# is refused as invalid JSON.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/filter-rows
def test_in_refuses_a_single_quoted_value_with_an_apostrophe_as_invalid_json(demo_apps):
    CrmAccount.objects.create(name="O'Brian", account_number="O'1")
    with demo_apps.crm() as crm:
        refused = crm.get(
            "accounts",
            params={
                "$filter": "Microsoft.Dynamics.CRM.In(PropertyName='name',"
                "PropertyValues=['OBrian','O''Brian'])"
            },
        )
    assert refused.status_code == 400
    # The page gives the message, not the code: the code is the one of other query errors.
    assert refused.json() == {"error": {"code": "0x80060888", "message": COMMA_EXPECTED}}


# "In Function" (Web API query function reference): the syntax example writes the values in
# single quotes, which Dataverse takes when they hold no apostrophe.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/in
def test_in_takes_values_in_single_quotes_without_apostrophes(demo_apps):
    CrmAccount.objects.create(name="Fabrikam", account_number="F1")
    with demo_apps.crm() as crm:
        answer = crm.get(
            "accounts",
            params={
                "$filter": "Microsoft.Dynamics.CRM.In(PropertyName='accountnumber',"
                "PropertyValues=['F1','F2'])"
            },
        )
    assert [row["name"] for row in answer.json()["value"]] == ["Fabrikam"]


# -- error bodies ------------------------------------------------------------------------------
# "Troubleshoot Dataverse client errors": Principal user is missing privilege on OTC for
# entity, -2147220960 (0x80040220).
# https://learn.microsoft.com/en-us/troubleshoot/power-platform/power-apps/dataverse/client-errors
def test_a_missing_privilege_is_403_0x80040220_naming_the_principal_and_the_privilege(demo_apps):
    with as_integration_user(demo_apps) as crm:
        refused = crm.post("products", json={"name": "Bicycle", "productnumber": "1000"})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "0x80040220"
    assert error["message"].startswith(f"Principal user (Id={integration_user().pk}, type=8, ")
    assert "is missing prvCreateProduct privilege" in error["message"]
    assert error["message"].endswith("on OTC=1024 for entity 'product'.")


# "Troubleshoot Dataverse client errors": <Entity> With Ids = <guid> Do Not Exist,
# -2147220969 (0x80040217).
# https://learn.microsoft.com/en-us/troubleshoot/power-platform/power-apps/dataverse/client-errors
def test_a_missing_record_is_404_0x80040217(demo_apps):
    missing = uuid.uuid4()
    with demo_apps.crm() as crm:
        answer = crm.get(f"accounts({missing})")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"code": "0x80040217", "message": f"account With Id = {missing} Does Not Exist"}
    }


# "Troubleshoot Dataverse Web API client errors": Resource not found for the segment.
# https://learn.microsoft.com/en-us/troubleshoot/power-platform/dataverse/dataverse-web-api-and-sdk/web-api-client-errors
def test_an_unknown_entity_set_is_404_resource_not_found_for_the_segment(demo_apps):
    with demo_apps.crm() as crm:
        answer = crm.get("Account")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"code": "0x8006088a", "message": "Resource not found for the segment 'Account'."}
    }


# "Troubleshoot Dataverse Web API client errors": Could not find a property named
# '{property name}' on type 'Microsoft.Dynamics.CRM.{entity name}'.
# https://learn.microsoft.com/en-us/troubleshoot/power-platform/dataverse/dataverse-web-api-and-sdk/web-api-client-errors
@pytest.mark.parametrize(
    "params",
    [
        {"$select": "Name"},
        # Refused for the query, whether or not any record matches.
        {"$select": "Name", "$filter": "accountnumber eq 'no such account'"},
        {"$filter": "Name eq 'x'"},
        {"$filter": "Microsoft.Dynamics.CRM.In(PropertyName='Name',PropertyValues=[\"x\"])"},
    ],
)
def test_an_unknown_property_is_400_could_not_find_a_property_named(demo_apps, params):
    with demo_apps.crm() as crm:
        answer = crm.get("accounts", params=params)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "code": "0x0",
            "message": "Could not find a property named 'Name' on type "
            "'Microsoft.Dynamics.CRM.account'.",
        }
    }


# -- security: roles, teams, users -------------------------------------------------------------
# "Security Role (Role) table/entity reference": roletemplateid, parentrootroleid,
# businessunitid; a role of the root business unit is copied into the others.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/role
def test_a_role_has_a_template_and_a_root_role_kept_by_its_business_unit_copies(demo_apps):
    admin = role_named("System Administrator")
    with demo_apps.crm() as crm:
        answer = crm.get(
            "roles",
            params={
                "$select": "name,_roletemplateid_value,_parentrootroleid_value,"
                "_businessunitid_value",
                "$filter": "name eq 'System Administrator'",
            },
        )
    rows = {row["roleid"]: row for row in answer.json()["value"]}
    assert len(rows) == 2  # the root business unit's role and its Nordic copy
    root = rows.pop(str(admin.pk))
    (copy,) = rows.values()
    assert (
        root["_roletemplateid_value"]
        == copy["_roletemplateid_value"]
        == str(SYSTEM_ADMINISTRATOR_TEMPLATE)
    )
    assert root["_parentrootroleid_value"] == copy["_parentrootroleid_value"] == str(admin.pk)
    assert root["_businessunitid_value"] == str(root_business_unit().pk)
    assert copy["_businessunitid_value"] == str(integration_user().business_unit_id)


# "User (SystemUser) table/entity reference": accessmode, islicensed, isdisabled, and the
# systemuserroles_association relationship.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/systemuser
# "Join tables using OData": $expand of a collection-valued navigation property with $select.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/join-tables
def test_a_user_has_an_access_mode_a_license_and_roles_to_expand(demo_apps):
    user = integration_user()
    assert user.business_unit.name == NORDICS
    with demo_apps.crm() as crm:
        answer = crm.get(
            f"systemusers({user.pk})",
            params={
                "$select": "fullname,accessmode,islicensed,isdisabled",
                "$expand": "systemuserroles_association($select=name,_parentrootroleid_value)",
            },
        )
    body = answer.json()
    assert (body["accessmode"], body["islicensed"], body["isdisabled"]) == (4, False, False)
    (role,) = body["systemuserroles_association"]
    assert role["name"] == "Integration User"
    assert role["roleid"] != str(INTEGRATION_USER_ROLE)  # the Nordic copy...
    assert role["_parentrootroleid_value"] == str(INTEGRATION_USER_ROLE)  # ...of the root role
    # An expanded record carries its version, as every record read does.
    assert set(role) == {"@odata.etag", "roleid", "name", "_parentrootroleid_value", "modifiedon"}


# "Query data using the Web API": a filtered collection is the collection-valued navigation
# property of one record; "Team table/entity reference": teammembership_association and
# teamroles_association.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query-data-web-api
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/team
def test_a_users_teams_and_their_roles_are_read_through_their_relationships(demo_apps):
    user = integration_user()
    team = CrmTeam.objects.create(name="Integration team", business_unit=user.business_unit)
    team.roles.add(role_named("Integration Administrator", user.business_unit))
    team.members.add(user)
    with demo_apps.crm() as crm:
        teams = crm.get(
            f"systemusers({user.pk})/teammembership_association",
            params={"$select": "name", "$expand": "teamroles_association($select=name)"},
        ).json()["value"]
        members = crm.get(f"teams({team.pk})/teammembership_association").json()["value"]
        roles = crm.get(f"teams({team.pk})/teamroles_association").json()["value"]
    by_name = {row["name"]: row["teamroles_association"] for row in teams}
    assert set(by_name) == {NORDICS, "Integration team"}  # the business unit's default team too
    assert [r["name"] for r in by_name["Integration team"]] == ["Integration Administrator"]
    assert by_name[NORDICS] == []
    assert [m["systemuserid"] for m in members] == [str(user.pk)]
    assert [r["roleid"] for r in roles] == [
        str(role_named("Integration Administrator", user.business_unit).pk)
    ]


# "Join tables using OData", Supported relationship types for $expand: many-to-many
# relationships cannot be nested. The page does not give Dataverse's words for it.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/join-tables
def test_a_nested_expand_of_many_to_many_relationships_is_refused(demo_apps):
    with demo_apps.crm() as crm:
        answer = crm.get(
            f"systemusers({integration_user().pk})",
            params={"$expand": "teammembership_association($expand=teamroles_association)"},
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "0x80060888"


# "RetrieveUserPrivilegesRequest Class": the privileges a user has through their roles, and
# inherited privileges from their team membership.
# https://learn.microsoft.com/en-us/dotnet/api/microsoft.crm.sdk.messages.retrieveuserprivilegesrequest
def test_retrieve_user_privileges_counts_the_roles_of_the_users_teams(demo_apps):
    user = integration_user()
    url = f"systemusers({user.pk})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"
    with as_integration_user(demo_apps) as crm:
        before = {p["PrivilegeName"] for p in crm.get(url).json()["RolePrivileges"]}
        assert "prvCreateProduct" not in before
        team = CrmTeam.objects.create(name="Product team", business_unit=user.business_unit)
        team.roles.add(create_role("Product manager", {"prvCreateProduct", "prvWriteProduct"}))
        team.members.add(user)
        after = crm.get(url).json()["RolePrivileges"]
        # What the team's role grants, the user may now do.
        created = crm.post("products", json={"name": "Bicycle", "productnumber": "1000"})
    assert {p["PrivilegeName"] for p in after} == before | {"prvCreateProduct", "prvWriteProduct"}
    assert {p["BusinessUnitId"] for p in after} == {str(user.business_unit_id)}
    assert created.status_code == 204


# "RetrieveUserPrivilegesRequest Class" and "Security Role (Role) table/entity reference": a
# role made from the System Administrator template grants every privilege, whatever its name.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/role
def test_a_role_of_the_system_administrator_template_grants_every_privilege(demo_apps):
    user = integration_user()
    admin = role_named("System Administrator", user.business_unit)
    root = admin.parent_root_role
    root.name, root.privileges = "Systemadministrator", []
    root.save()
    admin.refresh_from_db()
    assert admin.name == "Systemadministrator"  # the copy follows its root role
    user.roles.set([admin])
    with as_integration_user(demo_apps) as crm:
        created = crm.post("products", json={"name": "Bicycle", "productnumber": "1000"})
    assert created.status_code == 204


# "Web API Properties", Lookup properties: a lookup property may be used in a query filter; a
# role's business unit is one.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/web-api-properties#lookup-properties
def test_the_roles_of_a_business_unit_are_filtered_by_its_lookup_property(demo_apps):
    nordics = integration_user().business_unit
    with demo_apps.crm() as crm:
        answer = crm.get(
            "roles",
            params={"$select": "name", "$filter": f"_businessunitid_value eq {nordics.pk}"},
        )
    assert answer.status_code == 200, answer.text
    found = {row["roleid"] for row in answer.json()["value"]}
    assert found == {
        str(pk) for pk in CrmRole.objects.filter(business_unit=nordics).values_list("pk", flat=True)
    }
    assert str(role_named("Integration User").pk) not in found  # the root role is elsewhere


# Beyond the documentation: the demo CRM changes users, roles and teams on its pages only,
# through its API neither one by one nor in bulk.
@pytest.mark.parametrize("path", ["roles", "roles/Microsoft.Dynamics.CRM.CreateMultiple"])
def test_the_security_tables_are_read_only_through_the_api(demo_apps, path):
    record = {"name": "Sneaky"}
    with demo_apps.crm() as crm:
        refused = crm.post(path, json={"Targets": [record]} if "Multiple" in path else record)
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "MethodNotAllowed"
    assert not CrmRole.objects.filter(name="Sneaky").exists()


# -- required columns --------------------------------------------------------------------------
# "Currency (TransactionCurrency) table/entity reference": ExchangeRate's RequiredLevel is
# SystemRequired, so a currency is not created without it; its words are the demo's own.
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/transactioncurrency
def test_a_transaction_currency_is_not_created_without_its_exchange_rate(demo_apps):
    with demo_apps.crm() as crm:
        refused = crm.post(
            "transactioncurrencies", json={"isocurrencycode": "PLN", "currencyname": "Zloty"}
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == {
            "code": "0x80040203",
            "message": "A value for the required column 'exchangerate' (Exchange Rate) of the "
            "transactioncurrency table is missing.",
        }
        assert not CrmTransactionCurrency.objects.filter(iso_currency_code="PLN").exists()
        created = crm.post(
            "transactioncurrencies",
            json={"isocurrencycode": "PLN", "currencyname": "Zloty", "exchangerate": 11.6},
        )
        assert created.status_code == 204, created.text
        # An update need not send it again.
        pln = CrmTransactionCurrency.objects.get(iso_currency_code="PLN")
        changed = crm.patch(
            f"transactioncurrencies({pln.pk})", json={"currencyname": "Polish zloty"}
        )
        assert changed.status_code == 204, changed.text
