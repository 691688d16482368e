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


@pytest.mark.django_db
def test_the_message_of_a_job_whose_worker_died_interrupts_it_and_names_the_job_going_on():
    mapping = make_mapping()
    job = SyncJob.objects.create(
        mapping=mapping,
        status=SyncJob.Status.RUNNING,
        kind=SyncJob.Kind.FULL,
        inserted=7,
        coupling_ids=[4, 5],
        direction="to_destination",
    )

    # The message comes back to a worker; nobody holds the mapping's lock.
    returned = engine.run_job(job.pk)

    job.refresh_from_db()
    successor = returned.successor
    assert successor is not None
    # One write: whoever sees the job interrupted sees the job that goes on with it too.
    assert job.status == SyncJob.Status.INTERRUPTED
    assert job.message == f"{engine.WORKER_LOST} Job #{successor.pk} goes on with it."
    assert job.inserted == 7 and job.finished_at is not None
    successor.refresh_from_db()
    assert (successor.status, successor.trigger, successor.kind) == (
        SyncJob.Status.QUEUED,
        SyncJob.Trigger.RETRY,
        SyncJob.Kind.FULL,
    )
    assert (successor.coupling_ids, successor.direction) == ([4, 5], "to_destination")


@pytest.mark.django_db
def test_a_job_interrupted_again_and_again_waits_for_a_person():
    mapping = make_mapping()
    SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.SUCCEEDED)
    for _ in range(engine.INTERRUPTIONS_IN_A_ROW - 1):
        SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.INTERRUPTED, message="Lost.")
    job = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.RUNNING)

    returned = engine.run_job(job.pk)

    assert returned.successor is None
    job.refresh_from_db()
    assert job.status == SyncJob.Status.INTERRUPTED
    assert (
        f"the last {engine.INTERRUPTIONS_IN_A_ROW} jobs of this mapping were interrupted"
        in job.message
    )
    assert not SyncJob.objects.filter(mapping=mapping, pk__gt=job.pk).exists()


@pytest.mark.django_db
def test_a_job_interrupted_once_after_others_succeeded_is_continued():
    mapping = make_mapping()
    SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.INTERRUPTED, message="Lost.")
    SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.SUCCEEDED)
    job = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.RUNNING)
    assert engine.run_job(job.pk).successor is not None


@pytest.mark.django_db
def test_a_job_already_queued_goes_on_with_an_interrupted_one():
    mapping = make_mapping()
    job = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.RUNNING)
    waiting = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.QUEUED)

    assert engine.run_job(job.pk).successor is None
    job.refresh_from_db()
    assert (
        job.message == f"{engine.WORKER_LOST} Job #{waiting.pk}, already queued, goes on with it."
    )


@pytest.mark.django_db
def test_a_job_retried_after_its_database_went_away_says_so_and_is_continued(celery_queue):
    from sync.tasks import run_sync_job

    job = SyncJob.objects.create(mapping=make_mapping(), status=SyncJob.Status.RUNNING)

    # The task's retry after an OperationalError that lost the connection.
    assert run_sync_job(job.pk, database_lost=True) == SyncJob.Status.INTERRUPTED

    job.refresh_from_db()
    successor = SyncJob.objects.get(mapping=job.mapping, pk__gt=job.pk)
    assert job.message == f"{engine.DATABASE_LOST} Job #{successor.pk} goes on with it."
