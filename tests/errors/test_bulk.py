"""Bulk actions: on a selection or on all entries that match the filters, after the exact count
was shown; the scope never widens; large and app-calling actions run in a real worker."""

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import BulkAction, Category, SyncError
from sync.models import SyncJob
from tests.conftest import wait_until
from tests.errors.test_fixes import conflict, deleted_in_crm
from tests.factories import make_error, make_mapping
from triage.bulk import PREVIEW_SALT

pytestmark = pytest.mark.django_db

BULK = "/errors/bulk/"


def bulk(client, action, scope, follow=False, **fields):
    return client.post(BULK, {"action": action, "scope": scope, **fields}, follow=follow)


def statuses(*entries) -> list[str]:
    return [SyncError.objects.get(pk=e.pk).status for e in entries]


def test_the_list_offers_a_selection_and_all_matching(staff_client):
    make_error(category=Category.CONFLICT)
    page = staff_client.get(reverse("errors:list"), {"category": "conflict"}).content.decode()
    assert 'name="ids"' in page and 'value="category=conflict"' in page
    assert "Apply to selected" in page and "Apply to all matching entries" in page
    assert "Synchronize to the destination" in page and "Remove coupling" in page


def test_a_small_selection_is_resolved_at_once_with_an_audit_record(staff_client, staff_user):
    first, second, third = (make_error(category=Category.CONFLICT) for _ in range(3))
    response = bulk(
        staff_client,
        "resolve",
        "selection",
        follow=True,
        ids=[first.pk, second.pk],
        note="Fixed in both apps",
    )
    assert "Mark resolved: 2 of 2 entries are now resolved." in response.content.decode()
    assert statuses(first, second, third) == ["resolved", "resolved", "open"]
    assert SyncError.objects.get(pk=first.pk).status_note == "Fixed in both apps"
    audit = BulkAction.objects.get()
    assert (
        audit.requested_by,
        audit.scope,
        audit.state,
        audit.expected_count,
        audit.changed_count,
        audit.selected_ids,
    ) == (staff_user, "selection", "done", 2, 2, sorted([first.pk, second.pk]))


def test_a_selection_never_reaches_past_the_filters(staff_client):
    shown = make_error(category=Category.CONFLICT)
    other = make_error(category=Category.VALIDATION)
    response = bulk(
        staff_client,
        "ignore",
        "selection",
        follow=True,
        ids=[shown.pk, other.pk],
        filter_query="category=conflict",
    )
    assert "1 of 1 entries are now ignored." in response.content.decode()
    assert statuses(shown, other) == ["ignored", "open"]
    assert BulkAction.objects.get().expected_count == 1


def test_sync_users_cannot_act_on_setup_errors_in_bulk(sync_user_client):
    setup = make_error(category=Category.AUTHENTICATION)
    response = bulk(sync_user_client, "resolve", "selection", follow=True, ids=[setup.pk])
    assert "No entry matches any more; nothing was changed." in response.content.decode()
    preview = bulk(sync_user_client, "resolve", "filter", follow=True)
    assert "No entry matches the filters." in preview.content.decode()
    assert statuses(setup) == ["open"]


def test_all_matching_shows_the_exact_count_first_and_changes_nothing(staff_client):
    mapping = make_mapping()
    entries = [make_error(mapping=mapping, category=Category.CONFLICT) for _ in range(7)]
    make_error(category=Category.CONFLICT)  # another mapping
    response = bulk(staff_client, "resolve", "filter", filter_query=f"mapping={mapping.pk}")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Mark resolved: 7 entries" in page and f"<code>mapping</code> = {mapping.pk}" in page
    assert set(statuses(*entries)) == {"open"}
    assert not BulkAction.objects.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_all_matching_runs_in_the_worker_and_leaves_out_later_entries(
    staff_client, celery_worker, settings
):
    settings.SYNC_BULK_BATCH_SIZE = 3
    mapping = make_mapping()
    entries = [make_error(mapping=mapping, category=Category.CONFLICT) for _ in range(7)]
    query = f"mapping={mapping.pk}&status=open"
    page = bulk(staff_client, "ignore", "filter", filter_query=query).content.decode()
    token = page.split('name="confirmation" value="')[1].split('"')[0]
    later = make_error(mapping=mapping, category=Category.CONFLICT)  # after the count

    response = bulk(
        staff_client,
        "ignore",
        "filter",
        filter_query=query,
        confirmation=token,
        note="Known; fixed next release",
    )
    audit = BulkAction.objects.get()
    assert response["Location"] == audit.get_absolute_url()
    progress_url = reverse("errors:bulk_progress", args=[audit.pk]) + "?format=json"

    def finished():
        return staff_client.get(progress_url).json()["finished"]

    wait_until(finished, timeout=60, message=celery_worker.log_path.read_text())
    state = staff_client.get(progress_url).json()
    assert (state["state"], state["processed_count"], state["progress_percent"]) == ("done", 7, 100)
    assert "7 of 7 entries are now ignored." in state["outcome"]
    assert set(statuses(*entries)) == {"ignored"} and statuses(later) == ["open"]
    page = staff_client.get(audit.get_absolute_url()).content.decode()
    assert "Known; fixed next release" in page and "7 of 7 entries are now ignored." in page


def test_a_tampered_or_foreign_confirmation_is_refused(staff_client):
    from django.core import signing

    entry = make_error(category=Category.CONFLICT)
    forged = signing.dumps(["resolve", "", 1, 10**9, True], salt="another salt")
    response = bulk(staff_client, "resolve", "filter", follow=True, confirmation=forged)
    assert "The confirmation is not valid" in response.content.decode()
    real = signing.dumps(["ignore", "", 1, entry.pk, True], salt=PREVIEW_SALT)
    response = bulk(staff_client, "resolve", "filter", follow=True, confirmation=real)
    assert "The confirmation is for another action" in response.content.decode()
    assert statuses(entry) == ["open"] and not BulkAction.objects.exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "resolve", "scope": "selection"}, "Select at least one entry."),
        ({"action": "resolve", "scope": "selection", "ids": ["x"]}, "The selection is not valid."),
        ({"action": "resolve", "scope": "selection", "ids": ["-4"]}, "The selection is not valid."),
        (
            {"action": "resolve", "scope": "selection", "ids": [str(n) for n in range(1, 502)]},
            "Select at most 500 entries",
        ),
        ({"action": "explode", "scope": "selection", "ids": ["1"]}, "Choose an action."),
        ({"action": "resolve", "scope": "everything"}, "Choose the selected entries or all"),
        (
            {"action": "resolve", "scope": "filter", "filter_query": "status=nonsense"},
            "The filters are not valid",
        ),
        (
            {"action": "resolve", "scope": "selection", "ids": ["1"], "note": "n" * 501},
            "at most 500 characters",
        ),
    ],
)
def test_bad_input_is_refused_with_a_message_and_changes_nothing(staff_client, fields, message):
    entry = make_error()
    response = staff_client.post(BULK, fields, follow=True)
    assert message in response.content.decode()
    assert statuses(entry) == ["open"] and not BulkAction.objects.exists()


def test_bulk_posts_only(staff_client):
    assert staff_client.get(BULK).status_code == 405


def run_bulk_in_worker(client, worker, action, **fields) -> BulkAction:
    response = bulk(client, action, fields.pop("scope", "selection"), **fields)
    audit = BulkAction.objects.latest("pk")
    assert response["Location"] == audit.get_absolute_url(), response.content.decode()[:2000]

    def finished():
        audit.refresh_from_db()
        return audit.is_finished

    wait_until(finished, timeout=60, message=worker.log_path.read_text())
    return audit


def wait_for_jobs(audit: BulkAction, worker) -> list[SyncJob]:
    jobs = list(SyncJob.objects.filter(pk__in=audit.job_ids))

    def done():
        for job in jobs:
            job.refresh_from_db()
        return all(job.is_finished for job in jobs)

    wait_until(done, timeout=60, message=worker.log_path.read_text())
    return jobs


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_synchronize_all_matching_conflicts_from_the_crm(demo_apps, staff_client, celery_worker):
    entry = conflict(demo_apps)
    page = bulk(
        staff_client, "from_destination", "filter", filter_query="category=conflict"
    ).content.decode()
    assert "Synchronize from the destination: 1 entry" in page
    token = page.split('name="confirmation" value="')[1].split('"')[0]
    audit = run_bulk_in_worker(
        staff_client,
        celery_worker,
        "from_destination",
        scope="filter",
        filter_query="category=conflict",
        confirmation=token,
    )
    assert audit.state == "done" and len(audit.job_ids) == 1, audit.outcome
    (job,) = wait_for_jobs(audit, celery_worker)
    assert (job.status, job.direction, job.overwrite, job.modified) == (
        "succeeded",
        "from_destination",
        True,
        1,
    )
    assert ErpCustomer.objects.get(number="C00030").city == "Bergen"
    assert statuses(entry) == ["resolved"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_restore_a_selection_recreates_the_deleted_records(demo_apps, staff_client, celery_worker):
    entry = deleted_in_crm(demo_apps)
    Coupling.objects.filter(pk=entry.coupling_id).update(existence_checked_at=None)
    audit = run_bulk_in_worker(staff_client, celery_worker, "restore", ids=[entry.pk])
    assert audit.state == "done" and audit.job_ids, audit.outcome
    (job,) = wait_for_jobs(audit, celery_worker)
    assert (job.status, job.inserted) == ("succeeded", 1)
    coupling = Coupling.objects.get(pk=entry.coupling_id)
    assert CrmAccount.objects.get(pk=coupling.destination_record_id).account_number == "C00030"
    assert statuses(entry) == ["resolved"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_delete_remaining_records_of_a_selection(demo_apps, staff_client, celery_worker):
    entry = deleted_in_crm(demo_apps)
    audit = run_bulk_in_worker(staff_client, celery_worker, "delete_record", ids=[entry.pk])
    assert (audit.state, audit.changed_count, audit.failed_count) == ("done", 1, 0), audit.outcome
    assert not ErpCustomer.objects.filter(number="C00030").exists()
    assert statuses(entry) == ["resolved"]


@pytest.mark.django_db
def test_remove_coupling_of_a_selection_at_once(demo_apps, staff_client):
    entry = conflict(demo_apps)
    uncoupled = make_error(mapping=entry.mapping, category=Category.CONFLICT)
    response = bulk(
        staff_client, "remove_coupling", "selection", follow=True, ids=[entry.pk, uncoupled.pk]
    )
    page = response.content.decode()
    assert "Removed 1 coupling." in page and "1 entries have no coupling" in page
    assert not Coupling.objects.filter(pk=entry.coupling_id).exists()
    assert statuses(entry, uncoupled) == ["resolved", "open"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_retry_a_selection_queues_one_retry_job_per_mapping(demo_apps, staff_client, celery_worker):
    entry = conflict(demo_apps)
    audit = run_bulk_in_worker(staff_client, celery_worker, "retry", ids=[entry.pk])
    (job,) = wait_for_jobs(audit, celery_worker)
    assert (job.trigger, job.kind, job.coupling_ids) == ("retry", "coupled", [entry.coupling_id])
    assert f"Queued job #{job.pk} for 1 record of CUSTOMER." in audit.outcome


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_retry_all_of_a_problem_writes_the_records_and_the_problem_resolves(
    demo_apps, staff_client, celery_worker
):
    from demo.models import CrmTransactionCurrency
    from errors.models import ErrorGroup
    from tests.errors.test_fixes import missing_exchange_rate

    entries = missing_exchange_rate(demo_apps)
    group = ErrorGroup.objects.get(pk=entries[0].group_id)
    CrmTransactionCurrency.objects.filter(iso_currency_code="DKK").update(exchange_rate="7.46")
    query = f"group={group.pk}"
    page = bulk(staff_client, "retry", "filter", filter_query=query).content.decode()
    assert f"Retry: {len(entries)} entr" in page
    token = page.split('name="confirmation" value="')[1].split('"')[0]
    audit = run_bulk_in_worker(
        staff_client, celery_worker, "retry", scope="filter", filter_query=query, confirmation=token
    )
    (job,) = wait_for_jobs(audit, celery_worker)
    assert (job.status, job.inserted, job.failed) == ("succeeded", len(entries), 0)
    assert set(statuses(*entries)) == {"resolved"}
    group.refresh_from_db()
    assert group.status == "resolved"
    assert group.status_note == (
        f"Resolved by itself: every record behind it synchronized since (job #{job.pk})."
    )


def test_the_progress_page_follows_the_jobs_it_queued_and_what_they_resolved(
    demo_apps, staff_client
):
    from sync import engine
    from sync.services import create_job

    fixed = conflict(demo_apps)
    # Another record that fails again: its phone number is too long for the ERP.
    broken = Coupling.objects.get(source_record_id=str(ErpCustomer.objects.get(number="C00050").pk))
    CrmAccount.objects.filter(pk=broken.destination_record_id).update(
        telephone="+45 3333 4444 ext. 5555 (reception)"
    )
    still_broken = make_error(mapping=fixed.mapping, coupling=broken, category=Category.VALIDATION)
    mapping = fixed.mapping
    job = create_job(
        mapping,
        kind=SyncJob.Kind.COUPLED,
        trigger=SyncJob.Trigger.RETRY,
        coupling_ids=[fixed.coupling_id, broken.pk],
        direction="from_destination",
        overwrite=True,
    )
    action = BulkAction.objects.create(
        action=BulkAction.Action.FROM_DESTINATION,
        scope=BulkAction.Scope.SELECTION,
        # Its entries were open when it was asked for; they need not be any more.
        filter_query=f"status=open&mapping={mapping.pk}",
        selected_ids=[fixed.pk, still_broken.pk],
        upper_bound_id=max(fixed.pk, still_broken.pk),
        expected_count=2,
        processed_count=2,
        changed_count=2,
        state=BulkAction.State.DONE,
        job_ids=[job.pk],
        outcome=f"Queued job #{job.pk} for 2 records of CUSTOMER.",
    )
    url = reverse("errors:bulk_progress", args=[action.pk])

    waiting = staff_client.get(url, {"format": "json"}).json()
    assert (waiting["finished"], waiting["jobs_finished"], waiting["following"]) == (
        True,
        False,
        True,
    )
    assert waiting["jobs"][0]["outcome_display"] == "Queued"
    assert waiting["resolved_since"] == 0
    page = staff_client.get(url).content.decode()
    assert "The jobs are not finished yet: this page follows them." in page
    assert f'<a href="{job.get_absolute_url()}">Job #{job.pk}</a>' in page

    engine.run_job(job.pk)

    done = staff_client.get(url, {"format": "json"}).json()
    assert (done["jobs_finished"], done["following"], done["resolved_since"]) == (True, False, 1)
    assert done["jobs"] == [
        {
            "id": job.pk,
            "url": job.get_absolute_url(),
            "mapping": "CUSTOMER",
            "outcome": "completed_with_failures",
            "outcome_display": "Completed with 1 failure",
            "finished": True,
            "records_read": 2,
            "written": 1,
            "failed": 1,
            "errors_url": f"{reverse('errors:list')}?job={job.pk}",
        }
    ]
    page = staff_client.get(url).content.decode()
    assert "Completed with 1 failure" in page
    assert f'<a class="failed" href="/errors/?job={job.pk}">1</a>' in page
    assert '<strong id="bulk-resolved-count">1</strong> of the 2 entries have been resolved' in page
    # Nothing left to follow: the note is hidden and the page no longer polls.
    assert '<p id="bulk-jobs-running" class="muted" hidden>' in page
    assert "setTimeout(poll" not in page
