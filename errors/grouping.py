"""Grouping entries into one problem each, and writing entries so that their groups stay up
to date: the one path by which sync errors are stored."""

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Max, Min, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Upper
from django.utils import timezone
from psycopg2.extras import Json

from . import alerts, blocking, figures, ownership
from .alerts import ProblemChange
from .entries import check_references, clean_entries, insert_entries
from .models import ErrorGroup, GroupDay, Status, SyncError
from .partitions import day_of, ensure_partitions_for, note_written
from .status import change_entries, problems_reopened
from .trends import TREND_DAYS, GroupFigures, trend_bars

SKIP_NOTE_TEXT = "The record will be skipped for further synchronization"
SKIP_NOTE = re.compile(rf"\s*{SKIP_NOTE_TEXT}.*$")
# Most specific first: an id or a time must not be taken apart by the number pattern. Each
# pattern comes with text it cannot match without (a quick test, as this runs per entry).
VARIABLE_PARTS = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
     "<id>", "-"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
     "<time>", ":"),
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*"), "<email>", "@"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<value>", ""),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<code>", "0x"),
    (re.compile(r"\b[A-Z]*\d[\w-]*"), "<n>", ""),
]  # fmt: skip


def normalize(message: str) -> str:
    """The message with what differs from record to record left out."""
    text = SKIP_NOTE.sub("", message) if SKIP_NOTE_TEXT in message else message
    for pattern, placeholder, needs in VARIABLE_PARTS:
        if needs in text:
            text = pattern.sub(placeholder, text)
    return " ".join(text.split())[: SyncError.MESSAGE_MAX_LENGTH]


# How much of the first entry's detail a problem keeps as its example.
EXAMPLE_DETAIL_CHARS = 2000


def example_of(error: SyncError) -> dict[str, Any]:
    """What a problem keeps of its first entry, so that it can still be shown once its
    entries are deleted: taken when the problem is created, from the entry in hand."""
    return {
        "message": error.message,
        "detail": error.detail[:EXAMPLE_DETAIL_CHARS],
        "created_at": error.created_at.isoformat(),
        "job_id": error.job_id,
        "coupling_id": error.coupling_id,
        "source_app": error.source_app,
        "source_entity": error.source_entity,
        "source_record_id": error.source_record_id,
        "destination_app": error.destination_app,
        "destination_entity": error.destination_entity,
        "destination_record_id": error.destination_record_id,
    }


def fingerprint(mapping_id: int | None, category: str, message: str, integration: str = "") -> str:
    key = f"{mapping_id or ''}\x1f{category}\x1f{normalize(message)}"
    if integration:
        # Problems of another integration never merge with ours or with another's.
        key = f"integration\x1f{integration}\x1f{key}"
    return hashlib.sha256(key.encode()).hexdigest()


def record_errors(errors: Iterable[SyncError]) -> list[SyncError]:
    """Store the entries with their groups: each group is created or has its first and
    last-seen times moved on in one statement, which locks it until this commits; the figures
    of the new entries (its count, day figures and records) are then moved on once for the
    batch (errors.figures.entries_added), so concurrent writers never lose a count. This is
    the one path that inserts entries: nothing else keeps their figures.

    A resolved group that happens again reopens as a regression; the entries of an ignored
    group arrive ignored, those of a snoozed group snoozed, until its snooze ends (its date
    passed or its count reached): then the group and its snoozed entries reopen. New,
    regressed and setup problems are handed to the alerts, which act once this commits; new
    problems get their owner from the ownership rules (errors.ownership).

    A batch with an entry that cannot be stored raises InvalidEntries, one that names a job,
    coupling or mapping that does not exist IntegrityError; either writes nothing."""
    errors = list(errors)
    if not errors:
        return errors
    clean_entries(errors)
    ensure_partitions_for(error.created_at for error in errors)
    members: dict[str, list[SyncError]] = defaultdict(list)
    for error in errors:
        key = fingerprint(error.mapping_id, error.category, error.message, error.integration)
        members[key].append(error)
    rows = [
        (
            key,
            group[0].mapping_id,
            group[0].integration,
            group[0].category,
            SKIP_NOTE.sub("", group[0].message),  # the first one, as people read it
            min(e.created_at for e in group),
            max(e.created_at for e in group),
            Status.OPEN,
            "",
            len(group),
            Json(example_of(group[0])),
        )
        for key, group in members.items()
    ]
    table = ErrorGroup._meta.db_table
    now = timezone.now()
    # On the right of SET every column is the old value, so the CASEs agree on the old state.
    # The count is not written here (figures.entries_added moves it on): whether a
    # snooze until N more occurrences ends is the old count plus the entries arriving now.
    arriving = "(SELECT n FROM arriving WHERE arriving.fingerprint = EXCLUDED.fingerprint)"
    wakes = (
        f"({table}.status = 'snoozed' AND ({table}.snoozed_until <= %(now)s"
        f" OR {table}.count + {arriving} >= {table}.snooze_until_count))"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        check_references(errors)
        # Sorted, so that two writers lock the groups they share in the same order.
        rows.sort()
        values = []
        params: dict[str, Any] = {
            "now": now,
            "woke_note": SNOOZE_ENDED_NOTE,
            "keys": [row[0] for row in rows],
            "sizes": [len(members[row[0]]) for row in rows],
        }
        for i, row in enumerate(rows):
            names = [f"r{i}_{j}" for j in range(len(row))]
            values.append("(" + ", ".join(f"%({name})s" for name in names) + ", 0)")
            params.update(zip(names, row, strict=True))
        cursor.execute(
            f"""
            WITH arriving (fingerprint, n) AS (
                SELECT * FROM unnest(%(keys)s::text[], %(sizes)s::bigint[])
            )
            INSERT INTO {table}
                (fingerprint, mapping_id, integration, category, title, first_seen, last_seen,
                 status, status_note, seen_total, example, count)
            VALUES {", ".join(values)}
            ON CONFLICT (fingerprint) DO UPDATE SET
                first_seen = LEAST({table}.first_seen, EXCLUDED.first_seen),
                last_seen = GREATEST({table}.last_seen, EXCLUDED.last_seen),
                seen_total = {table}.seen_total + EXCLUDED.seen_total,
                regressed_at = CASE WHEN {table}.status = 'resolved' THEN EXCLUDED.last_seen
                                    ELSE {table}.regressed_at END,
                status = CASE WHEN {table}.status = 'resolved' OR {wakes} THEN 'open'
                              ELSE {table}.status END,
                status_changed_at = CASE WHEN {wakes} THEN %(now)s
                                         ELSE {table}.status_changed_at END,
                status_changed_by_id = CASE WHEN {wakes} THEN NULL
                                            ELSE {table}.status_changed_by_id END,
                status_note = CASE WHEN {wakes} THEN %(woke_note)s ELSE {table}.status_note END,
                snoozed_until = CASE WHEN {wakes} THEN NULL ELSE {table}.snoozed_until END,
                snooze_until_count = CASE WHEN {wakes} THEN NULL
                                          ELSE {table}.snooze_until_count END
            RETURNING id, fingerprint, status,
                      status = 'open' AND status_changed_at = %(now)s
                      AND status_note = %(woke_note)s,
                      xmax = 0, regressed_at, blocked_by_id IS NOT NULL
            """,  # noqa: S608 - the table name is ours; the values are parameters
            params,
        )
        returned = cursor.fetchall()
        groups = {key: (pk, status, woke) for pk, key, status, woke, *_ in returned}
        # A problem blocked as a whole may now have an entry that is not.
        was_blocked = [row[0] for row in returned if row[6]]
        returned = [row[:6] for row in returned]
        last_seen = {key: max(e.created_at for e in group) for key, group in members.items()}
        # A row just inserted has no xmax; one that regressed now got this batch's last seen.
        changes = [
            ProblemChange(
                pk,
                status,
                created,
                not created and regressed_at == last_seen[key],
                category=members[key][0].category,
            )
            for pk, key, status, _, created, regressed_at in returned
        ]
        alerts.write_alerts(changes)  # the outbox, in this transaction
        # New problems get their owner from the ownership rules, in this transaction.
        ownership.assign_new_problems(
            ownership.NewProblem(pk, members[key][0].mapping_id, members[key][0].category)
            for pk, key, _, _, created, _ in returned
            if created
        )
        # The upsert reopened them with their new entries, in the same statement.
        problems_reopened(
            [change.group_id for change in changes if change.regressed],
            REGRESSED_NOTE,
            system="new entries",
        )
        woken = []
        for key, members_of_group in members.items():
            pk, status, woke = groups[key]
            if woke:
                woken.append(pk)
            for error in members_of_group:
                error.group_id = pk
                if status in ARRIVES_AS and error.status == Status.OPEN:
                    error.status, error.status_note = status, ARRIVES_AS[status]
        if woken:
            problems_reopened(woken, SNOOZE_ENDED_NOTE, system="snooze")
            reopen_snoozed_entries(woken, now)
        blocking.link(errors)
        inserted = insert_entries(errors)
        figures.entries_added(inserted)
        note_written(day_of(error.created_at) for error in inserted)
        blocking.refresh(
            {
                pk
                for error in errors
                if error.blocked_by_group_id
                for pk in (error.group_id, error.blocked_by_group_id)
            }
            | set(was_blocked)
        )
        return inserted


# The states of an entry that still stands for its record's failure: a later attempt that
# fails the same way is counted on it.
STILL_FAILING = [Status.OPEN, Status.SNOOZED, Status.IGNORED]


def record_attempts(errors: Iterable[SyncError]) -> list[SyncError]:
    """Store the failures of records whose policy logs them once with a count of attempts:
    a record with an entry of the same problem that is not resolved has the attempt counted
    on it (its message, detail and values sent become the latest attempt's, its problem's
    last-seen time and total move on); the others are recorded as new entries. Returns the
    entries written or counted on."""
    errors = list(errors)
    if not errors:
        return errors
    clean_entries(errors)
    keys = {
        id(error): fingerprint(error.mapping_id, error.category, error.message, error.integration)
        for error in errors
    }
    groups = dict(
        ErrorGroup.objects.filter(fingerprint__in=set(keys.values())).values_list(
            "fingerprint", "pk"
        )
    )
    with transaction.atomic():
        standing = _standing_entries(errors, keys, groups)
        counted, new = [], []
        for error in errors:
            entry = standing.get(_attempt_key(error, groups.get(keys[id(error)])))
            if entry is None:
                new.append(error)
            else:
                counted.append((entry, error))
        if counted:
            _count_on(counted)
        return record_errors(new) + [entry for entry, _ in counted]


def _attempt_key(error: SyncError, group_id: int | None) -> tuple:
    return (
        group_id,
        error.source_app,
        error.source_entity,
        error.source_record_id.upper(),
        error.destination_app,
    )


def _standing_entries(
    errors: list[SyncError], keys: dict[int, str], groups: dict[str, int]
) -> dict[tuple, SyncError]:
    """The latest entry still standing of each failed record, by its attempt key, locked."""
    wanted = {
        _attempt_key(error, groups[keys[id(error)]])
        for error in errors
        if keys[id(error)] in groups and error.source_record_id
    }
    if not wanted:
        return {}
    found: dict[tuple, SyncError] = {}
    rows = (
        SyncError.objects.annotate(record=Upper("source_record_id"))
        .filter(
            group_id__in={key[0] for key in wanted},
            record__in={key[3] for key in wanted},
            status__in=STILL_FAILING,
        )
        .order_by("-created_at", "-id")
        .select_for_update()
    )
    for entry in rows:
        key = _attempt_key(entry, entry.group_id)
        if key in wanted and key not in found:
            found[key] = entry
    return found


# The attempts counted on entries, added to their problems' days (the day each failed), in key
# order as errors_add_days writes the day rows, so that concurrent writers lock them alike.
ATTEMPTS_ON_DAYS = """
INSERT INTO errors_groupday AS d (group_id, day, entries, open, attempts)
SELECT g, errors_entry_day(t), 0, 0, count(*)
FROM unnest(%s::bigint[], %s::timestamptz[]) AS a(g, t)
GROUP BY 1, 2
ORDER BY 1, 2
ON CONFLICT (group_id, day) DO UPDATE SET attempts = d.attempts + EXCLUDED.attempts
"""


# What blocks a record is the latest attempt's, as its message is: the record it waits for may
# have an open entry of its own by now, which the entry then names (blocking.link).
BLOCKED_BY = ("blocked_by_mapping_id", "blocked_by_side", "blocked_by_entity", "blocked_by_record")


def _count_on(counted: list[tuple[SyncError, SyncError]]) -> None:
    """One more attempt on each standing entry, in one statement per table: the entries,
    their problems' days, then their problems (the order the entries' triggers lock them)."""
    # The problems whose root-cause figures may move: those of blocked entries, before and
    # after, and those they were and are blocked by.
    touched: set[int | None] = set()
    for entry, attempt in counted:
        entry.attempts += 1
        entry.last_attempt_at = attempt.created_at
        entry.last_attempt_job_id = attempt.job_id
        entry.message, entry.detail = attempt.message, attempt.detail
        entry.sent_values = attempt.sent_values
        if entry.blocked_by_record or attempt.blocked_by_record:
            touched |= {entry.group_id, entry.blocked_by_group_id}
        for name in BLOCKED_BY:
            setattr(entry, name, getattr(attempt, name))
        entry.blocked_by_entry_id = entry.blocked_by_group_id = None
    entries = [entry for entry, _ in counted]
    blocking.link(entries)
    touched |= {entry.blocked_by_group_id for entry in entries}
    fields = ["attempts", "last_attempt_at", "last_attempt_job_id", "message", "detail"]
    fields += ["sent_values", *BLOCKED_BY, "blocked_by_entry_id", "blocked_by_group_id"]
    SyncError.objects.bulk_update(entries, fields)
    seen: dict[int, list] = defaultdict(list)
    for entry, attempt in counted:
        if entry.group_id is not None:  # always: it was found by its problem
            seen[entry.group_id].append(attempt.created_at)
    with connection.cursor() as cursor:
        cursor.execute(
            ATTEMPTS_ON_DAYS,
            [
                [group_id for group_id, times in seen.items() for _ in times],
                [moment for times in seen.values() for moment in times],
            ],
        )
    for group_id, times in seen.items():
        ErrorGroup.objects.filter(pk=group_id).update(
            last_seen=Greatest("last_seen", Value(max(times))),
            seen_total=F("seen_total") + len(times),
        )
    blocking.refresh(touched)


SNOOZE_ENDED_NOTE = "The snooze ended: the problem is open again."
REGRESSED_NOTE = "It came back: new entries arrived after it was resolved."
# New entries of a problem that is set aside arrive set aside too.
ARRIVES_AS = {Status.IGNORED: "The problem is ignored.", Status.SNOOZED: "The problem is snoozed."}


def reopen_snoozed_entries(group_ids: list[int], now) -> int:
    return change_entries(
        SyncError.objects.filter(group_id__in=group_ids, status=Status.SNOOZED),
        Status.OPEN,
        note=SNOOZE_ENDED_NOTE,
        system="snooze",
        now=now,
    )


def figures_for(groups: list[ErrorGroup], today: date | None = None) -> dict[int, GroupFigures]:
    """For a page of groups: open entries, records affected and the last 14 days, per group,
    from the figures kept on write (GroupDay, ErrorGroup.records): two small queries that
    never read the entries."""
    ids = [group.pk for group in groups]
    figures = {group.pk: GroupFigures(records=group.records) for group in groups}
    if not ids:
        return figures
    days = GroupDay.objects.filter(group_id__in=ids)
    for row in days.values("group_id").annotate(open=Sum("open")):
        figures[row["group_id"]].open = row["open"]
    # The figures' days are the console's (TIME_ZONE), whatever zone the reader is in.
    today = today or timezone.localdate(timezone=timezone.get_default_timezone())
    first = today - timedelta(days=TREND_DAYS - 1)
    per_day: dict[int, dict[date, int]] = defaultdict(dict)
    # A day's bar is the problem's failures that day: its new entries and the later attempts
    # counted on entries that stood.
    for group_id, day, entries, attempts in days.filter(day__gte=first, day__lte=today).values_list(
        "group_id", "day", "entries", "attempts"
    ):
        per_day[group_id][day] = entries + attempts
    for pk in ids:
        figures[pk].trend = trend_bars(
            [per_day[pk].get(first + timedelta(days=i), 0) for i in range(TREND_DAYS)], first
        )
    return figures


def refresh_group_times(group_ids: Iterable[int]) -> None:
    """Set the groups' first and last seen from their entries, after entries were re-dated,
    and the time of the first entry their example keeps."""
    group_ids = set(group_ids)
    examples = dict(ErrorGroup.objects.filter(pk__in=group_ids).values_list("pk", "example"))
    for row in (
        SyncError.objects.filter(group_id__in=group_ids)
        # An entry's latest attempt counted on it is when it was last seen.
        .annotate(seen=Coalesce("last_attempt_at", "created_at"))
        .values("group_id")
        .annotate(first=Min("created_at"), last=Max("seen"))
    ):
        example = examples.get(row["group_id"]) or {}
        if "created_at" in example:
            example = {**example, "created_at": row["first"].isoformat()}
        ErrorGroup.objects.filter(pk=row["group_id"]).update(
            first_seen=row["first"], last_seen=row["last"], example=example
        )
