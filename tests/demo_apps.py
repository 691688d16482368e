"""A live server with the demo ERP and CRM, and a Connection pointing at it."""

import random
from dataclasses import dataclass

import httpx

from demo import models as demo
from demo.seed import ADMIN_PASSWORD, ADMIN_USER, create_connection, create_records
from sync import engine
from sync.models import Connection, SyncJob, TableMapping
from sync.services import create_job


@dataclass
class DemoApps:
    base_url: str
    connection: Connection

    def mapping(self, name: str) -> TableMapping:
        return self.connection.mappings.get(name=name)

    def crm(self) -> httpx.Client:
        """The CRM's API as a person with the System Administrator role uses it."""
        return httpx.Client(
            base_url=self.base_url + "/demo/crm/api/data/v9.2/",
            auth=(ADMIN_USER, ADMIN_PASSWORD),
            timeout=10,
            headers={"Connection": "close"},
        )

    def run(self, name: str, kind: str = SyncJob.Kind.MODIFIED) -> SyncJob:
        job = create_job(self.mapping(name), kind=kind, trigger=SyncJob.Trigger.USER)
        return engine.run_job(job.pk)

    def fault(self, app: str, mode: str, remaining: int | None = None, entity: str = "", delay=5):
        return demo.DemoFault.objects.create(
            app=app, mode=mode, remaining=remaining, entity=entity, delay_seconds=delay
        )


def start_demo_apps(base_url: str) -> DemoApps:
    """Twelve ERP customers and the rest of the demo data, and a Connection to both apps."""
    create_records(random.Random(3), customers=12)  # noqa: S311
    connection = create_connection(base_url)
    # Quick retries, so tests of transient failures stay fast.
    for side in ("source", "destination"):
        options = getattr(connection, f"{side}_settings")
        options.update({"max_retries": 2, "backoff_seconds": 0.05, "max_retry_after": 0.2})
    connection.save()
    return DemoApps(base_url, connection)
