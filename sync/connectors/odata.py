"""A REST/OData v4 connector for the Business Central API and the Dataverse Web API.

The two differ in conventions only (key and modified-on field names, record page addresses,
how creates answer), and those are configuration: pointing a Connection at a real tenant is
a matter of settings, not code."""

import base64
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from syncconsole.encryption import UNREADABLE_MESSAGE, UnreadableSecret

from . import dataverse, signin
from .base import (
    SECRET_UNREADABLE,
    SIGN_IN_ERRORS,
    Connector,
    ConnectorError,
    RemoteRecord,
    SetupFinding,
    Throttled,
)
from .batch import Operation, Outcome, send_batch
from .bulk import BATCH, BULK_MESSAGES, BulkWriter, flag
from .pacing import PAUSING_STATUSES, Pacer, backoff_delay, retry_after_seconds

logger = logging.getLogger(__name__)

BUSINESS_CENTRAL = "business_central"
DATAVERSE = "dataverse"

FLAVORS: dict[str, dict[str, Any]] = {
    BUSINESS_CENTRAL: {
        "modified_field": "lastModifiedDateTime",
        "key_field": "id",
        "key_fields": {},
        "record_url": "",
        # A small read that proves the address and the credentials work.
        "sign_in_check": "currencies?$top=1",
        # API v2.0's entity set is generalLedgerSetup (page 30087 "APIV2 - G/L Setup"); the
        # analytics API's is generalLedgerSetups.
        "local_currency_entity": "generalLedgerSetup",
        "currency_entity": "currencies",
        "currency_code_field": "code",
        # A currency's rates are a resource of their own, with a starting date each.
        "exchange_rate_entity": "currencyExchangeRates",
        # Creates and updates many a request through JSON $batch.
        "batch_writes": True,
    },
    DATAVERSE: {
        "modified_field": "modifiedon",
        "key_field": "",
        "key_fields": {
            "accounts": "accountid",
            "contacts": "contactid",
            "products": "productid",
            "transactioncurrencies": "transactioncurrencyid",
            "systemusers": "systemuserid",
            "leads": "leadid",
            "opportunities": "opportunityid",
        },
        "record_url": "",
        # Recognized by id, never by name: names are translated and may be changed.
        "admin_role_template": dataverse.SYSTEM_ADMINISTRATOR_TEMPLATE,
        "integration_role_ids": list(dataverse.INTEGRATION_ROLE_IDS),
        "privilege_names": {
            "accounts": "Account",
            "contacts": "Contact",
            "products": "Product",
            "transactioncurrencies": "TransactionCurrency",
            "systemusers": "User",
            "leads": "Lead",
            "opportunities": "Opportunity",
        },
        "currency_entity": "transactioncurrencies",
        "currency_code_field": "isocurrencycode",
        "exchange_rate_field": "exchangerate",
    },
}

# Answers worth sending the request again for. 408 is Business Central's operation timeout
# (8 minutes): the request was too slow this time, not wrong.
TRANSIENT_STATUSES = {408, 429, 502, 503, 504}
# Dataverse's annotation of a lookup property that names the table of the record it refers to.
LOOKUP_TABLE_ANNOTATION = "Microsoft.Dynamics.CRM.lookuplogicalname"


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client the console and the demo apps make: loading the
    certificate authorities costs about 20 ms, which each new client would otherwise pay
    again. httpx's own default (SSL_CERT_FILE or SSL_CERT_DIR when set, else certifi's)."""
    return httpx.create_ssl_context()


# Transports that serve an address without the network, by httpx mount pattern
# ("http://testserver"): the tests reach the demo apps in process through httpx's WSGI
# transport where the test is not about HTTP itself. Empty in production.
TRANSPORTS: dict[str, httpx.BaseTransport] = {}
# Dataverse's sign-in answers for a password that must be changed and for a disabled user.
PASSWORD_CHANGE_CODE = "0x80090327"  # noqa: S105 - an error code, not a password
USER_DISABLED_CODE = "0x8004d24b"


@dataclass
class SideConfig:
    """How to reach one app: its API root, its conventions and its credentials."""

    app_name: str
    base_url: str
    flavor: str = BUSINESS_CENTRAL
    auth_method: str = "oauth2"
    username: str = ""
    secret: str = field(default="", repr=False)
    options: dict[str, Any] = field(default_factory=dict)
    # OAuth 2.0 client credentials: the Microsoft Entra authority
    # (https://login.microsoftonline.com/<tenant>) and the scope; blank: from the API root.
    authority: str = ""
    scope: str = ""
    timeout: float = 10.0
    max_retries: int = 3
    backoff_seconds: float = 0.5
    # The longest single wait for an app that asks to slow down; a longer Retry-After pauses
    # the job instead of holding its worker.
    max_retry_after: float = 30.0
    # The most one connector (a job's, or a page's) waits in all for an app that asks to slow
    # down before it gives up: a job then pauses and goes on later.
    throttle_budget: float = 60.0
    page_size: int = 1000
    batch_size: int = 500

    def option(self, name: str, default: Any = None) -> Any:
        if name in self.options:
            return self.options[name]
        return FLAVORS.get(self.flavor, {}).get(name, default)

    @property
    def token_authority(self) -> str:
        """The Microsoft Entra authority to sign in at: the one set, or the one the API
        root names (a Business Central online address with its tenant)."""
        return (self.authority or signin.default_authority(self.base_url)).rstrip("/")

    @property
    def token_url(self) -> str:
        """The token endpoint: `<authority>/oauth2/v2.0/token`, or a `token_url` setting
        for another identity provider."""
        return str(self.options.get("token_url") or signin.token_endpoint(self.token_authority))

    @property
    def token_scope(self) -> str:
        return str(self.scope or self.options.get("scope") or signin.default_scope(self.base_url))


class ODataConnector(Connector):
    def __init__(self, config: SideConfig, client: httpx.Client | None = None):
        self.config = config
        self.app_name = config.app_name
        self.base_url = config.base_url.rstrip("/") + "/"
        self._owns_client = client is None
        self.client = client or httpx.Client(
            timeout=config.timeout, verify=tls_context(), mounts=dict(TRANSPORTS)
        )
        self._token: str | None = None  # the access token in use, to keep it out of errors
        self._user_id = ""
        self.batch_size = max(1, config.batch_size)
        self.pacer = Pacer(
            max_wait=config.max_retry_after,
            budget=config.throttle_budget,
            backoff_seconds=config.backoff_seconds,
        )

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # -- conventions -----------------------------------------------------------------
    def key_field(self, entity: str) -> str:
        return self.config.option("key_fields", {}).get(entity) or self.config.option(
            "key_field", "id"
        )

    @property
    def modified_field(self) -> str:
        return self.config.option("modified_field", "lastModifiedDateTime")

    def record_url(self, entity: str, record_id: str) -> str:
        template = self.config.option("record_url") or ""
        if not template:
            return ""
        return template.format(
            entity=quote(entity, safe=""),
            id=quote(str(record_id), safe=""),
            logical_name=quote(entity.rstrip("s"), safe=""),
        )

    def _record(self, entity: str, data: dict[str, Any], etag: str | None = None) -> RemoteRecord:
        return self._records(entity, [data], etag)[0]

    def _records(
        self, entity: str, rows: list[dict[str, Any]], etag: str | None = None
    ) -> list[RemoteRecord]:
        """The records of an answer. A page holds a thousand: the conventions are looked up
        once for all of them, not for each record."""
        key = self.key_field(entity)
        modified_field = self.modified_field
        records = []
        for data in rows:
            if not isinstance(data, dict) or key not in data:
                raise ConnectorError(
                    f"{self.app_name} answered with a record without its key '{key}'.",
                    detail=str(data)[:2000],
                )
            values = {
                k: v
                for k, v in data.items()
                if k != key and k != modified_field and not k.startswith("@")
            }
            records.append(
                RemoteRecord(
                    str(data[key]),
                    _parse_time(data.get(modified_field)),
                    values,
                    etag=_entity_tag(data.get("@odata.etag", etag)),
                )
            )
        return records

    # -- HTTP --------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        method = self.config.auth_method
        if method == "bearer":
            return {"Authorization": f"Bearer {self.config.secret}"}
        if method == "oauth2":
            return {"Authorization": f"Bearer {self._oauth2_token()}"}
        return {}

    def _auth(self):
        if self.config.auth_method == "basic":
            return httpx.BasicAuth(self.config.username, self.config.secret)
        return None

    def _token_key(self) -> tuple[str, ...]:
        config = self.config
        return signin.TokenCache.key(
            config.token_url, config.username, config.token_scope, str(config.secret)
        )

    def _oauth2_token(self) -> str:
        """An access token for the app: the one kept for this client, or a new one from the
        token endpoint when there is none or it is about to run out."""
        cached = signin.TOKENS.get(self._token_key())
        if cached:
            self._token = cached
            return cached
        config = self.config
        if not config.token_url:
            raise ConnectorError(
                f"Cannot sign in to {self.app_name}: the connection names no Microsoft Entra "
                "authority (https://login.microsoftonline.com/<tenant>) for it.",
                code="invalid_request",
            )
        if not config.username:
            raise ConnectorError(
                f"Cannot sign in to {self.app_name}: the connection has no client ID.",
                code="invalid_client",
            )
        body = self._send(
            "POST",
            config.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": config.username,
                "client_secret": config.secret,
                "scope": config.token_scope,
            },
            authenticate=False,
            parse=True,
        )
        token, lifetime = signin.read_token(body, self.app_name)
        self._token = token
        signin.TOKENS.put(self._token_key(), token, lifetime)
        return token

    def _renew_token(self) -> None:
        """Forget the token the app refused, so that the next call asks for a new one."""
        signin.TOKENS.forget(self._token_key(), self._token)

    def _send(
        self, method: str, url: str, *, authenticate: bool = True, parse: bool = False, **kwargs
    ) -> Any:
        """Call the API, retrying transient failures with back-off; with `parse`, return the
        JSON body (an answer that is not JSON counts as a transient failure).

        A POST is retried only when the app cannot have acted on it (no connection, 429,
        503): after a timeout or a broken answer the record may exist, and a retry would
        create it twice.

        An app that asks to slow down (429, 503, 504, 408) is waited for as its Retry-After
        says, or with a doubling back-off with jitter where it says nothing, within this
        job's limits (`max_retry_after` per wait, `throttle_budget` in all); beyond them, or
        for a POST it may have acted on, Throttled pauses the job."""
        if isinstance(self.config.secret, UnreadableSecret):
            raise ConnectorError(
                f"Cannot sign in to {self.app_name}: {UNREADABLE_MESSAGE}", code=SECRET_UNREADABLE
            )
        repeatable = method != "POST"
        headers = {
            "Accept": "application/json",
            "OData-Version": "4.0",
            **kwargs.pop("headers", {}),
        }
        attempt = 0
        token_renewed = False
        while True:
            attempt += 1
            if authenticate:
                # Each attempt: a token about to run out during a long wait is renewed.
                headers.update(self._auth_headers())
            pausing = False
            try:
                response = self.client.request(
                    method,
                    url,
                    headers=headers,
                    auth=self._auth() if authenticate else None,
                    **kwargs,
                )
            except httpx.TimeoutException as exc:
                error = ConnectorError(
                    f"{self.app_name} did not answer in time: the operation has timed out.",
                    detail=f"{method} {_safe_url(url)}: {type(exc).__name__}",
                    transient=True,
                )
                retry = repeatable or isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            except httpx.ConnectError as exc:
                error = ConnectorError(
                    f"Could not connect to {self.app_name}.",
                    detail=f"{method} {_safe_url(url)}: {exc}",
                    transient=True,
                )
                retry = True
            except httpx.TransportError as exc:
                # Connected, then the answer broke off: the app may have acted on the request.
                error = ConnectorError(
                    f"The connection to {self.app_name} broke off before its answer was complete.",
                    detail=f"{method} {_safe_url(url)}: {type(exc).__name__}: {exc}",
                    transient=True,
                )
                retry = repeatable
            else:
                if response.status_code < 400:
                    if not parse:
                        return response
                    try:
                        return _json(response, self.app_name)
                    except ConnectorError as broken:
                        error, retry = broken, repeatable
                else:
                    error = _error_from(response, self.app_name)
                    retry = error.transient and (repeatable or error.status in (429, 503))
                    pausing = error.status in PAUSING_STATUSES
                    if (
                        error.status == 401
                        and authenticate
                        and self.config.auth_method == "oauth2"
                        and not token_renewed
                    ):
                        # The access token expired or was revoked: fetch a new one and try
                        # once more.
                        self._renew_token()
                        token_renewed = True
                        attempt -= 1
                        continue
            error = self._without_credentials(error)
            if pausing:
                if not retry:
                    # A POST the app may have acted on: not sent again. The job pauses, and
                    # the job that goes on with it finds the record by its match field.
                    raise self._without_credentials(
                        self.pacer.pause(error, error.retry_after or 0, self.app_name)
                    )
                try:
                    delay = self.pacer.wait_before_retry(error, attempt, self.app_name)
                except Throttled as throttled:
                    raise self._without_credentials(throttled) from None
            else:
                if not retry or attempt > self.config.max_retries:
                    raise error
                delay = backoff_delay(
                    attempt, self.config.backoff_seconds, self.config.max_retry_after
                )
            logger.info("Retrying %s %s in %.1fs: %s", method, _safe_url(url), delay, error)
            time.sleep(delay)

    def _without_credentials(self, error: ConnectorError) -> ConnectorError:
        """An app may echo what it was sent (a token endpoint its client secret, a proxy the
        Authorization header): the message and detail are stored and logged, so they never
        hold the secret, its Basic form or the access token."""
        credentials = [*side_credentials(self.config), self._token or ""]
        error.message = _masked(error.message, credentials)
        error.detail = _masked(error.detail, credentials)
        error.args = (error.message,)
        return error

    # -- the interface -----------------------------------------------------------------
    def list_changes(
        self,
        entity: str,
        since: datetime | None,
        page_size: int | None = None,
        condition: str = "",
        select: list[str] | None = None,
    ) -> Iterator[list[RemoteRecord]]:
        conditions = [condition.strip()] if condition.strip() else []
        if since is not None:
            stamp = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
            conditions.append(f"{self.modified_field} gt {stamp}")
        params = {"$filter": " and ".join(conditions)} if conditions else {}
        yield from self._pages(entity, {**params, **self._select(entity, select)}, page_size)

    def _select(self, entity: str, fields: list[str] | None) -> dict[str, str]:
        """The $select of `fields` with the key and the modified time every record needs;
        nothing (every field) when no fields are named."""
        if not fields:
            return {}
        for name in fields:
            if not FIELD_NAME.fullmatch(name):
                raise ConnectorError(f"'{name}' is not a field name.")
        wanted = [self.key_field(entity), self.modified_field, *fields]
        return {"$select": ",".join(dict.fromkeys(wanted))}

    def _expand(self, navigations: list[str] | None) -> dict[str, str]:
        """The $expand of the navigation properties named (each record then carries them)."""
        if not navigations:
            return {}
        for name in navigations:
            if not FIELD_NAME.fullmatch(name):
                raise ConnectorError(f"'{name}' is not a navigation property name.")
        return {"$expand": ",".join(dict.fromkeys(navigations))}

    def _pages(
        self, entity: str, params: dict[str, Any] | None, page_size: int | None = None
    ) -> Iterator[list[RemoteRecord]]:
        """The pages of a query, following the app's next links."""
        size = page_size or self.config.page_size
        url: str | None = self.base_url + entity
        while url:
            body = self._send(
                "GET",
                url,
                params=params,
                headers={"Prefer": self._prefer(f"odata.maxpagesize={size}")},
                parse=True,
            )
            rows = body.get("value")
            if not isinstance(rows, list):
                raise ConnectorError(
                    f"{self.app_name} answered without a list of records.",
                    detail=str(body)[:2000],
                )
            yield self._records(entity, rows)
            # The next link carries its own query; httpx drops it when given params={}.
            url, params = self._next_link(body, url), None

    def _next_link(self, body: dict[str, Any], current: str) -> str | None:
        """The next page's address, refused when it leaves the app (it would carry our
        credentials elsewhere) or points back at the page just read (it would never end)."""
        link = body.get("@odata.nextLink")
        if not link:
            return None
        if not isinstance(link, str) or httpx.URL(link).netloc != httpx.URL(self.base_url).netloc:
            raise ConnectorError(
                f"{self.app_name} answered with a next page link outside its own address.",
                detail=str(link)[:500],
            )
        if link == current:
            raise ConnectorError(
                f"{self.app_name} answered with a next page link to the same page.",
                detail=link[:500],
            )
        return link

    def _prefer(self, *preferences: str) -> str:
        """The Prefer header of a read: on Dataverse, with the annotation that names the
        table each lookup property refers to (a polymorphic lookup may refer to several)."""
        if self.config.flavor == DATAVERSE:
            preferences += (f'odata.include-annotations="{LOOKUP_TABLE_ANNOTATION}"',)
        return ",".join(preferences)

    def get(self, entity: str, record_id: str) -> RemoteRecord | None:
        headers = {"Prefer": self._prefer()} if self.config.flavor == DATAVERSE else {}
        try:
            response = self._send("GET", self._item_url(entity, record_id), headers=headers)
        except ConnectorError as error:
            if error.is_not_found:
                return None
            raise
        try:
            body = _json(response, self.app_name)
        except ConnectorError:
            # Read again once, as a broken answer to any read is.
            body = self._send("GET", self._item_url(entity, record_id), headers=headers, parse=True)
        return self._record(entity, body, etag=response.headers.get("ETag"))

    def find(self, entity: str, field_name: str, value: Any) -> list[RemoteRecord]:
        return self.find_where(entity, {field_name: value}, top=10)

    def find_where(
        self, entity: str, equals: dict[str, Any], *, condition: str = "", top: int = 10
    ) -> list[RemoteRecord]:
        """Records whose fields all equal the values (at most `top`), within the app's own
        filter `condition` when given. Values are quoted as OData literals; a field name
        that is not a plain identifier is refused rather than put into the filter."""
        conditions = [condition.strip()] if condition.strip() else []
        for field_name, value in equals.items():
            if not FIELD_NAME.fullmatch(field_name):
                raise ConnectorError(f"'{field_name}' is not a field name.")
            conditions.append(f"{field_name} eq {odata_literal(value)}")
        body = self._send(
            "GET",
            self.base_url + entity,
            params={"$filter": " and ".join(conditions), "$top": top},
            headers={"Prefer": self._prefer()} if self.config.flavor == DATAVERSE else {},
            parse=True,
        )
        return self._records(entity, body.get("value", []))

    def get_many(
        self,
        entity: str,
        record_ids: list[str],
        select: list[str] | None = None,
        expand: list[str] | None = None,
    ) -> dict[str, RemoteRecord]:
        """The records among `record_ids` that exist, read many per request."""
        key = self.key_field(entity)
        ids = list(dict.fromkeys(str(record_id) for record_id in record_ids))
        return {record.id: record for record in self._where_any(entity, key, ids, select, expand)}

    def find_many(
        self,
        entity: str,
        field_name: str,
        values: list[Any],
        select: list[str] | None = None,
        expand: list[str] | None = None,
    ) -> list[RemoteRecord]:
        """Records whose field equals any of the values, read many values per request."""
        if not FIELD_NAME.fullmatch(field_name):
            raise ConnectorError(f"'{field_name}' is not a field name.")
        select = [field_name, *select] if select else None
        return self._where_any(entity, field_name, list(dict.fromkeys(values)), select, expand)

    def _where_any(
        self,
        entity: str,
        field_name: str,
        values: list[Any],
        select: list[str] | None,
        expand: list[str] | None = None,
    ) -> list[RemoteRecord]:
        """The records whose field equals any of the values, in as few requests as the
        length of a request line allows (every server has a limit; gunicorn's is 4 KB)."""
        key = field_name == self.key_field(entity)
        if self.config.flavor == DATAVERSE:
            # Dataverse's In query function names the field once for all the values: more
            # than twice the values of an "or" group per request. Its values are a JSON array
            # of strings.
            def term(value: Any) -> str:
                return dataverse.json_string(str(value).strip("{}") if key else value)

            def condition(terms: list[str]) -> str:
                return dataverse.in_condition(field_name, terms)

            separator = 3  # ","
        else:
            # "(f eq a or f eq b ...)" is OData 4.0, which every app speaks.
            def term(value: Any) -> str:
                literal = key_literal(value) if key else odata_literal(value)
                return f"{field_name} eq {literal}"

            def condition(terms: list[str]) -> str:
                return "(" + " or ".join(terms) + ")"

            separator = 8  # " or "
        params = {**self._select(entity, select), **self._expand(expand)}
        records: list[RemoteRecord] = []
        group: list[str] = []
        length = 0
        for value in values:
            text = term(value)
            size = len(quote(text, safe="")) + separator
            if group and (length + size > MAX_FILTER_LENGTH or len(group) >= MAX_VALUES):
                records += self._where_either(entity, condition(group), params)
                group, length = [], 0
            group.append(text)
            length += size
        if group:
            records += self._where_either(entity, condition(group), params)
        return records

    def _where_either(
        self, entity: str, condition: str, params: dict[str, str]
    ) -> list[RemoteRecord]:
        return [
            record
            for page in self._pages(entity, {"$filter": condition, **params})
            for record in page
        ]

    @functools.cached_property
    def _bulk(self) -> BulkWriter:
        """Dataverse takes many records a request with its bulk messages, Business Central
        with JSON $batch where the side's `batch_writes` is on (see sync/connectors/bulk.py)."""
        if self.config.flavor == DATAVERSE:
            way: str | None = BULK_MESSAGES
        elif flag(self.config.option("batch_writes"), default=True):
            way = BATCH
        else:
            way = None
        return BulkWriter(self, way, self.batch_size, self.config.timeout)

    @property
    def writes_in_bulk(self) -> bool:
        """Whether `create_many` and `update_many` write many records a request."""
        return self._bulk.available

    def writes_in_bulk_to(self, entity: str) -> bool:
        return self._bulk.takes(entity)

    def create_many(
        self, entity: str, values: list[dict[str, Any]]
    ) -> list[RemoteRecord | ConnectorError]:
        return self._bulk.write(entity, [(None, v, None) for v in values])

    def update_many(
        self, entity: str, changes: list[tuple[str, dict[str, Any], str | None]]
    ) -> list[RemoteRecord | ConnectorError]:
        return self._bulk.write(entity, changes)

    def batch(self, operations: Sequence[Operation]) -> list[Outcome]:
        """Send the operations with JSON `$batch` requests (Business Central), one outcome
        per operation; see sync/connectors/batch.py."""
        return send_batch(self, operations)

    def create(self, entity: str, values: dict[str, Any]) -> RemoteRecord:
        body = self._send(
            "POST",
            self.base_url + entity,
            json=values,
            headers={"Prefer": "return=representation"},
            parse=True,
        )
        return self._record(entity, body)

    def update(
        self, entity: str, record_id: str, values: dict[str, Any], *, etag: str | None = None
    ) -> RemoteRecord:
        """PATCH the record with If-Match: the version it was read with (`etag`), so that a
        change made in the app since is not overwritten; `*` (whatever is there, but only an
        existing record: Dataverse would otherwise create it) when there is none."""
        try:
            response = self._send(
                "PATCH",
                self._item_url(entity, record_id),
                json=values,
                headers={"If-Match": etag or "*", "Prefer": "return=representation"},
            )
        except ConnectorError as error:
            raise self._changed(error, entity, record_id, "updated") from None
        body = _json(response, self.app_name)
        return self._record(entity, body, etag=response.headers.get("ETag"))

    def delete(self, entity: str, record_id: str, *, etag: str | None = None) -> None:
        try:
            self._send(
                "DELETE", self._item_url(entity, record_id), headers={"If-Match": etag or "*"}
            )
        except ConnectorError as error:
            raise self._changed(error, entity, record_id, "deleted") from None

    def _changed(
        self, error: ConnectorError, entity: str, record_id: str, verb: str
    ) -> ConnectorError:
        """A refusal because the record's version no longer matches the one sent in
        If-Match (412 Precondition Failed, as OData and Dataverse answer; Business Central
        names it Request_EntityChanged) becomes a conflict that says so."""
        if error.status == 412 or (error.status == 409 and error.code == "Request_EntityChanged"):
            error.message = (
                f"The {entity} record {record_id} was not {verb}: it changed in "
                f"{self.app_name} after it was read ({error.message.rstrip('.')}). Nothing was "
                "overwritten; the next synchronization compares both versions again."
            )
            error.args = (error.message,)
            error.changed_since_read = True
        return error

    def _item_url(self, entity: str, record_id: str) -> str:
        return f"{self.base_url}{entity}({quote(str(record_id), safe='')})"

    # -- setup -------------------------------------------------------------------------
    def check_setup(self) -> list[SetupFinding]:
        """What is wrong with the address and the integration user, and whether it can sign
        in: the problems of `setup_findings`, without the other checks that passed."""
        return [f for f in self.setup_findings() if f.severity != "ok" or f.code == "sign_in"]

    def setup_findings(self) -> list[SetupFinding]:
        """Every check of the address and the integration user, passed or not."""
        if not self.base_url.startswith(("http://", "https://")):
            return [
                SetupFinding(
                    "address",
                    "error",
                    "The API address is not an http(s) URL.",
                    "Enter the app's API root (https://...) on the connection.",
                )
            ]
        is_dataverse = self.config.flavor == DATAVERSE
        check = "WhoAmI" if is_dataverse else self.config.option("sign_in_check")
        if not check:
            return []
        try:
            me = self._send("GET", self.base_url + check, parse=True)
        except ConnectorError as error:
            return sign_in_findings(self.app_name, error)
        findings = [
            SetupFinding("reachable", "ok", f"{self.app_name} answers at its address."),
            SetupFinding("sign_in", "ok", "The integration user can sign in."),
        ]
        if not is_dataverse:
            return findings
        self._user_id = str(me.get("UserId", ""))
        try:
            user = dataverse.read_user(self._get, self.base_url, self._user_id, self.app_name)
        except ConnectorError as error:
            return findings + [
                SetupFinding(
                    "roles",
                    "error",
                    f"The integration user's security roles could not be read: {error.message}",
                    "Give the integration user a role that may read users, security roles and "
                    "teams (prvReadUser, prvReadRole, prvReadTeam).",
                    error=error,
                )
            ]
        configured = self.config.option("integration_role_ids", [])
        role_ids = [
            str(role_id).strip("{}").lower()
            for role_id in ([configured] if isinstance(configured, str) else configured or [])
            if GUID.fullmatch(str(role_id).strip("{}"))
        ]
        return findings + dataverse.user_findings(
            self.app_name,
            user,
            admin_template=str(self.config.option("admin_role_template", "")).strip("{}").lower(),
            integration_role_ids=role_ids,
            installed=lambda: dataverse.installed_roles(
                self._get, self.base_url, role_ids, self.app_name
            ),
        )

    def _get(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        return self._send("GET", url, params=params, parse=True)

    def signed_in_user_id(self) -> str | None:
        """The integration user's own record id (Dataverse's WhoAmI); None where the app has
        no user record to ask about."""
        if self.config.flavor != DATAVERSE:
            return None
        if not self._user_id:
            self._user_id = str(self._send("GET", self.base_url + "WhoAmI", parse=True)["UserId"])
        return self._user_id

    def user_privileges(self) -> dict[str, str] | None:
        """The integration user's privileges and the level (Depth) at which it holds each
        (Dataverse's RetrieveUserPrivileges); None where the app has no privileges to ask
        about."""
        if self.config.flavor != DATAVERSE:
            return None
        self.signed_in_user_id()
        url = (
            f"{self.base_url}systemusers({quote(self._user_id, safe='')})/"
            "Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"
        )
        rows = self._send("GET", url, parse=True).get("RolePrivileges", [])
        if not isinstance(rows, list):
            raise ConnectorError(f"{self.app_name} answered without a list of privileges.")
        return dataverse.deepest_levels(rows)

    @property
    def user_id(self) -> str:
        """The integration user's id, once a setup check signed in to a Dataverse app."""
        return self._user_id

    def privilege_name(self, verb: str, entity: str) -> str | None:
        """The app's name of the privilege to `verb` (Read, Create, Write, Delete) records of
        `entity`, as Dataverse spells it (prvReadAccount); None where the app has none."""
        if self.config.flavor != DATAVERSE:
            return None
        names = self.config.option("privilege_names", {})
        name = names.get(entity) or FLAVORS[DATAVERSE]["privilege_names"].get(entity)
        if not name:
            singular = entity[:-3] + "y" if entity.endswith("ies") else entity.removesuffix("s")
            name = singular[:1].upper() + singular[1:]
        return f"prv{verb}{name}"

    def local_currency(self) -> str:
        """The ERP's local currency (LCY) code: Business Central's general ledger setup, or
        the connection's `local_currency` setting where the app does not say."""
        configured = str(self.config.options.get("local_currency", "") or "")
        entity = self.config.option("local_currency_entity")
        if not entity:
            return configured
        try:
            body = self._send("GET", self.base_url + entity, parse=True)
        except ConnectorError as error:
            if error.status in (400, 404) and configured:
                return configured
            raise
        rows = body.get("value", [body])
        code = rows[0].get("localCurrencyCode") if rows and isinstance(rows[0], dict) else None
        return str(code or configured)

    def exchange_rate_entity(self) -> str:
        return str(self.config.option("exchange_rate_entity") or "")


def sign_in_findings(app_name: str, error: ConnectorError) -> list[SetupFinding]:
    """What a failed first call says: the app cannot be reached, or the user cannot sign in
    (each sign-in reason its own finding, as the app answers it)."""
    if error.status is None and not error.transient:
        return [
            SetupFinding(
                "sign_in",
                "error",
                error.message,
                "Check the sign-in settings of the connection.",
                error=error,
            )
        ]
    if error.transient:
        if "timed out" in error.message:
            code, remedy = (
                "timeout",
                (
                    f"Check that {app_name} is up; raise the connection's timeout if it is "
                    "only slow."
                ),
            )
        elif error.status is None:
            code, remedy = (
                "unreachable",
                (f"Check the connection's address for {app_name} and the network between them."),
            )
        else:
            code, remedy = (
                "app_error",
                (
                    f"Check that {app_name} is up and that the address is its API root; try again "
                    "later."
                ),
            )
        return [SetupFinding(code, "error", error.message, remedy, error=error)]
    reachable = SetupFinding("reachable", "ok", f"{app_name} answers at its address.")
    if error.status == 404:
        return [
            SetupFinding(
                "unreachable",
                "error",
                f"{app_name} answered 404 at this address: {error.message}",
                f"Check the connection's address: it must be the API root of {app_name}.",
                error=error,
            )
        ]
    message = error.message.lower()
    if error.code == PASSWORD_CHANGE_CODE or "must be changed" in message:
        finding = SetupFinding(
            "password_change_required",
            "error",
            error.message,
            f"Sign in to {app_name} once as the integration user and change the password (or "
            "have an administrator turn off change at next sign-in), then enter the new "
            "password on the connection.",
            error=error,
        )
    elif error.code == USER_DISABLED_CODE or "disabled" in message:
        finding = SetupFinding(
            "user_disabled",
            "error",
            error.message,
            f"In {app_name}, enable the integration user (and check its license).",
            error=error,
        )
    elif error.code in SIGN_IN_ERRORS:
        finding = SetupFinding(
            "sign_in",
            "error",
            error.message,
            OAUTH_REMEDIES.get(error.code, OAUTH_REMEDIES["invalid_request"]).format(app=app_name),
            error=error,
        )
    elif error.status == 401:
        finding = SetupFinding(
            "sign_in",
            "error",
            error.message,
            "Check the user name and secret on the connection; enter the secret again if in doubt.",
            error=error,
        )
    else:
        finding = SetupFinding(
            "sign_in",
            "error",
            error.message,
            f"Check that the integration user may use {app_name}'s API.",
            error=error,
        )
    return [reachable, finding]


# What to do when Microsoft Entra ID refuses the sign-in, by its `error` ("Microsoft Entra
# authentication and authorization error codes",
# https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
OAUTH_REMEDIES = {
    "invalid_client": (
        "Enter the client secret's value (not its ID) of the app registration on the "
        "connection again; a secret that expired must be replaced in Microsoft Entra ID first."
    ),
    "unauthorized_client": (
        "Check the client ID on the connection, and that the app registration belongs to the "
        "tenant of the connection's authority for {app}."
    ),
    "invalid_scope": (
        "Check the scope of {app} on the connection: its application ID URI followed by "
        "/.default (left blank, it is taken from the API address)."
    ),
    "invalid_request": (
        "Check the authority (https://login.microsoftonline.com/<tenant ID>) and the client ID "
        "of {app} on the connection."
    ),
    "unsupported_grant_type": "Check that the authority of {app} is a Microsoft Entra ID one.",
    "invalid_grant": "Enter the client secret of {app} on the connection again.",
    "invalid_resource": (
        "Check the scope of {app}: the app must be set up in the tenant of the authority."
    ),
}


FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


# Characters of the values of one look-up in a URL: request lines under 4 KB get through every
# server (gunicorn's default limit is 4094 bytes).
MAX_FILTER_LENGTH = 3500
# Values of one look-up: the demo apps take up to 500, Dataverse's In function as many.
MAX_VALUES = 500
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def key_literal(value: Any) -> str:
    """A record id as an OData literal: a GUID bare, as Edm.Guid is written; anything else
    as text."""
    text = str(value).strip("{}")
    return text if GUID.fullmatch(text) else odata_literal(str(value))


def odata_literal(value: Any) -> str:
    """The value as an OData literal: text quoted with its quotes doubled."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    raise ConnectorError(f"A {type(value).__name__} value cannot be used in a filter.")


ENTITY_TAG = re.compile(r'(W/)?"[\x21\x23-\x7e]*"')


def _entity_tag(value: Any) -> str | None:
    """An entity tag from an answer, if it is one (`W/"..."` or `"..."`, printable ASCII, not
    absurdly long): it is sent back in a header, so nothing else is kept."""
    if not isinstance(value, str) or len(value) > 1024:
        return None
    tag = value.strip()
    if ENTITY_TAG.fullmatch(tag):
        return tag
    return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _spellings(credential: str) -> set[str]:
    """The forms an echo may hold: as sent in a form or a URL, and inside a JSON string."""
    return {
        credential,
        quote_plus(credential),
        quote(credential, safe=""),
        json.dumps(credential)[1:-1],
        json.dumps(credential, ensure_ascii=False)[1:-1],
    }


def side_credentials(config: SideConfig) -> list[str]:
    """What an echo of one side may carry: its secret, the secret's Basic form, and the
    access token this process keeps for it."""
    secret = str(config.secret)
    if not secret:
        return []
    credentials = [secret]
    if config.auth_method == "basic":
        credentials.append(base64.b64encode(f"{config.username}:{secret}".encode()).decode())
    if config.auth_method == "oauth2" and config.token_url:
        token = signin.TOKENS.get(
            signin.TokenCache.key(config.token_url, config.username, config.token_scope, secret)
        )
        credentials.append(token or "")
    return credentials


def masked(text: str, credentials: list[str]) -> str:
    """The text with every credential blanked, in each spelling an echo may hold it in."""
    return _masked(text, credentials)


def _masked(text: str, credentials: list[str]) -> str:
    for credential in credentials:
        # Short values would blank out ordinary words; an app echoing them is harmless.
        if len(credential) < 4:
            continue
        for spelling in sorted(_spellings(credential), key=len, reverse=True):
            text = text.replace(spelling, "[secret]")
            # A body cut short may end in the first part of one.
            for size in range(len(spelling) - 1, 3, -1):
                if text.endswith(spelling[:size]):
                    text = text[:-size] + "[secret]"
                    break
    return text


def _safe_url(url: str) -> str:
    """The URL without user info, for logs and details."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


def _json(response: httpx.Response, app_name: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise ConnectorError(
            f"{app_name} answered with something that is not JSON.",
            status=response.status_code,
            detail=response.text[:2000],
            transient=True,
        ) from None
    if not isinstance(data, dict):
        raise ConnectorError(
            f"{app_name} answered with unexpected JSON.",
            detail=response.text[:2000],
            transient=True,
        )
    return data


# The annotation of a bulk message's error on an elastic table: which records it refused
# ("Use bulk operation messages", On Error behavior with elastic tables).
BULK_ERROR_DETAILS = "Plugin.BulkApiErrorDetails"


def _refused_records(error: dict) -> dict[int, int] | None:
    """The records an elastic table refused in a bulk message, by index, with their status
    codes; None when the error does not list them (a standard table refuses a request whole)."""
    given = next((value for key, value in error.items() if key.endswith(BULK_ERROR_DETAILS)), None)
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except ValueError:
            return None
    if not isinstance(given, list):
        return None
    refused: dict[int, int] = {}
    for detail in given:
        index = detail.get("RequestIndex") if isinstance(detail, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            return None  # not the documented shape: taken as a request refused whole
        status = detail.get("StatusCode")
        refused[index] = status if isinstance(status, int) and 400 <= status < 600 else 400
    return refused or None


def _error_from(response: httpx.Response, app_name: str) -> ConnectorError:
    status = response.status_code
    code, message = "", ""
    refused = None
    try:
        body = response.json()
        error = body.get("error", {})
        if isinstance(error, str):  # an OAuth 2.0 token endpoint's answer
            code, message = error, str(body.get("error_description", "") or error)
        else:
            code, message = str(error.get("code", "")), str(error.get("message", ""))
            refused = _refused_records(error)
    except (ValueError, AttributeError):
        pass
    if not message:
        message = f"{status} {response.reason_phrase}".strip()
    if isinstance(code, str) and code in SIGN_IN_ERRORS and "\n" in message:
        # Entra's error_description ends with its trace and correlation ids and a time.
        message = message.split("\r\n")[0].split("\n")[0]
    retry_after = None
    if status in PAUSING_STATUSES:
        retry_after = retry_after_seconds(response.headers.get("Retry-After", ""))
    if status == 429:
        message = f"429 Too Many Requests: {message}"
    error = ConnectorError(
        message,
        status=status,
        code=code,
        detail=f"{response.request.method} {_safe_url(str(response.request.url))} -> {status}\n"
        + response.text[:4000],
        transient=status in TRANSIENT_STATUSES or status >= 500 and status != 501,
        retry_after=retry_after,
    )
    error.refused_records = refused
    return error


def connector_for(connection, side: str, **tuning: Any) -> ODataConnector:
    """The connector for one side ("source" or "destination") of a Connection; `tuning`
    overrides the side's settings (`timeout`, `max_retries`, ...) for this use only."""
    config = connection.side_config(side)
    return ODataConnector(replace(config, **tuning) if tuning else config)


class ConnectorPairs:
    """Both sides' connectors of each connection met, opened when first asked for and all
    closed at the end of the `with` block: for work over records of several connections."""

    def __init__(self) -> None:
        self.opened: dict[int, tuple[ODataConnector, ODataConnector]] = {}

    def of(self, connection) -> tuple[ODataConnector, ODataConnector]:
        """(source, destination) of the connection."""
        if connection.pk not in self.opened:
            self.opened[connection.pk] = (
                connector_for(connection, "source"),
                connector_for(connection, "destination"),
            )
        return self.opened[connection.pk]

    def __enter__(self) -> "ConnectorPairs":
        return self

    def __exit__(self, *exc_info) -> None:
        for pair in self.opened.values():
            for connector in pair:
                connector.close()
