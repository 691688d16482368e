"""Small helpers that make domain objects for tests."""

from datetime import timedelta
from itertools import count

from django.utils import timezone

from couplings.models import Coupling
from errors.grouping import record_errors
from errors.models import Category, SyncError
from sync.models import Connection, SyncJob, TableMapping

_sequence = count(1)


def make_connection(**fields) -> Connection:
    n = next(_sequence)
    defaults = {
        "name": f"Connection {n}",
        "source_base_url": "https://erp.example.com/api/",
        "destination_base_url": "https://crm.example.com/api/",
        "integration_user": "integration@example.com",
        # Signing in with OAuth 2.0 client credentials (the default) at a tenant's authority.
        "source_authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
        "destination_authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
    }
    return Connection.objects.create(**{**defaults, **fields})


def make_mapping(connection: Connection | None = None, **fields) -> TableMapping:
    n = next(_sequence)
    defaults = {
        "name": f"CUSTOMER{n}",
        "source_entity": "customers",
        "destination_entity": "accounts",
    }
    return TableMapping.objects.create(
        connection=connection or make_connection(), **{**defaults, **fields}
    )


def make_job(mapping: TableMapping | None = None, **fields) -> SyncJob:
    now = timezone.now()
    defaults = {"started_at": now, "finished_at": now, "status": SyncJob.Status.SUCCEEDED}
    return SyncJob.objects.create(mapping=mapping or make_mapping(), **{**defaults, **fields})


def make_coupling(mapping: TableMapping, **fields) -> Coupling:
    n = next(_sequence)
    defaults = {"source_record_id": f"SRC-{n}", "destination_record_id": f"DST-{n}"}
    return Coupling.objects.create(mapping=mapping, **{**defaults, **fields})


def make_error(*, age: timedelta | None = None, **fields) -> SyncError:
    return record_errors([new_error(age=age, **fields)])[0]


def new_error(*, age: timedelta | None = None, **fields) -> SyncError:
    """An entry not stored yet, as the engine hands it over: for the writers' own tests."""
    n = next(_sequence)
    defaults = {
        # Apart by a millisecond in the order they are made (the newest first), and all of
        # this moment's day: a process's thousandth entry is not days old.
        "created_at": timezone.now() - (timedelta(milliseconds=n) if age is None else age),
        "message": f"Sync failed for record {n}",
        "category": Category.OTHER,
        "source_app": "Business Central",
        "source_entity": "customers",
        "source_record_id": f"C{n:05d}",
        "source_url": f"https://erp.example.com/customers/C{n:05d}",
        "destination_app": "Dynamics 365 Sales",
        "destination_entity": "accounts",
        "destination_record_id": f"A{n:05d}",
        "destination_url": f"https://crm.example.com/accounts/A{n:05d}",
    }
    return SyncError(**{**defaults, **fields})


def make_errors(n: int, **fields) -> list[SyncError]:
    return [make_error(**fields) for _ in range(n)]
