"""The problems' figures of new entries, computed once per batch by their one writer
(grouping.record_errors), in its transaction: the entries per problem and day, how many are
open, those written resolved on the day they were resolved (errors_add_days), and the records
each problem's entries name with their first and latest day (errors_records_added). Updates
and deletes of entries keep their figures through the entries' triggers (errors/sql).

The insert trigger errors_entries_inserted still counts the entries of writers that leave
their figures to the database (the previous release's, during a rolling upgrade): the writer
says that it counts its batch itself (insert_entries, with COUNTED_BY_WRITER) and the trigger
skips its statements."""

from collections import Counter
from datetime import date

from django.db import connection

from .models import Status, SyncError
from .partitions import day_of

# Read by the insert trigger's WHEN clause (errors/sql/errors_entries_inserted.sql): 'on'
# while the entries a transaction inserts are counted by their writer. Set for the
# transaction only (insert_entries sets it, entries_added clears it), so that a rollback or
# the commit ends it too.
BY_WRITER = "syncconsole.figures_by_writer"
COUNTED_BY_WRITER = "set_config(%s, 'on', true)"
_WRITER_DONE = "set_config(%s, '', true)"


def entries_added(errors: list[SyncError]) -> None:
    """Count the batch's entries, just inserted, on their problems (entries of no problem
    count nowhere), in one statement whatever the size of the batch."""
    entries: Counter[tuple[int, date]] = Counter()
    open_: Counter[tuple[int, date]] = Counter()
    resolved: Counter[tuple[int, date]] = Counter()
    records: dict[tuple[int, str], list] = {}
    for error in errors:
        if error.group_id is None:
            continue
        day = day_of(error.created_at)
        entries[error.group_id, day] += 1
        if error.status == Status.OPEN:
            open_[error.group_id, day] += 1
        if error.status == Status.RESOLVED and error.status_changed_at is not None:
            resolved[error.group_id, day_of(error.status_changed_at)] += 1
        if error.source_record_id:
            seen = records.get((error.group_id, error.source_record_id))
            if seen is None:
                records[error.group_id, error.source_record_id] = [1, day, day]
            else:
                seen[0] += 1
                seen[1], seen[2] = min(seen[1], day), max(seen[2], day)
    days = sorted(entries.keys() | resolved.keys())
    if not days:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {_WRITER_DONE}", [BY_WRITER])
        return
    keys = sorted(records)
    arrays: list[list] = [
        [group for group, _ in days],
        [day for _, day in days],
        [entries[key] for key in days],
        [open_[key] for key in days],
        [resolved[key] for key in days],
        [group for group, _ in keys],
        [record for _, record in keys],
        [records[key][0] for key in keys],
        [records[key][1] for key in keys],
        [records[key][2] for key in keys],
    ]
    with connection.cursor() as cursor:
        # One statement: the day figures first, then the records (which move the days'
        # latest_records), as the entries' triggers do for updates and deletes; and the
        # insert trigger counts again whatever this transaction inserts after the batch.
        cursor.execute(
            "SELECT errors_add_days(%s::bigint[], %s::date[], %s::bigint[], %s::bigint[],"
            " %s::bigint[]), errors_records_added(%s::bigint[], %s::text[], %s::bigint[],"
            f" %s::date[], %s::date[]), {_WRITER_DONE}",
            [array_literal(values) for values in arrays] + [BY_WRITER],
        )


def array_literal(values: list) -> str:
    """An array as PostgreSQL's text form, read by one call of its input function: the
    driver's own form (ARRAY[...] with a parameter per element) costs the server a parse of
    each element, tens of milliseconds for a few thousand."""
    return "{" + ",".join(_element(value) for value in values) + "}"


def _element(value) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
