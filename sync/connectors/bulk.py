"""Writing many records a request, as each app takes them: Dataverse's bulk operation messages
(`CreateMultiple`, `UpdateMultiple`; "Use bulk operation messages") and Business Central's
JSON `$batch` ("Using OData transactional $batch requests", at most 100 operations a request:
"Current API Limits").

- **How many records a request carries sizes itself** (`BatchSize`, one per table): it starts
  at `START_SIZE` (at most the side's `batch_size`), halves after a call that took more than
  half the timeout or got no answer, and doubles after a full call that took less than a
  fifth of it, never above `batch_size`.
- **A request that may have been acted on is never sent again**: after a timeout, a broken
  or cut-off answer or an answer without the ids created, its records fail with that error
  (a later run finds those that were created by their match field).
- **A standard Dataverse table refuses a request whole** and answers the first error only:
  nothing was written, so the request is split in halves and the halves sent, down to the
  records refused, each with its own error. A half sent whole and written means the other
  half holds the refused record: it is split without being sent whole. A half that gets no
  answer ends the halving: the records not sent yet fail with that error, unsent (a later
  run tries them again), so that an app that is failing is not sent more.
- **A Dataverse elastic table writes each record apart** and lists the records it refused
  (`Plugin.BulkApiErrorDetails`, asked for with `Prefer: odata.include-annotations`): those
  fail with the app's reason, an update not listed was written, and a create not listed was
  written without its id being said (it fails like a lost answer, and a later run finds it by
  its match field). Such a request is never halved or sent again.
- **Not every Dataverse table takes the bulk messages**: one that answers that it does not
  (`0x80040800`) is written one request a record for the rest of the connector's life.
- **Business Central's `$batch`** carries independent operations (no atomicity group), so
  each record has its own outcome; each update carries its own `If-Match`, the version it was
  read with (`*` where there is none: an overwrite, or a record read without a version), and
  an operation refused because the record changed since is that record's conflict.
- **Dataverse's `UpdateMultiple` takes no version per record**: updates that carry the version
  they were read with are sent one `PATCH` each with `If-Match`, so that a change made in the
  app after the read is not overwritten; `UpdateMultiple` carries only the updates without one
  (an overwrite). Creates keep `CreateMultiple`.
- **An operation of a `$batch` that the app asks to slow down** (429 or 503, and 408 or 504
  for an update) was not done: it is sent again in a later `$batch` after the wait its
  Retry-After asks for, within the job's limits (sync/connectors/pacing.py); beyond them, or
  for a create the app may have acted on (408, 504), it pauses the job (Throttled).
- A sign-in failure, a missing privilege or an app that asks to slow down (Throttled) fails
  the records not written yet with it, unsent: the engine stops or pauses the job on it."""

import time
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import quote

from .base import ConnectorError, RemoteRecord, Sender, Throttled
from .batch import MAX_OPERATIONS, Operation, send_batch
from .batch import Outcome as OperationOutcome
from .pacing import PAUSING_STATUSES, Pacer

# Records the first request of a table carries (Microsoft suggests starting with a few
# hundred to a thousand records a request for a standard Dataverse table, 100 for an elastic
# one; Business Central takes at most 100).
START_SIZE = 100
# A call that takes more than this share of the timeout is slow: the next carries half as
# many records. A full call under FAST_SHARE of it lets the next carry twice as many.
SLOW_SHARE = 0.5
FAST_SHARE = 0.2
# Dataverse's answer to a message a table does not take (SdkEntityDoesNotSupportMessage).
NOT_SUPPORTED_CODE = "0x80040800"
# Records written one request each that fail transiently in a row before the rest of the
# call is left unsent (they fail with the last error, and a later run tries them again).
TRANSIENT_IN_A_ROW = 3

BULK_MESSAGES = "bulk messages"
BATCH = "$batch"

Outcome = RemoteRecord | ConnectorError
# (the id of the record to update or None, values, the version it was read with or None)
Item = tuple[str | None, dict[str, Any], str | None]


class Writer(Sender, Protocol):
    """What bulk writing needs of a connector beyond sending a request."""

    pacer: Pacer

    def key_field(self, entity: str) -> str: ...

    def _record(
        self, entity: str, data: dict[str, Any], etag: str | None = None
    ) -> RemoteRecord: ...

    def _changed(
        self, error: ConnectorError, entity: str, record_id: str, verb: str
    ) -> ConnectorError: ...

    def create(self, entity: str, values: dict[str, Any]) -> RemoteRecord: ...

    def update(
        self, entity: str, record_id: str, values: dict[str, Any], *, etag: str | None = None
    ) -> RemoteRecord: ...


class BatchSize:
    """How many records the next request of a table carries."""

    def __init__(self, maximum: int, timeout: float, start: int = START_SIZE):
        self.maximum = max(1, maximum)
        self.size = max(1, min(self.maximum, start))
        self.slow = timeout * SLOW_SHARE
        self.fast = timeout * FAST_SHARE

    def took(self, seconds: float, count: int) -> None:
        """A call of `count` records was answered in `seconds`."""
        if seconds > self.slow:
            self.size = max(1, min(self.size, count) // 2)
        elif seconds < self.fast and count >= self.size:
            self.size = min(self.maximum, self.size * 2)

    def failed(self, count: int) -> None:
        """A call of `count` records got no answer in time (or a server error)."""
        self.size = max(1, min(self.size, count) // 2)


def flag(value: Any, default: bool) -> bool:
    """A yes/no setting as JSON gives it (true, "true", 1; false, "false", 0)."""
    if isinstance(value, str):
        value = value.strip().lower()
    if value in (True, "true", "yes", "on", 1, "1"):
        return True
    if value in (False, "false", "no", "off", 0, "0"):
        return False
    return default


def hopeless(error: ConnectorError) -> bool:
    """Fails every record the same way, or asks to slow down: the engine stops or pauses the
    job on it, and no more is sent."""
    return error.is_sign_in_failure or error.is_missing_privilege or isinstance(error, Throttled)


def refused(error: ConnectorError) -> bool:
    """The app answered and wrote nothing: a standard Dataverse table, or a request the app
    turned down before acting on it."""
    return (
        not error.transient
        and error.status is not None
        and 400 <= error.status < 500
        and not hopeless(error)
    )


def not_supported(error: ConnectorError) -> bool:
    return error.status == 400 and (
        error.code.lower() == NOT_SUPPORTED_CODE
        or "does not support entities of type" in error.message
    )


def _shrinks(error: ConnectorError) -> bool:
    """A failure a smaller request may avoid: too large, no answer (in time), a server error
    (other than 503, which says the app is unavailable, whatever the size)."""
    if error.status == 413:
        return True
    return error.transient and (
        error.status is None or (error.status >= 500 and error.status != 503)
    )


class BulkWriter:
    """A connector's bulk writes: the sizes it learned, and the tables it learned to write
    one request a record, for the connector's life."""

    def __init__(self, connector: Writer, way: str | None, maximum: int, timeout: float):
        self.connector = connector
        self.way = way
        self.maximum = min(maximum, MAX_OPERATIONS) if way == BATCH else maximum
        self.timeout = timeout
        self.sizes: dict[str, BatchSize] = {}
        self.one_by_one: set[str] = set()  # tables that do not take the bulk messages

    @property
    def available(self) -> bool:
        return self.way is not None and self.maximum > 1

    def takes(self, entity: str) -> bool:
        return self.available and entity not in self.one_by_one

    def size(self, entity: str) -> BatchSize:
        if entity not in self.sizes:
            self.sizes[entity] = BatchSize(self.maximum, self.timeout)
        return self.sizes[entity]

    # -- writing ---------------------------------------------------------------------------
    def write(self, entity: str, items: Sequence[Item]) -> list[Outcome]:
        """Create (id None) or update each record: for each, the record written or why not."""
        if not self.available:
            raise ConnectorError(f"{self.connector.app_name} takes no bulk writes here.")
        results: list[Outcome | None] = [None] * len(items)
        pending = list(range(len(items)))
        if self.way == BULK_MESSAGES:
            # UpdateMultiple takes no version per record: a guarded update goes on its own.
            guarded = [i for i in pending if items[i][0] is not None and items[i][2]]
            if guarded:
                guarded_set = set(guarded)
                pending = [i for i in pending if i not in guarded_set]
                stop = self._one_by_one(entity, guarded, items, results)
                if stop is not None:
                    for index in pending:
                        results[index] = stop
                    pending = []
        while pending:
            if not self.takes(entity):
                self._one_by_one(entity, pending, items, results)
                break
            count = self.size(entity).size
            chunk, pending = pending[:count], pending[count:]
            stop = self._settle(entity, chunk, items, results)
            if stop is not None and hopeless(stop):
                for index in pending:
                    results[index] = stop
                break
        outcomes = [result for result in results if result is not None]
        if len(outcomes) != len(items):
            raise RuntimeError("A bulk write left a record without its outcome.")
        return outcomes

    def _settle(
        self,
        entity: str,
        indexes: list[int],
        items: Sequence[Item],
        results: list[Outcome | None],
        known: ConnectorError | None = None,
    ) -> ConnectorError | None:
        """Write the records; `known` when a request of them was refused already, with that
        error. Returns the error of a request that failed without being refused (no answer,
        a sign-in failure): the records not sent yet fail with it too, unsent."""
        if known is None:
            answer = self._request(entity, indexes, items)
            if isinstance(answer, list):
                for index, outcome in zip(indexes, answer, strict=True):
                    results[index] = outcome
                # An operation that paused the job stops the rest from being sent.
                return next(
                    (o for o in answer if isinstance(o, ConnectorError) and hopeless(o)), None
                )
            if self._falls_back(entity, answer):
                return self._one_by_one(entity, indexes, items, results)
            if not refused(answer) or len(indexes) == 1:
                for index in indexes:
                    results[index] = answer
                return None if refused(answer) else answer
            known = answer
        if len(indexes) == 1:
            results[indexes[0]] = known
            return None
        # Refused whole, with the first refusal only: halve it.
        half = (len(indexes) + 1) // 2
        first, second = indexes[:half], indexes[half:]
        stop = self._settle(entity, first, items, results)
        if stop is not None:
            for index in second:
                results[index] = stop
            return stop
        # The first half written whole: the refused record is in the other half.
        written = all(isinstance(results[index], RemoteRecord) for index in first)
        return self._settle(entity, second, items, results, known if written else None)

    def _falls_back(self, entity: str, error: ConnectorError) -> bool:
        """Whether the app said it takes no bulk messages for this table (Dataverse): it is
        written one request a record from now on."""
        if self.way == BULK_MESSAGES and not_supported(error):
            self.one_by_one.add(entity)
            return True
        return False

    def _request(
        self, entity: str, indexes: list[int], items: Sequence[Item]
    ) -> list[Outcome] | ConnectorError:
        """One request of the records: an outcome each, or the error of the whole request."""
        size = self.size(entity)
        started = time.monotonic()
        try:
            if self.way == BATCH:
                outcomes = self._batch(entity, [items[i] for i in indexes])
            else:
                outcomes = self._multiple(entity, [items[i] for i in indexes])
        except ConnectorError as error:
            if _shrinks(error):
                size.failed(len(indexes))
            if error.refused_records is not None and self.way == BULK_MESSAGES:
                return self._written_apart(error, [items[i] for i in indexes])
            return error
        size.took(time.monotonic() - started, len(indexes))
        return outcomes

    def _written_apart(self, error: ConnectorError, items: list[Item]) -> list[Outcome]:
        """The outcome of each record of a bulk message an elastic table answered with the
        records it refused: the others were written."""
        refused = error.refused_records or {}
        creating = items[0][0] is None
        action = "CreateMultiple" if creating else "UpdateMultiple"
        app = self.connector.app_name
        first = min(refused, default=None)
        outcomes: list[Outcome] = []
        for index, (record_id, values, _) in enumerate(items):
            if index in refused:
                if index == first:
                    message = error.message
                else:
                    # The app gives the reason of the first refused record only.
                    message = (
                        f"{app} refused this record in {action} ({refused[index]}); it gave "
                        f"the reason for one record of the request only: {error.message}"
                    )
                outcomes.append(
                    ConnectorError(
                        message, status=refused[index], code=error.code, detail=error.detail
                    )
                )
            elif creating:
                outcomes.append(
                    ConnectorError(
                        f"{app} answered {action} without the ids created.",
                        detail=error.detail,
                        transient=True,
                    )
                )
            else:
                outcomes.append(RemoteRecord(str(record_id), None, dict(values)))
        return outcomes

    def _multiple(self, entity: str, items: list[Item]) -> list[Outcome]:
        """Dataverse's CreateMultiple (all items new) or UpdateMultiple."""
        connector = self.connector
        key = connector.key_field(entity)
        creating = items[0][0] is None
        action = "CreateMultiple" if creating else "UpdateMultiple"
        kind = f"Microsoft.Dynamics.CRM.{key.removesuffix('id') or entity}"
        url = f"{connector.base_url}{entity}/Microsoft.Dynamics.CRM.{action}"
        targets = [
            {"@odata.type": kind, **({key: record_id} if record_id else {}), **values}
            for record_id, values, _ in items
        ]
        # An elastic table says which records it refused only when asked.
        headers = {"Prefer": "odata.include-annotations=Microsoft.PowerApps.CDS.ErrorDetails.*"}
        if not creating:
            connector._send("POST", url, json={"Targets": targets}, headers=headers)
            return [
                RemoteRecord(str(record_id), None, dict(values)) for record_id, values, _ in items
            ]
        answer = connector._send(
            "POST", url, json={"Targets": targets}, headers=headers, parse=True
        )
        created = answer.get("Ids")
        if not isinstance(created, list) or len(created) != len(items):
            # The app took the request and may have created the records: sending them again
            # could create each twice. A later run finds them by their match field.
            raise ConnectorError(
                f"{connector.app_name} answered {action} without the ids created.",
                detail=str(answer)[:2000],
                transient=True,
            )
        return [
            RemoteRecord(str(record_id), None, dict(values))
            for record_id, (_, values, _) in zip(created, items, strict=True)
        ]

    def _batch(self, entity: str, items: list[Item]) -> list[Outcome]:
        """Business Central's $batch: a POST or a PATCH each, independent of the others; a
        PATCH with If-Match the version the record was read with (`*` without one). The
        operations the app asked to slow down are sent again once it said they may be."""
        operations = [
            Operation("POST", entity, dict(values))
            if record_id is None
            else Operation(
                "PATCH",
                f"{entity}({quote(str(record_id), safe='')})",
                dict(values),
                {"If-Match": etag or "*"},
            )
            for record_id, values, etag in items
        ]
        results: list[Outcome | None] = [None] * len(items)
        pending = list(range(len(items)))
        attempt = 0
        while pending:
            attempt += 1
            outcomes = send_batch(self.connector, [operations[i] for i in pending])
            slowed: dict[int, ConnectorError] = {}
            for index, outcome in zip(pending, outcomes, strict=True):
                if outcome.error is not None and outcome.status in PAUSING_STATUSES:
                    slowed[index] = outcome.error
                else:
                    results[index] = self._operation_result(
                        entity, items[index][0], operations[index], outcome
                    )
            pending = self._again_after_wait(slowed, operations, attempt, results)
        return [result for result in results if result is not None]

    def _again_after_wait(
        self,
        slowed: dict[int, ConnectorError],
        operations: list[Operation],
        attempt: int,
        results: list[Outcome | None],
    ) -> list[int]:
        """The operations the app asked to slow down, to send again after waiting as long as
        they say; none when the job may not wait that long (or a create may have been acted
        on): each of them then pauses the job."""
        if not slowed:
            return []
        connector = self.connector
        error = max(slowed.values(), key=lambda e: e.retry_after or 0)
        # A create answered 408 or 504 may have been done: it is never sent again.
        unsafe = any(
            operations[index].method == "POST" and failure.status not in (429, 503)
            for index, failure in slowed.items()
        )
        try:
            if unsafe:
                raise connector.pacer.pause(error, error.retry_after or 0, connector.app_name)
            time.sleep(connector.pacer.wait_before_retry(error, attempt, connector.app_name))
        except Throttled as throttled:
            for index in slowed:
                results[index] = throttled
            return []
        return list(slowed)

    def _operation_result(
        self, entity: str, record_id: str | None, operation: Operation, outcome: OperationOutcome
    ) -> Outcome:
        if outcome.error is not None:
            if record_id is None:
                return outcome.error
            # Changed since it was read (412, Request_EntityChanged): its conflict.
            return self.connector._changed(outcome.error, entity, str(record_id), "updated")
        etag = {k.lower(): v for k, v in outcome.headers.items()}.get("etag")
        try:
            return self.connector._record(entity, outcome.body, etag=etag)
        except ConnectorError as error:
            # Written, but not said as what: like a lost answer, worth a later run.
            error.transient = True
            error.detail = f"{operation.method} {operation.url} in $batch: {error.detail}"
            return error

    def _one_by_one(
        self,
        entity: str,
        indexes: list[int],
        items: Sequence[Item],
        results: list[Outcome | None],
    ) -> ConnectorError | None:
        """One request a record: for a table that takes no bulk messages, or updates that
        carry their version."""
        in_a_row = 0
        for position, index in enumerate(indexes):
            record_id, values, etag = items[index]
            try:
                if record_id is None:
                    results[index] = self.connector.create(entity, values)
                else:
                    results[index] = self.connector.update(entity, record_id, values, etag=etag)
                in_a_row = 0
            except ConnectorError as error:
                results[index] = error
                in_a_row = in_a_row + 1 if error.transient else 0
                if hopeless(error) or in_a_row >= TRANSIENT_IN_A_ROW:
                    for rest in indexes[position + 1 :]:
                        results[rest] = error
                    return error if hopeless(error) else None
        return None
