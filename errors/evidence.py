"""The evidence archive of an entry or a problem: one zip file with what a support case needs
(the entries as stored, their jobs, the mapping's configuration, the connection and its
latest setup health check), with every credential blanked in each spelling an echo may hold
it in. Each download is recorded in the audit log."""

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from audit import services as audit
from audit.models import AuditEvent
from sync.connectors.odata import masked, side_credentials
from sync.models import Connection, ConnectionCheck, SyncJob, TableMapping
from syncconsole.permissions import is_sync_admin, require_sync_admin_for_setup

from .models import SETUP_CATEGORIES, ErrorGroup, SyncError

# A problem's archive holds its newest entries, this many at most: the archive stays small
# enough to build in memory and to attach to a support case.
MAX_ENTRIES = 50

README = """\
Evidence of {what}, taken {taken} by {who}.

Every credential of the connections (secrets, their Basic sign-in form, access tokens, the
change notifications' client state) is replaced by [secret], in every spelling.

Files:
  README.txt         this file
  problem.json       the problem: status, who changed it and when, first and last seen, the
                     entries it has had in all (deleted ones too) and its first entry
  entries.json       {entries}, newest first: ids, times, message,
                     detail (the failed request and the app's answer as stored), values sent
  jobs.json          the sync jobs that wrote them: status, counts, message
  mapping.json       the table mapping's configuration: field mappings, filters, rules
  connection.json    the connection, without its secrets
  health_check.json  the connection's latest setup health check and its findings
"""


@dataclass(frozen=True)
class Evidence:
    filename: str
    content: bytes


def entry_evidence(entry: SyncError, user) -> Evidence:
    """The archive of one entry (with its problem)."""
    require_sync_admin_for_setup(user, entry)
    return _archive(
        f"entry {entry.pk}",
        f"sync-error-{entry.pk}-evidence.zip",
        entry.group,
        [entry],
        entry.mapping,
        user,
        target=entry,
    )


def problem_evidence(group: ErrorGroup, user) -> Evidence:
    """The archive of a problem: its newest entries (MAX_ENTRIES at most) and its history."""
    require_sync_admin_for_setup(user, group)
    entries = SyncError.objects.filter(group=group).order_by("-created_at", "-id")
    if not is_sync_admin(user):
        entries = entries.exclude(category__in=SETUP_CATEGORIES)
    return _archive(
        f"problem {group.pk}",
        f"problem-{group.pk}-evidence.zip",
        group,
        list(entries.select_related("status_changed_by")[:MAX_ENTRIES]),
        group.mapping,
        user,
        target=group,
    )


def _archive(
    what: str,
    filename: str,
    group: ErrorGroup | None,
    entries: list[SyncError],
    mapping: TableMapping | None,
    user,
    *,
    target: models.Model,
) -> Evidence:
    connection = mapping.connection if mapping else None
    check = connection.checks.first() if connection else None
    jobs = SyncJob.objects.filter(pk__in={e.job_id for e in entries if e.job_id}).order_by("-pk")
    files: dict[str, Any] = {
        "problem.json": _problem(group),
        "entries.json": [_entry(entry) for entry in entries],
        "jobs.json": [_job(job) for job in jobs],
        "mapping.json": _fields(mapping) if mapping else None,
        "connection.json": _connection(connection) if connection else None,
        "health_check.json": _check(check) if check else None,
    }
    credentials = _credentials()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "README.txt",
            masked(
                README.format(
                    what=what,
                    taken=timezone.now().isoformat(timespec="seconds"),
                    who=user.get_username(),
                    entries=f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}",
                ),
                credentials,
            ),
        )
        for name, value in files.items():
            # Each value is masked before it is written as JSON (a stored detail may hold an
            # escaped echo that JSON would escape again), and the text once more after.
            text = json.dumps(
                _masked_values(value, credentials),
                cls=DjangoJSONEncoder,
                indent=2,
                ensure_ascii=False,
            )
            archive.writestr(name, masked(text, credentials))
    audit.record(
        AuditEvent.Action.EVIDENCE_DOWNLOADED,
        f"Evidence of {what} downloaded ({len(entries)} entries).",
        user=user,
        target=target,
        details={"entries": len(entries), "file": filename},
    )
    return Evidence(filename, buffer.getvalue())


def _credentials() -> list[str]:
    """Every connection's credentials and client state: an entry may echo any of them."""
    credentials = []
    for connection in Connection.objects.all():
        for side in ("source", "destination"):
            credentials.extend(side_credentials(connection.side_config(side)))
        credentials.append(connection.notification_token())
    return credentials


def _masked_values(value: Any, credentials: list[str]) -> Any:
    if isinstance(value, str):
        return masked(value, credentials)
    if isinstance(value, dict):
        return {
            masked(str(key), credentials): _masked_values(item, credentials)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked_values(item, credentials) for item in value]
    return value


def _fields(instance: models.Model, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The stored fields of a row, never a secret one (audit.services.is_secret_field)."""
    return {
        field.attname: field.value_from_object(instance)
        for field in instance._meta.concrete_fields
        if field.name not in leave_out and not audit.is_secret_field(field)
    }


def _problem(group: ErrorGroup | None) -> dict[str, Any] | None:
    if group is None:
        return None
    data = _fields(group)
    data["status_changed_by"] = (
        group.status_changed_by.get_username() if group.status_changed_by else None
    )
    return data


def _entry(entry: SyncError) -> dict[str, Any]:
    data = _fields(entry)
    data["status_changed_by"] = (
        entry.status_changed_by.get_username() if entry.status_changed_by else None
    )
    return data


def _job(job: SyncJob) -> dict[str, Any]:
    return _fields(job)


def _connection(connection: Connection) -> dict[str, Any]:
    data = _fields(connection)
    for side in ("source", "destination"):
        data[f"{side}_secret_set"] = bool(str(getattr(connection, f"{side}_secret")))
        # A setting named like a secret (client_secret, api_key) is left out by its name too.
        settings = data.get(f"{side}_settings")
        if isinstance(settings, dict):
            data[f"{side}_settings"] = {
                key: "[secret]" if audit.SECRET_NAME.search(str(key)) else value
                for key, value in settings.items()
            }
    return data


def _check(check: ConnectionCheck) -> dict[str, Any]:
    return {
        "checked_at": check.checked_at,
        "checked_by": check.checked_by.get_username() if check.checked_by else None,
        "findings": check.findings,
    }
