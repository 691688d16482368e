"""Heartbeats of the Celery processes: each worker and each beat writes its row of
ProcessHeartbeat every PROCESS_HEARTBEAT_SECONDS, and /readyz and `manage.py health` read how
long ago the newest was written.

Times are the database's own (now()), written and compared there, so that the clocks of the
machines that run the web server, the workers and beat need not agree. A heartbeat is a sign
of life of a process, not a change of the console's data, so it writes no audit event.
"""

import logging
import socket
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, connection

from .models import ProcessHeartbeat

logger = logging.getLogger(__name__)

TABLE = ProcessHeartbeat._meta.db_table
KINDS = (ProcessHeartbeat.WORKER, ProcessHeartbeat.BEAT)


def beat_name() -> str:
    """Beat's name in the heartbeats: one beat runs per machine (or container)."""
    return f"beat@{socket.gethostname()}"


def record(kind: str, name: str) -> None:
    """The process `name` of `kind` is alive now; rows of processes silent for longer than
    PROCESS_HEARTBEAT_FORGET_AFTER seconds (gone for good) are removed on the way."""
    if kind not in KINDS:
        raise ValueError(f"Unknown process kind {kind!r}.")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (kind, name, seen_at) VALUES (%s, %s, now()) "  # noqa: S608 - the model's own table
            "ON CONFLICT (kind, name) DO UPDATE SET seen_at = EXCLUDED.seen_at",
            [kind, name[:255]],
        )
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE seen_at < now() - make_interval(secs => %s)",  # noqa: S608 - the model's own table
            [settings.PROCESS_HEARTBEAT_FORGET_AFTER],
        )


def forget(kind: str, name: str) -> None:
    """The process stops: its heartbeat goes at once rather than growing stale."""
    ProcessHeartbeat.objects.filter(kind=kind, name=name[:255]).delete()


def newest_age(cursor, kind: str, host: str | None = None) -> float | None:
    """Seconds since the newest heartbeat of `kind` (of the processes on `host` only, when
    given), or None when there is none; read on `cursor`, any DB-API cursor of the database."""
    sql = f"SELECT EXTRACT(EPOCH FROM now() - max(seen_at)) FROM {TABLE} WHERE kind = %s"  # noqa: S608 - the model's own table
    params = [kind]
    if host is not None:
        sql += " AND name LIKE %s"
        params.append("%@" + host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    cursor.execute(sql, params)
    (age,) = cursor.fetchone()
    return None if age is None else max(0.0, float(age))


def record_safely(kind: str, name: str) -> bool:
    """record(), for the processes' loops: a database that is down or restarting is logged
    and tried again at the next heartbeat, on a new connection."""
    try:
        close_old_connections()
        record(kind, name)
        return True
    except (DatabaseError, InterfaceError) as exc:
        logger.warning("Could not write the %s heartbeat of %s: %s", kind, name, exc)
        connection.close()
        return False


class WorkerHeartbeat(threading.Thread):
    """A thread of the worker's main process that writes its heartbeat: it goes on while the
    worker runs a long task, and stops with the process."""

    def __init__(self, name: str):
        super().__init__(name="syncconsole-heartbeat", daemon=True)
        self.node = name
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                record_safely(ProcessHeartbeat.WORKER, self.node)
                self.stopping.wait(settings.PROCESS_HEARTBEAT_SECONDS)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


_worker_heartbeat: WorkerHeartbeat | None = None


@worker_ready.connect
def start_worker_heartbeat(sender=None, **kwargs) -> None:
    global _worker_heartbeat
    _worker_heartbeat = WorkerHeartbeat(getattr(sender, "hostname", None) or socket.gethostname())
    _worker_heartbeat.start()


@worker_shutdown.connect
def stop_worker_heartbeat(sender=None, **kwargs) -> None:
    global _worker_heartbeat
    heartbeat, _worker_heartbeat = _worker_heartbeat, None
    if heartbeat is None:
        return
    heartbeat.stop()
    try:
        close_old_connections()
        forget(ProcessHeartbeat.WORKER, heartbeat.node)
    except (DatabaseError, InterfaceError) as exc:
        logger.warning("Could not remove the heartbeat of %s: %s", heartbeat.node, exc)
    finally:
        connection.close()
