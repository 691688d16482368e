"""PostgreSQL restarted under a running web server (gunicorn) and a running worker, on a
database server of the test's own: both go on without being restarted."""

import os
import subprocess
import sys

import httpx
import psycopg2
import pytest
from django.conf import settings

from tests.conftest import wait_until

from .conftest import queue_name, spare_port, wait_for_http, worker_command

pytestmark = [pytest.mark.faults]

PASSWORD = "restart-proof-password"
SEED = """
import random
from demo.seed import create_connection, create_records
from django.contrib.auth import get_user_model
create_records(random.Random(3), customers=12)
connection = create_connection({base_url!r})
for side in ("source", "destination"):
    getattr(connection, f"{{side}}_settings").update({{"max_retries": 2, "backoff_seconds": 0.05}})
connection.save()
get_user_model().objects.create_superuser("operator", "operator@example.com", {password!r})
"""


def manage(env: dict, *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, check=True,
        capture_output=True, timeout=300,
    )  # fmt: skip


def signed_in(base_url: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    client.get("/accounts/login/").raise_for_status()
    token = client.cookies["csrftoken"]
    answer = client.post(
        "/accounts/login/",
        data={"username": "operator", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert answer.status_code == 302, answer.text
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client


def run_job(client: httpx.Client, mapping_id: int, log) -> dict:
    """Start a full synchronization from the console and follow its page to the end."""
    answer = client.post(f"/sync/mappings/{mapping_id}/start/", data={"kind": "full"})
    assert answer.status_code == 302 and "/sync/jobs/" in answer.headers["location"], answer.text
    job_url = answer.headers["location"]

    def finished():
        state = client.get(job_url, params={"format": "json"}).json()
        return state if state["finished"] else None

    return wait_until(finished, timeout=90, interval=0.3, message=log())


def test_the_web_server_and_the_worker_go_on_after_postgresql_restarts(
    private_postgres, private_redis, processes
):
    database_url = private_postgres.create_database("syncconsole")
    port = spare_port()
    base_url = f"http://127.0.0.1:{port}"
    queue = queue_name()
    # The production defaults otherwise: persistent database connections (DB_CONN_MAX_AGE 60)
    # in the web server and the worker.
    env = {
        **{name: value for name, value in os.environ.items() if name != "DB_CONN_MAX_AGE"},
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": private_redis.url(),
        "CELERY_QUEUE": queue,
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "shell", "-c", SEED.format(base_url=base_url, password=PASSWORD))
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM sync_tablemapping WHERE name = 'CUSTOMER'")
        [(mapping_id,)] = cursor.fetchall()
    connection.close()

    # One process serving one request at a time: the connection it keeps from the requests
    # before the restart is the one the first request after it finds dead.
    web = processes.start(
        "web-restart",
        [sys.executable, "-m", "gunicorn", "syncconsole.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--timeout", "60"],
        env,
    )  # fmt: skip
    worker = processes.start("worker-restart", worker_command(queue, "--pool=solo"), env)
    wait_for_http(base_url + "/accounts/login/")
    worker.wait_for_log("ready.")

    def log():
        return f"web:\n{web.log_text()[-3000:]}\nworker:\n{worker.log_text()[-3000:]}"

    client = signed_in(base_url)
    assert client.get("/errors/").status_code == 200
    before = run_job(client, mapping_id, log)
    assert before["status"] == "succeeded", before

    private_postgres.restart()

    # The server is back when the restart returns; the first request already finds it.
    assert client.get("/errors/").status_code == 200
    after = run_job(client, mapping_id, log)
    assert after["status"] == "succeeded", after
    assert web.process.poll() is None and worker.process.poll() is None
