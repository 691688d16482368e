"""Many operations in one request: Business Central's JSON `$batch` (`POST api/v2.0/$batch`
with `{"requests": [...]}`, at most 100 operations a request, answered with
`{"responses": [...]}`; "Using OData transactional $batch requests" and "Current API
Limits"). Operations that share an atomicity group are written together or not at all."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import ConnectorError, Sender
from .business_central import api_root
from .pacing import PAUSING_STATUSES, retry_after_seconds

MAX_OPERATIONS = 100
TRANSIENT_STATUSES = {408, 429, 502, 503, 504}


@dataclass(frozen=True)
class Operation:
    """One request of a batch: `url` relative to the connector's base URL (the company),
    e.g. `customers` or `customers(<id>)`."""

    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    atomicity_group: str | None = None


@dataclass
class Outcome:
    """What became of one operation: its status and body, or why it failed."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error: ConnectorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _chunks(operations: Sequence[Operation]) -> list[list[int]]:
    """Indexes of the operations per request: at most MAX_OPERATIONS, an atomicity group
    never split."""
    groups: list[list[int]] = []
    for index, operation in enumerate(operations):
        name = operation.atomicity_group
        if name is not None and groups and operations[groups[-1][0]].atomicity_group == name:
            groups[-1].append(index)
        else:
            groups.append([index])
    chunks: list[list[int]] = []
    for members in groups:
        if len(members) > MAX_OPERATIONS:
            raise ConnectorError(
                f"An atomicity group of {len(members)} operations is more than one $batch "
                f"request takes ({MAX_OPERATIONS})."
            )
        if not chunks or len(chunks[-1]) + len(members) > MAX_OPERATIONS:
            chunks.append([])
        chunks[-1].extend(members)
    return chunks


def _outcome(connector: Sender, operation: Operation, answer: Any) -> Outcome:
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
        return Outcome(
            0,
            error=ConnectorError(
                f"{connector.app_name} answered a batch operation without its status.",
                detail=str(answer)[:2000],
                transient=True,
            ),
        )
    status, body = answer["status"], answer.get("body")
    given = answer.get("headers")
    headers = {str(k): str(v) for k, v in given.items()} if isinstance(given, dict) else {}
    if status < 400:
        return Outcome(status, body, headers)
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    retry_after = None
    if status in PAUSING_STATUSES:
        # Each operation of a batch is limited like a request of its own: its answer carries
        # its own Retry-After.
        lowered = {name.lower(): value for name, value in headers.items()}
        retry_after = retry_after_seconds(lowered.get("retry-after", ""))
    if status == 429:
        message = f"429 Too Many Requests: {message}".removesuffix(": ")
    return Outcome(
        status,
        body,
        headers,
        ConnectorError(
            message or f"{connector.app_name} answered {status}.",
            status=status,
            code=code,
            detail=f"{operation.method} {operation.url} in $batch -> {status}\n"
            + json.dumps(body)[:4000],
            transient=status in TRANSIENT_STATUSES or status >= 500 and status != 501,
            retry_after=retry_after,
        ),
    )


def send_batch(connector: Sender, operations: Sequence[Operation]) -> list[Outcome]:
    """Send the operations in as few `$batch` requests as the app takes, in order; one
    outcome per operation. Raises ConnectorError when a request as a whole failed (its
    operations were not done)."""
    root = api_root(connector)
    prefix = connector.base_url[len(root) :]
    outcomes: list[Outcome | None] = [None] * len(operations)
    for chunk in _chunks(operations):
        requests = []
        for index in chunk:
            operation = operations[index]
            request: dict[str, Any] = {
                "id": str(index),
                "method": operation.method.upper(),
                "url": prefix + operation.url,
                "headers": {"Content-Type": "application/json", **operation.headers},
            }
            if operation.body is not None:
                request["body"] = operation.body
            if operation.atomicity_group is not None:
                request["atomicityGroup"] = operation.atomicity_group
            requests.append(request)
        answer = connector._send(
            "POST",
            root + "$batch",
            json={"requests": requests},
            headers={"Content-Type": "application/json"},
            parse=True,
        )
        responses = answer.get("responses")
        if not isinstance(responses, list):
            raise ConnectorError(
                f"{connector.app_name} answered a $batch without its responses.",
                detail=str(answer)[:2000],
                transient=True,
            )
        by_id = {
            str(response.get("id")): response
            for response in responses
            if isinstance(response, dict)
        }
        for position, index in enumerate(chunk):
            # Answers carry the request's id; an app that leaves it out answers in order.
            response = by_id.get(str(index))
            if response is None and position < len(responses):
                response = responses[position]
            outcomes[index] = _outcome(connector, operations[index], response)
    return [outcome for outcome in outcomes if outcome is not None]
