"""The sync schedules, the job log retention, and one job per mapping at a time."""

import threading
from contextlib import contextmanager
from datetime import timedelta

import psycopg2
import pytest
from django.db import connection as db_connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from couplings.models import Coupling
from sync import engine, services
from sync.models import SyncJob
from syncconsole.celery import app
from tests.conftest import database_url_of_test_db
from tests.factories import make_connection, make_mapping


def test_migrations_schedule_the_sync_every_30_minutes_and_the_job_cleanup_daily(db):
    sync = PeriodicTask.objects.get(name="Synchronize modified records")
    assert sync.enabled and sync.task == "sync.synchronize_modified_records"
    assert (sync.interval.every, sync.interval.period) == (30, IntervalSchedule.MINUTES)
    cleanup = PeriodicTask.objects.get(name="Delete expired sync jobs")
    assert cleanup.enabled and cleanup.task == "sync.delete_expired_jobs"
    assert (cleanup.crontab.minute, cleanup.crontab.hour) == ("45", "3")
    app.loader.import_default_modules()
    for name in (
        "sync.run_sync_job",
        "sync.synchronize_modified_records",
        "sync.delete_expired_jobs",
    ):
        assert name in app.tasks


def make_job(mapping, age_days: float, status=SyncJob.Status.SUCCEEDED) -> SyncJob:
    job = SyncJob.objects.create(mapping=mapping, status=status)
    SyncJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    return job


def test_old_jobs_go_except_those_a_skipped_coupling_points_to(db, settings):
    assert settings.SYNC_JOB_RETENTION_DAYS == 30
    mapping = make_mapping()
    expired = make_job(mapping, 31)
    kept_for_skipped = make_job(mapping, 45)
    still_running = make_job(mapping, 40, status=SyncJob.Status.RUNNING)
    recent = make_job(mapping, 29)
    Coupling.objects.create(
        mapping=mapping,
        source_record_id="a",
        destination_record_id="b",
        is_skipped=True,
        last_failed_job=kept_for_skipped,
    )

    assert services.delete_expired_jobs() == 1
    remaining = set(SyncJob.objects.values_list("pk", flat=True))
    assert remaining == {kept_for_skipped.pk, still_running.pk, recent.pk}
    assert expired.pk not in remaining


@contextmanager
def worker_running(mapping):
    """The mapping's lock held by another database session, as a worker running its job
    holds it."""
    other = psycopg2.connect(database_url_of_test_db())
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [engine.LOCK_NAMESPACE, mapping.pk])
        yield
    finally:
        other.close()


def test_a_second_job_for_a_mapping_is_refused_while_one_waits_or_runs(db):
    mapping = make_mapping()
    first = services.create_job(mapping, kind=SyncJob.Kind.MODIFIED, trigger="user")
    with pytest.raises(services.JobRefused, match="already queued"):
        services.create_job(mapping, kind=SyncJob.Kind.FULL, trigger="user")
    SyncJob.objects.filter(pk=first.pk).update(status=SyncJob.Status.RUNNING)
    with worker_running(mapping):
        with pytest.raises(services.JobRefused, match="already running"):
            services.create_job(mapping, kind=SyncJob.Kind.FULL, trigger="user")
        # A change notification may queue one job behind a running one, no more.
        behind = services.create_job(
            mapping, kind=SyncJob.Kind.MODIFIED, trigger="webhook", allow_behind_running=True
        )
        with pytest.raises(services.JobRefused):
            services.create_job(
                mapping, kind=SyncJob.Kind.MODIFIED, trigger="webhook", allow_behind_running=True
            )
    assert behind.status == SyncJob.Status.QUEUED
    first.refresh_from_db()
    assert first.status == SyncJob.Status.RUNNING


def test_a_job_whose_worker_died_does_not_block_its_mapping(db):
    mapping = make_mapping()
    dead = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.RUNNING)
    # Nobody holds the mapping's lock: the worker that ran the job is gone.
    fresh = services.create_job(mapping, kind=SyncJob.Kind.FULL, trigger="user")
    dead.refresh_from_db()
    assert (dead.status, dead.message) == (SyncJob.Status.INTERRUPTED, engine.WORKER_LOST)
    assert dead.finished_at is not None
    assert fresh.status == SyncJob.Status.QUEUED


def test_a_queued_job_no_worker_took_does_not_block_for_ever(db):
    mapping = make_mapping()
    stale = services.create_job(mapping, kind=SyncJob.Kind.MODIFIED, trigger="user")
    SyncJob.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1))
    fresh = services.create_job(mapping, kind=SyncJob.Kind.MODIFIED, trigger="user")
    stale.refresh_from_db()
    assert stale.status == SyncJob.Status.INTERRUPTED
    assert fresh.status == SyncJob.Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_only_one_job_runs_per_mapping_at_a_time():
    mapping = make_mapping()
    job = services.create_job(mapping, kind=SyncJob.Kind.MODIFIED, trigger="user")
    held, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with engine.mapping_lock(mapping.pk) as acquired:
                assert acquired
                held.set()
                release.wait(10)
        finally:
            db_connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(engine.MappingBusy):
            engine.run_job(job.pk)
        job.refresh_from_db()
        assert job.status == SyncJob.Status.QUEUED  # untouched, the task retries it later
    finally:
        release.set()
        thread.join()
    with engine.mapping_lock(mapping.pk) as acquired:
        assert acquired


@pytest.mark.django_db(transaction=True)
def test_a_job_left_running_by_a_dead_worker_is_marked_interrupted(unused_port):
    nowhere = f"http://127.0.0.1:{unused_port}/api/"
    mapping = make_mapping(
        make_connection(
            source_base_url=nowhere,
            destination_base_url=nowhere,
            source_settings={"max_retries": 0},
            destination_settings={"max_retries": 0},
        )
    )
    job = services.create_job(mapping, kind=SyncJob.Kind.MODIFIED, trigger="user")
    dead = SyncJob.objects.create(mapping=mapping, status=SyncJob.Status.RUNNING)
    # The mapping's connection points nowhere: the job fails, but it did take the lock.
    engine.run_job(job.pk)
    dead.refresh_from_db()
    assert dead.status == SyncJob.Status.INTERRUPTED
    assert dead.message == engine.LEASE_LOST.format(mapping=mapping.name, job=job.pk)
