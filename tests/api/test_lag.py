"""The lag API: a mapping's probe and its samples for Sync users, and setting it up for Sync
administrators, through the same service as the mapping's page."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import ErpCustomer
from sync import probes
from sync.models import LagProbe, SyncJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def coupled(demo_apps) -> Coupling:
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    local = ErpCustomer.objects.filter(currency_code="").values_list("pk", flat=True)
    return Coupling.objects.filter(
        mapping__name="CUSTOMER", source_record_id__in=[str(pk) for pk in local]
    ).first()


def test_the_api_shows_the_lag_and_sets_the_probe_up(demo_apps, coupled, user_api, admin_api):
    mapping = demo_apps.mapping("CUSTOMER")
    url = reverse("api:mapping_lag", args=[mapping.pk])
    body = user_api.get(url).json()
    assert body["probe"] is None and body["samples"] == []

    settings = {
        "direction": "to_destination",
        "record_id": coupled.source_record_id,
        "marker_field": "displayName",
        "marker_length": 100,
        "interval_minutes": 1,
        "limit_seconds": 300,
    }
    assert user_api.put(url, settings, content_type="application/json").status_code == 403
    refused = admin_api.put(
        url, {**settings, "marker_field": "currencyCode"}, content_type="application/json"
    )
    assert refused.status_code == 409 and "marker_field" in refused.json()
    refused = admin_api.put(
        url, {**settings, "interval_minutes": 0}, content_type="application/json"
    )
    assert refused.status_code == 400 and "interval_minutes" in refused.json()
    response = admin_api.put(url, settings, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["probe"]["marker_field"] == "displayName"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LAG_PROBE_CHANGED).count() == 1

    probe = LagProbe.objects.get()
    probes.run_probe(probe.pk)
    demo_apps.run("CUSTOMER")
    probes.run_probe(probe.pk)
    body = user_api.get(url, {"hours": 2}).json()
    sample = probe.samples.get()
    assert body["hours"] == 2 and body["latest_state"] == "arrived"
    assert body["latest_lag_seconds"] == sample.lag_seconds == body["median_seconds"]
    assert [s["marker"] for s in body["samples"]] == [sample.marker]
    assert user_api.get(url, {"hours": 0}).status_code == 400
    missing = reverse("api:mapping_lag", args=[987654])
    assert user_api.get(missing).status_code == 404
