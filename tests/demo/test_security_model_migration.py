"""Demo data made before the CRM kept security as Dataverse does keeps working after `migrate`:
the role names its users held become the roles of the root business unit, with the System
Administrator role's template and the ids of Business Central's integration roles, and every
user is placed in that business unit and its default team."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
SYSTEM_ADMINISTRATOR_TEMPLATE = uuid.UUID("627090ff-40a3-4053-8790-584edc5be201")
INTEGRATION_USER_ROLE = uuid.UUID("6f960e32-a72b-e511-80d9-3863bb349780")


def the_security_migration() -> tuple[list, list]:
    """The demo migrations just before and with the one that brings the security model."""
    graph = MigrationExecutor(connection).loader.graph
    (node,) = [n for n in graph.nodes if n[0] == "demo" and n[1].endswith("_security_model")]
    before = [parent for parent in graph.node_map[node].parents if parent.key[0] == "demo"]
    return [before[0].key], [node]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "demo"]
    return executor.loader.project_state([*others, *targets]).apps


def test_the_role_names_users_held_become_roles_of_the_root_business_unit():
    before, after = the_security_migration()
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("demo")
    old = migrate(before)
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

        new = migrate(after)
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
        migrate(latest)
