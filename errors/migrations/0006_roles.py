from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_roles(apps, schema_editor):
    from errors.roles import ensure_roles
    from syncconsole.permissions import SYNC_ADMINISTRATORS

    # Permissions are otherwise created only after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_roles(apps)
    # Staff accounts kept the whole console before there were roles; they keep it.
    User = apps.get_model("auth", "User")
    Group = apps.get_model("auth", "Group")
    administrators = Group.objects.get(name=SYNC_ADMINISTRATORS)
    for user in User.objects.filter(is_staff=True, is_active=True, is_superuser=False):
        user.groups.add(administrators)


def remove_roles(apps, schema_editor):
    from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS

    apps.get_model("auth", "Group").objects.filter(
        name__in=[SYNC_USERS, SYNC_ADMINISTRATORS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0005_group_status"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("sync", "0005_job_overwrite"),
        ("couplings", "0003_record_existence"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="syncerror",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    (
                        "triage_coupled_errors",
                        "Can see and resolve coupled-record errors, retry, couple and uncouple",
                    ),
                    (
                        "administer_sync",
                        "Can see setup errors and connections, delete all entries and change "
                        "settings",
                    ),
                ],
                "verbose_name": "sync error",
            },
        ),
        migrations.RunPython(create_roles, remove_roles),
    ]
