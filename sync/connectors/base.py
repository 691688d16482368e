"""The one small interface every connector offers, and the errors it raises."""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass
class RemoteRecord:
    id: str
    modified_at: datetime | None
    values: dict[str, Any] = field(default_factory=dict)
    # The version the app gave the record when it was read (its `@odata.etag`): sent back in
    # If-Match, an update overwrites only the version that was read. None when unknown.
    etag: str | None = None


@dataclass(frozen=True)
class SetupFinding:
    """One thing the setup check found: `severity` is "error", "warning" or "ok"."""

    code: str
    severity: str
    message: str
    remedy: str = ""
    # The failed call behind a finding, when there was one (sign-in, connection).
    error: "ConnectorError | None" = field(default=None, compare=False, repr=False)


# The code of a failure before any call: the connection's stored secret cannot be decrypted.
SECRET_UNREADABLE = "SecretUnreadable"  # noqa: S105 - a failure code, not a secret
# The `error` of an OAuth 2.0 token endpoint's refusal (RFC 6749 section 5.2, as Microsoft
# Entra ID answers): the sign-in itself failed, whatever the HTTP status.
SIGN_IN_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_resource",
    }
)


class ConnectorError(Exception):
    """A failed call to an app's API, with what the app answered.

    `transient` failures (connection errors, timeouts, 429, 503) are worth retrying; the
    others are not. `detail` holds the response body, never credentials."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        detail: str = "",
        transient: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail
        self.transient = transient
        self.retry_after = retry_after
        # A bulk request to a Dataverse elastic table, which writes each record apart: the
        # records it refused, by their index in the request, with their status codes (the
        # others were written). None for a request refused whole.
        self.refused_records: dict[int, int] | None = None
        # An update or delete refused because the record changed after it was read (its
        # version no longer matches the one sent in If-Match): a conflict, not a failure.
        self.changed_since_read = False

    @property
    def is_not_found(self) -> bool:
        return self.status == 404

    @property
    def is_sign_in_failure(self) -> bool:
        return self.status == 401 or self.code in SIGN_IN_ERRORS or self.code == SECRET_UNREADABLE

    @property
    def is_missing_privilege(self) -> bool:
        """The user lacks a privilege on the whole table, not access to one record."""
        return self.status == 403 and "privilege" in self.message.lower()


class Throttled(ConnectorError):
    """The app asked to slow down (429, or 503, 504 and 408 that persist) for longer than one
    job may wait: the job pauses, and a job that goes on with it starts `resume_after`
    seconds later. Never a failure of a record."""

    def __init__(
        self, message: str, *, resume_after: float, cause: ConnectorError, app_name: str = ""
    ):
        super().__init__(
            message,
            status=cause.status,
            code=cause.code,
            detail=cause.detail,
            transient=True,
            retry_after=cause.retry_after,
        )
        self.resume_after = resume_after
        self.app_name = app_name


class Connector(ABC):
    app_name: str
    # Records written per request where the app takes many at once; 1 writes one at a time.
    batch_size: int = 1

    def key_field(self, entity: str) -> str:
        """The field that keys the entity's records, as a `$filter` names it."""
        return "id"

    @abstractmethod
    def list_changes(
        self,
        entity: str,
        since: datetime | None,
        page_size: int | None = None,
        condition: str = "",
        select: list[str] | None = None,
    ) -> Iterator[list[RemoteRecord]]:
        """Pages of the records changed after `since` (all records when None), oldest first,
        narrowed by the app's own filter `condition` (the table mapping's filter) when given;
        with `select`, only those fields (and the key and modified time) are read."""

    @abstractmethod
    def get(self, entity: str, record_id: str) -> RemoteRecord | None:
        """The record, or None when it does not exist."""

    @abstractmethod
    def find(self, entity: str, field_name: str, value: Any) -> list[RemoteRecord]:
        """Records whose field equals the value."""

    def get_many(
        self,
        entity: str,
        record_ids: list[str],
        select: list[str] | None = None,
        expand: list[str] | None = None,
    ) -> dict[str, RemoteRecord]:
        """The records that exist among `record_ids`, by id (with `select`, at least those
        fields; with `expand`, those navigation properties too, where the app expands them)."""
        found = (self.get(entity, record_id) for record_id in record_ids)
        return {record.id: record for record in found if record is not None}

    def find_many(
        self,
        entity: str,
        field_name: str,
        values: list[Any],
        select: list[str] | None = None,
        expand: list[str] | None = None,
    ) -> list[RemoteRecord]:
        """Records whose field equals any of the values (with `select`, at least those
        fields; with `expand`, those navigation properties too, where the app expands them)."""
        return [record for value in values for record in self.find(entity, field_name, value)]

    @property
    def writes_in_bulk(self) -> bool:
        """Whether `create_many` and `update_many` write a batch in one request."""
        return False

    def writes_in_bulk_to(self, entity: str) -> bool:
        """Whether `create_many` and `update_many` write `entity`'s records many a request
        (an app may take bulk writes of some tables only)."""
        return self.writes_in_bulk

    def create_many(
        self, entity: str, values: list[dict[str, Any]]
    ) -> list["RemoteRecord | ConnectorError"]:
        """Create the records; for each, the record created or why it was not. The records
        of one request that failed as a whole (no answer, a sign-in failure) share its
        error."""
        raise NotImplementedError

    def update_many(
        self, entity: str, changes: list[tuple[str, dict[str, Any], str | None]]
    ) -> list["RemoteRecord | ConnectorError"]:
        """Update the records ((id, values, etag) triples); for each, the record or why it was
        not, as `create_many` says. A record with its `etag` (the version it was read with)
        is updated only if it is still that version, as `update` does."""
        raise NotImplementedError

    @abstractmethod
    def create(self, entity: str, values: dict[str, Any]) -> RemoteRecord: ...

    @abstractmethod
    def update(
        self, entity: str, record_id: str, values: dict[str, Any], *, etag: str | None = None
    ) -> RemoteRecord:
        """Update the record. With the `etag` it was read with, only that version is
        overwritten (a changed record raises a ConnectorError with `changed_since_read`);
        without, whatever is there is overwritten."""

    @abstractmethod
    def delete(self, entity: str, record_id: str, *, etag: str | None = None) -> None:
        """Delete the record; with `etag`, only the version that was read."""

    @abstractmethod
    def record_url(self, entity: str, record_id: str) -> str:
        """Where a person sees the record in the app."""

    @abstractmethod
    def check_setup(self) -> list[SetupFinding]:
        """Sign in and check the integration user; findings with remedies."""

    def setup_findings(self) -> list[SetupFinding]:
        """Every check of `check_setup`, the passed ones too."""
        return self.check_setup()

    def user_privileges(self) -> dict[str, str] | None:
        """The integration user's privileges, each with the level at which it holds it (""
        where the app does not say); None where the app has none to ask about."""
        return None

    def privilege_name(self, verb: str, entity: str) -> str | None:
        """The app's name of the privilege to Read/Create/Write/Delete records of `entity`."""
        return None

    def local_currency(self) -> str:
        """The app's local currency code; empty where it has none to tell."""
        return ""

    def exchange_rate_entity(self) -> str:
        """The table where the app keeps its currencies' exchange rates apart from the
        currencies (Business Central's currencyExchangeRates); empty where it has none."""
        return ""

    def close(self) -> None:  # noqa: B027 - a connector without connections has nothing to do
        """Let go of open connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Sender(Protocol):
    """What the calls beyond reading and writing records ($batch, subscriptions) need of a
    connector: its app's name, its address, and its way of sending a request (sign-in,
    retries, errors)."""

    app_name: str
    base_url: str

    def _send(
        self, method: str, url: str, *, authenticate: bool = True, parse: bool = False, **kwargs
    ) -> Any: ...
