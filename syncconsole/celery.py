"""The Celery app: configured from Django settings (CELERY_ namespace), tasks autodiscovered."""

import os

from celery import Celery
from celery.signals import worker_init
from django.conf import settings

from . import metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncconsole.settings")

app = Celery("syncconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def serve_metrics(**kwargs) -> None:
    # WORKER_METRICS_PORT: figures of a worker whose host has no web server to serve them.
    if settings.WORKER_METRICS_PORT:
        metrics.serve_worker_metrics(settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDR)
