from django.apps import AppConfig
from django.db.models.signals import post_delete


class ErrorsConfig(AppConfig):
    name = "errors"
    verbose_name = "Sync errors"

    def ready(self) -> None:
        from .models import SyncError

        # Deletes outside the clean-up (the admin, removing the demo) keep the groups right
        # too; the clean-up deletes in bulk and takes care of them itself.
        post_delete.connect(_forget_group_member, sender=SyncError, dispatch_uid="errors-group")


def _forget_group_member(sender, instance, **kwargs) -> None:
    from .grouping import forget_deleted

    forget_deleted([instance.group_id])
