"""The lease of a mapping's running job: its writes go through while the lease is its own,
and none once a newer job of the mapping took it (tests/reliability/test_lease_fencing.py
proves it with real workers)."""

import psycopg2
import pytest
from django.db import OperationalError, connection, transaction

from sync import leases
from sync.engine import connection_lost
from sync.models import SyncJob
from tests.conftest import database_url_of_test_db
from tests.factories import make_mapping


def test_each_job_that_starts_moves_the_lease_on(db):
    mapping = make_mapping()
    assert [leases.take(mapping.pk) for _ in range(3)] == [1, 2, 3]


def test_a_job_writes_while_the_lease_is_its_own(db):
    mapping = make_mapping()
    token = leases.take(mapping.pk)
    with leases.fenced(mapping.pk, token):
        job = SyncJob.objects.create(mapping=mapping)
        with transaction.atomic():
            SyncJob.objects.filter(pk=job.pk).update(inserted=3)
    job.refresh_from_db()
    assert job.inserted == 3


def test_a_job_whose_lease_a_newer_job_took_writes_nothing(db):
    mapping = make_mapping()
    job = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.RUNNING)
    token = leases.take(mapping.pk)
    leases.take(mapping.pk)  # the newer job
    with leases.fenced(mapping.pk, token):
        assert SyncJob.objects.get(pk=job.pk).status == SyncJob.Status.RUNNING  # reads go on
        with pytest.raises(leases.LeaseLost), transaction.atomic():
            SyncJob.objects.filter(pk=job.pk).update(status=SyncJob.Status.SUCCEEDED)
    job.refresh_from_db()
    assert job.status == SyncJob.Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_at_the_check_is_a_lost_connection_as_anywhere_else():
    """The job is interrupted and continued, not failed (engine.connection_lost), when the
    database goes away just as the fence checks the lease."""
    mapping = make_mapping()
    job = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.RUNNING)
    token = leases.take(mapping.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    killer = psycopg2.connect(database_url_of_test_db())
    try:
        killer.autocommit = True
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with leases.fenced(mapping.pk, token), pytest.raises(OperationalError) as lost:
            SyncJob.objects.filter(pk=job.pk).update(inserted=1)
        assert connection_lost(lost.value)
    finally:
        killer.close()
        connection.close()
