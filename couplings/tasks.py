"""Celery tasks of the couplings app: thin wrappers that take ids and call the services."""

from celery import shared_task

from syncconsole import work

from . import services


@shared_task(name="couplings.couple_by_match", acks_late=True)
def couple_by_match(run_id: int) -> str:
    return services.run_couple_by_match(run_id).state


@shared_task(name="couplings.resume_stalled_runs", acks_late=True)
def resume_stalled_runs() -> int:
    """Every minute: coupling runs left running by a worker that died go on in a worker of
    their own, or fail visibly."""
    return services.resume_stalled_runs()


work.look_at_worker_start("coupling runs left running", services.resume_stalled_runs)
