"""A job's own log: the story the engine tells at INFO, kept with the job (bounded, written
in batches), shown escaped on its page and in the API, deleted with the job."""

import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sync import joblog
from sync.models import JobLogLine, SyncJob
from sync.services import create_job, delete_expired_jobs

pytestmark = pytest.mark.django_db
engine_log = logging.getLogger("sync.engine")


def queued_job(demo_apps) -> SyncJob:
    return create_job(
        demo_apps.mapping("CUSTOMER"), kind=SyncJob.Kind.MODIFIED, trigger=SyncJob.Trigger.USER
    )


def messages(job: SyncJob) -> list[str]:
    return list(job.log_lines.order_by("pk").values_list("message", flat=True))


def test_a_job_keeps_its_story(demo_apps):
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)

    story = messages(job)
    assert story[0] == "Job started: Full synchronization, Bidirectional, trigger User."
    assert "Read 12 customers records from Business Central." in story
    assert (
        "Wrote the page to Dynamics 365 Sales: 10 inserted, 0 modified, 0 deleted, "
        "1 unchanged, 0 skipped, 1 failed, 0 retrying." in story
    )
    assert story[-1] == (
        "Job succeeded: 23 read, 10 inserted, 0 modified, 0 deleted, 12 unchanged, "
        "0 skipped, 1 failed, 0 retrying. 1 records failed."
    )
    assert set(job.log_lines.values_list("logger", flat=True)) == {"sync.engine"}
    assert job.log_lines_dropped == 0


def test_a_job_keeps_at_most_its_bound_and_counts_the_rest(demo_apps, settings):
    settings.JOB_LOG_MAX_LINES = 5
    job = queued_job(demo_apps)
    with joblog.kept(job):
        for number in range(12):
            engine_log.info("line %s", number)

    assert messages(job) == [f"line {number}" for number in range(5)]
    job.refresh_from_db()
    assert job.log_lines_dropped == 7


def test_a_job_keeps_at_most_its_bytes(demo_apps, settings):
    settings.JOB_LOG_MAX_BYTES = 100
    job = queued_job(demo_apps)
    with joblog.kept(job):
        for _ in range(4):
            engine_log.info("é" * 20)  # 40 bytes

    assert len(messages(job)) == 2
    job.refresh_from_db()
    assert job.log_lines_dropped == 2


def test_a_job_run_again_goes_on_within_the_same_bound(demo_apps, settings):
    settings.JOB_LOG_MAX_LINES = 3
    job = queued_job(demo_apps)
    with joblog.kept(job):
        engine_log.info("first run")
    with joblog.kept(job):
        for _ in range(3):
            engine_log.info("second run")

    assert messages(job) == ["first run", "second run", "second run"]
    job.refresh_from_db()
    assert job.log_lines_dropped == 1


def test_only_our_lines_of_info_and_above_are_kept(demo_apps):
    job = queued_job(demo_apps)
    with joblog.kept(job):
        engine_log.debug("too fine")
        logging.getLogger("demo.views").warning("the demo app's")
        logging.getLogger("django.request").warning("Django's")
        logging.getLogger("synchronous").warning("not ours either")
        logging.getLogger("sync.connectors.odata").warning("a connector's")
        logging.getLogger("errors.grouping").error("the recording's")
    engine_log.info("after the job")

    assert messages(job) == ["a connector's", "the recording's"]
    assert [line.level_name for line in job.log_lines.order_by("pk")] == ["warning", "error"]


def test_lines_are_written_in_batches_while_the_job_runs(
    demo_apps, settings, django_assert_num_queries
):
    settings.JOB_LOG_FLUSH_LINES = 3
    job = queued_job(demo_apps)
    with joblog.kept(job):
        with django_assert_num_queries(0):
            for number in range(5):
                engine_log.info("line %s", number)
        joblog.flush_if_due()  # between pages: 5 held, at least 3: one INSERT
        assert len(messages(job)) == 5
        engine_log.info("line 5")
        joblog.flush_if_due()  # 1 held: not yet
        assert len(messages(job)) == 5
    assert len(messages(job)) == 6  # the rest when the job ends


def test_lines_held_for_long_are_written_at_the_next_page(demo_apps, settings, time_machine):
    settings.JOB_LOG_FLUSH_SECONDS = 5
    job = queued_job(demo_apps)
    with joblog.kept(job) as log:
        engine_log.info("one line")
        log.flushed_at -= 6
        joblog.flush_if_due()
        assert messages(job) == ["one line"]


def test_the_job_page_shows_its_log_escaped_with_the_lines_not_kept(
    demo_apps, staff_client, settings, django_assert_max_num_queries
):
    settings.JOB_LOG_MAX_LINES = 40
    job = queued_job(demo_apps)
    with joblog.kept(job):
        engine_log.warning("A record named <script>alert(1)</script> was refused.")
        for number in range(50):
            engine_log.info("line %s", number)

    with django_assert_max_num_queries(8):
        page = staff_client.get(reverse("sync:job", args=[job.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "A record named &lt;script&gt;alert(1)&lt;/script&gt; was refused." in page
    assert page.count('<tr class="log-') == 40
    assert '<tr class="log-warning">' in page
    assert "11 more lines were not kept" in page


def test_the_api_s_job_has_its_log(demo_apps, staff_client):
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)

    body = staff_client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["log_lines_dropped"] == 0
    first = body["log"][0]
    assert set(first) == {"at", "level", "logger", "message"}
    assert (first["level"], first["logger"]) == ("info", "sync.engine")
    assert first["message"].startswith("Job started")
    assert [line["message"] for line in body["log"]] == messages(job)
    # The list stays light: no log there.
    listed = staff_client.get("/api/v1/jobs/").json()["results"][0]
    assert "log" not in listed


def test_the_admin_shows_the_log_read_only(demo_apps, superuser, client):
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    client.force_login(superuser)
    page = client.get(reverse("admin:sync_syncjob_change", args=[job.pk])).content.decode()
    assert "Job started: Full synchronization" in page
    assert 'name="log_lines-0-message"' not in page


def test_the_log_is_deleted_with_its_job(demo_apps):
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    assert job.log_lines.exists()
    SyncJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=40))

    delete_expired_jobs(days=30)
    assert not SyncJob.objects.filter(pk=job.pk).exists()
    assert not JobLogLine.objects.filter(job_id=job.pk).exists()
