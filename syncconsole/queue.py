"""Queueing Celery tasks by name: a service asks for work to be done in a worker without
importing the task module, whose tasks import the services."""

import logging
from typing import Any

from .celery import app

logger = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The task queue (broker) could not take the task; the message says what was not
    started."""


def send(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Queue the task registered under `task_name` (as in `shared_task(name=...)`).

    Raises QueueUnavailable, carrying the broker's error as its cause, when the broker cannot
    take it (kombu raises several kinds of exception when it is down), so that every caller
    catches one kind and says what was not started."""
    try:
        app.send_task(task_name, args=args, countdown=countdown)
    except Exception as exc:
        logger.warning("Could not queue %s%r: %s", task_name, args, exc)
        raise QueueUnavailable(f"The task queue is unavailable: {exc}") from exc
