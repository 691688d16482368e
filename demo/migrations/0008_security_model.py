"""The demo CRM keeps security as Dataverse does: business units, security roles with their
role template and root role, teams with roles and members, and users with an access mode and a
license. The role names users held become the roles of the root business unit."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

SYSTEM_ADMINISTRATOR_TEMPLATE = uuid.UUID("627090ff-40a3-4053-8790-584edc5be201")
ROOT = "demo-crm"
PRIVILEGES = {
    "accounts": "Account",
    "contacts": "Contact",
    "products": "Product",
    "transactioncurrencies": "TransactionCurrency",
    "systemusers": "User",
    "roles": "Role",
    "teams": "Team",
}


def _all(verbs, tables):
    return {f"prv{verb}{PRIVILEGES[t]}" for verb in verbs for t in tables}


SECURITY_READ = _all(["Read"], ["systemusers", "roles", "teams"])
# The roles as the demo CRM had them when this migration was written.
ROLES = {
    "System Administrator": (
        None,
        SYSTEM_ADMINISTRATOR_TEMPLATE,
        _all(["Read", "Create", "Write", "Delete"], PRIVILEGES),
    ),
    "Integration Administrator": (
        uuid.UUID("8c8d4f51-a72b-e511-80d9-3863bb349780"),
        None,
        _all(["Read", "Create", "Write", "Delete"],
             ["accounts", "contacts", "products", "transactioncurrencies"]) | SECURITY_READ,
    ),
    "Integration User": (
        uuid.UUID("6f960e32-a72b-e511-80d9-3863bb349780"),
        None,
        _all(["Read", "Create", "Write"], ["accounts", "contacts"])
        | _all(["Read"], ["products", "transactioncurrencies"]) | SECURITY_READ,
    ),
    "Salesperson": (
        None,
        None,
        _all(["Read", "Write"], ["accounts", "contacts"]) | {"prvReadProduct"} | SECURITY_READ,
    ),
}  # fmt: skip


def roles_from_names(apps, schema_editor):
    user_model = apps.get_model("demo", "CrmSystemUser")
    users = list(user_model.objects.all())
    if not users:
        return  # no demo data yet: seed_demo sets security up
    unit = apps.get_model("demo", "CrmBusinessUnit").objects.create(name=ROOT)
    team = apps.get_model("demo", "CrmTeam").objects.create(
        name=ROOT, business_unit=unit, is_default=True
    )
    role_model = apps.get_model("demo", "CrmRole")
    roles = {}
    for name, (role_id, template, privileges) in ROLES.items():
        role = role_model(
            id=role_id or uuid.uuid4(),
            name=name,
            business_unit=unit,
            role_template_id=template,
            privileges=sorted(privileges),
        )
        role.parent_root_role = role
        role.save()
        roles[name] = role
    for user in users:
        user.business_unit = unit
        user.save(update_fields=["business_unit"])
        team.members.add(user)
        user.roles.set([roles[name] for name in user.role_names or [] if name in roles])


def names_from_roles(apps, schema_editor):
    for user in apps.get_model("demo", "CrmSystemUser").objects.all():
        user.role_names = sorted(role.name for role in user.roles.all())
        user.save(update_fields=["role_names"])


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0007_fault_limits"),
    ]

    operations = [
        migrations.RenameField("crmsystemuser", "roles", "role_names"),
        migrations.AddField(
            model_name="crmsystemuser",
            name="access_mode",
            field=models.IntegerField(
                choices=[
                    (0, "Read-Write"),
                    (1, "Administrative"),
                    (2, "Read"),
                    (3, "Support User"),
                    (4, "Non-interactive"),
                    (5, "Delegated Admin"),
                ],
                default=0,
            ),
        ),
        migrations.AddField(
            model_name="crmsystemuser",
            name="is_licensed",
            field=models.BooleanField(default=True),
        ),
        migrations.CreateModel(
            name="CrmBusinessUnit",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=160, unique=True)),
                ("modified_on", models.DateTimeField(auto_now=True, db_index=True)),
                (
                    "parent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="children",
                        to="demo.crmbusinessunit",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="crmsystemuser",
            name="business_unit",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="users",
                to="demo.crmbusinessunit",
            ),
        ),
        migrations.CreateModel(
            name="CrmRole",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                (
                    "role_template_id",
                    models.UUIDField(blank=True, null=True, verbose_name="role template"),
                ),
                ("privileges", models.JSONField(blank=True, default=list)),
                ("modified_on", models.DateTimeField(auto_now=True, db_index=True)),
                (
                    "business_unit",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="roles",
                        to="demo.crmbusinessunit",
                    ),
                ),
                (
                    "parent_root_role",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="copies",
                        to="demo.crmrole",
                    ),
                ),
            ],
            options={
                "ordering": ["name", "business_unit__name"],
            },
        ),
        migrations.CreateModel(
            name="CrmTeam",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=160)),
                (
                    "team_type",
                    models.IntegerField(
                        choices=[
                            (0, "Owner"),
                            (1, "Access"),
                            (2, "Microsoft Entra ID Security Group"),
                            (3, "Microsoft Entra ID Office Group"),
                        ],
                        default=0,
                    ),
                ),
                ("is_default", models.BooleanField(default=False)),
                ("modified_on", models.DateTimeField(auto_now=True, db_index=True)),
                (
                    "business_unit",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="teams",
                        to="demo.crmbusinessunit",
                    ),
                ),
                (
                    "members",
                    models.ManyToManyField(
                        blank=True, related_name="teams", to="demo.crmsystemuser"
                    ),
                ),
                (
                    "roles",
                    models.ManyToManyField(blank=True, related_name="teams", to="demo.crmrole"),
                ),
            ],
        ),
        migrations.AddField(
            model_name="crmsystemuser",
            name="roles",
            field=models.ManyToManyField(blank=True, related_name="users", to="demo.crmrole"),
        ),
        migrations.RunPython(roles_from_names, names_from_roles),
        migrations.RemoveField("crmsystemuser", "role_names"),
    ]
