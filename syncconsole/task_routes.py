"""Which queue each kind of work goes to, so that a long clean-up never delays a sync.

Three queues, named after the CELERY_QUEUE setting (`<CELERY_QUEUE>.sync`, `.triage`,
`.notify`), so that two consoles, or a test run, on one broker each keep their own:

- sync: the sync jobs, the scheduled runs, the lag probes and the change subscriptions;
- triage: bulk actions, clean-ups and coupling runs;
- notify: the alerts and notices sent by e-mail.

Every task is routed by its registered name (`shared_task(name=...)`); a task missing here is
caught by the tests (tests/test_task_routes.py)."""

from typing import Any

SYNC = "sync"
TRIAGE = "triage"
NOTIFY = "notify"
KINDS = (SYNC, TRIAGE, NOTIFY)

TASK_KINDS = {
    # Synchronization.
    "sync.run_sync_job": SYNC,
    "sync.run_page_share": SYNC,
    "sync.synchronize_modified_records": SYNC,
    "sync.reconcile_mappings": SYNC,
    "sync.keep_change_subscriptions": SYNC,
    "sync.run_lag_probes": SYNC,
    # Triage: work on the entries, couplings and old rows.
    "errors.run_bulk_action": TRIAGE,
    "errors.run_sync_error_cleanup": TRIAGE,
    "errors.delete_expired_sync_errors": TRIAGE,
    "errors.wake_snoozed_problems": TRIAGE,
    "errors.create_error_partitions": TRIAGE,
    "couplings.couple_by_match": TRIAGE,
    "sync.delete_expired_jobs": TRIAGE,
    "api.forget_old_ingestion_requests": TRIAGE,
    "api.forget_old_token_failures": TRIAGE,
    "errors.forget_old_alert_deliveries": TRIAGE,
    # Work left by a dead worker goes on where that work runs.
    "errors.resume_stalled_work": TRIAGE,
    "couplings.resume_stalled_runs": TRIAGE,
    # Notifications.
    "errors.send_problem_alerts": NOTIFY,
    "errors.send_assignment_notices": NOTIFY,
}


def queue_name(base: str, kind: str) -> str:
    """The queue of one kind of work, e.g. `syncconsole.sync`."""
    if kind not in KINDS:
        raise ValueError(f"No kind of work called {kind!r}; there are {', '.join(KINDS)}.")
    return f"{base}.{kind}"


def queue_names(base: str, kinds: tuple[str, ...] = KINDS) -> list[str]:
    """The queues of these kinds of work (all by default), in the order of KINDS."""
    return [queue_name(base, kind) for kind in kinds]


def default_queue(base: str) -> str:
    """Where a task without a route would go: the triage queue, which every deployment's
    workers consume, rather than a queue nobody reads."""
    return queue_name(base, TRIAGE)


def task_routes(base: str) -> dict[str, dict[str, str]]:
    """CELERY_TASK_ROUTES: each task's queue by its registered name."""
    return {task: {"queue": queue_name(base, kind)} for task, kind in TASK_KINDS.items()}


def configure(conf: Any, base: str) -> None:
    """Point a Celery app's configuration (`app.conf`) at the queues named after `base`, as
    the settings do for CELERY_QUEUE; for a process that sends to other queues than its
    settings' (the tests' private queues, the benchmarks').

    Through `conf.update`, which makes the app read its routes again; setting the
    attributes alone leaves the routes it read first in place."""
    conf.update(task_default_queue=default_queue(base), task_routes=task_routes(base))
