"""The demo ERP and CRM with a Connection to them, reached either in process (httpx's WSGI
transport, inside the test's rolled-back transaction) or over real HTTP (a live server)."""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache

import httpx
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from demo import models as demo
from demo import outgoing
from demo.seed import ADMIN_PASSWORD, ADMIN_USER, create_connection, create_records
from sync import engine
from sync.connectors import odata
from sync.models import Connection, SyncJob, TableMapping
from sync.services import create_job

# The address the in-process demo apps answer on; `testserver` is one of the test hosts.
IN_PROCESS_URL = "http://testserver"


@cache
def wsgi_handler() -> WSGIHandler:
    """One handler for every test of the process, as a web server keeps one for all its
    requests: loading the middleware costs some 15 ms a handler."""
    return WSGIHandler()


class InProcessApps:
    """The console's WSGI application, called in this thread on this thread's database
    connection, so that what the demo apps write stays in the test's transaction.

    Django closes a connection inside an atomic block at the start and end of a request; as
    its test client does, that signal handler is held off while a request is served."""

    def __init__(self) -> None:
        self.handler = wsgi_handler()
        # A request served while another is (a demo app calling the console back, as in a
        # webhook handshake) must not connect the handler again before the outer one ends.
        self.depth = 0

    def __call__(self, environ, start_response):
        if self.depth == 0:
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
        self.depth += 1
        try:
            response = self.handler(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                response.close()  # request_finished, while the handler is still held off
        finally:
            self.depth -= 1
            if self.depth == 0:
                request_started.connect(close_old_connections)
                request_finished.connect(close_old_connections)


@dataclass
class DemoApps:
    base_url: str
    connection: Connection
    mounts: dict[str, httpx.BaseTransport] = field(default_factory=dict)

    def mapping(self, name: str) -> TableMapping:
        return self.connection.mappings.get(name=name)

    def client(self, **options) -> httpx.Client:
        """An HTTP client that reaches the demo apps however this test serves them."""
        return httpx.Client(mounts=self.mounts, timeout=10, verify=odata.tls_context(), **options)

    def get(self, url: str, **options) -> httpx.Response:
        with self.client() as client:
            return client.get(url, **options)

    def post(self, url: str, **options) -> httpx.Response:
        with self.client() as client:
            return client.post(url, **options)

    def opens(self, url: str) -> bool:
        return self.get(url).status_code == 200

    def crm(self) -> httpx.Client:
        """The CRM's API as a person with the System Administrator role uses it."""
        return self.client(
            base_url=self.base_url + "/demo/crm/api/data/v9.2/",
            auth=(ADMIN_USER, ADMIN_PASSWORD),
            headers={"Connection": "close"},
        )

    def erp(self) -> httpx.Client:
        """The ERP's API of the demo company, as the ERP's own user uses it."""
        return self.client(
            base_url=f"{self.base_url}/demo/erp/api/v2.0/companies({settings.DEMO_ERP_COMPANY_ID})/",
            auth=(settings.DEMO_ERP_USER, settings.DEMO_ERP_PASSWORD),
            headers={"Connection": "close"},
        )

    def run(self, name: str, kind: str = SyncJob.Kind.MODIFIED) -> SyncJob:
        job = create_job(self.mapping(name), kind=kind, trigger=SyncJob.Trigger.USER)
        return engine.run_job(job.pk)

    def fault(
        self,
        app: str,
        mode: str,
        remaining: int | None = None,
        entity: str = "",
        delay=5,
        retry_after: int | None = 1,
    ):
        return demo.DemoFault.objects.create(
            app=app,
            mode=mode,
            remaining=remaining,
            entity=entity,
            delay_seconds=delay,
            retry_after=retry_after,
        )


def start_demo_apps(base_url: str, mounts: dict | None = None) -> DemoApps:
    """Twelve ERP customers and the rest of the demo data, and a Connection to both apps.

    The CRM starts with NOK (at the rate the ERP lacks), so that the customers in NOK are
    created and coupled by a first job, as most tests want; the tests of what waits for the
    missing rate take it away first (`without_nok_in_the_crm`)."""
    create_records(random.Random(3), customers=12, not_in_the_crm=("SEK",))  # noqa: S311
    demo.CrmTransactionCurrency.objects.create(
        iso_currency_code="NOK", currency_name="Norwegian krone", exchange_rate=Decimal("9.9")
    )
    connection = create_connection(base_url)
    # Quick retries, so tests of transient failures stay fast: an app that asks for a wait
    # longer than 0.2 s (the demo's Retry-After is 1 s) pauses the job at once.
    for side in ("source", "destination"):
        options = getattr(connection, f"{side}_settings")
        options.update(
            {
                "max_retries": 2,
                "backoff_seconds": 0.05,
                "max_retry_after": 0.2,
                "throttle_budget": 0.5,
            }
        )
    connection.save()
    return DemoApps(base_url, connection, mounts or {})


@contextmanager
def in_process() -> Iterator[dict[str, httpx.BaseTransport]]:
    """Every connector, and the demo apps calling out, reach IN_PROCESS_URL through the WSGI
    transport while this lasts."""
    mounts = {IN_PROCESS_URL: httpx.WSGITransport(app=InProcessApps())}
    odata.TRANSPORTS.update(mounts)
    outgoing.TRANSPORTS.update(mounts)  # the demo apps calling the console back
    try:
        yield mounts
    finally:
        for pattern in mounts:
            odata.TRANSPORTS.pop(pattern, None)
            outgoing.TRANSPORTS.pop(pattern, None)


def without_nok_in_the_crm() -> None:
    """The CRM as the demo seed starts it: without NOK, which the ERP has no exchange rate
    for, so CURRENCY cannot create it."""
    demo.CrmTransactionCurrency.objects.filter(iso_currency_code="NOK").delete()
