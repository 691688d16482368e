"""Long work a worker does in batches and keeps the progress of (clean-ups, bulk actions,
coupling runs, the page passes of a shared sync job): who works on it now, and finding what a
worker that died left "running".

A worker holds a PostgreSQL session advisory lock on the piece of work while it works on it;
PostgreSQL releases the lock when the worker's session ends, so a piece "running" whose lock
is free and whose heartbeat (the time of its last batch) is older than
WORK_STALLED_AFTER_SECONDS has no worker: it is resumed, or failed, without waiting for its
message to come back after the broker's visibility timeout (an hour)."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta

from celery.signals import worker_ready
from django.conf import settings
from django.db import connection, connections
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from . import queue

logger = logging.getLogger(__name__)

# The first key of each kind's advisory lock (the second is the row's id); sync.engine's
# mapping locks use 7301.
LOCK_NAMESPACES = {
    "errors.syncerrorcleanup": 7311,
    "errors.bulkaction": 7312,
    "couplings.couplingrun": 7313,
    "sync.pageshare": 7314,
}


def _keys(model: type[Model], pk: int) -> list[int]:
    return [LOCK_NAMESPACES[model._meta.label_lower], pk]


@contextmanager
def worked_on(model: type[Model], pk: int) -> Iterator[bool]:
    """Hold the lock of the piece of work while the block works on it; yields False (and
    holds nothing) when another worker has it."""
    keys = _keys(model, pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", keys)
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", keys)


def stalled(running: QuerySet) -> Iterator[Model]:
    """Each piece of `running` (the work marked running) whose heartbeat is older than
    WORK_STALLED_AFTER_SECONDS and whose worker is gone, yielded with its lock held, so that
    no worker starts on it while the caller resumes or fails it."""
    before = timezone.now() - timedelta(seconds=settings.WORK_STALLED_AFTER_SECONDS)
    quiet = running.filter(
        Q(heartbeat_at__lt=before) | Q(heartbeat_at__isnull=True, started_at__lt=before)
    )
    for piece in quiet.order_by("pk"):
        with worked_on(type(piece), piece.pk) as gone:
            if gone:
                yield piece


def resume_stalled(running: QuerySet, task: str, fail: Callable[[Model], None]) -> int:
    """Resume each stalled piece of `running` (see `stalled`) by sending `task` with its id
    again, from where it stopped; `fail` the ones already resumed WORK_RESUMES times (with
    `stopped_message`). Returns how many were found."""
    found, resumed = 0, []
    for piece in stalled(running):
        found += 1
        if piece.resumes >= settings.WORK_RESUMES:  # type: ignore[attr-defined]
            fail(piece)
            continue
        piece.resumes += 1  # type: ignore[attr-defined]
        piece.heartbeat_at = timezone.now()  # type: ignore[attr-defined]
        piece.save(update_fields=["resumes", "heartbeat_at"])
        resumed.append(piece.pk)
    # Sent once the locks are let go, so that the worker that takes one can hold it.
    for pk in resumed:
        with suppress(queue.QueueUnavailable):  # found again at a later look
            queue.send(task, pk)
    return found


def stopped_message(resumes: int, what: str) -> str:
    """What a piece of work failed for, after its worker stopped once more than it may be
    resumed."""
    times = resumes + 1
    return (
        f"The worker stopped {times} time{'' if times == 1 else 's'} before the {what} "
        "finished; it was not resumed again. Look into the worker's log and start it again."
    )


def look_at_worker_start(what: str, look: Callable[[], object]) -> None:
    """Run `look` once as soon as a worker is ready, so that what a worker that died left
    running is settled when a worker is back rather than at the next beat or when its message
    comes back. A database still starting must not keep the worker from serving: a failure
    is logged as not having looked for `what`."""

    def at_start(**kwargs) -> None:
        try:
            look()
        except Exception:
            logger.exception("Could not look for %s", what)
        finally:
            connections.close_all()

    worker_ready.connect(at_start, weak=False)
