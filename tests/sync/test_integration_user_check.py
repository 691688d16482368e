"""The setup check judges the Dataverse integration user as Business Central's Test Connection
does, whatever the organization calls its roles and however it hands them out: the System
Administrator role by its role template, the integration roles by their ids or their root
role, roles held through teams, the access mode and the license. Each case is a real change to
the demo CRM's security, checked over its Web API."""

import pytest

from demo.models import CrmRole, CrmSystemUser, CrmTeam
from demo.security import INTEGRATION_ADMINISTRATOR_ROLE, INTEGRATION_USER_ROLE, role_named
from demo.seed import INTEGRATION_USER
from errors.models import Category, SyncError
from errors.remedies import remedy_for
from sync.health import check_connection
from sync.models import SyncJob

pytestmark = pytest.mark.django_db
CRM = "Dynamics 365 Sales"


def integration_user() -> CrmSystemUser:
    return CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)


def crm_findings(demo_apps) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in check_connection(demo_apps.connection):
        if finding.app == CRM:
            found.setdefault(finding.code, []).append(finding)
    return found


def team_with(*role_names: str, name: str = "Integration team") -> CrmTeam:
    """An owner team of the integration user's business unit holding these roles, with the
    integration user as its member."""
    user = integration_user()
    team = CrmTeam.objects.create(name=name, business_unit=user.business_unit)
    team.roles.set([role_named(role, user.business_unit) for role in role_names])
    team.members.add(user)
    return team


def rename_roles(**names: str) -> None:
    """The organization's own names for its roles (renaming a root role renames its copies)."""
    for old, new in names.items():
        role = role_named(old.replace("_", " "))
        role.name = new
        role.save()


def test_the_seeded_user_holds_a_business_unit_copy_of_the_integration_role(demo_apps):
    user = integration_user()
    (held,) = user.roles.all()
    assert held.pk != INTEGRATION_USER_ROLE and held.parent_root_role_id == INTEGRATION_USER_ROLE
    found = crm_findings(demo_apps)
    assert found["integration_role"][0].severity == "ok"
    assert "Integration User" in found["integration_role"][0].message
    assert found["access_mode"][0].message == (
        "The integration user's access mode is Non-interactive."
    )
    assert "user_unlicensed" not in found  # a non-interactive user needs no license


def test_translated_role_names_are_recognized_by_their_template_and_ids(demo_apps):
    rename_roles(
        System_Administrator="Systemadministrator",
        Integration_Administrator="Integrationsadministrator",
        Integration_User="Integrationsbenutzer",
    )
    found = crm_findings(demo_apps)
    assert found["integration_role"][0].severity == "ok"
    assert "Integrationsbenutzer" in found["integration_role"][0].message
    assert [f.code for f in sum(found.values(), []) if f.blocks_jobs] == ["missing_privilege"] * 4

    integration_user().roles.add(
        role_named("Systemadministrator", integration_user().business_unit)
    )
    (admin,) = crm_findings(demo_apps)["admin_user"]
    assert admin.severity == "error" and admin.blocks_jobs
    assert admin.message == (
        "The integration user holds the System Administrator role ('Systemadministrator' here)."
    )

    integration_user().roles.set([role_named("Salesperson", integration_user().business_unit)])
    (missing,) = crm_findings(demo_apps)["no_integration_role"]
    assert missing.message == (
        "The integration user has none of the integration roles (Integrationsadministrator, "
        "Integrationsbenutzer)."
    )
    assert "assign the Integrationsadministrator or Integrationsbenutzer role" in missing.remedy


def test_an_integration_role_held_through_a_team_counts_and_so_do_its_privileges(demo_apps):
    integration_user().roles.clear()
    team_with("Integration Administrator")
    found = crm_findings(demo_apps)
    assert "no_roles" not in found
    assert found["integration_role"][0].message == (
        "The integration user holds the Integration Administrator (through team Integration "
        "team) role."
    )
    # The team role grants what the narrower role of the seed lacks: products may be written.
    assert not [f for f in found.get("missing_privilege", []) if f.severity == "error"]
    assert found["privileges"][0].severity == "ok"
    assert demo_apps.run("ITEM-PRODUCT", SyncJob.Kind.FULL).status == SyncJob.Status.SUCCEEDED


def test_missing_privileges_are_found_through_team_roles_too(demo_apps):
    integration_user().roles.clear()
    team_with("Integration User")
    missing = crm_findings(demo_apps)["missing_privilege"]
    assert {f.privilege for f in missing if f.severity == "error"} == {
        "prvCreateTransactionCurrency",
        "prvWriteTransactionCurrency",
        "prvCreateProduct",
        "prvWriteProduct",
    }
    job = demo_apps.run("ITEM-PRODUCT", SyncJob.Kind.FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.PERMISSION)
    assert "is missing prvCreateProduct privilege" in error.message


def test_the_system_administrator_role_held_through_a_team_blocks_the_job(demo_apps):
    team_with("System Administrator", name="Admins")
    (admin,) = crm_findings(demo_apps)["admin_user"]
    assert admin.severity == "error"
    assert (
        admin.message
        == "The integration user holds the System Administrator role through team Admins."
    )
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.INTEGRATION_USER)
    remedy = remedy_for(error)
    assert "without the System Administrator role" in " ".join(remedy.steps)
    # The cause and fix takes the administrator to the user whose roles to change.
    links = dict(remedy.links)
    user_page = links["The integration user in Dynamics 365 Sales"]
    assert str(integration_user().pk) in user_page
    answer = demo_apps.get(user_page)
    assert answer.status_code == 200 and integration_user().domain_name in answer.text


def test_without_the_integration_solution_no_integration_role_is_required(demo_apps):
    # A tenant where Business Central's integration solution is not installed has neither role.
    integration_user().roles.set([role_named("Salesperson", integration_user().business_unit)])
    CrmRole.objects.filter(pk__in=[INTEGRATION_ADMINISTRATOR_ROLE, INTEGRATION_USER_ROLE]).delete()
    assert not CrmRole.objects.filter(name__startswith="Integration").exists()  # copies too
    found = crm_findings(demo_apps)
    assert "no_integration_role" not in found
    (role,) = found["integration_role"]
    assert role.severity == "ok" and "integration solution is not installed" in role.message
    # The privileges are still checked: the Salesperson role may not create accounts.
    missing = {f.privilege for f in found["missing_privilege"] if f.severity == "error"}
    assert "prvCreateAccount" in missing


def test_a_user_without_roles_directly_or_through_a_team(demo_apps):
    integration_user().roles.clear()
    (no_roles,) = crm_findings(demo_apps)["no_roles"]
    assert no_roles.severity == "error"
    assert "directly or through a team" in no_roles.message
    team_with("Integration Administrator")
    assert "no_roles" not in crm_findings(demo_apps)


@pytest.mark.parametrize(
    "access_mode, label", [(1, "Administrative"), (2, "Read"), (3, "Support User")]
)
def test_an_access_mode_an_integration_cannot_use_blocks_the_job(demo_apps, access_mode, label):
    CrmSystemUser.objects.filter(domain_name=INTEGRATION_USER).update(access_mode=access_mode)
    (finding,) = crm_findings(demo_apps)["access_mode"]
    assert (finding.severity, finding.blocks_jobs) == ("error", True)
    assert finding.message == (
        f"The integration user's access mode is {label}: an integration user must be "
        "Read-Write or Non-interactive."
    )
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.INTEGRATION_USER)
    assert "set its access mode to Non-interactive" in " ".join(remedy_for(error).steps)


def test_a_read_write_user_needs_a_license_and_a_non_interactive_one_does_not(demo_apps):
    CrmSystemUser.objects.filter(domain_name=INTEGRATION_USER).update(access_mode=0)
    (finding,) = crm_findings(demo_apps)["user_unlicensed"]
    assert (finding.severity, finding.blocks_jobs) == ("error", True)
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.INTEGRATION_USER)
    assert "assign the integration user a license" in " ".join(remedy_for(error).steps)

    CrmSystemUser.objects.filter(domain_name=INTEGRATION_USER).update(is_licensed=True)
    assert "user_unlicensed" not in crm_findings(demo_apps)
    assert demo_apps.run("CUSTOMER", SyncJob.Kind.FULL).status == SyncJob.Status.SUCCEEDED


def test_the_connection_names_the_roles_that_count_as_integration_roles(demo_apps):
    from demo.security import SECURITY_READ, create_role

    custom = create_role("Synchronisation", {"prvReadAccount", *SECURITY_READ})
    user = integration_user()
    user.roles.set([CrmRole.objects.get(parent_root_role=custom, business_unit=user.business_unit)])
    assert "no_integration_role" in crm_findings(demo_apps)

    demo_apps.connection.destination_settings["integration_role_ids"] = [f"{{{custom.pk}}}"]
    demo_apps.connection.save()
    (held,) = crm_findings(demo_apps)["integration_role"]
    assert held.message == "The integration user holds the Synchronisation role."
