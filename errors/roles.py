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
    # Permissions are given by their ids: add() takes them as they are, with no instance made
    # of each (it runs after every migrate, and after every flush of the tests).
    ids = Permission.objects.values_list("pk", flat=True)
    users, _ = Group.objects.get_or_create(name=SYNC_USERS)
    administrators, _ = Group.objects.get_or_create(name=SYNC_ADMINISTRATORS)
    users.permissions.add(
        *ids.filter(content_type__app_label="errors", codename="triage_coupled_errors")
    )
    integrations, _ = Group.objects.get_or_create(name=INTEGRATIONS)
    integrations.permissions.add(
        *ids.filter(content_type__app_label="api", codename="ingest_errors")
    )
    administrators.permissions.add(
        *ids.filter(content_type__app_label__in=ADMINISTERED_APPS),
        *ids.filter(content_type__app_label="audit", codename="view_auditevent"),
    )
