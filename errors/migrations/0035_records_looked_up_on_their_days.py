"""New entries' record rows are looked up only in the day partitions that may hold them: the
days on which the record's problem has records whose latest entry is that day, latest first,
until the row is found, each partition pruned at run time, instead of every day partition;
the steps of errors_records_added hand each other their rows through one aggregate instead of
joins, and it runs without JIT.

The insert trigger kept for the previous release's writers (0032) skips the statements of
record_errors, which counts its batch itself and says so (syncconsole.figures_by_writer): a
rolling upgrade counts the entries of both releases once."""

from importlib import import_module

from django.db import migrations

from errors.sql import Install, render

records_go_with_their_day = import_module("errors.migrations.0031_records_go_with_their_day")
resolved_per_day = import_module("errors.migrations.0022_resolved_per_day")

# errors/sql/errors_records_added.sql as this migration installed it.
RECORDS_ADDED_0035 = r"""
-- New entries, one element per problem and source record (how many, and their first and last
-- day), written by errors.figures.entries_added once per batch of record_errors. The record
-- rows are partitioned by their last_day like the entries by their day, so that a clean-up
-- drops a day's records with the day: a record seen for the first time counts; one whose
-- latest day moves forward leaves its old day's partition for the new one (a delete and an
-- insert: a partition key cannot move in an upsert) and moves to the new day's
-- latest_records; one seen again on or before its latest day only grows.
--
-- A record has one row: (group_id, record_id) is not a key the partitioned table can enforce
-- (its keys must hold last_day), so it holds because every writer of a problem's record rows
-- holds the problem's row locked first (record_errors' upsert of the problems, the clean-up's
-- batches, the delete trigger through errors_add_days, errors_recount_records itself).
--
-- No index spans the partitions, so a record's row is looked up partition by partition, and
-- only in those that may hold it: the days on which the record's problem has records whose
-- latest entry is that day (errors_groupday.latest_records, which counts exactly the rows in
-- that day's partition), latest first, each partition chosen by its day as the row is looked
-- up (pruned at run time), until the row is found. A record whose row is on the latest such day
-- reads that partition alone, one on the k-th such day back k partitions; a new record of its
-- problem reads each such day's once, and a new problem's records read no partition at all.
CREATE OR REPLACE FUNCTION errors_records_added(p_groups bigint[], p_records text[],
                                                p_entries bigint[], p_first date[],
                                                p_last date[])
RETURNS void LANGUAGE plpgsql
-- Each record is looked up by its key in the partitions that may hold it, however few records a
-- statement names: a hash join would read every partition of the record rows whole. The plan's
-- estimate (a lookup for each day of each record) would have it compiled by JIT, which takes
-- longer than running it.
SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off
AS $$
DECLARE
    groups bigint[];
    from_days date[];
    to_days date[];
BEGIN
    WITH c AS (
        SELECT g, rec, n, f, l
        FROM unnest(p_groups, p_records, p_entries, p_first, p_last) AS c(g, rec, n, f, l)
    ), found AS MATERIALIZED (
        -- The records that have a row, with its day.
        SELECT c.g, c.rec, c.n, c.f, c.l, h.day
        FROM c CROSS JOIN LATERAL (
            SELECT d.day FROM errors_groupday AS d
            WHERE d.group_id = c.g AND d.latest_records > 0
                -- A subquery run for each day (an EXISTS would become a join that reads
                -- every partition at once, not the day's alone); at most one row: the key.
                AND (SELECT true FROM errors_grouprecord AS r
                     WHERE r.group_id = c.g AND r.record_id = c.rec AND r.last_day = d.day)
            ORDER BY d.day DESC LIMIT 1
        ) AS h
    ), grown AS (
        UPDATE errors_grouprecord AS r
        SET entries = r.entries + e.n, first_day = LEAST(r.first_day, e.f)
        FROM found AS e
        WHERE e.day >= e.l AND r.group_id = e.g AND r.record_id = e.rec AND r.last_day = e.day
        RETURNING r.group_id, r.record_id
    ), moved AS (
        DELETE FROM errors_grouprecord AS r USING found AS e
        WHERE e.day < e.l AND r.group_id = e.g AND r.record_id = e.rec AND r.last_day = e.day
        RETURNING r.group_id, r.record_id, r.entries, r.first_day, r.last_day
    ), merged AS (
        -- Each record of the batch with the row it moved from, if any, and whether its row
        -- grew instead: one aggregate, no join between these steps' results (with hash joins
        -- off, each such join would be a nested loop over the whole batch for every record).
        SELECT g, rec, sum(n) AS n, min(f) AS f, max(l) AS l, max(from_day) AS from_day,
               bool_or(grew) AS grew
        FROM (
            SELECT g, rec, n, f, l, NULL::date AS from_day, false AS grew FROM c
            UNION ALL
            SELECT group_id, record_id, entries, first_day, NULL, last_day, false FROM moved
            UNION ALL
            SELECT group_id, record_id, 0, NULL, NULL, NULL, true FROM grown
        ) AS u
        GROUP BY g, rec
    ), added AS (
        INSERT INTO errors_grouprecord (group_id, record_id, entries, first_day, last_day)
        SELECT g, rec, n, f, l FROM merged WHERE NOT grew ORDER BY 1, 2
    )
    SELECT array_agg(g), array_agg(from_day), array_agg(l) INTO groups, from_days, to_days
    FROM merged WHERE NOT grew;
    PERFORM errors_move_records(groups, from_days, to_days);
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0034_partial_entry_indexes"),
    ]

    operations = [
        migrations.RunSQL(
            render(RECORDS_ADDED_0035), render(records_go_with_their_day.RECORDS_ADDED_0031)
        ),
        Install(
            "errors_entries_inserted.sql",
            "a9ea40e811534fce",
            render(resolved_per_day.ENTRIES_INSERTED_0022),
        ),
    ]
