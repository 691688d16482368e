"""Errors sent by other integrations: validated as a whole, then stored through the same path
as the sync engine's own (grouping included), all or nothing."""

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from errors.grouping import record_errors
from errors.models import Category, ErrorGroup, SyncError

from .models import IngestionRequest

MAX_ENTRIES = 1000
IDEMPOTENCY_KEY_MAX_LENGTH = 200
ENTRY_FIELDS = (
    "integration",
    "category",
    "message",
    "detail",
    "source_app",
    "source_entity",
    "source_record_id",
    "source_url",
    "destination_app",
    "destination_entity",
    "destination_record_id",
    "destination_url",
)


class KeyReusedWithOtherBody(Exception):
    """The Idempotency-Key was sent before with a different body."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict
    replayed: bool = False


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def replay(user, key: str, digest: str) -> Answer | None:
    """The answer already given to this key, if any."""
    earlier = IngestionRequest.objects.filter(user=user, key=key).first()
    if earlier is None:
        return None
    if earlier.body_hash != digest:
        raise KeyReusedWithOtherBody(
            "This Idempotency-Key was already used with a different body; use a new key."
        )
    return Answer(earlier.status_code, earlier.response, replayed=True)


def ingest(entries: list[dict], user, *, key: str = "", digest: str = "") -> Answer:
    """Store validated entries (all or none) and, with a key, the answer for a repeat."""
    now = timezone.now()
    errors = [
        SyncError(
            created_at=entry.get("occurred_at") or now,
            category=entry.get("category") or Category.OTHER,
            **{name: entry.get(name) or "" for name in ENTRY_FIELDS if name != "category"},
        )
        for entry in entries
    ]
    try:
        with transaction.atomic():
            stored = record_errors(errors)
            answer = Answer(201, describe(stored))
            if key:
                IngestionRequest.objects.create(
                    user=user,
                    key=key,
                    body_hash=digest,
                    status_code=answer.status_code,
                    response=answer.body,
                )
    except IntegrityError:
        # The same key arrived twice at once: the other request stored it; answer as it did.
        again = replay(user, key, digest) if key else None
        if again is None:
            raise
        return again
    return answer


def describe(stored: list[SyncError]) -> dict:
    groups = ErrorGroup.objects.in_bulk({error.group_id for error in stored})
    return {
        "stored": len(stored),
        "entries": [{"id": error.pk, "group": error.group_id} for error in stored],
        "groups": [
            {
                "id": group.pk,
                "title": group.title,
                "integration": group.integration,
                "category": group.category,
                "status": group.status,
                "count": group.count,
                "url": group.get_absolute_url(),
            }
            for group in sorted(groups.values(), key=lambda g: g.pk)
        ],
    }


def forget_old_requests(days: int = 7) -> int:
    deleted, _ = IngestionRequest.objects.filter(
        created_at__lt=timezone.now() - timedelta(days=days)
    ).delete()
    return deleted
