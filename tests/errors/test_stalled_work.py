"""Work left running by a worker that died (clean-ups, bulk actions, coupling runs): resumed
only when no worker holds it, failed with a clear message once resumed as often as it may be
(tests/reliability/test_stalled_work.py kills real workers)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from couplings.models import CouplingRun
from couplings.services import resume_stalled_runs
from errors import services
from errors.models import BulkAction, SyncErrorCleanup
from syncconsole import work
from tests.factories import make_mapping
from tests.reliability.fixtures_apps import InThread
from triage import bulk

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_clean_up_resumed_as_often_as_it_may_be_fails_with_a_clear_message(settings, db):
    settings.WORK_STALLED_AFTER_SECONDS = 60
    stalled = SyncErrorCleanup.objects.create(
        action=SyncErrorCleanup.Action.ALL,
        cutoff=timezone.now(),
        trigger=SyncErrorCleanup.Trigger.CONSOLE,
        state=SyncErrorCleanup.State.RUNNING,
        started_at=timezone.now() - timedelta(minutes=5),
        heartbeat_at=timezone.now() - timedelta(minutes=2),
        deleted_count=700,
        resumes=settings.WORK_RESUMES,
    )
    quiet = SyncErrorCleanup.objects.create(
        action=SyncErrorCleanup.Action.ALL,
        cutoff=timezone.now(),
        trigger=SyncErrorCleanup.Trigger.CONSOLE,
        state=SyncErrorCleanup.State.RUNNING,
        started_at=timezone.now() - timedelta(minutes=5),
        heartbeat_at=timezone.now() - timedelta(seconds=10),
    )

    assert services.resume_stalled_cleanups() == 1

    stalled.refresh_from_db()
    assert stalled.state == SyncErrorCleanup.State.FAILED
    assert stalled.error_message == (
        "Stopped after 700 entries: The worker stopped 3 times before the clean-up finished; "
        "it was not resumed again. Look into the worker's log and start it again."
    )
    quiet.refresh_from_db()
    assert quiet.state == SyncErrorCleanup.State.RUNNING  # its worker may still be at it


def test_a_bulk_action_and_a_coupling_run_resumed_as_often_as_they_may_be_fail_visibly(
    settings, db
):
    settings.WORK_STALLED_AFTER_SECONDS = 60
    long_ago = timezone.now() - timedelta(minutes=5)
    action = BulkAction.objects.create(
        action=BulkAction.Action.IGNORE,
        scope=BulkAction.Scope.SELECTION,
        state=BulkAction.State.RUNNING,
        started_at=long_ago,
        heartbeat_at=long_ago,
        expected_count=900,
        processed_count=400,
        resumes=settings.WORK_RESUMES,
    )
    run = CouplingRun.objects.create(
        mapping=make_mapping(),
        side="source",
        record_ids=["C1", "C2"],
        state=CouplingRun.State.RUNNING,
        started_at=long_ago,
        heartbeat_at=long_ago,
        resumes=settings.WORK_RESUMES,
    )

    assert bulk.resume_stalled_bulk_actions() == 1
    assert resume_stalled_runs() == 1

    stopped = (
        "The worker stopped 3 times before the {} finished; it was not resumed again. "
        "Look into the worker's log and start it again."
    )
    action.refresh_from_db()
    assert action.state == BulkAction.State.FAILED
    assert action.outcome == f"Stopped after 400 of 900 entries: {stopped.format('action')}"
    run.refresh_from_db()
    assert run.state == CouplingRun.State.FAILED
    assert run.message == f"0 of 0 records coupled. Stopped: {stopped.format('run')}"


def test_a_clean_up_a_worker_holds_is_not_resumed(settings, db):
    settings.WORK_STALLED_AFTER_SECONDS = 60
    held = SyncErrorCleanup.objects.create(
        action=SyncErrorCleanup.Action.ALL,
        cutoff=timezone.now(),
        trigger=SyncErrorCleanup.Trigger.CONSOLE,
        state=SyncErrorCleanup.State.RUNNING,
        started_at=timezone.now() - timedelta(minutes=5),
        heartbeat_at=timezone.now() - timedelta(minutes=2),
    )
    with work.worked_on(SyncErrorCleanup, held.pk) as mine:
        assert mine
        # Another session looks: this one holds it, as a slow but living worker does.
        assert list(_stalled_seen_from_another_session()) == []
    held.refresh_from_db()
    assert (held.state, held.resumes) == (SyncErrorCleanup.State.RUNNING, 0)


def _stalled_seen_from_another_session():
    return (
        InThread(
            lambda: [c.pk for c in work.stalled(SyncErrorCleanup.objects.filter(state="running"))]
        )
        .start()
        .value()
    )
