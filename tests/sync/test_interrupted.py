"""Jobs stopped by a fault rather than by their records: a worker that died, a database
connection that went away."""

import psycopg2
import pytest
from django.db import DatabaseError, connection, transaction

from sync import engine
from sync.models import SyncJob
from tests.conftest import database_url_of_test_db
from tests.factories import make_mapping


def raised(statement: str) -> DatabaseError:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as c:
        c.execute(statement)
    return caught.value


@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_is_told_from_a_statement_that_failed():
    assert not engine.connection_lost(raised("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)"))
    assert not engine.connection_lost(raised("SELECT 1 / 0"))
    assert not engine.connection_lost(ValueError("not a database error"))

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    other = psycopg2.connect(database_url_of_test_db())
    try:
        with other.cursor() as cursor:  # as a restart of the server ends every session
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    assert engine.connection_lost(raised("SELECT 1"))
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_message_of_a_job_whose_worker_died_interrupts_it_instead_of_running_it_again():
    mapping = make_mapping()
    job = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.RUNNING, inserted=7)

    # The message comes back to a worker; nobody holds the mapping's lock.
    returned = engine.run_job(job.pk)

    job.refresh_from_db()
    assert (job.status, job.message) == (SyncJob.Status.INTERRUPTED, engine.WORKER_LOST)
    assert job.inserted == 7 and job.finished_at is not None
    assert returned.resumable


@pytest.mark.django_db(transaction=True)
def test_a_job_interrupted_again_and_again_waits_for_a_person(celery_queue):
    from sync.services import INTERRUPTIONS_IN_A_ROW, continue_interrupted

    mapping = make_mapping()
    SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.SUCCEEDED)
    jobs = [
        SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.INTERRUPTED, message="Lost.")
        for _ in range(INTERRUPTIONS_IN_A_ROW - 1)
    ]
    successor = continue_interrupted(jobs[-1])
    assert successor is not None and successor.trigger == SyncJob.Trigger.RETRY

    successor.status = SyncJob.Status.INTERRUPTED
    successor.save()
    assert continue_interrupted(successor) is None
    successor.refresh_from_db()
    assert f"the last {INTERRUPTIONS_IN_A_ROW} jobs of this mapping were interrupted" in (
        successor.message
    )
    assert not SyncJob.objects.filter(mapping=mapping, pk__gt=successor.pk).exists()
