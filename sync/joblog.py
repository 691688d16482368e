"""A job's own log: the lines logged while it runs, kept with it (sync.JobLogLine) so that
its page tells its story. Bounded (JOB_LOG_MAX_LINES, JOB_LOG_MAX_BYTES: the lines beyond
are counted on the job) and written in batches, so a job killed midway keeps most of it."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, F, Func, Sum

from syncconsole import logs

from .models import JobLogLine, SyncJob

logger = logging.getLogger(__name__)


class JobLog:
    """The lines of one job, held until the next flush."""

    def __init__(self, job_id: int, *, kept_lines: int = 0, kept_bytes: int = 0):
        self.job_id = job_id
        self.pending: list[JobLogLine] = []
        self.kept_lines, self.kept_bytes = kept_lines, kept_bytes
        self.dropped = 0
        self.flushed_at = time.monotonic()

    def add(self, record: logging.LogRecord) -> None:
        message = record.getMessage()[: JobLogLine.MESSAGE_MAX_LENGTH]
        size = len(message.encode("utf-8", "replace"))
        if (
            self.kept_lines >= settings.JOB_LOG_MAX_LINES
            or self.kept_bytes + size > settings.JOB_LOG_MAX_BYTES
        ):
            self.dropped += 1
            return
        self.kept_lines += 1
        self.kept_bytes += size
        self.pending.append(
            JobLogLine(
                job_id=self.job_id,
                at=datetime.fromtimestamp(record.created, tz=UTC),
                level=record.levelno,
                logger=record.name[:100],
                message=message,
            )
        )

    def due(self) -> bool:
        return len(self.pending) >= settings.JOB_LOG_FLUSH_LINES or (
            bool(self.pending)
            and time.monotonic() - self.flushed_at >= settings.JOB_LOG_FLUSH_SECONDS
        )

    def flush(self) -> None:
        """Write the lines held, in one INSERT, and count those not kept."""
        lines, dropped = self.pending, self.dropped
        self.pending, self.dropped = [], 0
        self.flushed_at = time.monotonic()
        if lines:
            JobLogLine.objects.bulk_create(lines)
        if dropped:
            SyncJob.objects.filter(pk=self.job_id).update(
                log_lines_dropped=F("log_lines_dropped") + dropped
            )


def flush_if_due() -> None:
    """Called by the engine between pages: writes the current job's lines when enough are
    held or enough time has passed."""
    log = logs.collector.get()
    if isinstance(log, JobLog) and log.due():
        log.flush()


@contextmanager
def kept(job: SyncJob) -> Iterator[JobLog]:
    """Keep the lines logged inside with the job; write what is left at the end."""
    # A job run again (found running after its worker died) goes on with the log it has.
    earlier = JobLogLine.objects.filter(job=job).aggregate(
        lines=Count("pk"), size=Sum(Func(F("message"), function="octet_length"))
    )
    log = JobLog(job.pk, kept_lines=earlier["lines"], kept_bytes=earlier["size"] or 0)
    token = logs.collector.set(log)
    try:
        yield log
    finally:
        logs.collector.reset(token)
        try:
            log.flush()
        except DatabaseError:
            # The database went away with the job: its lines are in the process's log anyway.
            logger.warning("The last lines of job %s could not be kept", job.pk, exc_info=True)
