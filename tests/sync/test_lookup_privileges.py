"""Setting a lookup in Dataverse needs Append on the mapping's table and Append To on the table
the lookup refers to. The setup check finds a missing one before a job writes anything, for the
mappings whose field mappings hold lookups; a write the CRM refuses for one at sync time is a
permission problem, told in the same words."""

import pytest
from django.urls import reverse

from demo.models import CrmAccount, CrmContact, CrmRole, CrmSystemUser
from demo.security import BASIC, role_named
from demo.seed import INTEGRATION_USER
from errors.models import Category, SyncError
from errors.remedies import remedy_for
from sync import classify
from sync.connectors import ConnectorError, connector_for
from sync.health import check_connection, job_blockers
from sync.models import SyncJob

pytestmark = pytest.mark.django_db
CRM = "Dynamics 365 Sales"


def integration_role() -> CrmRole:
    """The root Integration User role, whose business unit copy the integration user holds."""
    return role_named("Integration User")


def set_privilege(name: str, depth: str | None) -> None:
    """Change the root role as an administrator does; its copies follow."""
    role = integration_role()
    role.privileges = {k: v for k, v in role.privileges.items() if k != name}
    if depth is not None:
        role.privileges[name] = depth
    role.save()


def missing(demo_apps) -> dict[tuple[str, str], object]:
    return {
        (f.mapping, f.privilege): f
        for f in check_connection(demo_apps.connection)
        if f.code == "missing_privilege" and f.severity == "error"
    }


def test_the_default_mappings_lookups_need_append_and_append_to_which_the_role_grants(demo_apps):
    found = missing(demo_apps)
    assert not [key for key in found if "Append" in key[1]]
    set_privilege("prvAppendToAccount", None)
    set_privilege("prvAppendAccount", None)
    found = missing(demo_apps)
    to_account = found[("CONTACT", "prvAppendToAccount")]
    assert (to_account.side, to_account.app, to_account.entity) == ("destination", CRM, "accounts")
    assert to_account.message == (
        "The integration user is missing the prvAppendToAccount privilege (Append To on "
        "Account): mapping CONTACT needs it to set the Company lookup of contacts "
        "(parentcustomerid_account) to accounts records in Dynamics 365 Sales."
    )
    assert to_account.remedy == (
        "In Dynamics 365 Sales, give the integration user's security role Append To on "
        "Account, at the Organization level, or assign it a role that has it (the Integration "
        "Administrator role does)."
    )
    assert to_account.category == Category.PERMISSION and to_account.blocks_jobs
    # CUSTOMER sets the account's currency: Append on accounts.
    append = found[("CUSTOMER", "prvAppendAccount")]
    assert "needs it to set the Currency lookup of accounts (transactioncurrencyid)" in (
        append.message
    )
    assert "(Append on Account)" in append.message
    # ITEM-PRODUCT and CURRENCY set no lookup.
    needing = {mapping for mapping, privilege in found if privilege.startswith("prvAppend")}
    assert needing == {"CUSTOMER", "CONTACT"}


def test_a_job_that_sets_no_lookup_needs_neither(demo_apps):
    set_privilege("prvAppendToTransactionCurrency", None)
    mapping = demo_apps.mapping("CUSTOMER")
    with (
        connector_for(demo_apps.connection, "source") as source,
        connector_for(demo_apps.connection, "destination") as destination,
    ):
        to_crm = job_blockers(mapping, "to_destination", source, destination)
        from_crm = job_blockers(mapping, "from_destination", source, destination)
    assert [f.privilege for f in to_crm] == ["prvAppendToTransactionCurrency"]
    assert from_crm == []  # reading the currency back binds nothing

    # A lookup field mapping switched off sets nothing either.
    for spec in mapping.field_mappings:
        if spec.get("type") == "lookup":
            spec["enabled"] = False
    mapping.save()
    with (
        connector_for(demo_apps.connection, "source") as source,
        connector_for(demo_apps.connection, "destination") as destination,
    ):
        assert job_blockers(mapping, "to_destination", source, destination) == []


def test_a_missing_append_to_blocks_the_job_with_one_permission_entry(demo_apps):
    assert demo_apps.run("CUSTOMER", SyncJob.Kind.FULL).status == SyncJob.Status.SUCCEEDED
    set_privilege("prvAppendToAccount", None)
    contacts = CrmContact.objects.count()
    job = demo_apps.run("CONTACT", SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.FAILED
    entry = SyncError.objects.get(job=job)
    assert entry.category == Category.PERMISSION
    assert entry.message == (
        f"Principal user (Id={CrmSystemUser.objects.get(domain_name=INTEGRATION_USER).pk}, "
        "type=8) is missing prvAppendToAccount privilege for entity 'account': mapping CONTACT "
        "needs it, so the job did not start."
    )
    assert "give the integration user's security role Append To on Account" in entry.detail
    assert CrmContact.objects.count() == contacts  # nothing written
    remedy = remedy_for(entry)
    assert "do not grant Append To on Account (prvAppendToAccount)" in remedy.cause
    assert (
        "Give the integration user's security role Append To on Account, at the Organization "
        "level, or assign it a role that has it (the Integration Administrator role does)."
    ) in remedy.steps


def test_a_write_the_crm_refuses_for_append_to_is_a_permission_problem_in_the_same_words(
    demo_apps,
):
    """As a job's write is refused when the role loses the privilege after the setup check."""
    set_privilege("prvAppendToAccount", None)
    fabrikam = CrmAccount.objects.create(name="Fabrikam")
    bind = {"parentcustomerid_account@odata.bind": f"/accounts({fabrikam.pk})"}
    with (
        connector_for(demo_apps.connection, "destination") as crm,
        pytest.raises(ConnectorError) as refused,
    ):
        crm.create("contacts", {"fullname": "Kari Nordmann", **bind})
    error = refused.value
    assert (error.status, error.code) == (403, "0x80040220")
    assert error.is_missing_privilege  # every record would fail the same way: the job stops
    assert classify.classify(error) == Category.PERMISSION
    entry = SyncError(
        category=Category.PERMISSION,
        message=error.message,
        source_app=CRM,
        mapping=demo_apps.mapping("CONTACT"),
    )
    assert "Give the integration user's security role Append To on Account" in " ".join(
        remedy_for(entry).steps
    )


def test_append_to_at_the_user_level_is_a_warning_and_fails_the_records_out_of_its_reach(
    demo_apps,
):
    assert demo_apps.run("CUSTOMER", SyncJob.Kind.FULL).status == SyncJob.Status.SUCCEEDED
    set_privilege("prvAppendToAccount", BASIC)
    (shallow,) = [f for f in check_connection(demo_apps.connection) if f.code == "privilege_level"]
    assert (shallow.severity, shallow.mapping, shallow.privilege) == (
        "warning",
        "CONTACT",
        "prvAppendToAccount",
    )
    assert shallow.message.startswith(
        "The integration user holds prvAppendToAccount (Append To on Account) at the User "
        "level only: mapping CONTACT needs it"
    )
    assert not shallow.blocks_jobs

    # The job runs; a contact whose company the integration user did not create (an account
    # of the root business unit, written to the CRM directly) fails on its own.
    job = demo_apps.run("CONTACT", SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    failed = SyncError.objects.filter(job=job, category=Category.PERMISSION)
    assert failed.exists() and job.inserted > 0
    entry = failed.first()
    assert "does not have AppendToAccess right(s) for record with ID" in entry.message
    assert entry.source_record_id  # a record's entry, not the job's
    remedy = remedy_for(entry)
    assert "grant Append To on account at a level that does not reach" in remedy.cause
    assert "set Append To on account to the Organization level" in remedy.steps[0]
    # The contacts of accounts the integration user created are linked.
    linked = CrmContact.objects.filter(parent_account__owner__domain_name=INTEGRATION_USER).count()
    assert linked == job.inserted


def test_check_now_shows_the_missing_privilege_with_its_fix(demo_apps, staff_client):
    set_privilege("prvAppendToAccount", None)
    health = reverse("sync:connection_health", args=[demo_apps.connection.pk])
    page = staff_client.post(health, follow=True).content.decode()
    assert 'data-code="missing_privilege"' in page
    assert "give the integration user&#x27;s security role Append To on Account" in page
