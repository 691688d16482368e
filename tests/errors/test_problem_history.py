"""A problem keeps its history when its entries are deleted, by each kind of clean-up."""

import importlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from api.models import ApiToken
from errors import services
from errors.grouping import refresh_group_times
from errors.models import ErrorGroup, Status, SyncError, SyncErrorCleanup
from syncconsole.templatetags.console import moment
from tests.factories import make_error, make_mapping

pytestmark = pytest.mark.django_db
GROUPS = reverse("errors:groups")


def emptied_problem(cleanup, age: timedelta, user=None) -> ErrorGroup:
    mapping = make_mapping()
    first = make_error(
        mapping=mapping,
        age=age + timedelta(hours=1),
        message="Customer C1 has no name.",
        detail="PATCH /accounts -> 400 name is required",
    )
    make_error(mapping=mapping, age=age, message="Customer C2 has no name.")
    group = ErrorGroup.objects.get(pk=first.group_id)
    if user is not None:
        services.set_group_status(group, Status.RESOLVED, user, note="Names filled in.")
    cleanup()
    assert not SyncError.objects.exists()
    group.refresh_from_db()
    return group


CLEANUPS = {
    # Entries in the default partition (older than the partitions) go row by row.
    "older than 7 days, far back": (
        lambda: services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.COMMAND),
        timedelta(days=400),
    ),
    # Entries within the partitions' window go with their day, dropped whole.
    "older than 7 days, a day dropped": (
        lambda: services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.COMMAND),
        timedelta(days=9),
    ),
    "delete all": (
        lambda: services.request_cleanup(days=None, trigger=SyncErrorCleanup.Trigger.COMMAND),
        timedelta(minutes=5),
    ),
    "scheduled": (services.delete_expired_sync_errors, timedelta(days=400)),
}


@pytest.mark.parametrize("kind", CLEANUPS)
def test_a_problem_whose_entries_were_all_deleted_keeps_its_history(kind, staff_client, staff_user):
    cleanup, age = CLEANUPS[kind]
    group = emptied_problem(cleanup, age, user=staff_user)

    assert group.count == 0
    assert group.seen_total == 2
    assert group.status == Status.RESOLVED
    assert group.status_changed_by == staff_user
    assert group.example["message"] == "Customer C1 has no name."
    assert group.example["detail"] == "PATCH /accounts -> 400 name is required"
    assert group.example["source_record_id"]

    page = staff_client.get(GROUPS, {"history": "on"}).content.decode()
    assert f'href="{reverse("errors:list")}?group={group.pk}"' in page
    assert "No entries left: last seen" in page
    assert "2 in all, resolved by " + staff_user.get_username() in page
    assert f"?group={group.pk}" not in staff_client.get(GROUPS).content.decode()


def test_it_comes_back_into_the_same_problem_with_its_history():
    group = emptied_problem(CLEANUPS["delete all"][0], timedelta(minutes=5))
    again = make_error(mapping=group.mapping, message="Customer C3 has no name.")
    assert again.group_id == group.pk
    group.refresh_from_db()
    assert (group.count, group.seen_total) == (1, 3)
    assert group.example["message"] == "Customer C1 has no name."


def test_the_api_lists_problems_with_no_entries_left_on_asking(staff_user):
    group = emptied_problem(CLEANUPS["delete all"][0], timedelta(minutes=5))
    _, key = ApiToken.issue(staff_user, "tests")
    client = Client(headers={"Authorization": f"Bearer {key}"})
    listed = client.get(reverse("api:problems"), {"history": "true"}).json()["results"]
    assert [(p["id"], p["count"], p["seen_total"]) for p in listed] == [(group.pk, 0, 2)]
    assert client.get(reverse("api:problems")).json()["results"] == []
    assert client.get(reverse("api:problems"), {"history": "yes"}).status_code == 400


def test_problems_that_existed_before_get_their_history_from_their_entries():
    """Migration 0024 sets what problems created before it lack: entries in all from their
    count, the example from their oldest entry left."""
    migration = importlib.import_module("errors.migrations.0025_problem_history")
    (backfill,) = [op for op in migration.Migration.operations if hasattr(op, "sql")]
    mapping = make_mapping()
    older = make_error(mapping=mapping, age=timedelta(hours=2), message="Customer C1 has no name.")
    make_error(mapping=mapping, age=timedelta(hours=1), message="Customer C2 has no name.")
    ErrorGroup.objects.filter(pk=older.group_id).update(seen_total=0, example={})
    with connection.cursor() as cursor:
        cursor.execute(backfill.sql)
    group = ErrorGroup.objects.get(pk=older.group_id)
    assert group.seen_total == 2
    assert group.example["message"] == "Customer C1 has no name."
    assert group.example["source_record_id"] == older.source_record_id


def first_entry_line(client, group_id: int) -> str:
    page = client.get(reverse("errors:list"), {"group": group_id}).content.decode()
    return re.search(r'id="history-example">(.*?)</span>', page, re.S).group(1)


def test_the_problem_shows_when_its_first_entry_came_as_every_time_is_shown(staff_client):
    first = make_error(message="Customer C1 has no name.", age=timedelta(days=2))
    line = first_entry_line(staff_client, first.group_id)
    assert line == f"First entry ({moment(first.created_at)}): Customer C1 has no name."


def test_entries_dated_back_take_their_problem_s_first_entry_with_them(staff_client):
    first = make_error(message="Customer C1 has no name.")
    make_error(mapping=first.mapping, message="Customer C2 has no name.")
    SyncError.objects.update(created_at=first.created_at - timedelta(days=20))
    refresh_group_times([first.group_id])
    group = ErrorGroup.objects.get(pk=first.group_id)
    dated = SyncError.objects.get(pk=first.pk).created_at
    assert (group.first_seen, group.example_created_at) == (dated, dated)
    assert group.example["message"] == "Customer C1 has no name."
    assert moment(dated) in first_entry_line(staff_client, group.pk)
