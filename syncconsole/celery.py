"""The Celery app: configured from Django settings (CELERY_ namespace), tasks autodiscovered."""

import logging.config
import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun, worker_init
from django.conf import settings

from . import logs, metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncconsole.settings")

app = Celery("syncconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_the_console_logging(**kwargs) -> None:
    # With a receiver of this signal, the worker and beat leave the root logger alone: their
    # lines go through settings.LOGGING like the web's.
    logging.config.dictConfig(settings.LOGGING)
    # Python's warnings (Celery's about running as root, say) become log lines too.
    logging.captureWarnings(True)


# The lines of a task carry its name and id.
task_prerun.connect(logs.task_started, weak=False)
task_postrun.connect(logs.task_ended, weak=False)


@worker_init.connect
def serve_metrics(**kwargs) -> None:
    # WORKER_METRICS_PORT: figures of a worker whose host has no web server to serve them.
    if settings.WORKER_METRICS_PORT:
        metrics.serve_worker_metrics(settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDR)
