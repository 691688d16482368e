"""The demo CRM's roles grant each privilege at an access level, and setting a lookup needs
Append and Append To: a role's privileges become `{"prvReadAccount": "Global", ...}` (what a
role held, it holds at the Organization level), and the standard roles get the Append and Append
To privileges they have today, so that demo data made before keeps synchronizing. Accounts and
contacts get their owner (none for those made before: they belong to the root business unit)."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

SYSTEM_ADMINISTRATOR_TEMPLATE = uuid.UUID("627090ff-40a3-4053-8790-584edc5be201")
INTEGRATION_ADMINISTRATOR = uuid.UUID("8c8d4f51-a72b-e511-80d9-3863bb349780")
INTEGRATION_USER = uuid.UUID("6f960e32-a72b-e511-80d9-3863bb349780")
NAMES = ("Account", "Contact", "Product", "TransactionCurrency", "User", "Role", "Team")


def _names(verbs, tables):
    return {f"prv{verb}{table}" for verb in verbs for table in tables}


# The Append and Append To privileges of the standard roles when this migration was written.
APPEND = ("Append", "AppendTo")
ADDED = {
    "Integration Administrator": dict.fromkeys(
        _names(APPEND, ("Account", "Contact", "Product", "TransactionCurrency")), "Global"
    ),
    "Integration User": dict.fromkeys(
        _names(APPEND, ("Account", "Contact")) | {"prvAppendToTransactionCurrency"}, "Global"
    ),
    "Salesperson": dict.fromkeys(_names(APPEND, ("Account", "Contact")), "Basic"),
    "System Administrator": dict.fromkeys(_names(APPEND, NAMES), "Global"),
}


def _standard(role, roles_by_id) -> str | None:
    """Which standard role a role is (or a business unit's copy of), by its root role."""
    root = roles_by_id.get(role.parent_root_role_id, role)
    if root.id == INTEGRATION_ADMINISTRATOR:
        return "Integration Administrator"
    if root.id == INTEGRATION_USER:
        return "Integration User"
    if root.role_template_id == SYSTEM_ADMINISTRATOR_TEMPLATE:
        return "System Administrator"
    if root.name == "Salesperson":
        return "Salesperson"
    return None


def levels_and_appends(apps, schema_editor):
    roles = list(apps.get_model("demo", "CrmRole").objects.all())
    roles_by_id = {role.id: role for role in roles}
    for role in roles:
        held = role.privileges
        if isinstance(held, list):
            held = dict.fromkeys((name for name in held if isinstance(name, str)), "Global")
        elif not isinstance(held, dict):
            held = {}
        held = {**ADDED.get(_standard(role, roles_by_id) or "", {}), **held}
        role.privileges = dict(sorted(held.items()))
        role.save(update_fields=["privileges"])


def names_only(apps, schema_editor):
    for role in apps.get_model("demo", "CrmRole").objects.all():
        held = role.privileges if isinstance(role.privileges, dict) else {}
        role.privileges = sorted(name for name in held if not name.startswith("prvAppend"))
        role.save(update_fields=["privileges"])


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0011_text_compared_without_case"),
    ]

    operations = [
        migrations.AddField(
            model_name="crmaccount",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="demo.crmsystemuser",
            ),
        ),
        migrations.AddField(
            model_name="crmcontact",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="demo.crmsystemuser",
            ),
        ),
        migrations.AlterField(
            model_name="crmrole",
            name="privileges",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(levels_and_appends, names_only),
    ]
