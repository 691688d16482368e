"""Entries grouped into problems by fingerprint, with figures kept up to date on write and on
delete, and the Problems page that lists them."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from errors import services
from errors.grouping import fingerprint, normalize
from errors.models import Category, ErrorGroup, Status, SyncError, SyncErrorCleanup
from tests.factories import make_error, make_mapping

pytestmark = pytest.mark.django_db

PHONE = "Phone No. must not exceed 30 characters."


def test_the_message_is_normalized_without_ids_numbers_times_and_values():
    a = normalize(
        "Principal user (Id=01f84185-438a-48df-b273-6df52f613c26, type=8, roleCount=1) is "
        "missing prvCreateProduct privilege"
    )
    b = normalize(
        "Principal user (Id=9c1e0a3b-1111-4000-8000-000000000000, type=8, roleCount=3) is "
        "missing prvCreateProduct privilege"
    )
    expected = "Principal user (Id=<id>, type=<n>, roleCount=<n>) is missing prvCreateProduct"
    assert a == b == expected + " privilege"
    assert normalize('The email address "sales@pedal" is not valid.') == (
        "The email address <value> is not valid."
    )
    assert (
        normalize(
            "The customers record C00210 cannot be updated because it is coupled to a deleted "
            "record. The record will be skipped for further synchronization due to a repeatable "
            "failure."
        )
        == "The customers record <n> cannot be updated because it is coupled to a deleted record."
    )
    assert normalize("Changed at 2026-11-24T19:29:28.123Z by x") == "Changed at <time> by x"
    assert normalize("prvCreateProduct") != normalize("prvWriteProduct")


def test_the_fingerprint_tells_mapping_category_and_message_apart():
    base = fingerprint(1, Category.VALIDATION, 'The email address "a@b" is not valid.')
    assert base == fingerprint(1, Category.VALIDATION, 'The email address "c@d" is not valid.')
    assert base != fingerprint(2, Category.VALIDATION, 'The email address "a@b" is not valid.')
    assert base != fingerprint(1, Category.CONFLICT, 'The email address "a@b" is not valid.')
    assert base != fingerprint(1, Category.VALIDATION, PHONE)


def test_groups_keep_count_and_first_and_last_seen_as_entries_arrive():
    mapping = make_mapping()
    now = timezone.now()
    old = make_error(
        mapping=mapping,
        category=Category.VALIDATION,
        message=PHONE,
        created_at=now - timedelta(days=3),
    )
    new = make_error(
        mapping=mapping,
        category=Category.VALIDATION,
        message=PHONE,
        created_at=now - timedelta(hours=1),
    )
    other = make_error(mapping=mapping, category=Category.CONFLICT, message="Changed twice.")

    assert old.group_id == new.group_id != other.group_id
    group = ErrorGroup.objects.get(pk=old.group_id)
    assert (group.count, group.first_seen, group.last_seen) == (2, old.created_at, new.created_at)
    assert (group.mapping, group.category, group.title) == (mapping, Category.VALIDATION, PHONE)


def test_a_cleanup_takes_deleted_entries_off_their_groups_and_keeps_empty_ones():
    mapping = make_mapping()
    old = [make_error(mapping=mapping, message=PHONE, age=timedelta(days=9)) for _ in range(3)]
    keep = make_error(mapping=mapping, message=PHONE, age=timedelta(days=1))
    gone = make_error(mapping=mapping, message="Only old.", age=timedelta(days=10))

    services.request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.CONSOLE)

    kept = ErrorGroup.objects.get(pk=keep.group_id)
    assert (kept.count, kept.seen_total) == (1, 4)
    emptied = ErrorGroup.objects.get(pk=gone.group_id)
    assert (emptied.count, emptied.seen_total) == (0, 1)
    assert not SyncError.objects.filter(pk__in=[e.pk for e in old]).exists()


def test_deleting_an_entry_anywhere_else_keeps_the_count_right(superuser, client):
    first, second = (make_error(message=PHONE) for _ in range(2))
    first.delete()
    assert ErrorGroup.objects.get(pk=second.group_id).count == 1


def test_the_problems_page_lists_groups_with_figures_and_trend(
    staff_client, django_assert_max_num_queries
):
    mapping = make_mapping(name="CUSTOMER")
    now = timezone.now()
    for days, record in ((0, "C1"), (0, "C2"), (2, "C2"), (20, "C3")):
        make_error(
            mapping=mapping,
            category=Category.VALIDATION,
            message=PHONE,
            source_record_id=record,
            created_at=now - timedelta(days=days),
        )
    resolved = make_error(
        mapping=mapping,
        category=Category.VALIDATION,
        message=PHONE,
        source_record_id="C1",
        created_at=now - timedelta(days=1),
    )
    SyncError.objects.filter(pk=resolved.pk).update(status=Status.RESOLVED)
    make_error(mapping=mapping, category=Category.CONFLICT, message="Changed twice.")

    with django_assert_max_num_queries(10):
        response = staff_client.get(reverse("errors:groups"))
    page = response.content.decode()
    assert response.status_code == 200
    row = page[page.index(f'data-group="{resolved.group_id}"') :].split("</tr>")[0]
    assert 'data-figure="count">5</td>' in row
    assert 'data-figure="records">3</td>' in row
    assert 'data-figure="open">4</td>' in row
    assert row.count("<rect") == 14
    today = timezone.localdate().isoformat()
    assert f"<title>{today}: 2</title>" in row
    assert "2 problems" in page

    only_conflicts = staff_client.get(reverse("errors:groups"), {"category": "conflict"})
    assert "Changed twice." in only_conflicts.content.decode()
    assert PHONE not in only_conflicts.content.decode()
    assert staff_client.get(reverse("errors:groups"), {"category": "x"}).status_code == 400


def test_opening_a_problem_lists_its_entries_only(staff_client):
    mapping = make_mapping()
    mine = [make_error(mapping=mapping, message=PHONE) for _ in range(2)]
    other = make_error(mapping=mapping, message="Something else.")
    group = ErrorGroup.objects.get(pk=mine[0].group_id)
    page = staff_client.get(group.get_absolute_url()).content.decode()
    for error in mine:
        assert reverse("errors:detail", args=[error.pk]) in page
    assert reverse("errors:detail", args=[other.pk]) not in page
    detail = staff_client.get(mine[0].get_absolute_url()).content.decode()
    assert f'href="{group.get_absolute_url()}"' in detail


def test_resolving_a_problem_resolves_its_entries_and_a_new_one_reopens_it(
    staff_client, staff_user
):
    mapping = make_mapping()
    entries = [make_error(mapping=mapping, message=PHONE) for _ in range(3)]
    group = ErrorGroup.objects.get(pk=entries[0].group_id)
    listing = staff_client.get(group.get_absolute_url()).content.decode()
    assert "Resolve problem" in listing and 'id="problem"' in listing

    staff_client.post(
        reverse("errors:group_set_status", args=[group.pk]),
        {"status": "resolved", "note": "Shortened the numbers in the CRM."},
    )
    group.refresh_from_db()
    assert (group.status, group.status_changed_by, group.status_note) == (
        "resolved",
        staff_user,
        "Shortened the numbers in the CRM.",
    )
    assert set(SyncError.objects.filter(group=group).values_list("status", flat=True)) == {
        "resolved"
    }
    assert "regression" not in staff_client.get(reverse("errors:groups")).content.decode()

    again = make_error(mapping=mapping, message=PHONE)
    group.refresh_from_db()
    assert (group.status, group.count) == ("open", 4)
    assert group.regressed_at == again.created_at
    assert again.status == "open"
    page = staff_client.get(reverse("errors:groups"), {"status": "regressed"}).content.decode()
    assert "Regression" in page and f'data-group="{group.pk}"' in page


def test_entries_of_an_ignored_problem_arrive_ignored(staff_client):
    first = make_error(message=PHONE)
    group = ErrorGroup.objects.get(pk=first.group_id)
    staff_client.post(reverse("errors:group_set_status", args=[group.pk]), {"status": "ignored"})
    later = make_error(message=PHONE)
    later.refresh_from_db()
    assert (later.status, later.status_note) == ("ignored", "The problem is ignored.")
    group.refresh_from_db()
    assert (group.status, group.regressed_at) == ("ignored", None)
    response = staff_client.post(
        reverse("errors:group_set_status", args=[group.pk]), {"status": "gone"}, follow=True
    )
    assert "Select a valid choice" in response.content.decode()


def test_problem_actions_are_posts_for_staff_only(client, plain_user):
    group = ErrorGroup.objects.get(pk=make_error(message=PHONE).group_id)
    url = reverse("errors:group_set_status", args=[group.pk])
    assert client.post(url, {"status": "resolved"}).status_code == 302  # to sign in
    client.force_login(plain_user)
    assert client.post(url, {"status": "resolved"}).status_code == 403
    group.refresh_from_db()
    assert group.status == "open"
