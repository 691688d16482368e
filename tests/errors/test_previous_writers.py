"""While a rolling upgrade runs the previous release's workers beside this one, their entries
are counted by the insert trigger they rely on, and record_errors' batches, which count
themselves, are counted once (errors/sql/errors_entries_inserted.sql)."""

import io

import pytest
from django.db import connection, transaction
from django.utils import timezone

from errors.figures import BY_WRITER
from errors.models import ErrorGroup, GroupDay, GroupRecord
from tests.errors.test_group_figures import MESSAGES, assert_figures_right
from tests.factories import make_error

pytestmark = pytest.mark.django_db

# As the previous release writes an entry once record_errors' upsert gave it its problem.
COLUMNS = (
    "id, created_at, group_id, source_app, source_entity, source_record_id, source_url, "
    "destination_app, destination_entity, destination_record_id, destination_url, message, "
    "detail, category, status, status_note, integration, attempts"
)
INSERT = f"""
INSERT INTO errors_syncerror ({COLUMNS})
SELECT nextval(pg_get_serial_sequence('errors_syncerror', 'id')), %(at)s, %(group)s,
    'Business Central', 'customers', r, '', 'Dynamics 365 Sales', 'accounts', '', '',
    %(message)s, '', 'other', 'open', '', '', 1
FROM unnest(%(records)s::text[]) AS r
"""  # noqa: S608 - the columns are ours


def figures(group: ErrorGroup) -> tuple[int, int, int]:
    group.refresh_from_db()
    return group.count, group.records, GroupDay.objects.get(group=group).entries


def written_as_before(group: ErrorGroup, records: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT, {"at": timezone.now(), "group": group.pk, "message": group.title,
                     "records": records},
        )  # fmt: skip


def copied_as_before(group: ErrorGroup, records: list[str]) -> None:
    """A COPY, as the previous release's insert_entries wrote its batches."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('errors_syncerror', 'id'))")
        first = cursor.fetchone()[0]
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('errors_syncerror', 'id'), %s)",
            [first + len(records)],
        )
        now = timezone.now().isoformat()
        rows = "".join(
            f"{first + i}\t{now}\t{group.pk}\tBusiness Central\tcustomers\t{record}\t\t"
            f"Dynamics 365 Sales\taccounts\t\t\t{group.title}\t\tother\topen\t\t\t1\n"
            for i, record in enumerate(records, start=1)
        )
        cursor.cursor.copy_expert(
            f"COPY errors_syncerror ({COLUMNS}) FROM STDIN", io.BytesIO(rows.encode())
        )


def test_entries_of_a_writer_that_does_not_count_them_are_counted_by_the_trigger():
    first = make_error(message=MESSAGES[0], source_record_id="C1")
    group = ErrorGroup.objects.get(pk=first.group_id)
    written_as_before(group, ["C1", "C2", "C2"])
    assert figures(group) == (4, 2, 4)
    copied_as_before(group, ["C3", "C1"])
    assert figures(group) == (6, 3, 6)
    assert GroupRecord.objects.get(record_id="C1").entries == 3
    assert_figures_right()


def test_a_batch_of_record_errors_is_counted_once():
    first = make_error(message=MESSAGES[0], source_record_id="C1")
    group = ErrorGroup.objects.get(pk=first.group_id)
    assert figures(group) == (1, 1, 1)
    make_error(message=MESSAGES[0], source_record_id="C2")
    make_error(message=MESSAGES[0], source_record_id="C1")
    assert figures(group) == (3, 2, 3)
    assert GroupRecord.objects.get(record_id="C1").entries == 2
    assert_figures_right()


def test_after_a_batch_its_transaction_counts_other_writers_again():
    with transaction.atomic():
        group = ErrorGroup.objects.get(
            pk=make_error(message=MESSAGES[0], source_record_id="C1").group_id
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting(%s, true)", [BY_WRITER])
            assert cursor.fetchone()[0] in ("", None)
        written_as_before(group, ["C2"])
    assert figures(group) == (2, 2, 2)
    assert_figures_right()
