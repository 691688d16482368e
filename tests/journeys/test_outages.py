"""A CRM that fails or answers garbage run after run: its entries need nobody and close by
themselves when the next job of the mapping succeeds. (A CRM that throttles pauses the jobs
instead: tests/sync/test_throttling.py.)"""

import pytest

from audit.models import AuditEvent
from demo.models import DemoFault, ErpCustomer
from errors.models import Category, ErrorGroup, Status, SyncError
from sync import breaker
from sync.models import SyncJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]


@pytest.mark.parametrize("mode", [DemoFault.Mode.SERVER_ERROR, DemoFault.Mode.GARBAGE])
def test_the_next_job_that_succeeds_closes_them(demo_apps, mode, settings):
    settings.SYNC_RETRY_BACKOFF_SECONDS = 0  # each run tries the record again
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    fault = demo_apps.fault("crm", mode, entity="accounts")
    ErpCustomer.objects.filter(number="C00030").update(city="Aalborg")
    for _ in range(3):
        job = demo_apps.run("CUSTOMER")
    entries = list(SyncError.objects.filter(job=job))
    assert {e.category for e in entries} == {Category.CONNECTION}
    assert {e.status for e in entries} == {Status.OPEN}
    assert demo_apps.mapping("CUSTOMER").is_paused

    fault.delete()  # the app answers again
    mapping = demo_apps.mapping("CUSTOMER")
    assert breaker.resume_if_setup_passes(mapping)  # as the next scheduled run does
    job = demo_apps.run("CUSTOMER")

    assert (job.status, job.failed) == (SyncJob.Status.SUCCEEDED, 0)
    for entry in entries:
        entry.refresh_from_db()
        assert entry.status == Status.RESOLVED, entry
        assert f"job #{job.pk}" in entry.status_note
        assert ErrorGroup.objects.get(pk=entry.group_id).status == Status.RESOLVED
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.ENTRIES_RESOLVED, actor_label=f"sync engine (job #{job.pk})"
    ).exists()
