"""The problems' figures of new entries, computed once per batch by their one writer
(grouping.record_errors), in its transaction: the entries per problem and day, how many are
open, those written resolved on the day they were resolved (errors_add_days), and the records
each problem's entries name with their first and latest day (errors_records_added). Updates
and deletes of entries keep their figures through the entries' triggers (errors/sql)."""

from collections import Counter
from datetime import date

from django.db import connection

from .models import Status, SyncError
from .partitions import day_of


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
        # latest_records), as the entries' triggers do for updates and deletes.
        cursor.execute(
            "SELECT errors_add_days(%s::bigint[], %s::date[], %s::bigint[], %s::bigint[],"
            " %s::bigint[]), errors_records_added(%s::bigint[], %s::text[], %s::bigint[],"
            " %s::date[], %s::date[])",
            [array_literal(values) for values in arrays],
        )


def array_literal(values: list) -> str:
    """An array as PostgreSQL's text form, read by one call of its input function: the
    driver's own form (ARRAY[...] with a parameter per element) costs the server a parse of
    each element, tens of milliseconds for a few thousand."""
    return "{" + ",".join(_element(value) for value in values) + "}"


def _element(value) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
