"""Snoozing a problem: until a date or until N more occurrences, then it reopens by itself
with its entries."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from errors import services
from errors.grouping import SNOOZE_ENDED_NOTE
from errors.models import Category, ErrorGroup, Status, SyncError
from tests.conftest import wait_until
from tests.factories import make_error, make_mapping

pytestmark = pytest.mark.django_db

MESSAGE = "The currency NOK does not have an exchange rate."


def problem(n: int = 3) -> ErrorGroup:
    mapping = make_mapping()
    for _ in range(n):
        make_error(mapping=mapping, category=Category.CURRENCY, message=MESSAGE)
    return ErrorGroup.objects.get(mapping=mapping)


def again(group: ErrorGroup) -> SyncError:
    return make_error(mapping=group.mapping, category=Category.CURRENCY, message=MESSAGE)


def snooze(client, group, **fields):
    return client.post(
        reverse("errors:group_set_status", args=[group.pk]), {"status": "snoozed", **fields}
    )


def test_snooze_until_more_occurrences_reopens_on_the_last_one(staff_client, staff_user):
    group = problem()
    resolved = SyncError.objects.filter(group=group).first()
    services.set_status(SyncError.objects.filter(pk=resolved.pk), "resolved", staff_user)

    response = snooze(staff_client, group, more_occurrences="2", note="Finance adds NOK")
    assert response.status_code == 302
    page = staff_client.get(response["Location"]).content.decode()
    assert "The problem is now snoozed until 2 more occurrences, with 2 entries." in page
    assert "until 2 more occurrences" in page
    group.refresh_from_db()
    assert (group.status, group.snooze_until_count, group.status_changed_by) == (
        "snoozed",
        5,
        staff_user,
    )
    statuses = dict(SyncError.objects.filter(group=group).values_list("pk", "status"))
    assert statuses.pop(resolved.pk) == "resolved"
    assert set(statuses.values()) == {"snoozed"}

    first = again(group)
    group.refresh_from_db()
    assert (first.status, group.status, group.count) == ("snoozed", "snoozed", 4)
    assert "1 more to go" in staff_client.get(reverse("errors:groups")).content.decode()

    second = again(group)
    group.refresh_from_db()
    assert (second.status, group.status) == ("open", "open")
    assert (group.status_note, group.status_changed_by, group.snooze_until_count) == (
        SNOOZE_ENDED_NOTE,
        None,
        None,
    )
    assert SyncError.objects.get(pk=resolved.pk).status == "resolved"
    reopened = SyncError.objects.filter(group=group).exclude(pk__in=[resolved.pk, second.pk])
    assert {(e.status, e.status_note) for e in reopened} == {("open", SNOOZE_ENDED_NOTE)}


def test_snooze_until_a_date_ends_when_the_date_passes(staff_client):
    group = problem()
    before = timezone.now()
    snooze(staff_client, group, snooze_for="1d")
    group.refresh_from_db()
    assert group.status == "snoozed"
    assert timedelta(hours=23) < group.snoozed_until - before <= timedelta(days=1, minutes=1)

    # New occurrences before the date stay snoozed.
    assert again(group).status == "snoozed"
    assert services.wake_snoozed() == 0
    assert services.wake_snoozed(now=group.snoozed_until + timedelta(seconds=1)) == 1
    group.refresh_from_db()
    assert (group.status, group.snoozed_until) == ("open", None)
    assert not SyncError.objects.filter(group=group, status="snoozed").exists()


def test_an_occurrence_after_the_date_wakes_the_problem_at_once(staff_client):
    group = problem()
    snooze(
        staff_client,
        group,
        snooze_until=(timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
    )
    ErrorGroup.objects.filter(pk=group.pk).update(
        snoozed_until=timezone.now() - timedelta(minutes=1)
    )
    assert again(group).status == "open"
    group.refresh_from_db()
    assert group.status == "open"
    assert not SyncError.objects.filter(group=group, status="snoozed").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "choose exactly one"),
        ({"snooze_for": "1h", "more_occurrences": "3"}, "choose exactly one"),
        ({"snooze_until": "2001-01-01T10:00"}, "must end in the future"),
        ({"snooze_until": "3000-01-01T10:00"}, "at most a year"),
        ({"snooze_until": "tomorrow"}, "Enter a valid date/time"),
        ({"more_occurrences": "0"}, "greater than or equal to 1"),
        ({"more_occurrences": "many"}, "Enter a whole number"),
        ({"snooze_for": "forever"}, "Select a valid choice"),
    ],
)
def test_a_bad_snooze_is_refused_with_a_message(staff_client, fields, message):
    group = problem()
    response = snooze(staff_client, group, **fields)
    page = staff_client.get(response["Location"]).content.decode()
    assert message in page
    group.refresh_from_db()
    assert group.status == "open"
    assert not SyncError.objects.filter(group=group).exclude(status="open").exists()


def test_an_entry_of_a_snoozed_problem_resolves_itself_when_its_record_synchronizes():
    group = problem(1)
    entry = SyncError.objects.get(group=group)
    SyncError.objects.filter(pk=entry.pk).update(coupling=None)
    services.set_group_status(group, Status.SNOOZED, None, more_occurrences=5)
    from tests.factories import make_coupling

    coupling = make_coupling(group.mapping)
    SyncError.objects.filter(pk=entry.pk).update(coupling=coupling)
    assert services.resolve_synchronized([coupling.pk], None, job_id=1) == 1
    entry.refresh_from_db()
    assert entry.status == "resolved"


def test_single_entries_are_not_snoozed(staff_client):
    entry = make_error()
    staff_client.post(reverse("errors:set_status", args=[entry.pk]), {"status": "snoozed"})
    entry.refresh_from_db()
    assert entry.status == "open"


def test_a_migration_schedules_the_wake_up_every_five_minutes():
    schedule = PeriodicTask.objects.get(name="Wake snoozed problems")
    assert (schedule.task, schedule.enabled) == ("errors.wake_snoozed_problems", True)
    assert (schedule.interval.every, schedule.interval.period) == (5, "minutes")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_wakes_problems_whose_snooze_date_passed(celery_worker):
    from errors.tasks import wake_snoozed_problems

    group = problem()
    services.set_group_status(
        group, Status.SNOOZED, None, snoozed_until=timezone.now() + timedelta(hours=1)
    )
    ErrorGroup.objects.filter(pk=group.pk).update(snoozed_until=timezone.now())
    wake_snoozed_problems.delay()

    def awake():
        group.refresh_from_db()
        return group.status == "open"

    wait_until(awake, timeout=60, message=celery_worker.log_path.read_text())
    assert not SyncError.objects.filter(group=group, status="snoozed").exists()
