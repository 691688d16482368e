"""Writing the audit log: `record` is called by the services that delete, resolve or change.

An action made of smaller ones (a bulk action that removes couplings, deleting a record
and then its coupling) is one event: while `covered_by` is active, the inner calls of
`record` write nothing."""

import contextlib
import contextvars
import json
import re
from typing import Any

from django.db import models

from syncconsole.encryption import EncryptedTextField

from .models import AuditEvent

Action = AuditEvent.Action
SYSTEM = "system"
VALUE_LIMIT = 200
SECRET_NAME = re.compile(r"passw(or)?d|secret|token|key_hash|api_?key|credential", re.I)

_covering: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_covering")


@contextlib.contextmanager
def covered_by(description: str):
    """The events of what runs inside are part of one already written."""
    token = _covering.set(description)
    try:
        yield
    finally:
        _covering.reset(token)


def name_of(user) -> str:
    """Who did it, as a note says it: the person's user name, or "the system"."""
    return user.get_username() if person(user) is not None else "the system"


def person(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def record(
    action: str,
    summary: str,
    *,
    user=None,
    actor_label: str = "",
    target: models.Model | None = None,
    object_type: str = "",
    object_id: Any = "",
    object_label: str = "",
    details: dict | None = None,
) -> AuditEvent | None:
    """Keep one event. `user` is the person who did it; without one the actor is the
    system (or `actor_label`, saying which part of it)."""
    if _covering.get(None) is not None:
        return None
    actor = person(user)
    if target is not None:
        object_type = object_type or str(target._meta.verbose_name)
        object_id = object_id or target.pk
        object_label = object_label or str(target)
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=(actor.get_username() if actor else actor_label or SYSTEM)[:150],
        action=action,
        object_type=object_type[:100],
        object_id=str(object_id or "")[:64],
        object_label=object_label[:200],
        summary=summary[:500],
        details=details or {},
    )


def is_secret_field(field) -> bool:
    return isinstance(field, EncryptedTextField) or bool(SECRET_NAME.search(field.name))


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The stored values of an instance's own columns, to compare after a change."""
    if instance.pk is None:
        return {}
    fresh = type(instance)._base_manager.filter(pk=instance.pk).first()
    if fresh is None:
        return {}
    return {f.attname: getattr(fresh, f.attname) for f in instance._meta.concrete_fields}


def changes(before: dict[str, Any], instance: models.Model) -> dict[str, Any]:
    """Which fields changed, with the old and new value, except for secrets: those are
    only named."""
    changed: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        old, new = before.get(field.attname), getattr(instance, field.attname)
        if field.attname in before and old == new:
            continue
        if is_secret_field(field):
            changed[field.name] = "changed"
        else:
            changed[field.name] = {"from": _shown(old), "to": _shown(new)}
    return changed


def _shown(value) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"
