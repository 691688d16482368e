"""The functions and triggers the errors app keeps in the database now come from one place,
errors/sql, and each problem's entry count (ErrorGroup.count) is kept by them alone.

errors_add_days moves a problem's count by the same amounts as its day figures, for every
insert, update and delete of entries, and errors_day_dropped takes a dropped day's entries off
(partitions.drop_day did that in Python): the writers of the count in Python (the problems'
upsert when entries arrive, the clean-up's batches, and the signal on each deleted entry) no
longer write it. The counts are set once from the day figures, which the triggers kept for
every change, so a count that missed a change made outside those writers (a DELETE in psql,
an entry moved to another problem) is right again.

The other files are installed as they are: the same code as migrations 0011, 0017, 0019 and
0020 left, with comments; backwards they stay. The errors_records_removed without the last
day, which 0020 replaced but left behind, goes."""

from django.db import migrations

from errors.sql import Install, refuse_other_time_zone, render

# As migration 0011 installed it.
ADD_DAYS_0011 = """
CREATE OR REPLACE FUNCTION errors_add_days(p_groups bigint[], p_days date[], p_entries bigint[],
                                p_open bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO errors_groupday AS d (group_id, day, entries, open)
    SELECT g, dd, e, o FROM unnest(p_groups, p_days, p_entries, p_open) AS c(g, dd, e, o)
    ORDER BY g, dd
    ON CONFLICT (group_id, day) DO UPDATE
        SET entries = d.entries + EXCLUDED.entries, open = d.open + EXCLUDED.open
$$;
"""

# As migration 0017 installed it (migration 0020's reverse calls it).
RECORDS_REMOVED_0017 = """
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
"""

# As this migration installed them; errors/sql holds them as they are now (0022).
ADD_DAYS_0021 = """
-- Entries and open entries per problem and day (errors_groupday), and each problem's entry
-- count (errors_errorgroup.count), moved on by one statement's changes: the one place both
-- entry figures are written, for every insert (COPY too), update and delete of entries,
-- whatever code runs it (see docs/development/figures.md).
--
-- The arguments are one element per (problem, day) with the change of entries and of open
-- entries. Day rows are upserted in key order so that concurrent writers lock them in the same
-- order; a problem's count is its day rows' entries summed, so it moves by the same amounts.
-- A count never goes below 0 (its column's check would refuse the statement).
CREATE OR REPLACE FUNCTION errors_add_days(p_groups bigint[], p_days date[], p_entries bigint[],
                                           p_open bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO errors_groupday AS d (group_id, day, entries, open)
    SELECT g, dd, e, o FROM unnest(p_groups, p_days, p_entries, p_open) AS c(g, dd, e, o)
    ORDER BY g, dd
    ON CONFLICT (group_id, day) DO UPDATE
        SET entries = d.entries + EXCLUDED.entries, open = d.open + EXCLUDED.open;
    UPDATE errors_errorgroup AS g SET count = GREATEST(g.count + c.n, 0)
    FROM (
        SELECT grp, sum(e) AS n FROM unnest(p_groups, p_entries) AS c(grp, e) GROUP BY 1
    ) AS c
    WHERE g.id = c.grp AND c.n <> 0;
$$;
"""

ENTRIES_INSERTED_0021 = """
-- New entries (INSERT and COPY alike): once per statement, with its rows as a transition
-- table, one aggregate per problem and day and one per problem and record, so the cost per
-- statement does not grow with its rows one by one. Entries of no problem count nowhere.
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

CREATE OR REPLACE TRIGGER errors_entries_inserted AFTER INSERT ON errors_syncerror
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION errors_entries_inserted();
"""

ENTRIES_UPDATED_0021 = """
-- Changed entries: a status change moves open entries between days' figures; an entry that
-- changed problem or day moves its entry between days and problems too. Status changes leave
-- the records as they are; a record whose entries changed problem, record or day is counted
-- again.
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

CREATE OR REPLACE TRIGGER errors_entries_updated AFTER UPDATE ON errors_syncerror
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION errors_entries_updated();
"""

# Reads the day figures only (one small row per problem and day), never the entries.
COUNTS_FROM_DAYS = """
UPDATE errors_errorgroup AS g SET count = c.n
FROM (
    SELECT p.id, coalesce(sum(gd.entries), 0) AS n
    FROM errors_errorgroup AS p LEFT JOIN errors_groupday AS gd ON gd.group_id = p.id
    GROUP BY p.id
) AS c
WHERE g.id = c.id AND g.count <> c.n;
"""

RECORDS_ADDED_0021 = """
-- New entries, one element per problem and source record (how many, and their first and
-- last day): a record seen for the first time (or again after its row went stale, on or
-- before errors_recordhorizon.day) counts; one whose latest day moves forward moves to the new
-- day's latest_records. moved_from carries the old last_day out of the upsert, as RETURNING
-- shows only the new row.
CREATE OR REPLACE FUNCTION errors_records_added(p_groups bigint[], p_records text[],
                                                p_entries bigint[], p_first date[],
                                                p_last date[])
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
"""

RECOUNT_RECORDS_0021 = """
-- Records counted again from the entries themselves (after row-level changes that the kept
-- figures cannot follow on their own: a record's entries moved to another problem, record or
-- day, or a record spanning several days lost entries on its latest day). Reads the entries by
-- the upper(source_record_id) index; only admin deletes, the demo's re-dating and the
-- row-by-row part of a clean-up get here.
CREATE OR REPLACE FUNCTION errors_recount_records(p_groups bigint[], p_records text[])
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
"""

RECORDS_REMOVED_0021 = """
-- Entries gone row by row, one element per problem and source record (how many went, and the
-- latest day among them). A record whose entries are all on one day has an exact count: it
-- goes down, and the record goes at zero. A record spanning several days whose deleted
-- entries are all before its last_day keeps an entry on that day (a counted record always has
-- one: inserts raise it, recounts set it, a dropped day takes its records off), so it stays
-- counted as it is; what a clean-up's straddling day deletes is mostly such old entries of
-- records seen again since. Any other record is counted again from its entries.
CREATE OR REPLACE FUNCTION errors_records_removed(p_groups bigint[], p_records text[],
                                                  p_entries bigint[], p_last date[])
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
        SELECT g, rec, n, l FROM unnest(p_groups, p_records, p_entries, p_last) AS c(g, rec, n, l)
    ), counted AS (
        -- Every row is locked, also those left alone, so that a concurrent delete counting
        -- the same record again waits for this one.
        SELECT r.ctid AS at, r.group_id, r.record_id, r.last_day, r.first_day = r.last_day AS one_day,
               r.first_day <> r.last_day AND c.l < r.last_day AS kept,
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
           array_agg(group_id) FILTER (WHERE NOT one_day AND NOT kept),
           array_agg(record_id) FILTER (WHERE NOT one_day AND NOT kept)
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
"""

DAY_DROPPED_0021 = """
-- A day's partition of the entries dropped whole by a clean-up: DROP TABLE fires no trigger,
-- so this takes the day's entries off their problems' figures instead, from the day figures
-- alone (never reading the entries): the day's rows go, each problem's count goes down by the
-- day's entries and its records by the records whose latest entry was that day. A clean-up
-- removes every entry before its cut-off, so those records have none left; their
-- errors_grouprecord rows stay behind as stale rows (last_day on or before the horizon, which
-- the other functions treat as absent) until partitions.purge_stale_records deletes them.
--
-- partitions.drop_day calls it in the transaction that detaches and drops the partition, with
-- the day's problems locked; returns how many entries of problems went.
CREATE OR REPLACE FUNCTION errors_day_dropped(p_day date) RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM errors_groupday WHERE day = p_day
        RETURNING group_id, entries, latest_records
    ), taken AS (
        UPDATE errors_errorgroup AS g
        SET count = GREATEST(g.count - gone.entries, 0),
            records = GREATEST(g.records - gone.latest_records, 0)
        FROM gone WHERE gone.group_id = g.id
    ), horizon AS (
        UPDATE errors_recordhorizon SET day = GREATEST(day, p_day)
    )
    SELECT coalesce(sum(entries), 0)::bigint FROM gone
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0020_records_kept_by_later_entries"),
    ]

    operations = [
        migrations.RunPython(refuse_other_time_zone, migrations.RunPython.noop, elidable=False),
        migrations.RunSQL(
            "DROP FUNCTION errors_records_removed(bigint[], text[], bigint[]);",
            RECORDS_REMOVED_0017,
        ),
        Install("errors_entry_day.sql", "e9ae50eeb0086ba3", migrations.RunSQL.noop),
        migrations.RunSQL(render(ADD_DAYS_0021), ADD_DAYS_0011),
        Install("errors_move_records.sql", "8a019219745517c6", migrations.RunSQL.noop),
        migrations.RunSQL(render(RECORDS_ADDED_0021), migrations.RunSQL.noop),
        migrations.RunSQL(render(RECOUNT_RECORDS_0021), migrations.RunSQL.noop),
        migrations.RunSQL(render(RECORDS_REMOVED_0021), migrations.RunSQL.noop),
        migrations.RunSQL(render(ENTRIES_INSERTED_0021), migrations.RunSQL.noop),
        migrations.RunSQL(render(ENTRIES_UPDATED_0021), migrations.RunSQL.noop),
        Install("errors_entries_deleted.sql", "7b5a1a28615bf089", migrations.RunSQL.noop),
        migrations.RunSQL(render(DAY_DROPPED_0021), "DROP FUNCTION errors_day_dropped(date);"),
        Install(
            "errors_forget_deleted_sync_syncjob.sql", "d88f264af4aa63ae", migrations.RunSQL.noop
        ),
        Install(
            "errors_forget_deleted_couplings_coupling.sql",
            "4615afd22994191e",
            migrations.RunSQL.noop,
        ),
        Install(
            "errors_forget_deleted_sync_tablemapping.sql",
            "d4c1060fc40d7cce",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(COUNTS_FROM_DAYS, migrations.RunSQL.noop),
    ]
