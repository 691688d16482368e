"""The demo CRM checks the Append and Append To privileges as Dataverse is documented to: setting
a lookup needs Append on the record that gets it and Append To on the record it refers to, held
through the user's roles or its teams' roles, at an access level that reaches both records.
Each test names the Microsoft page it follows."""

import uuid

import pytest

from demo.models import CrmAccount, CrmContact, CrmSystemUser, CrmTeam, CrmTransactionCurrency
from demo.security import (
    BASIC,
    DEEP,
    GLOBAL,
    LOCAL,
    SECURITY_READ,
    at,
    create_business_unit,
    create_role,
    role_named,
)
from demo.seed import INTEGRATION_PASSWORD, INTEGRATION_USER

pytestmark = pytest.mark.django_db
CONTACT = "Microsoft.Dynamics.CRM.contact"
TABLES = ("Account", "Contact")
# What the user may do besides binding: read, create and write accounts and contacts, read
# currencies, users, roles and teams.
BASE = at(
    GLOBAL,
    {f"prv{verb}{table}" for verb in ("Read", "Create", "Write") for table in TABLES}
    | {"prvReadTransactionCurrency"}
    | SECURITY_READ,
)
APPENDS = at(
    GLOBAL,
    {"prvAppendAccount", "prvAppendContact", "prvAppendToAccount"}
    | {"prvAppendToTransactionCurrency"},
)


def integration_user() -> CrmSystemUser:
    return CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)


def holding(privileges: dict[str, str], *, through_team: bool = False) -> CrmSystemUser:
    """The integration user with one role (its business unit's copy) granting `privileges`,
    held directly or through a team of its business unit."""
    user = integration_user()
    root_role = create_role(f"Role {uuid.uuid4().hex[:6]}", privileges)
    role = root_role.copies.get(business_unit=user.business_unit)
    if through_team:
        user.roles.clear()
        team = CrmTeam.objects.create(name="Linkers", business_unit=user.business_unit)
        team.roles.add(role)
        team.members.add(user)
    else:
        user.roles.set([role])
    return user


@pytest.fixture
def crm(demo_apps):
    with demo_apps.client(
        base_url=demo_apps.base_url + "/demo/crm/api/data/v9.2/",
        auth=(INTEGRATION_USER, INTEGRATION_PASSWORD),
    ) as client:
        yield client


def without(*names: str) -> dict[str, str]:
    return {name: depth for name, depth in (BASE | APPENDS).items() if name not in names}


def refused(answer, code: str) -> str:
    assert answer.status_code == 403, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    return error["message"]


def company(account: CrmAccount) -> dict:
    return {"parentcustomerid_account@odata.bind": f"/accounts({account.pk})"}


# "Security concepts in Microsoft Dataverse", Role-based security: Append To is what lets other
# records be associated with a record; "Troubleshoot Dataverse client errors": "Principal user
# is missing privilege on OTC for entity", -2147220960 (0x80040220).
# https://learn.microsoft.com/en-us/power-platform/admin/wp-security-cds
# https://learn.microsoft.com/en-us/troubleshoot/power-platform/power-apps/dataverse/client-errors
def test_binding_a_record_without_append_to_on_its_table_is_refused_and_writes_nothing(crm):
    user = holding(without("prvAppendToAccount"))
    fabrikam = CrmAccount.objects.create(name="Fabrikam")
    before = CrmContact.objects.count()
    message = refused(
        crm.post("contacts", json={"fullname": "Kari Nordmann", **company(fabrikam)}),
        "0x80040220",
    )
    assert message.startswith(f"Principal user (Id={user.pk}, type=8, roleCount=1, privilegeCount=")
    assert ", accessMode=4), is missing prvAppendToAccount privilege (Id=" in message
    assert message.endswith("on OTC=1 for entity 'account'.")
    assert CrmContact.objects.count() == before
    # The same contact without its company needs neither Append nor Append To.
    assert crm.post("contacts", json={"fullname": "Kari Nordmann"}).status_code == 204


# "Security concepts in Microsoft Dataverse": Append is what lets a record be associated with
# another one: the record that gets the lookup needs it, on create and on update.
# https://learn.microsoft.com/en-us/power-platform/admin/wp-security-cds
def test_setting_a_lookup_without_append_on_the_table_that_gets_it_is_refused(crm):
    holding(without("prvAppendContact"))
    fabrikam = CrmAccount.objects.create(name="Fabrikam")
    kari = CrmContact.objects.create(full_name="Kari Nordmann")
    message = refused(crm.patch(f"contacts({kari.pk})", json=company(fabrikam)), "0x80040220")
    assert "is missing prvAppendContact privilege" in message
    assert message.endswith("on OTC=2 for entity 'contact'.")
    kari.refresh_from_db()
    assert kari.parent_account is None


# "Security concepts in Microsoft Dataverse": an account's currency is a lookup like any other;
# Transaction Currency is a table the organization owns.
# https://learn.microsoft.com/en-us/power-platform/admin/wp-security-cds
def test_an_accounts_currency_needs_append_to_on_transaction_currencies(crm):
    holding(without("prvAppendToTransactionCurrency"))
    nok = CrmTransactionCurrency.objects.get(iso_currency_code="NOK")
    fabrikam = CrmAccount.objects.create(name="Fabrikam")
    bind = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({nok.pk})"}
    message = refused(crm.patch(f"accounts({fabrikam.pk})", json=bind), "0x80040220")
    assert "is missing prvAppendToTransactionCurrency privilege" in message
    assert message.endswith("on OTC=9105 for entity 'transactioncurrency'.")
    fabrikam.refresh_from_db()
    assert fabrikam.transaction_currency is None


# "How access to a record is determined", Privilege check: the privileges a user holds through
# the security roles of a team it is a member of count as its own.
# https://learn.microsoft.com/en-us/power-platform/admin/how-record-access-determined
def test_append_and_append_to_held_through_a_team_count(crm):
    holding(BASE | APPENDS, through_team=True)
    fabrikam = CrmAccount.objects.create(name="Fabrikam")
    answer = crm.post("contacts", json={"fullname": "Kari Nordmann", **company(fabrikam)})
    assert answer.status_code == 204, answer.text
    assert CrmContact.objects.get(full_name="Kari Nordmann").parent_account == fabrikam


# "How access to a record is determined": after the privilege check, the access check; the
# owner of a record has access at any level, and a role's access level reaches the records of
# the user (Basic, "User"), of the role's business unit (Local, "Business Unit"), of it and the
# units below it (Deep, "Parent: Child Business Units"), or all of them (Global,
# "Organization"). "Troubleshoot Dataverse client errors": a failed access check is "Principal
# with ID <guid> does not have CreateAccess right(s) for record with ID <guid> of entity",
# -2147187962 (0x80048306).
# https://learn.microsoft.com/en-us/power-platform/admin/how-record-access-determined
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/security-concepts
# https://learn.microsoft.com/en-us/troubleshoot/power-platform/power-apps/dataverse/client-errors
@pytest.mark.parametrize(
    ("depth", "reached"),
    [
        (BASIC, {"own"}),
        (LOCAL, {"own", "same unit"}),
        (DEEP, {"own", "same unit", "unit below"}),
        (GLOBAL, {"own", "same unit", "unit below", "unit above", "no owner"}),
    ],
)
def test_append_to_reaches_the_records_its_access_level_reaches(crm, depth, reached):
    user = holding(BASE | APPENDS | {"prvAppendToAccount": depth})
    nordics = user.business_unit
    oslo = create_business_unit("Sales Oslo", nordics)
    owners = {
        "own": user,
        "same unit": CrmSystemUser.objects.create(
            full_name="Colleague", domain_name="colleague@crm.example", business_unit=nordics
        ),
        "unit below": CrmSystemUser.objects.create(
            full_name="Oslo rep", domain_name="oslo@crm.example", business_unit=oslo
        ),
        "unit above": CrmSystemUser.objects.get(domain_name="admin@demo-crm.example"),
        "no owner": None,  # made outside the API: the root business unit's
    }
    for whose, owner in owners.items():
        account = CrmAccount.objects.create(name=f"Account of {whose}", owner=owner)
        answer = crm.post("contacts", json={"fullname": f"Contact of {whose}", **company(account)})
        if whose in reached:
            assert answer.status_code == 204, (whose, answer.text)
            continue
        assert refused(answer, "0x80048306") == (
            f"Principal with ID {user.pk} does not have AppendToAccess right(s) for record "
            f"with ID {account.pk} of entity account."
        ), whose
        assert not CrmContact.objects.filter(full_name=f"Contact of {whose}").exists()


# "How access to a record is determined", Ownership: a record created through the API is owned
# by its creator, who has access to it at any level, and so may set its lookups at Basic.
# https://learn.microsoft.com/en-us/power-platform/admin/how-record-access-determined
def test_the_creator_owns_what_it_creates_and_may_link_it_at_the_user_level(crm):
    user = holding(BASE | at(BASIC, {"prvAppendContact", "prvAppendToAccount"}))
    created = crm.post("accounts", json={"name": "Mine"})
    mine = CrmAccount.objects.get(pk=created.headers["OData-EntityId"].rsplit("(")[1][:-1])
    assert mine.owner == user
    answer = crm.post("contacts", json={"fullname": "Kari Nordmann", **company(mine)})
    assert answer.status_code == 204, answer.text
    kari = CrmContact.objects.get(full_name="Kari Nordmann")
    assert (kari.owner, kari.parent_account) == (user, mine)

    # A contact someone else owns: the Append access check on it fails.
    theirs = CrmContact.objects.create(full_name="Ola Nordmann")
    message = refused(crm.patch(f"contacts({theirs.pk})", json=company(mine)), "0x80048306")
    assert f"does not have AppendAccess right(s) for record with ID {theirs.pk}" in message


# "Use bulk operation messages", On Error behavior with standard tables: a refused target rolls
# the whole operation back, and the answer is that target's error.
# https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
def test_a_create_multiple_with_a_bind_the_user_may_not_make_writes_nothing(crm):
    holding(without("prvAppendToAccount"))
    fabrikam = CrmAccount.objects.create(name="Fabrikam")
    before = CrmContact.objects.count()
    answer = crm.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={
            "Targets": [
                {"@odata.type": CONTACT, "fullname": "Without company"},
                {"@odata.type": CONTACT, "fullname": "With company", **company(fabrikam)},
            ]
        },
    )
    assert "is missing prvAppendToAccount privilege" in refused(answer, "0x80040220")
    assert CrmContact.objects.count() == before


# "RetrieveUserPrivilegesRequest Class" and the RolePrivilege complex type: each privilege with
# its Depth (PrivilegeDepth: Basic, Local, Deep, Global), the deepest the user's roles grant.
# https://learn.microsoft.com/en-us/dotnet/api/microsoft.crm.sdk.messages.retrieveuserprivilegesrequest
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/privilegedepth
def test_retrieve_user_privileges_answers_each_privileges_depth(crm):
    user = holding(BASE | at(LOCAL, {"prvAppendToAccount"}) | at(BASIC, {"prvAppendContact"}))
    team = CrmTeam.objects.create(name="Deeper", business_unit=user.business_unit)
    deeper = create_role("Deeper", at(DEEP, {"prvAppendToAccount"}))
    team.roles.add(deeper.copies.get(business_unit=user.business_unit))
    team.members.add(user)
    answer = crm.get(f"systemusers({user.pk})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()")
    depths = {row["PrivilegeName"]: row["Depth"] for row in answer.json()["RolePrivileges"]}
    assert depths["prvAppendToAccount"] == DEEP  # the deepest of the two roles
    assert depths["prvAppendContact"] == BASIC
    assert depths["prvReadAccount"] == GLOBAL
    assert "prvAppendToTransactionCurrency" not in depths


# "Security concepts in Microsoft Dataverse": the roles Business Central's integration installs
# let its user set what it synchronizes; the demo's give its integration user what the default
# mappings set (an account's currency, a contact's company), at the Organization level.
# https://learn.microsoft.com/en-us/power-platform/admin/wp-security-cds
@pytest.mark.parametrize("role", ["Integration User", "Integration Administrator"])
def test_the_integration_roles_may_set_the_default_mappings_lookups(crm, role):
    user = integration_user()
    user.roles.set([role_named(role, user.business_unit)])
    fabrikam = CrmAccount.objects.create(name="Fabrikam")  # the root business unit's
    nok = CrmTransactionCurrency.objects.get(iso_currency_code="NOK")
    bind = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({nok.pk})"}
    assert crm.patch(f"accounts({fabrikam.pk})", json=bind).status_code == 204
    answer = crm.post("contacts", json={"fullname": "Kari Nordmann", **company(fabrikam)})
    assert answer.status_code == 204, answer.text
