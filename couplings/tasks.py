"""Celery tasks of the couplings app: thin wrappers that take ids and call the services."""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import connections

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="couplings.couple_by_match", acks_late=True)
def couple_by_match(run_id: int) -> str:
    return services.run_couple_by_match(run_id).state


@shared_task(name="couplings.resume_stalled_runs", acks_late=True)
def resume_stalled_runs() -> int:
    """Every minute: coupling runs left running by a worker that died go on in a worker of
    their own, or fail visibly."""
    return services.resume_stalled_runs()


@worker_ready.connect
def resume_stalled_runs_at_start(**kwargs) -> None:
    # A worker that starts again looks at once, as sync.tasks does for jobs.
    try:
        services.resume_stalled_runs()
    except Exception:  # a database still starting must not keep the worker from serving
        logger.exception("Could not look for coupling runs left running")
    finally:
        connections.close_all()
