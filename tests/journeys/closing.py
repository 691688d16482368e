"""What every journey checks at its end: the entry and its problem closed by themselves,
naming the job that closed them, with the audit event the engine wrote."""

from django.urls import reverse

from audit.models import AuditEvent
from errors.models import BulkAction, ErrorGroup, Status, SyncError
from sync import engine
from sync.models import SyncJob
from sync.tasks import run_sync_job
from triage.bulk import run_bulk_action


def run_queued_jobs() -> list[SyncJob]:
    """What the worker does with the jobs the console queued."""
    queued = SyncJob.objects.filter(status=SyncJob.Status.QUEUED).order_by("pk")
    return [engine.run_job(pk) for pk in queued.values_list("pk", flat=True)]


def act_on_the_problem(client, action: str, group_id: int) -> None:
    """A bulk action on every entry of the problem, as the list's "all matching" does: the
    count is shown, confirmed, and the worker does the action."""
    fields = {"action": action, "scope": "filter", "filter_query": f"group={group_id}"}
    page = client.post(reverse("errors:bulk"), fields).content.decode()
    token = page.split('name="confirmation" value="')[1].split('"')[0]
    client.post(reverse("errors:bulk"), {**fields, "confirmation": token})
    run_bulk_action(BulkAction.objects.latest("pk").pk)  # what the worker does


def assert_closed_by(entry: SyncError, job: SyncJob) -> None:
    """A record's entry closes when the record synchronizes in `job`; a whole job's entry (a
    setup failure) when `job` of its mapping gets past the point where it failed."""
    entry.refresh_from_db()
    assert entry.status == Status.RESOLVED, (entry.status, entry.status_note)
    assert entry.status_note == (
        f"Resolved by itself: the record synchronized in job #{job.pk}."
        if entry.source_record_id
        else f"Resolved by itself: job #{job.pk} of the mapping got past this point."
    )
    assert entry.status_changed_by is None
    assert ErrorGroup.objects.get(pk=entry.group_id).status == Status.RESOLVED
    event = AuditEvent.objects.filter(
        action=AuditEvent.Action.ENTRIES_RESOLVED, actor_label=f"sync engine (job #{job.pk})"
    ).latest("pk")
    assert entry.pk in event.details["ids"]


def assert_resolved_by_person(entry: SyncError, user, action: str) -> AuditEvent:
    """Closed by what a person did (a coupling removed, a record deleted): the entry says who,
    and the person's audit event is written."""
    entry.refresh_from_db()
    assert entry.status == Status.RESOLVED, (entry.status, entry.status_note)
    assert entry.status_changed_by == user
    assert user.get_username() in entry.status_note
    return AuditEvent.objects.filter(action=action, actor=user).latest("pk")


def work_off_the_queue() -> list[SyncJob]:
    """What the worker does: each queued job, one after another, with what follows it."""
    done = []
    while job := SyncJob.objects.filter(status=SyncJob.Status.QUEUED).order_by("pk").first():
        run_sync_job.apply(args=[job.pk])
        job.refresh_from_db()
        done.append(job)
    return done
