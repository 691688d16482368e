from celery import shared_task

from . import ingestion, lockout


@shared_task(name="api.forget_old_ingestion_requests")
def forget_old_ingestion_requests() -> int:
    return ingestion.forget_old_requests()


@shared_task(name="api.forget_old_token_failures")
def forget_old_token_failures() -> int:
    return lockout.forget_old()
