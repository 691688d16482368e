"""Redis, the console's broker, stopped or frozen: the console keeps working and says at once
that jobs cannot be queued; when Redis is back, the worker and beat resume by themselves."""

import threading
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from errors.models import SyncError, SyncErrorCleanup
from sync.models import SyncJob
from tests.api.conftest import token_client
from tests.conftest import wait_until
from tests.factories import make_error, make_mapping

from .conftest import beat_command, console_broker, env_on_test_db, queue_name, worker_command

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

NOT_STARTED = "The task queue is unavailable; the job was not started."


@pytest.fixture
def console_on_private_redis(private_redis):
    with console_broker(private_redis.url(), queue_name()):
        yield private_redis


def test_the_console_keeps_working_while_redis_is_stopped(
    console_on_private_redis, staff_client, staff_user
):
    mapping = make_mapping()
    old = [make_error(age=timedelta(days=10), mapping=mapping) for _ in range(3)]
    recent = make_error(mapping=mapping)
    console_on_private_redis.stop()

    assert staff_client.get(reverse("errors:list")).status_code == 200
    assert staff_client.get(reverse("errors:groups")).status_code == 200
    assert staff_client.get(reverse("errors:detail", args=[recent.pk])).status_code == 200
    assert staff_client.get(reverse("sync:mappings")).status_code == 200
    delete_old = reverse("errors:cleanup_confirm", args=["older_than"])
    assert staff_client.get(delete_old).status_code == 200
    # A clean-up below the threshold runs in the request and needs no worker.
    response = staff_client.post(delete_old, follow=True)
    assert response.redirect_chain == [(reverse("errors:list"), 302)]
    assert "Deleted 3 entries older than 7 days." in response.content.decode()
    assert list(SyncError.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not SyncError.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert SyncErrorCleanup.objects.get().state == SyncErrorCleanup.State.DONE

    start = reverse("sync:mapping_start", args=[mapping.pk])
    response = staff_client.post(start, {"kind": "full"}, follow=True)
    assert response.redirect_chain == [(reverse("sync:mappings"), 302)]
    assert NOT_STARTED in response.content.decode()
    job = SyncJob.objects.get()
    assert (job.status, job.message) == (SyncJob.Status.FAILED, NOT_STARTED)
    # A failed start does not block the next one.
    answer = token_client(staff_user).post(
        reverse("api:jobs"),
        {"mapping": mapping.pk, "kind": "modified"},
        content_type="application/json",
    )
    assert answer.status_code == 503
    assert NOT_STARTED in str(answer.json())


def test_a_frozen_redis_cannot_hold_the_request_that_starts_a_job(
    console_on_private_redis, staff_client
):
    mapping = make_mapping()
    # Still accepting connections, never answering (a frozen server, a dead network path):
    # without socket timeouts the publish would wait for ever.
    console_on_private_redis.freeze()
    answers = []

    def start_job():
        answers.append(
            staff_client.post(reverse("sync:mapping_start", args=[mapping.pk]), {"kind": "full"})
        )

    request = threading.Thread(target=start_job, daemon=True)
    request.start()
    request.join(timeout=60)  # far above the broker's timeouts, far below "for ever"
    assert not request.is_alive(), "starting a job waited on the frozen broker"
    [response] = answers
    assert [str(m) for m in get_messages(response.wsgi_request)] == [NOT_STARTED]
    assert SyncJob.objects.get().status == SyncJob.Status.FAILED


def every_second(name: str, task: str) -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    task, _ = PeriodicTask.objects.update_or_create(
        name=name, defaults={"task": task, "interval": interval, "crontab": None, "enabled": True}
    )
    return task


def test_worker_and_beat_resume_by_themselves_when_redis_is_back(
    demo_apps, private_redis, processes, workdir
):
    PeriodicTask.objects.update(enabled=False)
    every_second("Synchronize modified records", "sync.synchronize_modified_records")
    every_second("Delete expired sync errors", "errors.delete_expired_sync_errors")
    customers = demo_apps.mapping("CUSTOMER")
    queue = queue_name()
    env = env_on_test_db(CELERY_BROKER_URL=private_redis.url(), CELERY_QUEUE=queue)
    worker = processes.start("worker-broker", worker_command(queue, "--pool=solo"), env)
    beat = processes.start("beat-broker", beat_command(workdir), env)
    worker.wait_for_log("ready.")

    def log():
        return f"worker:\n{worker.log_text()[-4000:]}\nbeat:\n{beat.log_text()[-4000:]}"

    def scheduled_since(moment, runs: int):
        """At least `runs` scheduled syncs and clean-ups, each started after `moment`, done."""

        def check():
            jobs = SyncJob.objects.filter(
                mapping=customers,
                trigger=SyncJob.Trigger.SCHEDULE,
                created_at__gt=moment,
                status=SyncJob.Status.SUCCEEDED,
            )
            cleanups = SyncErrorCleanup.objects.filter(
                trigger=SyncErrorCleanup.Trigger.SCHEDULE,
                requested_at__gt=moment,
                state=SyncErrorCleanup.State.DONE,
            )
            return jobs.count() >= runs and cleanups.count() >= runs

        wait_until(check, timeout=90, interval=0.2, message=log())

    scheduled_since(timezone.now(), runs=1)

    private_redis.stop()
    beat.wait_for_log("Couldn't apply scheduled task", timeout=30)

    def idle():
        text = worker.log_text()
        return text.count("] received") == text.count("] succeeded in") + text.count("] raised")

    # What the worker was running when Redis went away ends first: whatever runs after Redis
    # is back was sent after it came back.
    wait_until(idle, timeout=60, message=log())
    old = make_error(age=timedelta(days=10))
    back = timezone.now()
    private_redis.start()  # same port, empty: what was queued before is gone

    # Twice each: the one message whose acknowledgement was lost may be handed out again
    # once, the rest can only come from beat.
    scheduled_since(back, runs=2)
    assert not SyncError.objects.filter(pk=old.pk).exists()
    assert worker.process.poll() is None and beat.process.poll() is None
