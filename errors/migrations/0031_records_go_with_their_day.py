"""The problems' record rows (errors_grouprecord) are partitioned by the day of their record's
latest entry, like the entries by their day, so that a clean-up drops a day's records with the
day's entries: no stale rows and no purge after it. partitions.purge_stale_records goes; the
horizon it read (errors_recordhorizon) is cleared, so that the running version's purge finds
nothing to do, and no longer read: the table goes in a later release. Each entries partition gets its records partition, and a
default one holds the records of days without a partition.

The table is built beside the plain one, filled with its live rows (those after the horizon:
the stale ones were counted off already), and swapped in, in one transaction; the functions
that write it are installed in the same transaction, so no writer ever sees the new table
with the old functions. (group_id, record_id) is no longer a key the database enforces (a
partitioned table's keys hold the partition key): every writer of a problem's records holds
the problem's row first (errors/sql/errors_records_added.sql)."""

from importlib import import_module

from django.db import migrations

from errors.sql import Install, render

previous = import_module("errors.migrations.0021_sql_from_one_source")

RECORDS_ADDED_0031 = """
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
CREATE OR REPLACE FUNCTION errors_records_added(p_groups bigint[], p_records text[],
                                                p_entries bigint[], p_first date[],
                                                p_last date[])
RETURNS void LANGUAGE plpgsql
-- Each record is looked up by its key in the partitions that may hold it, however few records a
-- statement names: a hash join would read every partition of the record rows whole.
SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    groups bigint[];
    from_days date[];
    to_days date[];
BEGIN
    WITH c AS (
        SELECT g, rec, n, f, l
        FROM unnest(p_groups, p_records, p_entries, p_first, p_last) AS c(g, rec, n, f, l)
    ), grown AS (
        UPDATE errors_grouprecord AS r
        SET entries = r.entries + c.n, first_day = LEAST(r.first_day, c.f)
        FROM c WHERE r.group_id = c.g AND r.record_id = c.rec AND r.last_day >= c.l
        RETURNING r.group_id, r.record_id
    ), moved AS (
        DELETE FROM errors_grouprecord AS r USING c
        WHERE r.group_id = c.g AND r.record_id = c.rec AND r.last_day < c.l
        RETURNING r.group_id, r.record_id, r.entries, r.first_day, r.last_day
    ), added AS (
        INSERT INTO errors_grouprecord AS r (group_id, record_id, entries, first_day, last_day)
        SELECT c.g, c.rec, c.n + coalesce(m.entries, 0), LEAST(c.f, coalesce(m.first_day, c.f)),
               c.l
        FROM c LEFT JOIN moved AS m ON m.group_id = c.g AND m.record_id = c.rec
        WHERE NOT EXISTS (SELECT 1 FROM grown WHERE grown.group_id = c.g AND grown.record_id = c.rec)
        ORDER BY 1, 2
        RETURNING r.group_id, r.record_id, r.last_day
    )
    SELECT array_agg(a.group_id), array_agg(m.last_day), array_agg(a.last_day)
    INTO groups, from_days, to_days
    FROM added AS a LEFT JOIN moved AS m ON m.group_id = a.group_id AND m.record_id = a.record_id;
    PERFORM errors_move_records(groups, from_days, to_days);
END $$;
"""

# errors/sql/errors_records_removed.sql as this migration installed it.
RECORDS_REMOVED_0031 = r"""
-- Entries gone row by row, one element per problem and source record (how many went, and the
-- latest day among them). A record whose entries are all on one day has an exact count: it
-- goes down, and the record goes at zero. A record spanning several days whose deleted
-- entries are all before its last_day keeps an entry on that day (a counted record always has
-- one: inserts raise it, recounts set it, a dropped day takes its records with it), so it
-- stays counted as it is; what a clean-up's straddling day deletes is mostly such old entries
-- of records seen again since. Any other record is counted again from its entries.
-- Rows are found by their key with its day (group_id, record_id, last_day): the record rows
-- are partitioned by last_day.
CREATE OR REPLACE FUNCTION errors_records_removed(p_groups bigint[], p_records text[],
                                                  p_entries bigint[], p_last date[])
RETURNS void LANGUAGE plpgsql
-- Each record is looked up by its key in the partitions that may hold it, however few records a
-- statement names: a hash join would read every partition of the record rows whole.
SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    recount_groups bigint[];
    recount_records text[];
    groups bigint[];
    days date[];
BEGIN
    WITH c AS (
        SELECT g, rec, n, l FROM unnest(p_groups, p_records, p_entries, p_last) AS c(g, rec, n, l)
    ), counted AS (
        -- Every row is locked, also those left alone, so that a concurrent delete counting
        -- the same record again waits for this one.
        SELECT r.group_id, r.record_id, r.last_day, r.first_day = r.last_day AS one_day,
               r.first_day <> r.last_day AND c.l < r.last_day AS kept,
               r.entries - c.n AS left_over
        -- A record's row is on its latest day, at or after that of any entry deleted: the
        -- partitions before it are never read.
        FROM errors_grouprecord AS r
        JOIN c ON r.group_id = c.g AND r.record_id = c.rec AND r.last_day >= c.l
        ORDER BY r.group_id, r.record_id
        FOR UPDATE OF r
    ), lowered AS (
        UPDATE errors_grouprecord AS r SET entries = counted.left_over
        FROM counted
        WHERE r.group_id = counted.group_id AND r.record_id = counted.record_id
            AND r.last_day = counted.last_day AND counted.one_day AND counted.left_over > 0
    ), gone AS (
        DELETE FROM errors_grouprecord AS r USING counted
        WHERE r.group_id = counted.group_id AND r.record_id = counted.record_id
            AND r.last_day = counted.last_day AND counted.one_day AND counted.left_over <= 0
        RETURNING r.group_id, r.last_day
    ), recount AS (
        SELECT array_agg(group_id) AS g, array_agg(record_id) AS r
        FROM counted WHERE NOT one_day AND NOT kept
    ), gone_days AS (
        SELECT array_agg(group_id) AS g, array_agg(last_day) AS d FROM gone
    )
    SELECT recount.g, recount.r, gone_days.g, gone_days.d
    INTO recount_groups, recount_records, groups, days FROM recount, gone_days;
    IF groups IS NOT NULL THEN
        PERFORM errors_move_records(groups, days,
                                    array_fill(NULL::date, ARRAY[cardinality(groups)]));
    END IF;
    IF recount_groups IS NOT NULL THEN
        PERFORM errors_recount_records(recount_groups, recount_records);
    END IF;
END $$;
"""

SWAP = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE errors_grouprecord_by_day (
    group_id bigint NOT NULL,
    record_id varchar(100) NOT NULL,
    entries bigint NOT NULL,
    first_day date NOT NULL,
    last_day date NOT NULL,
    moved_from date,
    PRIMARY KEY (group_id, record_id, last_day)
) PARTITION BY RANGE (last_day);
CREATE TABLE errors_grouprecord_default PARTITION OF errors_grouprecord_by_day DEFAULT;
DO $$
DECLARE
    day date;
BEGIN
    FOR day IN
        SELECT to_date(substr(c.relname, length('errors_syncerror_p') + 1), 'YYYYMMDD')
        FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'errors_syncerror'::regclass
            AND c.relname ~ '^errors_syncerror_p[0-9]{8}$'
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF errors_grouprecord_by_day FOR VALUES FROM (%L) TO (%L)',
            'errors_grouprecord_p' || to_char(day, 'YYYYMMDD'), day, day + 1);
    END LOOP;
END $$;
-- Writers of entries wait from here to the commit before their statement starts, so that
-- none is caught between the old table and the new one; readers go on.
LOCK TABLE errors_syncerror IN SHARE MODE;
LOCK TABLE errors_grouprecord IN ACCESS EXCLUSIVE MODE;
INSERT INTO errors_grouprecord_by_day (group_id, record_id, entries, first_day, last_day)
SELECT group_id, record_id, entries, first_day, last_day FROM errors_grouprecord
WHERE last_day > coalesce((SELECT day FROM errors_recordhorizon), '-infinity'::date);
DROP TABLE errors_grouprecord;
ALTER TABLE errors_grouprecord_by_day RENAME TO errors_grouprecord;
UPDATE errors_recordhorizon SET day = NULL;
"""

UNSWAP = """
SET LOCAL lock_timeout = '5s';
UPDATE errors_recordhorizon SET day = NULL;
CREATE TABLE errors_grouprecord_plain (
    group_id bigint NOT NULL,
    record_id varchar(100) NOT NULL,
    entries bigint NOT NULL,
    first_day date NOT NULL,
    last_day date NOT NULL,
    moved_from date,
    PRIMARY KEY (group_id, record_id)
);
LOCK TABLE errors_syncerror IN SHARE MODE;
LOCK TABLE errors_grouprecord IN ACCESS EXCLUSIVE MODE;
INSERT INTO errors_grouprecord_plain (group_id, record_id, entries, first_day, last_day)
SELECT group_id, record_id, entries, first_day, last_day FROM errors_grouprecord;
DROP TABLE errors_grouprecord;
ALTER TABLE errors_grouprecord_plain RENAME TO errors_grouprecord;
"""


class Migration(migrations.Migration):
    reviewed_unsafe = {
        "data-sql": "copies the live record rows once (one short row per problem and record, "
        "about a second per million) in the transaction that swaps the tables: entries being "
        "written wait for it, nothing is lost, and the entries themselves are not read.",
        "table-rewrite": "LOCK TABLE errors_syncerror IN SHARE MODE and errors_grouprecord: "
        "writers of entries wait while the record rows are copied (readers go on), so none is "
        "lost and none is caught between the two tables; nothing else reads the record rows.",
        "drop-or-rename": "errors_grouprecord is swapped for its partitioned copy under the "
        "same name, with the functions that write it (the running version writes it only "
        "through them).",
    }
    dependencies = [
        ("errors", "0030_work_heartbeat"),
    ]

    operations = [
        migrations.RunSQL(render(RECORDS_ADDED_0031), render(previous.RECORDS_ADDED_0021)),
        Install(
            "errors_recount_records.sql", "ee4437b3694a04fd", render(previous.RECOUNT_RECORDS_0021)
        ),
        migrations.RunSQL(render(RECORDS_REMOVED_0031), render(previous.RECORDS_REMOVED_0021)),
        Install("errors_day_dropped.sql", "b52120c0047d9324", render(previous.DAY_DROPPED_0021)),
        # After the functions (in the same transaction): backwards, the horizon the old ones
        # read is back before they are.
        migrations.RunSQL(SWAP, UNSWAP),
    ]
