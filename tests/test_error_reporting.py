"""Error reporting with a real sentry_sdk client whose transport keeps the events in memory:
a job's failure names its job and mapping, and no secret leaves the console."""

import json

import pytest
import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.transport import Transport

from sync import engine
from sync.models import SyncJob
from syncconsole import reporting

pytestmark = pytest.mark.django_db

SECRET = "s3cret-client-secret-of-the-erp"


class KeptEvents(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.events: list[dict] = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.payload.json)


@pytest.fixture
def sentry_events():
    transport = KeptEvents()
    reporting.init("https://public@sentry.example.com/1", environment="test", transport=transport)
    try:
        yield transport.events
    finally:
        sentry_sdk.get_client().close()
        # Reporting off again, as in a process without SENTRY_DSN: no client at all. A client
        # without a DSN (sentry_sdk.init()) would keep the Django integration's hooks on, a
        # span and a breadcrumb for every SQL statement of the process's later tests.
        sentry_sdk.get_global_scope().set_client(None)
        assert sentry_sdk.get_client().get_integration(DjangoIntegration) is None


def test_a_failing_job_is_reported_with_its_job_and_mapping_and_no_secret(
    demo_apps, sentry_events, monkeypatch
):
    def broken_run(self):
        # The connector's sign-in in the frame's variables, as a bug in a pass would have it.
        client_secret = SECRET  # noqa: F841
        headers = {"Authorization": f"Bearer {SECRET}", "Cookie": f"sessionid={SECRET}"}  # noqa: F841
        raise RuntimeError("a bug in the pass")

    monkeypatch.setattr(engine.Pass, "run", broken_run)
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.FAILED
    sentry_sdk.flush()

    assert sentry_events, "the logged failure was not reported"
    event = sentry_events[-1]
    assert event["tags"]["job"] == str(job.pk)
    assert event["tags"]["mapping"] == "CUSTOMER"
    assert "a bug in the pass" in json.dumps(event)
    assert SECRET not in json.dumps(event)


def test_the_tags_stay_with_the_job(demo_apps, sentry_events):
    demo_apps.run("CURRENCY", SyncJob.Kind.FULL)
    sentry_sdk.capture_message("after the job")
    sentry_sdk.flush()
    assert "job" not in sentry_events[-1].get("tags", {})


def test_request_secrets_are_scrubbed(sentry_events):
    assert not sentry_sdk.get_client().should_send_default_pii()
    event = {
        "request": {
            "headers": {"Authorization": f"Bearer {SECRET}", "Cookie": f"sessionid={SECRET}"},
            "cookies": {"sessionid": SECRET, "csrftoken": SECRET},
            "data": {"source_secret": SECRET, "password": SECRET, "name": "kept"},
        },
        "extra": {"monitoring_token": SECRET, "nested": {"access_token": SECRET}},
    }
    reporting.scrubber().scrub_event(event)
    assert SECRET not in json.dumps(event, default=str)
    assert event["request"]["data"]["name"] == "kept"
