"""The lease of a mapping's running job: its writes go through while the lease is its own,
and none once a newer job of the mapping took it (tests/reliability/test_lease_fencing.py
proves it with real workers)."""

import pytest
from django.db import transaction

from sync import leases
from sync.models import SyncJob
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
