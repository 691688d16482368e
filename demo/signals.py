"""Every change to a demo record, through the API, a page or the admin, is announced to the
subscribers of its table."""

from django.db.models.signals import post_delete, post_save

from .entities import ENTITIES, names_of
from .webhooks import notify_change


def _saved(sender, instance, created=False, **kwargs) -> None:
    for app, name in names_of(sender):
        notify_change(app, name, instance.pk, "created" if created else "updated")


def _deleted(sender, instance, **kwargs) -> None:
    for app, name in names_of(sender):
        notify_change(app, name, instance.pk, "deleted")


def connect() -> None:
    for entity in ENTITIES.values():
        post_save.connect(
            _saved, sender=entity.model, dispatch_uid=f"demo-save-{entity.name}-{entity.app}"
        )
        post_delete.connect(
            _deleted, sender=entity.model, dispatch_uid=f"demo-delete-{entity.name}-{entity.app}"
        )
