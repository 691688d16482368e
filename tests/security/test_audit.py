"""The audit log: every deletion, resolution and change of a setting writes exactly one
event, with the person who did it (or the system), and never a secret."""

import json
from datetime import timedelta

import pytest
from django import forms
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from audit.models import AuditEvent
from couplings import actions
from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors import services
from errors.models import AlertSubscription, ErrorGroup, Status, SyncError, SyncErrorCleanup
from sync import breaker
from sync import services as sync_services
from sync.models import Connection, SyncJob, TableMapping
from tests.factories import (
    make_connection,
    make_coupling,
    make_error,
    make_errors,
    make_job,
    make_mapping,
)
from triage.bulk import request_bulk_action

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action


def only_event(action: str, actor=None, label: str | None = None) -> AuditEvent:
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, [(e.action, e.summary) for e in events]
    event = events[0]
    assert event.action == action
    assert event.actor == actor
    assert event.actor_label == (label if label is not None else actor.get_username())
    return event


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def form_data(response) -> dict:
    """What the admin's change form would send back as it is shown."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.SplitDateTimeField):
            if value:
                moment = timezone.localtime(value)
                data[f"{name}_0"], data[f"{name}_1"] = f"{moment:%Y-%m-%d}", f"{moment:%H:%M:%S}"
        elif isinstance(field, forms.JSONField):
            data[name] = value if isinstance(value, str) else json.dumps(value)
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        elif value is not None:
            data[name] = value
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for inline in formset.formset.forms:
            for name in inline.fields:
                value = inline[name].value()
                if isinstance(value, bool):
                    if value:
                        data[inline.add_prefix(name)] = "on"
                elif value is not None:
                    data[inline.add_prefix(name)] = value
    return data


# -- entries and problems ------------------------------------------------------------------


def test_resolving_an_entry_in_the_console(staff_client, staff_user):
    entry = make_error()
    response = staff_client.post(
        reverse("errors:set_status", args=[entry.pk]), {"status": "resolved", "note": "fixed"}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action=Action.ENTRIES_RESOLVED)
    assert (event.actor, event.actor_label) == (staff_user, "triager")
    assert event.object_id == str(entry.pk) and event.details["count"] == 1
    assert "fixed" in event.summary
    # Its last open entry resolved, its problem is resolved too, by the same person.
    problem = AuditEvent.objects.get(action=Action.PROBLEM_RESOLVED)
    assert (problem.actor, problem.object_id) == (staff_user, str(entry.group_id))
    assert AuditEvent.objects.count() == 2


def test_an_unchanged_status_writes_nothing(staff_user):
    entry = make_error(status=Status.IGNORED)
    assert services.set_status(SyncError.objects.filter(pk=entry.pk), "ignored", staff_user) == 0
    assert not AuditEvent.objects.exists()


def test_ignoring_entries_in_the_django_admin_is_one_event(admin_client, superuser):
    entries = make_errors(3)
    response = admin_client.post(
        reverse("admin:errors_syncerror_changelist"),
        {"action": "mark_ignored", "_selected_action": [e.pk for e in entries]},
    )
    assert response.status_code == 302
    event = only_event(Action.ENTRIES_IGNORED, superuser)
    assert event.details["count"] == 3
    assert sorted(event.details["ids"]) == sorted(e.pk for e in entries)


def test_a_problem_is_one_event_not_one_per_entry(staff_client, staff_user):
    entries = make_errors(3, message="Customer 1 failed")
    group = ErrorGroup.objects.get(pk=entries[0].group_id)
    response = staff_client.post(
        reverse("errors:group_set_status", args=[group.pk]), {"status": "ignored", "note": "known"}
    )
    assert response.status_code == 302
    event = only_event(Action.PROBLEM_IGNORED, staff_user)
    assert (event.object_type, event.object_id) == ("problem", str(group.pk))
    assert event.details["entries"] == 3


def test_snoozing_and_reopening_a_problem(staff_user):
    group = ErrorGroup.objects.get(pk=make_error().group_id)
    services.set_group_status(group, Status.SNOOZED, staff_user, more_occurrences=5)
    event = only_event(Action.PROBLEM_SNOOZED, staff_user)
    assert "until 5 more occurrences" in event.summary
    AuditEvent.objects.all().delete()
    services.set_group_status(group, Status.OPEN, staff_user)
    only_event(Action.PROBLEM_REOPENED, staff_user)


def test_a_clean_up_by_a_person_and_by_the_schedule(staff_user):
    make_error(age=timedelta(days=9))
    services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.CONSOLE, user=staff_user)
    event = only_event(Action.ENTRIES_DELETED, staff_user)
    assert event.details["expected"] == 1 and "Older than 7 Days" in event.summary
    assert event.object_id == str(SyncErrorCleanup.objects.get().pk)

    AuditEvent.objects.all().delete()
    services.delete_expired_sync_errors()
    only_event(Action.ENTRIES_DELETED, None, "system (schedule)")


def test_expired_jobs_deleted_by_the_retention():
    mapping = make_mapping()
    old = timezone.now() - timedelta(days=60)
    for _ in range(2):
        SyncJob.objects.filter(pk=make_job(mapping).pk).update(created_at=old)
    make_job(mapping)
    sync_services.delete_expired_jobs()
    event = only_event(Action.JOBS_DELETED, None, "system (retention)")
    assert event.details["jobs"] == 2


def test_deleting_entries_in_the_django_admin(admin_client, superuser):
    entries = make_errors(2)
    response = admin_client.post(
        reverse("admin:errors_syncerror_changelist"),
        {"action": "delete_selected", "_selected_action": [e.pk for e in entries], "post": "yes"},
    )
    assert response.status_code == 302 and not SyncError.objects.exists()
    event = only_event(Action.ENTRIES_DELETED, superuser)
    assert event.details["count"] == 2


def test_a_bulk_action_is_one_event_linking_its_record(staff_user):
    entries = make_errors(4)
    bulk = request_bulk_action(
        action="resolve",
        user=staff_user,
        selected_ids=[e.pk for e in entries],
        setup_errors_included=True,
    )
    assert bulk.changed_count == 4
    event = only_event(Action.ENTRIES_RESOLVED, staff_user)
    assert (event.object_type, event.object_id) == ("bulk action", str(bulk.pk))


def test_removing_couplings_in_bulk_is_one_event(staff_user):
    mapping = make_mapping()
    entries = [make_error(mapping=mapping, coupling=make_coupling(mapping)) for _ in range(2)]
    request_bulk_action(
        action="remove_coupling",
        user=staff_user,
        selected_ids=[e.pk for e in entries],
        setup_errors_included=True,
    )
    assert not Coupling.objects.exists()
    only_event(Action.COUPLING_REMOVED, staff_user)


# -- couplings and records -----------------------------------------------------------------


def test_removing_a_coupling(sync_user):
    coupling = make_coupling(make_mapping())
    make_error(mapping=coupling.mapping, coupling=coupling)
    assert actions.remove_coupling(coupling, user=sync_user) == 1
    event = only_event(Action.COUPLING_REMOVED, sync_user)
    assert event.details["source_record_id"] == coupling.source_record_id
    assert event.details["resolved"] == 1


@pytest.mark.django_db
def test_deleting_the_remaining_record_is_one_event(demo_apps, sync_user):
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    coupling = Coupling.objects.get(source_record_id=str(customer.pk))
    CrmAccount.objects.filter(pk=coupling.destination_record_id).delete()
    Coupling.objects.filter(pk=coupling.pk).update(source_exists=True, destination_exists=False)
    coupling.refresh_from_db()
    AuditEvent.objects.all().delete()

    actions.delete_remaining_record(coupling, user=sync_user)
    assert not ErpCustomer.objects.filter(pk=customer.pk).exists()
    event = only_event(Action.RECORD_DELETED, sync_user)
    assert event.details["record_id"] == str(customer.pk)
    assert event.details["app"] == demo_apps.connection.source_app


# -- mappings, connections, settings -------------------------------------------------------


def test_pausing_is_the_system_and_resuming_the_person(staff_client, staff_user):
    mapping = make_mapping()
    breaker.pause(mapping, "The integration user lacks a role.", None)
    breaker.pause(mapping, "Still failing.", None)  # already paused: no second event
    event = only_event(Action.MAPPING_PAUSED, None, "system (circuit breaker)")
    assert event.object_id == str(mapping.pk)

    AuditEvent.objects.all().delete()
    response = staff_client.post(reverse("sync:mapping_resume", args=[mapping.pk]))
    assert response.status_code == 302
    only_event(Action.MAPPING_RESUMED, staff_user)

    AuditEvent.objects.all().delete()
    breaker.resume(mapping, "The setup check passed again.")
    only_event(Action.MAPPING_RESUMED, None, "system (setup check)")


def test_a_connection_change_in_the_admin_names_a_secret_but_never_holds_it(
    admin_client, superuser
):
    connection = make_connection(name="Production", source_secret="old-secret-1234")
    url = reverse("admin:sync_connection_change", args=[connection.pk])
    data = form_data(admin_client.get(url))
    assert admin_client.post(url, data).status_code == 302
    assert not AuditEvent.objects.exists()  # saved as it was: nothing changed

    data.update(name="Production EU", source_secret="new-secret-5678")
    assert admin_client.post(url, data).status_code == 302
    event = only_event(Action.CONNECTION_CHANGED, superuser)
    assert event.details["fields"]["source_secret"] == "changed"
    assert event.details["fields"]["name"] == {"from": "Production", "to": "Production EU"}
    assert "destination_secret" not in event.details["fields"]
    stored = json.dumps(event.details) + event.summary + event.object_label
    assert "new-secret-5678" not in stored and "old-secret-1234" not in stored
    assert Connection.objects.get().source_secret == "new-secret-5678"


def test_a_mapping_change_in_the_admin(admin_client, superuser):
    mapping = make_mapping(name="CUSTOMER")
    url = reverse("admin:sync_tablemapping_change", args=[mapping.pk])
    data = form_data(admin_client.get(url))
    data["source_filter"] = "city eq 'Oslo'"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = only_event(Action.MAPPING_CHANGED, superuser)
    assert event.details["fields"] == {"source_filter": {"from": "", "to": "city eq 'Oslo'"}}
    assert TableMapping.objects.get().source_filter == "city eq 'Oslo'"


def test_a_user_put_in_a_role_in_the_admin(admin_client, superuser, plain_user):
    from django.contrib.auth.models import Group

    url = reverse("admin:auth_user_change", args=[plain_user.pk])
    data = form_data(admin_client.get(url))
    data["groups"] = [str(Group.objects.get(name="Sync users").pk)]
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = only_event(Action.ADMIN_CHANGE, superuser)
    assert event.details["fields"]["groups"] == "changed"
    assert "password" not in event.details["fields"]
    assert event.object_label == "sales"


def test_alert_subscriptions_added_changed_and_removed(staff_client, staff_user):
    page = reverse("errors:alerts")
    data = {"new-new_problems": "on", "new-regressions": "on", "new-scope": ""}
    assert staff_client.post(page, data).status_code == 302
    event = only_event(Action.ALERTS_CHANGED, staff_user)
    assert event.summary == "Subscribed to alerts: new problems, regressions on every connection"

    subscription = AlertSubscription.objects.get()
    AuditEvent.objects.all().delete()
    prefix = f"s{subscription.pk}"
    change = reverse("errors:alert_change", args=[subscription.pk])
    assert staff_client.post(change, {f"{prefix}-setup_errors": "on"}).status_code == 302
    event = only_event(Action.ALERTS_CHANGED, staff_user)
    assert set(event.details["fields"]) == {"new_problems", "regressions", "setup_errors"}

    AuditEvent.objects.all().delete()
    delete = reverse("errors:alert_delete", args=[subscription.pk])
    assert staff_client.post(delete).status_code == 302
    only_event(Action.ALERTS_CHANGED, staff_user)


def test_api_tokens_created_and_revoked(admin_client, superuser, staff_user, capsys):
    call_command("create_api_token", "triager", "nightly export")
    key = capsys.readouterr().out.strip()
    event = only_event(Action.TOKEN_CREATED, None, "system (manage.py create_api_token)")
    assert key not in json.dumps(event.details) + event.summary + event.object_label

    AuditEvent.objects.all().delete()
    token = ApiToken.objects.get()
    url = reverse("admin:api_apitoken_change", args=[token.pk])
    data = form_data(admin_client.get(url))
    data["revoked_at_0"], data["revoked_at_1"] = timezone.now().strftime("%Y-%m-%d"), "10:00:00"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    only_event(Action.TOKEN_REVOKED, superuser)

    AuditEvent.objects.all().delete()
    response = admin_client.post(
        reverse("admin:api_apitoken_add"), {"name": "shop", "user": staff_user.pk}
    )
    assert response.status_code == 302
    only_event(Action.TOKEN_CREATED, superuser)


# -- the page and the admin ----------------------------------------------------------------


def test_the_audit_page_filters_and_pages(staff_client, staff_user, sync_user):
    for _ in range(3):
        services.set_status(SyncError.objects.filter(pk=make_error().pk), "resolved", sync_user)
    breaker.pause(make_mapping(name="ITEM"), "Setup failure.", None)
    page = staff_client.get(reverse("audit:events"))
    text = page.content.decode()
    assert page.status_code == 200
    assert text.count("Entries resolved") >= 3 and "Mapping ITEM paused" in text

    by_action = staff_client.get(reverse("audit:events"), {"action": "mapping_paused"})
    assert [e.action for e in by_action.context["page"].items] == [Action.MAPPING_PAUSED]
    by_user = staff_client.get(reverse("audit:events"), {"user": "fixer"})
    # Each entry resolved, and its problem with it.
    assert len(by_user.context["page"].items) == 6
    by_system = staff_client.get(reverse("audit:events"), {"user": "SYSTEM (circuit breaker)"})
    assert len(by_system.context["page"].items) == 1
    today = timezone.localdate()
    by_day = staff_client.get(reverse("audit:events"), {"since": today, "until": today})
    # Three entries of one problem, each resolved with the problem (2 events), the second
    # and third reopening it on arrival (1 each), and the pause.
    assert len(by_day.context["page"].items) == AuditEvent.objects.count() == 9
    earlier = staff_client.get(reverse("audit:events"), {"until": today - timedelta(days=1)})
    assert earlier.context["page"].items == []
    wrong = staff_client.get(reverse("audit:events"), {"since": "yesterday"})
    assert wrong.status_code == 400


def test_the_audit_page_pages_by_position(staff_client):
    AuditEvent.objects.bulk_create(
        AuditEvent(actor_label="system", action=Action.ADMIN_CHANGE, summary=f"change {n}")
        for n in range(60)
    )
    first = staff_client.get(reverse("audit:events")).context["page"]
    assert len(first.items) == 50 and first.has_older
    second = staff_client.get(reverse("audit:events"), {"before": first.older_cursor})
    rest = second.context["page"].items
    assert len(rest) == 10
    assert not {e.pk for e in rest} & {e.pk for e in first.items}


def test_the_admin_shows_the_log_read_only(admin_client, staff_user):
    services.set_status(SyncError.objects.filter(pk=make_error().pk), "resolved", staff_user)
    event = AuditEvent.objects.get(action=Action.ENTRIES_RESOLVED)
    assert admin_client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    change = reverse("admin:audit_auditevent_change", args=[event.pk])
    assert admin_client.get(change).status_code == 200
    assert admin_client.post(change, {"summary": "rewritten"}).status_code == 403
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).summary != "rewritten"


def test_the_api_lists_the_log_to_administrators(staff_user, sync_user):
    from tests.api.conftest import token_client

    services.set_status(SyncError.objects.filter(pk=make_error().pk), "ignored", sync_user)
    answer = token_client(staff_user).get(reverse("api:audit_events"), {"user": "fixer"})
    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert [(r["action"], r["actor_label"]) for r in rows] == [("entries_ignored", "fixer")]
    assert token_client(sync_user).get(reverse("api:audit_events")).status_code == 403


def test_administrators_read_the_log_in_the_admin_and_nobody_changes_it(client):
    from django.contrib.auth.models import Group

    from syncconsole.permissions import SYNC_ADMINISTRATORS
    from tests.conftest import user_in_role

    admin = user_in_role("boss", SYNC_ADMINISTRATORS, is_staff=True)
    codenames = {p.codename for p in Group.objects.get(name=SYNC_ADMINISTRATORS).permissions.all()}
    assert "view_auditevent" in codenames and "change_auditevent" not in codenames
    assert "delete_accessattempt" in codenames  # they unlock a locked sign-in
    client.force_login(admin)
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 200


@pytest.mark.django_db
def test_a_problem_that_comes_back_is_reopened_with_an_event():
    first = make_error(message="The phone number is too long.")
    ErrorGroup.objects.filter(pk=first.group_id).update(status="resolved")
    AuditEvent.objects.all().delete()
    make_error(message="The phone number is too long.")
    event = AuditEvent.objects.get(action=Action.PROBLEM_REOPENED)
    assert (event.actor, event.actor_label) == (None, "new entries")
    assert event.object_id == str(first.group_id)
