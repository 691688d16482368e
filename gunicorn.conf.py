"""gunicorn's settings file, read from the working directory: with several workers and
PROMETHEUS_MULTIPROC_DIR set, each worker writes its figures to that directory and /metrics
adds them up (docs/operations/metrics.md); a worker that exits is marked dead there."""

from syncconsole.metrics import mark_process_dead


def child_exit(server, worker):
    mark_process_dead(worker.pid)
