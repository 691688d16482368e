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
        Install("errors_records_added.sql", "c648dc17db1bb849", migrations.RunSQL.noop),
        Install("errors_recount_records.sql", "9994b3c14d26db3c", migrations.RunSQL.noop),
        Install("errors_records_removed.sql", "5a95c48594fb7d50", migrations.RunSQL.noop),
        migrations.RunSQL(render(ENTRIES_INSERTED_0021), migrations.RunSQL.noop),
        migrations.RunSQL(render(ENTRIES_UPDATED_0021), migrations.RunSQL.noop),
        Install("errors_entries_deleted.sql", "7b5a1a28615bf089", migrations.RunSQL.noop),
        Install(
            "errors_day_dropped.sql", "282f55ad538da080", "DROP FUNCTION errors_day_dropped(date);"
        ),
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
