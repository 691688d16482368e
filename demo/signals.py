"""Every change to a demo record, through the API, a page or the admin, is announced to the
subscribers of its table."""

from django.db.models.signals import post_delete, post_save

from .entities import ENTITIES
from .webhooks import notify_change


def _announce(sender, instance, **kwargs) -> None:
    for (app, name), entity in ENTITIES.items():
        if entity.model is sender:
            notify_change(app, name, instance.pk)


def connect() -> None:
    for entity in ENTITIES.values():
        post_save.connect(
            _announce, sender=entity.model, dispatch_uid=f"demo-save-{entity.name}-{entity.app}"
        )
        post_delete.connect(
            _announce, sender=entity.model, dispatch_uid=f"demo-delete-{entity.name}-{entity.app}"
        )
