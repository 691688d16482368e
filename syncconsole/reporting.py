"""Error reporting to Sentry, when SENTRY_DSN is set: the web server's and the workers'
unhandled errors and logged exceptions, with the job and mapping as tags where a job runs.

Nothing that signs in leaves the console: no personal data is sent (send_default_pii off), and
the scrubber blanks, at any depth of an event (request, frames' variables, extra data), every
key of sentry's own deny list and of the console's secrets: the connections' secrets and
tokens, the keys and passwords of the settings, Authorization headers and cookies."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, DEFAULT_PII_DENYLIST, EventScrubber

# Names the console gives its secrets (sync.Connection, the settings, the API), in the
# lower case the scrubber compares with.
CONSOLE_SECRETS = [
    "source_secret",
    "destination_secret",
    "client_secret",
    "secret_key",
    "encryption_key",
    "encryption_keys",
    "sync_console_encryption_key",
    "sync_console_encryption_keys",
    "notification_secret",
    "notification_token",
    "webhook_secret",
    "clientstate",
    "access_token",
    "refresh_token",
    "id_token",
    "bearer",
    "key",
    "api_token",
    "monitoring_token",
    "email_host_password",
    "database_url",
    "dsn",
    "sentry_dsn",
    "x-api-key",
    "proxy_authorization",
    "http_authorization",
    "http_cookie",
]
DENYLIST = [*DEFAULT_DENYLIST, *CONSOLE_SECRETS]


def scrubber() -> EventScrubber:
    return EventScrubber(
        denylist=DENYLIST, recursive=True, send_default_pii=False, pii_denylist=DEFAULT_PII_DENYLIST
    )


def init(dsn: str, *, environment: str, traces_sample_rate: float = 0.0, **options: Any) -> None:
    """Start reporting (settings.py calls it once per process when SENTRY_DSN is set)."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # send_default_pii stays at its default, off (naming it is deprecated in sentry-sdk 2).
        event_scrubber=scrubber(),
        traces_sample_rate=traces_sample_rate,
        **options,
    )


@contextmanager
def job_scope(job_id: int, mapping: str) -> Iterator[None]:
    """What is reported while a job runs names the job and its mapping. A scope of its own,
    so that a worker's next task, or a command's next job, does not carry them."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("job", str(job_id))
        scope.set_tag("mapping", mapping)
        yield
