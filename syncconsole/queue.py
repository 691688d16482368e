"""Queueing Celery tasks by name: a service asks for work to be done in a worker without
importing the task module, whose tasks import the services."""

from typing import Any

from .celery import app


def send(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Queue the task registered under `task_name` (as in `shared_task(name=...)`). The
    broker's errors (kombu raises several kinds when it is down) reach the caller, which
    says what was not started."""
    app.send_task(task_name, args=args, countdown=countdown)
