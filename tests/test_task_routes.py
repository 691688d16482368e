"""Every task has the queue of its kind of work (sync, triage, notify), named after
CELERY_QUEUE, so that a worker of one kind never waits behind another kind's work."""

import pytest
from django.conf import settings

from syncconsole import task_routes
from syncconsole.celery import app as celery_app


@pytest.fixture(scope="module")
def registered_tasks() -> set[str]:
    """The project's tasks as the worker registers them (Celery's own left out)."""
    celery_app.loader.import_default_modules()
    return {name for name in celery_app.tasks if not name.startswith("celery.")}


def test_every_task_has_a_route(registered_tasks):
    assert "sync.run_sync_job" in registered_tasks  # the tasks were found
    unrouted = registered_tasks - set(settings.CELERY_TASK_ROUTES)
    assert not unrouted, (
        f"No queue for {sorted(unrouted)}: give each its kind in syncconsole/task_routes.py"
    )


def test_every_route_names_a_task(registered_tasks):
    assert set(task_routes.TASK_KINDS) <= registered_tasks


def test_the_queues_are_named_after_celery_queue():
    base = settings.TASK_QUEUE_PREFIX
    assert [f"{base}.sync", f"{base}.triage", f"{base}.notify"] == settings.TASK_QUEUES
    routes = settings.CELERY_TASK_ROUTES
    assert routes["sync.run_sync_job"] == {"queue": f"{base}.sync"}
    assert routes["sync.run_lag_probes"] == {"queue": f"{base}.sync"}
    assert routes["errors.run_sync_error_cleanup"] == {"queue": f"{base}.triage"}
    assert routes["errors.run_bulk_action"] == {"queue": f"{base}.triage"}
    assert routes["couplings.couple_by_match"] == {"queue": f"{base}.triage"}
    assert routes["errors.send_problem_alerts"] == {"queue": f"{base}.notify"}
    # Nothing goes to a queue no worker of the three kinds consumes.
    assert settings.CELERY_TASK_DEFAULT_QUEUE in settings.TASK_QUEUES
    assert {route["queue"] for route in routes.values()} == set(settings.TASK_QUEUES)


def test_the_app_sends_each_task_to_its_kinds_queue_and_back():
    previous = celery_app.conf.task_default_queue, celery_app.conf.task_routes
    router = celery_app.amqp
    # The settings' queues, or the test session's own when a test with a worker ran before.
    before = router.router.route({}, "sync.run_sync_job")["queue"].name
    try:
        task_routes.configure(celery_app.conf, "private")
        assert router.router.route({}, "sync.run_sync_job")["queue"].name == "private.sync"
        assert router.router.route({}, "errors.send_assignment_notices")["queue"].name == (
            "private.notify"
        )
    finally:
        celery_app.conf.update(task_default_queue=previous[0], task_routes=previous[1])
    assert router.router.route({}, "sync.run_sync_job")["queue"].name == before


def test_an_unknown_kind_of_work_is_refused():
    with pytest.raises(ValueError, match="No kind of work called 'mail'"):
        task_routes.queue_name("console", "mail")
