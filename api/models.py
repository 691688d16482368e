"""API tokens, and the answers kept for idempotent ingestion."""

import hashlib
import secrets

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from audit import services as audit

TOKEN_PREFIX = "sct_"  # noqa: S105 - marks a key as ours, not a secret
LOOKUP_LENGTH = 12


def hash_key(key: str) -> str:
    # The key has 256 random bits: a plain SHA-256 cannot be reversed or guessed.
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A secret that signs a script or another integration in as one user. Only its hash is
    kept; the key itself is shown once, when the token is created."""

    name = models.CharField(max_length=100, help_text="What the token is for.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    integration = models.CharField(
        max_length=100,
        blank=True,
        help_text="For another integration's token: the name its errors are grouped under "
        "when they do not name one.",
    )
    lookup = models.CharField(max_length=LOOKUP_LENGTH, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"
        permissions = [
            ("ingest_errors", "Can send the sync errors of another integration"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.lookup}…)"

    @classmethod
    def issue(
        cls,
        user,
        name: str,
        *,
        integration: str = "",
        expires_at=None,
        issued_by=None,
        issued_through: str = "",
    ):
        """A new token and its key (the only time the key is known). `issued_by` is the
        person who made it, else `issued_through` says how (the command line)."""
        key = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with transaction.atomic():
            token = cls.objects.create(
                user=user,
                name=name,
                integration=integration,
                expires_at=expires_at,
                lookup=key[:LOOKUP_LENGTH],
                key_hash=hash_key(key),
            )
            audit.record(
                audit.Action.TOKEN_CREATED,
                f"API token {token} created for {user.get_username()}",
                user=issued_by,
                actor_label=f"system ({issued_through})" if issued_through else "",
                target=token,
                details={
                    "for": user.get_username(),
                    "integration": integration,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
        return token, key

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class IngestionRequest(models.Model):
    """An ingestion request sent with an Idempotency-Key: the same key sent again by the same
    user gets the first answer back, and nothing is stored twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    body_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "ingestion request"
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="ingestion_key_once_per_user")
        ]
        indexes = [models.Index(fields=["created_at"], name="ingestion_created")]

    def __str__(self) -> str:
        return f"{self.key} · {self.status_code}"


class TokenFailures(models.Model):
    """Per client address: the wrong API tokens it sent in its current window, and until when
    it is refused. Kept in the database so that every web process sees the same count."""

    address = models.CharField(max_length=100, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(
        help_text="When the first failure still counted was sent."
    )
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token failures"
        verbose_name_plural = "API token failures"
        indexes = [models.Index(fields=["window_started_at"], name="token_failures_window")]

    def __str__(self) -> str:
        return f"{self.address}: {self.failures}"
