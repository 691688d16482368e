"""The two roles of the console as groups with their permissions (see syncconsole.permissions)."""

from django.apps import apps as global_apps

from syncconsole.permissions import INTEGRATIONS, SYNC_ADMINISTRATORS, SYNC_USERS

# Sync administrators may change everything the console and the admin show, unlock sign-ins
# (axes), and read the audit log, which nobody changes.
ADMINISTERED_APPS = ("errors", "sync", "couplings", "django_celery_beat", "api", "axes")


def ensure_roles(apps=global_apps) -> None:
    """Create both groups and give them their permissions; safe to run again. Administrators
    get the permissions of models added later too, since it runs after every migrate."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    custom = Permission.objects.filter(content_type__app_label="errors")
    users, _ = Group.objects.get_or_create(name=SYNC_USERS)
    administrators, _ = Group.objects.get_or_create(name=SYNC_ADMINISTRATORS)
    users.permissions.add(*custom.filter(codename="triage_coupled_errors"))
    integrations, _ = Group.objects.get_or_create(name=INTEGRATIONS)
    integrations.permissions.add(
        *Permission.objects.filter(content_type__app_label="api", codename="ingest_errors")
    )
    administrators.permissions.add(
        *Permission.objects.filter(content_type__app_label__in=ADMINISTERED_APPS),
        *Permission.objects.filter(content_type__app_label="audit", codename="view_auditevent"),
    )
