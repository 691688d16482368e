"""Demo data made before the CRM checked Append and Append To keeps synchronizing after
`migrate`: each role's privileges get their access level (what it held, it holds at the
Organization level), and the standard roles, business unit copies included, get the Append and
Append To privileges they grant today."""

import uuid

import pytest

from demo.security import STANDARD_ROLES

from . import migrating

pytestmark = pytest.mark.django_db(transaction=True)
INTEGRATION_USER_ROLE = uuid.UUID("6f960e32-a72b-e511-80d9-3863bb349780")


def test_roles_get_access_levels_and_the_standard_ones_their_append_privileges():
    before, after = migrating.around("_append_privileges")
    latest = migrating.latest()
    old = migrating.migrate(before)
    try:
        units = old.get_model("demo", "CrmBusinessUnit").objects
        root = units.create(name="demo-crm")
        nordics = units.create(name="Sales Nordics", parent=root)
        roles = old.get_model("demo", "CrmRole").objects
        held = ["prvReadAccount", "prvWriteContact"]
        integration = roles.create(
            id=INTEGRATION_USER_ROLE, name="Integration User", business_unit=root, privileges=held
        )
        integration.parent_root_role = integration
        integration.save()
        copy = roles.create(
            name="Integration User",
            business_unit=nordics,
            parent_root_role=integration,
            privileges=held,
        )
        custom = roles.create(name="Marketing", business_unit=root, privileges=["prvReadAccount"])
        custom.parent_root_role = custom
        custom.save()

        new = migrating.migrate(after)
        migrated = {
            role.pk: role.privileges for role in new.get_model("demo", "CrmRole").objects.all()
        }
        (spec,) = [s for s in STANDARD_ROLES if s.role_id == INTEGRATION_USER_ROLE]
        appends = {k: v for k, v in spec.privileges.items() if k.startswith("prvAppend")}
        expected = {"prvReadAccount": "Global", "prvWriteContact": "Global", **appends}
        assert migrated[integration.pk] == migrated[copy.pk] == expected
        assert migrated[custom.pk] == {"prvReadAccount": "Global"}  # not a standard role

        back = migrating.migrate(before)
        names = {
            role.pk: role.privileges for role in back.get_model("demo", "CrmRole").objects.all()
        }
        assert names[integration.pk] == names[copy.pk] == held
    finally:
        migrating.migrate(latest)
