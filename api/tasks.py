from celery import shared_task

from . import ingestion


@shared_task(name="api.forget_old_ingestion_requests")
def forget_old_ingestion_requests() -> int:
    return ingestion.forget_old_requests()
