"""Change notifications from the apps: a change starts a modified-records sync of its mapping
within seconds instead of at the next scheduled run."""

from django.utils.crypto import constant_time_compare

from syncconsole.queue import QueueUnavailable

from .models import Connection, SyncJob
from .services import JobRefused, request_sync


def handle_notification(connection: Connection, side: str, payload: dict) -> list[SyncJob]:
    """Queue a sync for each enabled mapping of the changed table; returns the queued jobs.

    Several notifications in a row become one queued job per mapping."""
    if not constant_time_compare(
        str(payload.get("clientState", "")), connection.notification_token()
    ):
        raise PermissionError("The notification does not carry this connection's client state.")
    resource = str(payload.get("resource", ""))
    mappings = connection.mappings.filter(is_enabled=True, **{f"{side}_entity": resource})
    queued = []
    for mapping in mappings:
        try:
            queued.append(
                request_sync(
                    mapping,
                    kind=SyncJob.Kind.MODIFIED,
                    trigger=SyncJob.Trigger.WEBHOOK,
                    allow_behind_running=True,
                )
            )
        except (JobRefused, QueueUnavailable):
            continue
    return queued
