"""PostgreSQL restarted under a running web server (gunicorn) and a worker in the middle of a
job, on a database server of the test's own: both go on without being restarted, the job is
interrupted and a new one goes on with it."""

import os
import re
import subprocess
import sys

import httpx
import psycopg2
import pytest
from django.conf import settings

from tests.conftest import wait_until

from .conftest import queue_name, spare_port, wait_for_http, worker_command

# The test database is copied into the private cluster (copy_of_the_test_database).
pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

PASSWORD = "restart-proof-password"
CUSTOMERS = 100
SEED = """
import random
from demo.seed import create_connection, create_records
from django.contrib.auth import get_user_model
create_records(random.Random(3), customers={customers})
connection = create_connection({base_url!r})
# Read ten at a time, written one at a time: a full synchronization long enough to restart
# the database in its middle.
connection.source_settings.update({{"page_size": 10, "max_retries": 2, "backoff_seconds": 0.05}})
connection.destination_settings.update({{"batch_size": 1, "max_retries": 2,
                                        "backoff_seconds": 0.05}})
connection.save()
get_user_model().objects.create_superuser("operator", "operator@example.com", {password!r})
"""


def manage(env: dict, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"


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


def start_job(client: httpx.Client, mapping_id: int) -> str:
    """Start a full synchronization from the console; the job's page."""
    answer = client.post(f"/sync/mappings/{mapping_id}/start/", data={"kind": "full"})
    assert answer.status_code == 302 and "/sync/jobs/" in answer.headers["location"], answer.text
    return answer.headers["location"]


def job_state(client: httpx.Client, job_url: str) -> dict:
    return client.get(job_url, params={"format": "json"}).json()


def finished(client: httpx.Client, job_url: str, log) -> dict:
    def check():
        state = job_state(client, job_url)
        return state if state["finished"] else None

    return wait_until(check, timeout=120, interval=0.3, message=log())


def duplicates(database_url: str) -> list:
    """CRM accounts with the same ERP number, and records coupled twice."""
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT account_number FROM demo_crmaccount GROUP BY 1 HAVING count(*) > 1 "
            "UNION ALL SELECT source_record_id FROM couplings_coupling GROUP BY mapping_id, 1 "
            "HAVING count(*) > 1 "
            "UNION ALL SELECT destination_record_id FROM couplings_coupling "
            "GROUP BY mapping_id, 1 HAVING count(*) > 1"
        )
        found = cursor.fetchall()
    connection.close()
    return found


def test_web_server_and_worker_go_on_after_postgresql_restarts_in_the_middle_of_a_job(
    private_postgres, private_redis, processes
):
    database_url = private_postgres.copy_of_the_test_database()
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
    seed = SEED.format(base_url=base_url, password=PASSWORD, customers=CUSTOMERS)
    manage(env, "shell", "-c", seed)
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM sync_tablemapping WHERE name = 'CUSTOMER'")
        [(mapping_id,)] = cursor.fetchall()
    connection.close()

    # One process serving one request at a time: the connection it keeps from the requests
    # before the restart is the one the first request after it finds dead.
    web = processes.start(
        "web-restart",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "syncconsole.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "60",
        ],
        env,
    )
    worker = processes.start("worker-restart", worker_command(queue, "--pool=solo"), env)
    wait_for_http(base_url + "/accounts/login/")
    worker.wait_for_log("ready.")

    def log():
        return f"web:\n{web.log_text()[-3000:]}\nworker:\n{worker.log_text()[-3000:]}"

    client = signed_in(base_url)
    assert client.get("/errors/").status_code == 200
    job_url = start_job(client, mapping_id)

    def written_midway():
        state = job_state(client, job_url)
        assert not state["finished"], f"the job ended before the restart: {state}"
        return state["inserted"] >= 10

    wait_until(written_midway, timeout=120, interval=0.1, message=log())
    private_postgres.restart()

    # The server is back when the restart returns; the first request already finds it.
    assert client.get("/errors/").status_code == 200
    interrupted = finished(client, job_url, log)
    assert interrupted["status"] == "interrupted", interrupted
    successor = re.fullmatch(
        r"The connection to the database was lost before the job finished\. "
        r"Job #(\d+) goes on with it\.",
        interrupted["message"],
    )
    assert successor, interrupted["message"]
    continued = finished(client, f"/sync/jobs/{successor[1]}/", log)
    assert continued["status"] == "succeeded", continued
    assert interrupted["inserted"] + continued["inserted"] > 0
    assert duplicates(database_url) == []

    # A job queued afterwards runs to the end too, and finds everything in step.
    after = finished(client, start_job(client, mapping_id), log)
    assert (after["status"], after["inserted"]) == ("succeeded", 0), after
    assert web.process.poll() is None and worker.process.poll() is None
