"""Celery tasks of the errors app: thin wrappers that take ids and call services."""

from celery import shared_task

from syncconsole import work
from triage import bulk

from . import alerts, ownership, partitions, services


@shared_task(name="errors.run_sync_error_cleanup", acks_late=True)
def run_sync_error_cleanup(cleanup_id: int) -> int:
    return services.run_cleanup(cleanup_id).deleted_count


@shared_task(name="errors.delete_expired_sync_errors", acks_late=True)
def delete_expired_sync_errors() -> int:
    return services.delete_expired_sync_errors().deleted_count


@shared_task(name="errors.wake_snoozed_problems")
def wake_snoozed_problems() -> int:
    return services.wake_snoozed()


@shared_task(name="errors.run_bulk_action", acks_late=True)
def run_bulk_action(bulk_id: int) -> int:
    return bulk.run_bulk_action(bulk_id).changed_count


@shared_task(name="errors.resume_stalled_work", acks_late=True)
def resume_stalled_work() -> int:
    """Every minute: clean-ups and bulk actions left running by a worker that died go on in
    a worker of their own, or fail visibly."""
    return services.resume_stalled_cleanups() + bulk.resume_stalled_bulk_actions()


work.look_at_worker_start("clean-ups and bulk actions left running", resume_stalled_work)


@shared_task(name="errors.create_error_partitions")
def create_error_partitions() -> int:
    return len(partitions.create_partitions_ahead())


# Mail servers fail for a while: the outbox keeps each failure and tries again (see alerts).
@shared_task(name="errors.send_problem_alerts")
def send_problem_alerts() -> int:
    return alerts.send_pending_alerts()


@shared_task(name="errors.forget_old_alert_deliveries")
def forget_old_alert_deliveries() -> int:
    return alerts.forget_old_deliveries()


@shared_task(
    name="errors.send_assignment_notices",
    autoretry_for=(OSError,),
    retry_backoff=60,
    max_retries=5,
)
def send_assignment_notices() -> int:
    return ownership.send_due_notices()
