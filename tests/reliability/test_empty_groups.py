"""A clean-up drops the problems left without entries, never one that an entry is being
written into at that moment (each side in a transaction of its own)."""

import threading

import pytest
from django.db import transaction
from django.utils import timezone

from errors.grouping import drop_empty_groups, record_errors
from errors.models import Category, ErrorGroup, GroupDay, SyncError
from tests.factories import make_mapping

from .fixtures_apps import InThread

pytestmark = pytest.mark.django_db(transaction=True)


def entry(mapping) -> SyncError:
    return SyncError(
        created_at=timezone.now(),
        mapping=mapping,
        category=Category.VALIDATION,
        message="The field name of record C1 cannot be 'x'.",
    )


@pytest.fixture
def emptied_group():
    """A problem whose entries were all deleted: count 0, waiting for a clean-up."""
    mapping = make_mapping()
    (first,) = record_errors([entry(mapping)])
    SyncError.objects.all().delete()
    group = ErrorGroup.objects.get(pk=first.group_id)
    assert group.count == 0
    return mapping, group


def test_an_entry_written_while_the_clean_up_drops_empty_problems_keeps_its_problem(
    emptied_group,
):
    mapping, group = emptied_group
    written, commit = threading.Event(), threading.Event()

    def ingest():
        with transaction.atomic():
            (error,) = record_errors([entry(mapping)])
            written.set()
            commit.wait(30)
        return error

    writer = InThread(ingest).start()
    assert written.wait(30)
    cleaner = InThread(drop_empty_groups).start()
    cleaner.wait_until_blocked_or_done()
    commit.set()
    error = writer.value()
    cleaner.value()

    assert SyncError.objects.get(pk=error.pk).group_id == group.pk
    group.refresh_from_db()
    assert group.count == 1
    assert GroupDay.objects.filter(group=group).get().entries == 1


def test_a_problem_without_entries_is_dropped_with_its_day_figures(emptied_group):
    mapping, group = emptied_group
    other = entry(mapping)
    other.message = "Another failure altogether."
    (kept,) = record_errors([other])

    assert drop_empty_groups() == 1

    assert list(ErrorGroup.objects.values_list("pk", flat=True)) == [kept.group_id]
    assert set(GroupDay.objects.values_list("group_id", flat=True)) == {kept.group_id}
