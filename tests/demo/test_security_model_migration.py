"""Demo data made before the CRM kept security as Dataverse does keeps working after `migrate`:
the role names its users held become the roles of the root business unit, with the System
Administrator role's template and the ids of Business Central's integration roles, and every
user is placed in that business unit and its default team."""

import uuid

import pytest

from . import migrating

pytestmark = pytest.mark.django_db(transaction=True)
SYSTEM_ADMINISTRATOR_TEMPLATE = uuid.UUID("627090ff-40a3-4053-8790-584edc5be201")
INTEGRATION_USER_ROLE = uuid.UUID("6f960e32-a72b-e511-80d9-3863bb349780")


def test_the_role_names_users_held_become_roles_of_the_root_business_unit():
    before, after = migrating.around("_security_model")
    latest = migrating.latest()
    old = migrating.migrate(before)
    try:
        users = old.get_model("demo", "CrmSystemUser").objects
        users.create(
            full_name="Integration User",
            domain_name="integration@crm.example",
            roles=["Integration User"],
        )
        users.create(
            full_name="CRM Admin", domain_name="admin@crm.example", roles=["System Administrator"]
        )
        users.create(full_name="Nobody", domain_name="nobody@crm.example", roles=["Unheard of"])

        new = migrating.migrate(after)
        (unit,) = new.get_model("demo", "CrmBusinessUnit").objects.all()
        (team,) = new.get_model("demo", "CrmTeam").objects.all()
        assert team.is_default and team.business_unit_id == unit.pk
        held = {
            user.domain_name: [(r.pk, r.name, r.role_template_id) for r in user.roles.all()]
            for user in new.get_model("demo", "CrmSystemUser").objects.all()
        }
        admin_role = new.get_model("demo", "CrmRole").objects.get(name="System Administrator")
        assert held == {
            "integration@crm.example": [(INTEGRATION_USER_ROLE, "Integration User", None)],
            "admin@crm.example": [
                (admin_role.pk, "System Administrator", SYSTEM_ADMINISTRATOR_TEMPLATE)
            ],
            "nobody@crm.example": [],  # a name no role has is left out
        }
        assert set(team.members.values_list("domain_name", flat=True)) == set(held)
        assert all(
            role.parent_root_role_id == role.pk and role.business_unit_id == unit.pk
            for role in new.get_model("demo", "CrmRole").objects.all()
        )
    finally:
        migrating.migrate(latest)
