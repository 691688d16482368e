"""Records affected, kept so that dropping a day costs one row per problem, not one per entry.

Each GroupRecord row keeps the day of its record's latest entry (last_day, raised by the
insert trigger with GREATEST) and GroupDay.latest_records counts the records whose latest
entry is on that day. A clean-up by time removes every entry before its cut-off, so the
records whose latest entry is on a dropped day have none left: ErrorGroup.records goes down
by that day's latest_records. Their GroupRecord rows stay behind as stale rows (last_day on
or before errors_recordhorizon.day), which the triggers treat as absent, until a background
purge deletes them in small batches and clears the horizon.

Row-level deletes stay exact: a record whose entries are all on one day keeps an exact count
and goes when it reaches zero; any other record is counted again from the entries (the
upper(source_record_id) index), which only admin deletes, the demo's re-dating and the
row-by-row part of a clean-up do."""

import datetime
from importlib import import_module

from django.db import migrations, models

# Backwards, the trigger functions go back to the text migration 0011 installed.
figures_0011 = import_module("errors.migrations.0011_group_figures")

FUNCTIONS = """
CREATE TABLE errors_recordhorizon (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    day date
);
INSERT INTO errors_recordhorizon (id, day) VALUES (true, NULL);

DROP FUNCTION errors_add_records(bigint[], text[], bigint[]);

-- Moves records between days' latest_records and changes the problems' records count.
CREATE FUNCTION errors_move_records(p_groups bigint[], p_from date[], p_to date[])
RETURNS void LANGUAGE sql AS $$
    WITH moves AS (
        SELECT g, t AS day, 1 AS n FROM unnest(p_groups, p_from, p_to) AS m(g, f, t)
        WHERE t IS NOT NULL AND f IS DISTINCT FROM t
        UNION ALL
        SELECT g, f, -1 FROM unnest(p_groups, p_from, p_to) AS m(g, f, t)
        WHERE f IS NOT NULL AND f IS DISTINCT FROM t
    ), days AS (
        INSERT INTO errors_groupday AS d (group_id, day, entries, open, latest_records)
        SELECT g, day, 0, 0, sum(n) FROM moves GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
        ON CONFLICT (group_id, day) DO UPDATE
            SET latest_records = d.latest_records + EXCLUDED.latest_records
    )
    UPDATE errors_errorgroup AS g SET records = GREATEST(g.records + c.n, 0)
    FROM (
        SELECT g, sum((t IS NOT NULL)::int - (f IS NOT NULL)::int) AS n
        FROM unnest(p_groups, p_from, p_to) AS m(g, f, t) GROUP BY 1
    ) AS c
    WHERE g.id = c.g AND c.n <> 0
$$;

-- New entries: a record seen for the first time (or again after its row went stale)
-- counts; one whose latest day moves forward moves to the new day's latest_records.
CREATE FUNCTION errors_records_added(p_groups bigint[], p_records text[], p_entries bigint[],
                                     p_first date[], p_last date[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    horizon date := (SELECT day FROM errors_recordhorizon);
    groups bigint[];
    from_days date[];
    to_days date[];
BEGIN
    WITH up AS (
        INSERT INTO errors_grouprecord AS r
            (group_id, record_id, entries, first_day, last_day, moved_from)
        SELECT g, rec, n, f, l, NULL
        FROM unnest(p_groups, p_records, p_entries, p_first, p_last) AS c(g, rec, n, f, l)
        ORDER BY g, rec
        ON CONFLICT (group_id, record_id) DO UPDATE SET
            moved_from = CASE WHEN r.last_day <= horizon THEN NULL ELSE r.last_day END,
            entries = CASE WHEN r.last_day <= horizon THEN EXCLUDED.entries
                           ELSE r.entries + EXCLUDED.entries END,
            first_day = CASE WHEN r.last_day <= horizon THEN EXCLUDED.first_day
                             ELSE LEAST(r.first_day, EXCLUDED.first_day) END,
            last_day = CASE WHEN r.last_day <= horizon THEN EXCLUDED.last_day
                            ELSE GREATEST(r.last_day, EXCLUDED.last_day) END
        RETURNING r.group_id, r.moved_from, r.last_day
    )
    -- An entry dated on or before the horizon leaves its row stale: it is not counted, and a
    -- clean-up deletes it soon anyway.
    SELECT array_agg(group_id), array_agg(moved_from), array_agg(last_day)
    INTO groups, from_days, to_days FROM up WHERE horizon IS NULL OR last_day > horizon;
    PERFORM errors_move_records(groups, from_days, to_days);
END $$;

-- Records counted again from the entries themselves (after row-level changes that the
-- kept figures cannot follow on their own).
CREATE FUNCTION errors_recount_records(p_groups bigint[], p_records text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    horizon date := (SELECT day FROM errors_recordhorizon);
    groups bigint[];
    days date[];
BEGIN
    -- Rows that were counted leave their days; stale ones were taken off already.
    WITH gone AS (
        DELETE FROM errors_grouprecord AS r
        USING (SELECT DISTINCT g, rec FROM unnest(p_groups, p_records) AS c(g, rec)) AS c
        WHERE r.group_id = c.g AND r.record_id = c.rec
        RETURNING r.group_id, r.last_day
    )
    SELECT array_agg(group_id), array_agg(last_day) INTO groups, days FROM gone
    WHERE horizon IS NULL OR last_day > horizon;
    PERFORM errors_move_records(groups, days, array_fill(NULL::date, ARRAY[coalesce(cardinality(groups), 0)]));
    WITH back AS (
        INSERT INTO errors_grouprecord AS r (group_id, record_id, entries, first_day, last_day)
        SELECT c.g, c.rec, count(*), min(errors_entry_day(e.created_at)),
               max(errors_entry_day(e.created_at))
        FROM (SELECT DISTINCT g, rec FROM unnest(p_groups, p_records) AS c(g, rec)) AS c
        JOIN errors_syncerror AS e ON upper(e.source_record_id) = upper(c.rec)
            AND e.source_record_id = c.rec AND e.group_id = c.g
        GROUP BY 1, 2 ORDER BY 1, 2
        RETURNING r.group_id, r.last_day
    )
    SELECT array_agg(group_id), array_agg(last_day) INTO groups, days FROM back
    WHERE horizon IS NULL OR last_day > horizon;
    PERFORM errors_move_records(groups, array_fill(NULL::date, ARRAY[coalesce(cardinality(groups), 0)]), days);
END $$;

-- Entries gone row by row: a record whose entries are all on one day has an exact count and
-- goes at zero; others are counted again.
CREATE FUNCTION errors_records_removed(p_groups bigint[], p_records text[], p_entries bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    horizon date := (SELECT day FROM errors_recordhorizon);
    emptied tid[];
    recount_groups bigint[];
    recount_records text[];
    groups bigint[];
    days date[];
BEGIN
    WITH c AS (
        SELECT g, rec, n FROM unnest(p_groups, p_records, p_entries) AS c(g, rec, n)
    ), counted AS (
        SELECT r.ctid AS at, r.group_id, r.record_id, r.last_day, r.first_day = r.last_day AS one_day,
               r.entries - c.n AS left_over
        FROM errors_grouprecord AS r JOIN c ON r.group_id = c.g AND r.record_id = c.rec
        WHERE horizon IS NULL OR r.last_day > horizon
        ORDER BY r.group_id, r.record_id
        FOR UPDATE OF r
    ), lowered AS (
        UPDATE errors_grouprecord AS r SET entries = counted.left_over
        FROM counted WHERE r.ctid = counted.at AND counted.one_day AND counted.left_over > 0
    )
    SELECT array_agg(at) FILTER (WHERE one_day AND left_over <= 0),
           array_agg(group_id) FILTER (WHERE NOT one_day),
           array_agg(record_id) FILTER (WHERE NOT one_day)
    INTO emptied, recount_groups, recount_records FROM counted;
    IF emptied IS NOT NULL THEN
        WITH gone AS (
            DELETE FROM errors_grouprecord WHERE ctid = ANY(emptied)
            RETURNING group_id, last_day
        )
        SELECT array_agg(group_id), array_agg(last_day) INTO groups, days FROM gone;
        PERFORM errors_move_records(groups, days,
                                    array_fill(NULL::date, ARRAY[coalesce(cardinality(groups), 0)]));
    END IF;
    IF recount_groups IS NOT NULL THEN
        PERFORM errors_recount_records(recount_groups, recount_records);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION errors_entries_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM errors_add_days(array_agg(g), array_agg(d), array_agg(e), array_agg(o)) FROM (
        SELECT group_id AS g, errors_entry_day(created_at) AS d, count(*) AS e,
               count(*) FILTER (WHERE status = 'open') AS o
        FROM new_rows WHERE group_id IS NOT NULL GROUP BY 1, 2
    ) AS c;
    PERFORM errors_records_added(array_agg(g), array_agg(r), array_agg(n), array_agg(f),
                                 array_agg(l)) FROM (
        SELECT group_id AS g, source_record_id AS r, count(*) AS n,
               min(errors_entry_day(created_at)) AS f, max(errors_entry_day(created_at)) AS l
        FROM new_rows WHERE group_id IS NOT NULL AND source_record_id <> '' GROUP BY 1, 2
    ) AS c;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION errors_entries_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM errors_add_days(array_agg(g), array_agg(d), array_agg(e), array_agg(o)) FROM (
        SELECT group_id AS g, errors_entry_day(created_at) AS d, -count(*) AS e,
               -count(*) FILTER (WHERE status = 'open') AS o
        FROM old_rows WHERE group_id IS NOT NULL GROUP BY 1, 2
    ) AS c;
    PERFORM errors_records_removed(array_agg(g), array_agg(r), array_agg(n)) FROM (
        SELECT group_id AS g, source_record_id AS r, count(*) AS n
        FROM old_rows WHERE group_id IS NOT NULL AND source_record_id <> '' GROUP BY 1, 2
    ) AS c;
    RETURN NULL;
END $$;

-- Status changes leave the records as they are; a record whose entries changed problem,
-- record or day is counted again.
CREATE OR REPLACE FUNCTION errors_entries_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM errors_add_days(array_agg(g), array_agg(d), array_agg(e), array_agg(o)) FROM (
        WITH changes AS (
            SELECT group_id, created_at, status, 1 AS sign FROM new_rows
            WHERE group_id IS NOT NULL
            UNION ALL
            SELECT group_id, created_at, status, -1 FROM old_rows WHERE group_id IS NOT NULL
        )
        SELECT group_id AS g, errors_entry_day(created_at) AS d, sum(sign) AS e,
               coalesce(sum(sign) FILTER (WHERE status = 'open'), 0) AS o
        FROM changes GROUP BY 1, 2
        HAVING sum(sign) <> 0 OR coalesce(sum(sign) FILTER (WHERE status = 'open'), 0) <> 0
    ) AS c;
    PERFORM errors_recount_records(array_agg(g), array_agg(r)) FROM (
        WITH changes AS (
            SELECT group_id, source_record_id, created_at, 1 AS sign FROM new_rows
            UNION ALL
            SELECT group_id, source_record_id, created_at, -1 FROM old_rows
        )
        SELECT DISTINCT group_id AS g, source_record_id AS r FROM (
            SELECT group_id, source_record_id FROM changes
            WHERE group_id IS NOT NULL AND source_record_id <> ''
            GROUP BY group_id, source_record_id, errors_entry_day(created_at)
            HAVING sum(sign) <> 0
        ) AS moved
    ) AS c;
    RETURN NULL;
END $$;
"""

FILL = """
UPDATE errors_grouprecord AS r SET first_day = e.f, last_day = e.l
FROM (
    SELECT group_id, source_record_id, min(errors_entry_day(created_at)) AS f,
           max(errors_entry_day(created_at)) AS l
    FROM errors_syncerror WHERE group_id IS NOT NULL AND source_record_id <> '' GROUP BY 1, 2
) AS e
WHERE r.group_id = e.group_id AND r.record_id = e.source_record_id;
UPDATE errors_groupday AS d SET latest_records = r.n
FROM (SELECT group_id, last_day, count(*) AS n FROM errors_grouprecord GROUP BY 1, 2) AS r
WHERE d.group_id = r.group_id AND d.day = r.last_day;
"""

# As migration 0011 installed it.
ADD_RECORDS_0011 = """
CREATE FUNCTION errors_add_records(p_groups bigint[], p_records text[], p_deltas bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    emptied tid[];
BEGIN
    WITH up AS (
        INSERT INTO errors_grouprecord AS r (group_id, record_id, entries)
        SELECT g, rec, n FROM unnest(p_groups, p_records, p_deltas) AS c(g, rec, n)
        ORDER BY g, rec
        ON CONFLICT (group_id, record_id) DO UPDATE SET entries = r.entries + EXCLUDED.entries
        RETURNING r.ctid AS at, r.group_id, r.entries, r.xmax = 0 AS created
    ), moved AS (
        SELECT group_id, count(*) FILTER (WHERE created AND entries > 0)
                         - count(*) FILTER (WHERE NOT created AND entries <= 0) AS n
        FROM up GROUP BY group_id
    ), counted AS (
        UPDATE errors_errorgroup AS g SET records = GREATEST(g.records + moved.n, 0)
        FROM moved WHERE g.id = moved.group_id AND moved.n <> 0
    )
    SELECT array_agg(at) FILTER (WHERE entries <= 0) INTO emptied FROM up;
    -- By the row versions just written (locked by this transaction): a TID scan, whatever
    -- the planner guesses about the arrays.
    IF emptied IS NOT NULL THEN
        DELETE FROM errors_grouprecord WHERE ctid = ANY(emptied);
    END IF;
END $$;
"""

NEW_FUNCTIONS_DROPPED = """
DROP FUNCTION errors_records_removed(bigint[], text[], bigint[]);
DROP FUNCTION errors_recount_records(bigint[], text[]);
DROP FUNCTION errors_records_added(bigint[], text[], bigint[], date[], date[]);
DROP FUNCTION errors_move_records(bigint[], date[], date[]);
DROP TRIGGER errors_entries_inserted ON errors_syncerror;
DROP TRIGGER errors_entries_updated ON errors_syncerror;
DROP TRIGGER errors_entries_deleted ON errors_syncerror;
DROP FUNCTION errors_entries_inserted();
DROP FUNCTION errors_entries_updated();
DROP FUNCTION errors_entries_deleted();
"""

# Migration 0011's figures have no stale rows and count each record's entries exactly (these
# count a record's entries only while they are all on one day): counted again from the
# entries. first_day and last_day are still there (their columns go after this).
RECOUNT = """
DELETE FROM errors_grouprecord;
INSERT INTO errors_grouprecord (group_id, record_id, entries, first_day, last_day)
SELECT group_id, source_record_id, count(*), min(errors_entry_day(created_at)),
       max(errors_entry_day(created_at))
FROM errors_syncerror WHERE group_id IS NOT NULL AND source_record_id <> '' GROUP BY 1, 2;
UPDATE errors_errorgroup AS g SET records = c.n
FROM (
    SELECT p.id, count(r.record_id) AS n
    FROM errors_errorgroup AS p LEFT JOIN errors_grouprecord AS r ON r.group_id = p.id
    GROUP BY p.id
) AS c
WHERE g.id = c.id AND g.records <> c.n;
DELETE FROM errors_groupday WHERE entries = 0 AND open = 0;
DROP TABLE errors_recordhorizon;
"""

BACKWARD = "".join(
    [
        NEW_FUNCTIONS_DROPPED,
        ADD_RECORDS_0011,
        *(figures_0011.CHANGED % trigger for trigger in figures_0011.TRIGGERS),
        RECOUNT,
    ]
)


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0016_sync_error_without_duplicate_fk_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="groupday",
            name="latest_records",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="grouprecord",
            name="first_day",
            field=models.DateField(default=datetime.date(1970, 1, 1)),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="grouprecord",
            name="last_day",
            field=models.DateField(default=datetime.date(1970, 1, 1)),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="grouprecord",
            name="moved_from",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.RunSQL(FUNCTIONS + FILL, BACKWARD),
    ]
