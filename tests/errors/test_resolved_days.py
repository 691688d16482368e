"""The entries resolved per problem and day (GroupDay.resolved) are kept by the entries'
triggers on the day of the resolution, whichever way the entries were resolved, and never by
reading the entries."""

from datetime import timedelta
from importlib import import_module

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from errors import partitions, services
from errors.models import ErrorGroup, GroupDay, Status, SyncError
from tests.factories import make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db

PHONE = "Phone No. must not exceed 30 characters."


def resolved_per_day() -> dict:
    return {(row.group_id, row.day): row.resolved for row in GroupDay.objects.all() if row.resolved}


def counted() -> dict:
    """The entries resolved now, by problem and the day of their resolution: the slow way."""
    found: dict = {}
    for entry in SyncError.objects.filter(status=Status.RESOLVED).exclude(group=None):
        key = (entry.group_id, timezone.localtime(entry.status_changed_at).date())
        found[key] = found.get(key, 0) + 1
    return found


def test_entries_count_on_the_day_they_are_resolved_not_the_day_they_came(staff_user, midday):
    mapping = make_mapping()
    entries = [make_error(mapping=mapping, message=PHONE, age=timedelta(days=3)) for _ in range(3)]
    group_id = entries[0].group_id
    two_days_ago = midday - timedelta(days=2)
    with time_machine.travel(two_days_ago, tick=False):
        services.set_status(SyncError.objects.filter(pk=entries[0].pk), Status.RESOLVED, staff_user)
    services.set_status(
        SyncError.objects.filter(pk__in=[e.pk for e in entries[1:]]), Status.RESOLVED, staff_user
    )
    assert resolved_per_day() == {
        (group_id, two_days_ago.date()): 1,
        (group_id, midday.date()): 2,
    }
    # The entries still came three days ago.
    came = GroupDay.objects.get(group_id=group_id, day=(midday - timedelta(days=3)).date())
    assert (came.entries, came.open, came.resolved) == (3, 0, 0)
    assert resolved_per_day() == counted()


def test_a_reopened_entry_leaves_its_day_and_ignoring_counts_nowhere(staff_user, midday):
    entries = [make_error(message=PHONE) for _ in range(3)]
    services.set_status(SyncError.objects.filter(pk__in=[e.pk for e in entries]), "resolved", None)
    services.set_status(SyncError.objects.filter(pk=entries[0].pk), Status.OPEN, staff_user)
    services.set_status(SyncError.objects.filter(pk=entries[1].pk), Status.IGNORED, staff_user)
    assert resolved_per_day() == {(entries[0].group_id, midday.date()): 1}
    assert resolved_per_day() == counted()


def test_a_problem_resolved_whole_and_entries_resolved_by_themselves_count(staff_user, midday):
    mapping = make_mapping()
    phones = [make_error(mapping=mapping, message=PHONE) for _ in range(4)]
    group = ErrorGroup.objects.get(pk=phones[0].group_id)
    services.set_group_status(group, Status.RESOLVED, staff_user)
    # The engine resolves entries whose whole job failed once a later job gets past it.
    setup = make_error(
        mapping=mapping,
        job=make_job(mapping),
        category="permission",
        message="No privilege.",
        source_record_id="",
        destination_record_id="",
    )
    later = make_job(mapping)
    services.resolve_passed_setup(mapping.pk, job_id=later.pk, every_direction=True)
    assert resolved_per_day() == {
        (group.pk, midday.date()): 4,
        (setup.group_id, midday.date()): 1,
    }
    assert resolved_per_day() == counted()


def test_an_entry_written_resolved_counts_on_the_day_it_was_resolved(midday):
    yesterday = midday - timedelta(days=1)
    entry = make_error(
        message=PHONE,
        age=timedelta(days=2),
        status=Status.RESOLVED,
        status_changed_at=yesterday,
    )
    make_error(message=PHONE, status=Status.RESOLVED)  # no time it was resolved: nowhere
    assert resolved_per_day() == {(entry.group_id, yesterday.date()): 1}


def test_resolved_entries_moved_to_another_problem_move_their_figure(staff_user, midday):
    entry = make_error(message=PHONE)
    other = make_error(message="Something else entirely.")
    services.set_status(SyncError.objects.filter(pk=entry.pk), Status.RESOLVED, staff_user)
    SyncError.objects.filter(pk=entry.pk).update(group_id=other.group_id)
    assert resolved_per_day() == {(other.group_id, midday.date()): 1}


def test_deleting_entries_leaves_the_resolutions_until_their_day_is_dropped(staff_user, midday):
    entries = [make_error(message=PHONE, age=timedelta(days=2)) for _ in range(2)]
    group_id = entries[0].group_id
    yesterday = midday - timedelta(days=1)
    with time_machine.travel(yesterday, tick=False):
        services.set_status(SyncError.objects.filter(pk=entries[0].pk), "resolved", staff_user)
    services.set_status(SyncError.objects.filter(pk=entries[1].pk), Status.RESOLVED, staff_user)
    SyncError.objects.filter(pk=entries[1].pk).delete()
    assert resolved_per_day() == {(group_id, yesterday.date()): 1, (group_id, midday.date()): 1}
    # A clean-up that drops yesterday takes yesterday's figures with it.
    partitions.drop_day(yesterday.date())
    assert resolved_per_day() == {(group_id, midday.date()): 1}


def test_the_migration_fills_in_what_the_triggers_keep(staff_user, midday):
    entries = [make_error(message=PHONE, age=timedelta(days=i)) for i in range(4)]
    with time_machine.travel(midday - timedelta(days=1), tick=False):
        services.set_status(SyncError.objects.filter(pk=entries[0].pk), "resolved", staff_user)
    services.set_status(
        SyncError.objects.filter(pk__in=[e.pk for e in entries[1:3]]), "resolved", staff_user
    )
    kept = resolved_per_day()
    GroupDay.objects.update(resolved=0)
    fill = import_module("errors.migrations.0022_resolved_per_day").FILL
    with connection.cursor() as cursor:
        cursor.execute(fill)
    assert resolved_per_day() == kept == counted()
