from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate


class ErrorsConfig(AppConfig):
    name = "errors"
    verbose_name = "Sync errors"

    def ready(self) -> None:
        from .models import SyncError

        # Deletes outside the clean-up (the admin, removing the demo) keep the groups right
        # too; the clean-up deletes in bulk and takes care of them itself.
        post_delete.connect(_forget_group_member, sender=SyncError, dispatch_uid="errors-group")
        post_migrate.connect(_keep_roles, dispatch_uid="errors-roles")


def _forget_group_member(sender, instance, **kwargs) -> None:
    from .grouping import forget_deleted

    forget_deleted([instance.group_id])


def _keep_roles(sender, app_config=None, using="default", **kwargs) -> None:
    # After the last app's permissions exist: administrators get those of new models too.
    from django.apps import apps

    if app_config is not None and app_config is list(apps.get_app_configs())[-1]:
        from .roles import ensure_roles

        ensure_roles()
