"""The demo CRM's organization, as the demo apps start: made in a few statements, and the
same as made one record at a time (a copy of every root role in each other business unit,
each user in its unit's default team with its unit's roles)."""

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from demo import security
from demo.models import CrmBusinessUnit, CrmRole, CrmSystemUser, CrmTeam
from demo.seed import ADMIN_USER, INTEGRATION_USER, NORDICS, create_records
from tests.demo_apps import IN_PROCESS_URL, start_demo_apps

pytestmark = pytest.mark.django_db


def test_the_organization_is_the_one_made_record_by_record():
    create_records(random.Random(3), customers=3)  # noqa: S311
    root = security.root_business_unit()
    nordics = CrmBusinessUnit.objects.get(name=NORDICS, parent=root)
    root_roles = {role.name: role for role in CrmRole.objects.filter(business_unit=root)}
    assert set(root_roles) == {spec.name for spec in security.STANDARD_ROLES}
    for spec in security.STANDARD_ROLES:
        role = root_roles[spec.name]
        assert role.parent_root_role_id == role.pk
        assert role.role_template_id == spec.template
        if spec.role_id:
            assert role.pk == spec.role_id
        expected = (
            security.at(security.GLOBAL, security.all_privileges())
            if spec.template == security.SYSTEM_ADMINISTRATOR_TEMPLATE
            else dict(spec.privileges)
        )
        assert role.privileges == expected
        (copy,) = CrmRole.objects.filter(business_unit=nordics, name=spec.name)
        assert (copy.parent_root_role_id, copy.role_template_id, copy.privileges) == (
            role.pk,
            role.role_template_id,
            role.privileges,
        )
    for unit in (root, nordics):
        (team,) = CrmTeam.objects.filter(business_unit=unit, is_default=True)
        assert set(team.members.all()) == set(CrmSystemUser.objects.filter(business_unit=unit))

    def placed(domain_name):
        user = CrmSystemUser.objects.get(domain_name=domain_name)
        return user.business_unit, [(r.name, r.business_unit) for r in user.roles.all()]

    assert placed(INTEGRATION_USER) == (nordics, [("Integration User", nordics)])
    assert placed(ADMIN_USER) == (root, [("System Administrator", root)])
    assert placed("newhire@demo-crm.example") == (root, [("Salesperson", root)])
    # What the integration user may do is its Nordic role's copy of the integration role.
    integration = CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    assert security.depths_of(integration) == root_roles["Integration User"].privileges
    assert security.depths_of(CrmSystemUser.objects.get(domain_name=ADMIN_USER)) is None


def test_a_role_made_later_is_copied_into_every_business_unit():
    create_records(random.Random(3), customers=3)  # noqa: S311
    role = security.create_role("Marketing", {"prvReadAccount"})
    made = CrmRole.objects.filter(name="Marketing").order_by("business_unit__name")
    assert [(r.business_unit.name, r.parent_root_role_id, r.privileges) for r in made] == [
        (NORDICS, role.pk, {"prvReadAccount": security.GLOBAL}),
        (security.ROOT_BUSINESS_UNIT, role.pk, {"prvReadAccount": security.GLOBAL}),
    ]


def test_the_demo_apps_start_in_a_few_statements():
    """Most tests start the demo apps: their records, users, roles and connection are written
    in bulk, not a statement a record."""
    with CaptureQueriesContext(connection) as queries:
        start_demo_apps(IN_PROCESS_URL)
    assert len(queries) <= 52, len(queries)
