"""Part of benchmark 3 (ingestion): what the problems' record rows cost a batch of new entries.

A batch's records are looked up in the day partitions of errors_grouprecord (one row per
problem and record, in the partition of its latest day). Measured on problems with records
on every day of the last DAYS days, written through record_errors beside the entries the
benchmark generated, for four kinds of batch: new records of those problems, their records
seen on an earlier day (moved to today's partition), their records already seen today (grown
in place), and the records of a problem never seen before. Each kind is written in batches
of a page three ways in the same run:

- now: errors_records_added looks up each record only in the partitions that may hold it;
- the previous round: errors_records_added as migration 0031 installed it (every partition),
  put back for the measurement;
- the previous release's writer: the insert trigger counts the COPY's rows again (the naive
  way, which this round's writer replaced and which runs only while a rolling upgrade runs
  both releases), through the same errors_records_added as now;

and now once more with that trigger disabled: what keeping it costs this release's batches,
which it skips (PostgreSQL still collects each statement's rows for it).

Everything is written in one transaction rolled back at the end, each measurement in a
savepoint rolled back, so every one starts from the same rows."""

import random
import time
from datetime import timedelta
from importlib import import_module
from unittest import mock

from django.db import connection, transaction
from django.utils import timezone

from errors import figures, grouping
from errors.grouping import record_errors
from errors.models import Category, SyncError
from errors.sql import render

from .common import median, table

DAYS = 14
TRIGGER = "errors_entries_inserted"
# The records a problem had on each day: together over DAYS days a history of
# PROBLEMS * DAYS * RECORDS_A_DAY entries.
RECORDS_A_DAY = 100
PROBLEMS = 20
PREVIOUS = import_module("errors.migrations.0031_records_go_with_their_day").RECORDS_ADDED_0031
KINDS = [
    "new records of problems seen every day",
    "records seen on an earlier day",
    "records already seen today",
    "new records of a new problem",
]
WAYS = [
    "now: only the partitions that may hold the record",
    "previous round: every day partition",
    "previous release: the insert trigger counts the COPY",
    "now, without the insert trigger kept for the previous release",
]


def letters(n: int) -> str:
    """A number spelled in letters: digits are what grouping leaves out of a message."""
    return "".join("abcdefghij"[int(d)] for d in str(n))


def message(problem: str) -> str:
    return f"Record rows benchmark {problem}: the customer's credit limit is exceeded."


def entry(problem: str, record: str, at) -> SyncError:
    return SyncError(
        created_at=at,
        message=message(problem),
        category=Category.VALIDATION,
        source_app="Business Central",
        source_entity="customers",
        source_record_id=record,
        destination_app="Dynamics 365 Sales",
        destination_entity="accounts",
    )


def measure(runs: int, batch: int) -> tuple[str, dict[tuple[str, str], tuple[float, float]]]:
    """The section, and per (kind, way) the µs per entry of record_errors and of its
    figures' statement (figures.entries_added)."""
    rng = random.Random(11)
    figures_us: dict[tuple[str, str], tuple[float, float]] = {}
    with transaction.atomic():
        history = _history()
        for kind in KINDS:
            for way in WAYS:
                totals, counted = [], []
                for run in range(runs + 1):  # the first warms up
                    errors = _batch(kind, history, batch, rng, run)
                    with transaction.atomic():
                        total, part = _timed(way, errors)
                        transaction.set_rollback(True)
                    totals.append(total)
                    counted.append(part)
                figures_us[kind, way] = (median(totals[1:]), median(counted[1:]))
        transaction.set_rollback(True)
    rows = [
        (
            kind,
            way,
            f"{figures_us[kind, way][0]:,.1f}",
            "in the COPY" if way == WAYS[2] else f"{figures_us[kind, way][1]:,.1f}",
        )
        for kind in KINDS
        for way in WAYS
    ]
    lines = [
        "### The record rows",
        "",
        f"{PROBLEMS} problems with {RECORDS_A_DAY} records a day on each of the last {DAYS} "
        "days, written through record_errors beside the generated entries (their record rows "
        f"in the same day partitions); batches of {batch:,} entries of one kind at a time, "
        f"median of {runs} runs; each in a savepoint rolled back. The figures' statement is "
        "errors.figures.entries_added (the day figures and errors_records_added); the "
        "previous release's writer has none, the insert trigger does its work in the COPY.",
        "",
        table(["batch", "how", "µs per entry", "of which the figures' statement"], rows),
    ]
    return "\n".join(lines), figures_us


def _history() -> dict[str, list[tuple[int, str]]]:
    """The problems' records, written day by day; which (problem, record) were seen on an
    earlier day only, and which today."""
    now = timezone.now()
    earlier, today = [], []
    for age in range(DAYS - 1, -1, -1):
        at = now - timedelta(days=age)
        errors = [
            entry(letters(p), f"H{age:02d}-{r:05d}", at)
            for p in range(PROBLEMS)
            for r in range(RECORDS_A_DAY)
        ]
        for i in range(0, len(errors), 1000):
            record_errors(errors[i : i + 1000])
        (today if age == 0 else earlier).extend(
            (p, f"H{age:02d}-{r:05d}") for p in range(PROBLEMS) for r in range(RECORDS_A_DAY)
        )
    return {"earlier": earlier, "today": today}


def _batch(kind: str, history, n: int, rng: random.Random, run: int) -> list[SyncError]:
    now = timezone.now()
    if kind == KINDS[0]:
        return [entry(letters(rng.randrange(PROBLEMS)), f"N{run}-{i:05d}", now) for i in range(n)]
    if kind == KINDS[3]:
        return [entry(f"new {letters(run)}", f"N{run}-{i:05d}", now) for i in range(n)]
    seen = history["earlier"] if kind == KINDS[1] else history["today"]
    return [entry(letters(p), record, now) for p, record in rng.sample(seen, n)]


def _timed(way: str, errors: list[SyncError]) -> tuple[float, float]:
    spent = [0.0]
    added = figures.entries_added

    def timed_figures(inserted, spent=spent):
        start = time.perf_counter()
        try:
            return added(inserted)
        finally:
            spent[0] += time.perf_counter() - start

    patches = [mock.patch.object(figures, "entries_added", timed_figures)]
    if way == WAYS[1]:
        with connection.cursor() as cursor:
            cursor.execute(render(PREVIOUS))
    elif way == WAYS[3]:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {SyncError._meta.db_table} DISABLE TRIGGER {TRIGGER}")
    elif way == WAYS[2]:
        # As the previous release writes: its COPY says nothing, and nothing counts after it.
        patches = [
            mock.patch.object(figures, "COUNTED_BY_WRITER", "set_config(%s, '', true)"),
            mock.patch.object(figures, "entries_added", lambda inserted: None),
        ]
    for patch in patches:
        patch.start()
    try:
        start = time.perf_counter()
        grouping.record_errors(errors)
        total = time.perf_counter() - start
    finally:
        for patch in patches:
            patch.stop()
    n = len(errors)
    return total * 1e6 / n, spent[0] * 1e6 / n
