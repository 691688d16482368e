"""The Celery app: configured from Django settings (CELERY_ namespace), tasks autodiscovered."""

import os

from celery import Celery

from . import broker  # noqa: F401 - the queue-files:// transport of the server-less broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncconsole.settings")

app = Celery("syncconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
