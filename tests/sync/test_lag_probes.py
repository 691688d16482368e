"""A lag probe against the demo apps: the marker is written in the ERP, the CUSTOMER job
carries it to the CRM, and the probe measures the lag from the apps' own times; a late marker
is one lag entry (one problem, so one alert) and a later marker in time resolves it."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors import alerts
from errors.models import AlertSubscription, Category, ErrorGroup, Status, SyncError
from errors.remedies import remedy_for
from sync import probes
from sync.models import LagProbe, LagSample, SyncJob
from sync.tasks import run_lag_probes
from syncconsole.celery import app as celery_app

pytestmark = pytest.mark.django_db
FULL = SyncJob.Kind.FULL


@pytest.fixture
def coupled(demo_apps) -> Coupling:
    """A customer in the local currency, coupled to its CRM account by a full run."""
    demo_apps.run("CUSTOMER", FULL)
    local = ErpCustomer.objects.filter(currency_code="").values_list("pk", flat=True)
    return Coupling.objects.filter(
        mapping__name="CUSTOMER", source_record_id__in=[str(pk) for pk in local]
    ).first()


def set_up(demo_apps, coupled, user=None, **changes) -> LagProbe:
    settings = {
        "direction": "to_destination",
        "record_id": coupled.source_record_id,
        "marker_field": "displayName",
        "interval_minutes": 1,
        "limit_seconds": 300,
        "marker_length": 100,
        **changes,
    }
    return probes.save_probe(demo_apps.mapping("CUSTOMER"), **settings, user=user)


def lag_entries():
    return SyncError.objects.filter(category=Category.LAG)


def test_the_marker_travels_with_the_customer_job_and_its_lag_is_measured(demo_apps, coupled):
    probe = set_up(demo_apps, coupled)

    sample = probes.run_probe(probe.pk)
    erp = ErpCustomer.objects.get(pk=coupled.source_record_id)
    assert sample.state == LagSample.State.WAITING
    assert erp.display_name == sample.marker and sample.marker.startswith("Lag probe ")
    assert sample.written_at == erp.last_modified  # the ERP's own time

    # Not there yet: the sample waits.
    assert probes.run_probe(probe.pk).state == LagSample.State.WAITING
    job = demo_apps.run("CUSTOMER")
    assert job.modified == 1
    sample = probes.run_probe(probe.pk)

    account = CrmAccount.objects.get(pk=coupled.destination_record_id)
    assert account.name == sample.marker
    assert sample.state == LagSample.State.ARRIVED and not sample.is_open
    assert sample.arrived_at == account.modified_on  # the CRM's own time
    assert sample.lag_seconds == (account.modified_on - erp.last_modified).total_seconds()
    assert 0 <= sample.lag_seconds < 300
    assert not lag_entries().exists()


def test_a_late_marker_is_one_entry_and_a_later_one_in_time_resolves_it(demo_apps, coupled):
    probe = set_up(demo_apps, coupled)
    first = probes.run_probe(probe.pk)
    # The beat looks again past the limit: late, logged once however often it looks.
    for minutes in (6, 7, 8):
        probes.run_probe(probe.pk, first.written_at + timedelta(minutes=minutes))
    first.refresh_from_db()
    assert first.state == LagSample.State.LATE and first.is_open
    entry = lag_entries().get()
    assert entry.message == (
        "Changes to CUSTOMER take more than 6 min to reach Dynamics 365 Sales (limit 5 min)"
    )
    assert entry.mapping == probe.mapping and entry.job is None
    assert entry.source_record_id == coupled.source_record_id
    assert entry.destination_record_id == coupled.destination_record_id
    problem = ErrorGroup.objects.get(category=Category.LAG)
    assert problem.status == Status.OPEN
    assert "lag probe" in remedy_for(entry).cause
    assert entry.audience.label == "lag: for an administrator"

    # It arrives at last, 10 minutes after it was written: still one entry.
    LagSample.objects.filter(pk=first.pk).update(
        written_at=first.written_at - timedelta(minutes=10)
    )
    demo_apps.run("CUSTOMER")
    first = probes.run_probe(probe.pk)
    assert first.state == LagSample.State.LATE and first.lag_seconds > 600
    assert lag_entries().count() == 1

    # The next marker arrives in time: the entry and its problem resolve by themselves.
    second = probes.run_probe(probe.pk)
    assert second.pk != first.pk and second.state == LagSample.State.WAITING
    demo_apps.run("CUSTOMER")
    second = probes.run_probe(probe.pk)
    assert second.state == LagSample.State.ARRIVED
    entry.refresh_from_db()
    problem.refresh_from_db()
    assert entry.status == Status.RESOLVED and problem.status == Status.RESOLVED
    assert second.marker in entry.status_note


def test_a_new_marker_waits_for_the_interval(demo_apps, coupled):
    probe = set_up(demo_apps, coupled, interval_minutes=10)
    first = probes.run_probe(probe.pk)
    demo_apps.run("CUSTOMER")
    probes.run_probe(probe.pk)
    assert probes.run_probe(probe.pk, first.written_at + timedelta(minutes=5)) is None
    second = probes.run_probe(probe.pk, first.written_at + timedelta(minutes=10))
    assert second.pk != first.pk and second.marker.endswith("#2")


def test_an_app_that_refuses_the_marker_is_kept_on_the_sample(demo_apps, coupled):
    probe = set_up(demo_apps, coupled)
    ErpCustomer.objects.filter(pk=coupled.source_record_id).delete()
    assert probes.run_due_probes() == 1
    sample = probe.samples.get()
    assert sample.state == LagSample.State.FAILED and not sample.is_open
    assert "404" in sample.error or "not" in sample.error.lower()


def test_setting_up_is_validated_and_audited(demo_apps, coupled, staff_user):
    with pytest.raises(probes.ProbeRefused) as refused:
        set_up(demo_apps, coupled, marker_field="currencyCode", interval_minutes=0)
    assert set(refused.value.problems) == {"marker_field", "interval_minutes"}
    assert "displayName" in refused.value.problems["marker_field"][0]
    with pytest.raises(probes.ProbeRefused) as refused:
        set_up(demo_apps, coupled, limit_seconds=10**9, direction="sideways")
    assert set(refused.value.problems) == {"direction"}
    with pytest.raises(probes.ProbeRefused) as refused:
        set_up(demo_apps, coupled, limit_seconds=10**9)
    assert set(refused.value.problems) == {"limit_seconds"}
    with pytest.raises(probes.ProbeRefused) as refused:
        set_up(demo_apps, coupled, record_id="not-coupled")
    assert "is not coupled under CUSTOMER" in refused.value.problems["record_id"][0]
    assert not LagProbe.objects.exists()

    probe = set_up(demo_apps, coupled, user=staff_user)
    event = AuditEvent.objects.get(action=AuditEvent.Action.LAG_PROBE_CHANGED)
    assert event.actor == staff_user and event.object_id == str(probe.mapping_id)
    assert event.summary.startswith("Lag probe of CUSTOMER set up: displayName")

    probes.run_probe(probe.pk)
    set_up(demo_apps, coupled, user=staff_user, is_enabled=False)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LAG_PROBE_CHANGED).count() == 2
    # Switched off: its marker is no longer waited for, and the beat leaves it alone.
    assert not probe.samples.filter(closed_at__isnull=True).exists()
    assert run_lag_probes() == 0


def test_the_beat_runs_the_probes_by_task_name():
    task = PeriodicTask.objects.get(name="Run the lag probes")
    assert task.task == "sync.run_lag_probes" and task.enabled
    assert task.interval.every == 1 and task.interval.period == "minutes"


def test_a_short_field_takes_a_short_marker():
    at = timezone.now()
    assert len(probes.marker_text(at, 42, 30)) <= 30
    assert len(probes.marker_text(at, 42, 12)) <= 12
    assert probes.marker_text(at, 42, 100).startswith("Lag probe ")


def measured(demo_apps, coupled, **changes) -> LagProbe:
    """A probe with one marker that arrived."""
    probe = set_up(demo_apps, coupled, **changes)
    probes.run_probe(probe.pk)
    demo_apps.run("CUSTOMER")
    probes.run_probe(probe.pk)
    return probe


def test_the_mapping_page_shows_the_lag_and_the_settings_to_administrators(
    demo_apps, coupled, client, sync_user, staff_user
):
    probe = measured(demo_apps, coupled)
    sample = probe.samples.get()
    url = reverse("sync:mapping_health", args=[probe.mapping_id])
    client.force_login(sync_user)
    html = client.get(url).content.decode()
    assert 'id="lag"' in html and '<svg class="lag-chart"' in html
    assert sample.marker in html and sample.lag_words in html
    assert "Median, last 24 h" in html and "95th percentile, last 24 h" in html
    assert "(arrived, within the limit)" in html
    assert 'id="probe-settings"' not in html  # only administrators change it

    client.force_login(staff_user)
    html = client.get(url).content.decode()
    assert 'id="probe-settings"' in html and "Change the lag probe" in html
    form = {
        "direction": "to_destination",
        "record_id": coupled.source_record_id,
        "marker_field": "city",
        "marker_length": "30",
        "interval_minutes": "2",
        "limit_seconds": "120",
        "is_enabled": "on",
    }
    post_url = reverse("sync:mapping_lag_probe", args=[probe.mapping_id])
    response = client.post(post_url, form)
    assert response.status_code == 302
    probe.refresh_from_db()
    assert (probe.marker_field, probe.interval_minutes, probe.limit_seconds) == ("city", 2, 120)
    # A field the mapping does not carry that way is refused, with the reason on the page.
    response = client.post(post_url, {**form, "marker_field": "blocked"})
    assert response.status_code == 400
    assert "blocked is not a field CUSTOMER carries" in response.content.decode()
    probe.refresh_from_db()
    assert probe.marker_field == "city"

    client.force_login(sync_user)
    assert client.post(post_url, form).status_code == 403


def test_the_overview_shows_each_probes_lag_and_a_late_one_in_words(
    demo_apps, coupled, staff_client
):
    probe = measured(demo_apps, coupled)
    sample = probe.samples.get()
    html = staff_client.get(reverse("home")).content.decode()
    assert f"Probe: {sample.lag_words}" in html and 'data-probe-state="arrived"' in html

    later = probes.run_probe(probe.pk, sample.written_at + timedelta(minutes=1))
    probes.run_probe(probe.pk, later.written_at + timedelta(minutes=6))
    html = staff_client.get(reverse("home")).content.decode()
    assert 'data-probe-state="late"' in html and "Probe: late, " in html


def test_a_late_marker_alerts_the_subscribers_once(
    demo_apps,
    coupled,
    staff_user,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    settings.SYNC_CONSOLE_URL = "https://console.example.com"
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, countdown=None: None)
    AlertSubscription.objects.create(user=staff_user)
    probe = set_up(demo_apps, coupled)
    first = probes.run_probe(probe.pk)
    for minutes in (6, 7):
        with django_capture_on_commit_callbacks(execute=True):
            probes.run_probe(probe.pk, first.written_at + timedelta(minutes=minutes))
        alerts.send_pending_alerts()
    (message,) = mailoutbox
    assert message.to == [staff_user.email]
    assert "Changes to CUSTOMER take more than 6 min" in message.body
