"""/readyz under faults, on a console of the test's own (gunicorn, a worker and beat, on a
private Redis and a private PostgreSQL): it turns red, naming the part, within seconds of the
worker, beat, Redis or PostgreSQL stopping, and green again once the part is back. The
heartbeats and their maximum ages are made short by settings, so that seconds stand for the
production's minute."""

import signal
import sys

import httpx
import pytest

from tests.conftest import wait_until

from .conftest import beat_command, queue_name, spare_port, wait_for_http, worker_command

# The test database is copied into the private cluster (copy_of_the_test_database).
pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CHECKS = ("database", "broker", "queue", "worker", "beat")
# A heartbeat every 0.3 s, red after 3 s without one: the production's 15 s and 60 s.
SHORT_LIMITS = {
    "PROCESS_HEARTBEAT_SECONDS": "0.3",
    "READYZ_WORKER_HEARTBEAT_MAX_AGE": "3",
    "READYZ_BEAT_MAX_AGE": "3",
    "READYZ_CHECK_TIMEOUT": "1",
}
# Red within this many seconds of a part stopping: the maximum age and a check's timeout,
# with room for a loaded machine.
TURNS_RED_WITHIN = 30


def test_readyz_turns_red_when_a_part_stops_and_green_when_it_is_back(
    private_postgres, private_redis, processes, workdir
):
    database_url = private_postgres.copy_of_the_test_database()
    port = spare_port()
    base_url = f"http://127.0.0.1:{port}"
    queue = queue_name()
    env = {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": private_redis.url(),
        "CELERY_QUEUE": queue,
        "ALLOWED_HOSTS": "127.0.0.1",
        **SHORT_LIMITS,
    }
    web = processes.start(
        "web-readyz",
        [sys.executable, "-m", "gunicorn", "syncconsole.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "2", "--timeout", "30"],
        env,
    )  # fmt: skip
    workers = [processes.start("worker-readyz", worker_command(queue, "--pool=solo"), env)]
    beats = [processes.start("beat-readyz", beat_command(workdir), env)]
    wait_for_http(base_url + "/healthz")
    # One client for the hundreds of polls: a new one each time would build a TLS context
    # each time, which costs more CPU than the answer it waits for.
    client = httpx.Client(base_url=base_url, timeout=10)

    def log() -> str:
        return "\n".join(
            f"{process.name}:\n{process.log_text()[-2000:]}" for process in (web, *workers, *beats)
        )

    def states() -> dict:
        answer = client.get("/readyz")
        body = answer.json()
        assert answer.status_code == (200 if body["status"] == "ok" else 503), body
        return {name: check["state"] for name, check in body["checks"].items()}

    def green() -> None:
        wait_until(
            lambda: states() == dict.fromkeys(CHECKS, "ok"),
            timeout=60,
            interval=0.2,
            message=f"/readyz never turned green: {states()}\n{log()}",
        )

    def red(*failing: str) -> None:
        """Red within the limit, with these checks failing (and perhaps others)."""
        wait_until(
            lambda: all(states()[name] == "failing" for name in failing),
            timeout=TURNS_RED_WITHIN,
            interval=0.2,
            message=f"/readyz never showed {failing} failing: {states()}\n{log()}",
        )

    green()

    # The worker dies without a word (SIGKILL): its heartbeat grows stale.
    workers[0].kill()
    red("worker")
    assert states()["beat"] == "ok"
    workers.append(processes.start("worker-readyz-2", worker_command(queue, "--pool=solo"), env))
    green()

    # Beat likewise.
    beats[0].kill()
    red("beat")
    assert states()["worker"] == "ok"
    beats.append(processes.start("beat-readyz-2", beat_command(workdir), env))
    green()

    # Redis stops: the broker and the queue cannot be checked; the worker reconnects once it
    # is back.
    private_redis.stop()
    red("broker", "queue")
    assert states()["database"] == "ok"
    private_redis.start()
    green()

    # Redis freezes (a dead network path): /readyz still answers, its checks giving up.
    private_redis.freeze()
    red("broker")
    private_redis.process.signal_group(signal.SIGCONT)
    green()

    # PostgreSQL stops: the database, and the heartbeats kept in it, are failing; the worker
    # and beat write theirs again on new connections once it is back.
    private_postgres.stop_server()
    red("database", "worker", "beat")
    assert states()["broker"] == "ok"
    private_postgres.start_server()
    green()

    # Nothing was restarted but the parts that were killed.
    assert all(process.process.poll() is None for process in (web, workers[-1], beats[-1]))
    assert client.get("/healthz").json() == {"status": "ok"}
