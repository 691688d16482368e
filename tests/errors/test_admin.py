from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from errors.models import Status, SyncError, SyncErrorCleanup
from tests.factories import make_coupling, make_error, make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def test_every_model_has_working_admin_pages(admin_client):
    job = make_job()
    coupling = make_coupling(job.mapping)
    error = make_error(job=job, mapping=job.mapping, coupling=coupling)
    cleanup = SyncErrorCleanup.objects.create(
        action="all", cutoff=error.created_at, trigger="admin"
    )
    objects = {
        "sync_connection": job.mapping.connection,
        "sync_tablemapping": job.mapping,
        "sync_syncjob": job,
        "couplings_coupling": coupling,
        "errors_syncerror": error,
        "errors_syncerrorcleanup": cleanup,
    }
    for name, obj in objects.items():
        assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
        assert admin_client.get(reverse(f"admin:{name}_change", args=[obj.pk])).status_code == 200


def test_error_changelist_shows_links_filters_and_cleanup_buttons(admin_client):
    job = make_job(failed=1)
    error = make_error(job=job, mapping=job.mapping, source_url="javascript:alert(1)")
    html = admin_client.get(reverse("admin:errors_syncerror_changelist")).content.decode()
    assert "Delete Entries Older than 7 Days" in html
    assert "Delete All Entries" in html
    assert f'href="{error.destination_url}"' in html
    assert 'href="javascript:' not in html
    filtered = admin_client.get(
        reverse("admin:errors_syncerror_changelist"), {"category__exact": "other", "q": "Sync"}
    )
    assert filtered.status_code == 200
    jobs_html = admin_client.get(reverse("admin:sync_syncjob_changelist")).content.decode()
    assert f"?job__id__exact={job.pk}" in jobs_html
    by_job = admin_client.get(
        reverse("admin:errors_syncerror_changelist"), {"job__id__exact": job.pk}
    )
    assert by_job.status_code == 200


def test_admin_cleanup_buttons_confirm_then_delete(admin_client, superuser):
    make_error(age=timedelta(days=8))
    keep = make_error(age=timedelta(days=1))
    url = reverse("admin:errors_syncerror_cleanup_older")
    page = admin_client.get(url).content.decode()
    assert "Are you sure that you want to delete the <strong>1</strong> entries" in page
    assert SyncError.objects.count() == 2
    admin_client.post(url)
    assert list(SyncError.objects.values_list("pk", flat=True)) == [keep.pk]
    cleanup = SyncErrorCleanup.objects.get()
    assert cleanup.trigger == SyncErrorCleanup.Trigger.ADMIN
    assert cleanup.requested_by == superuser

    admin_client.post(reverse("admin:errors_syncerror_cleanup_all"))
    assert SyncError.objects.count() == 0


def test_admin_status_actions(admin_client, superuser):
    errors = [make_error(), make_error()]
    admin_client.post(
        reverse("admin:errors_syncerror_changelist"),
        {"action": "mark_resolved", "_selected_action": [e.pk for e in errors]},
    )
    assert set(SyncError.objects.values_list("status", flat=True)) == {Status.RESOLVED}
    assert set(SyncError.objects.values_list("status_changed_by", flat=True)) == {superuser.pk}


def test_staff_without_permissions_cannot_use_the_admin_cleanup(client):
    make_error(age=timedelta(days=8))
    client.force_login(
        get_user_model().objects.create_user("clerk", "clerk@example.com", "pw", is_staff=True)
    )
    client.post(reverse("admin:errors_syncerror_cleanup_all"))
    assert SyncError.objects.count() == 1


def test_the_entry_form_leaves_the_status_to_the_actions(admin_client):
    error = make_error()
    page = admin_client.get(reverse("admin:errors_syncerror_change", args=[error.pk]))
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()  # shown, not editable


def test_deleting_a_coupling_in_the_admin_resolves_its_entries_with_an_event(
    admin_client, superuser
):
    from audit.models import AuditEvent

    coupling = make_coupling(make_job().mapping)
    error = make_error(mapping=coupling.mapping, coupling=coupling)
    changelist = reverse("admin:couplings_coupling_changelist")
    answer = admin_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [coupling.pk], "post": "yes"},
    )
    assert answer.status_code == 302
    error.refresh_from_db()
    assert (error.status, error.status_changed_by) == (Status.RESOLVED, superuser)
    event = AuditEvent.objects.get(action=AuditEvent.Action.COUPLING_REMOVED)
    assert (event.actor, event.details["resolved"]) == (superuser, 1)


def test_a_coupling_changes_in_the_admin_only_through_the_coupling_actions(
    admin_client, superuser, celery_queue
):
    from sync.models import SyncJob

    coupling = make_coupling(make_job().mapping, is_skipped=True)
    change = reverse("admin:couplings_coupling_change", args=[coupling.pk])
    admin_client.post(change, {"source_record_id": "other", "is_skipped": ""})
    coupling.refresh_from_db()
    assert (coupling.source_record_id, coupling.is_skipped) != ("other", False)
    assert admin_client.get(reverse("admin:couplings_coupling_add")).status_code == 403

    answer = admin_client.post(
        reverse("admin:couplings_coupling_changelist"),
        {"action": "retry", "_selected_action": [coupling.pk]},
        follow=True,
    )
    job = SyncJob.objects.get(kind=SyncJob.Kind.COUPLED, trigger=SyncJob.Trigger.RETRY)
    assert f"queued as job #{job.pk}" in answer.content.decode()
    assert (job.coupling_ids, job.requested_by) == ([coupling.pk], superuser)
    coupling.refresh_from_db()
    assert not coupling.is_skipped
