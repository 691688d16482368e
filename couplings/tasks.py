"""Celery tasks of the couplings app: thin wrappers that take ids and call the services."""

from celery import shared_task

from . import services


@shared_task(name="couplings.couple_by_match", acks_late=True)
def couple_by_match(run_id: int) -> str:
    return services.run_couple_by_match(run_id).state
