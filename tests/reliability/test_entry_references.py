"""An entry never keeps the id of a job, coupling or mapping deleted while it was written:
the entries have no foreign-key constraint in the database, so what a constraint's ON DELETE
SET NULL and its check would do is done by the referenced tables' delete triggers and by
check_references' FOR KEY SHARE lock, whichever of the two transactions comes first."""

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from couplings.models import Coupling
from errors.grouping import record_errors
from errors.models import Category, SyncError
from sync.models import SyncJob, TableMapping
from sync.services import delete_expired_jobs
from tests.factories import make_coupling, make_job, make_mapping

from .fixtures_apps import InThread

pytestmark = pytest.mark.django_db(transaction=True)


def entry(mapping, job, coupling) -> SyncError:
    return SyncError(
        created_at=timezone.now(),
        mapping=mapping,
        job=job,
        coupling=coupling,
        category=Category.VALIDATION,
        message="The field name of record C1 cannot be 'x'.",
    )


@pytest.fixture
def rows():
    mapping = make_mapping()
    job = make_job(mapping, status=SyncJob.Status.FAILED, finished_at=timezone.now())
    SyncJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=90))
    return mapping, job, make_coupling(mapping)


def delete(kind: str, mapping, job, coupling) -> None:
    if kind == "job":
        assert delete_expired_jobs(days=30) == 1
    elif kind == "coupling":
        Coupling.objects.get(pk=coupling.pk).delete()
    else:
        TableMapping.objects.get(pk=mapping.pk).delete()


def named_row_exists(kind: str, error: SyncError) -> bool:
    model = {"job": SyncJob, "coupling": Coupling, "mapping": TableMapping}[kind]
    return model.objects.filter(pk=getattr(error, f"{kind}_id")).exists()


@pytest.mark.parametrize("kind", ["job", "coupling", "mapping"])
def test_a_row_deleted_while_its_entry_is_written_leaves_the_entry_without_it(rows, kind):
    mapping, job, coupling = rows
    written, commit = threading.Event(), threading.Event()

    def ingest():
        with transaction.atomic():
            record_errors([entry(mapping, job, coupling)])
            written.set()
            commit.wait(30)

    writer = InThread(ingest).start()
    assert written.wait(30)
    deleter = InThread(delete, kind, mapping, job, coupling).start()
    # The delete waits for the entry's transaction (its FOR KEY SHARE lock) ...
    deleter.wait_until_blocked_or_done()
    commit.set()
    writer.value()
    deleter.value()

    # ... and once it went on, the entry names no row that is gone.
    error = SyncError.objects.get()
    assert getattr(error, f"{kind}_id") is None
    for other in {"job", "coupling", "mapping"} - {kind}:
        value = getattr(error, f"{other}_id")
        assert value is None or named_row_exists(other, error)


@pytest.mark.parametrize("kind", ["job", "coupling", "mapping"])
def test_an_entry_written_while_its_row_is_deleted_is_refused(rows, kind):
    mapping, job, coupling = rows
    deleted, commit = threading.Event(), threading.Event()

    def remove():
        with transaction.atomic():
            delete(kind, mapping, job, coupling)
            deleted.set()
            commit.wait(30)

    deleter = InThread(remove).start()
    assert deleted.wait(30)
    writer = InThread(record_errors, [entry(mapping, job, coupling)]).start()
    writer.wait_until_blocked_or_done()
    commit.set()
    deleter.value()

    with pytest.raises(IntegrityError, match="names no row of"):
        writer.value()
    assert not SyncError.objects.exists()
