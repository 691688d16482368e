"""Row-level deletes leave alone the records that keep a later entry.

A counted record always has an entry on its last_day (inserts raise it, recounts set it, and
a dropped day takes its records off). When every entry a statement deletes of a record that
spans several days is dated before its last_day, the record keeps that entry: it stays
counted on the same day, and nothing needs counting again. Its entries figure, never exact
for a record spanning days, is left as it is. This is what a clean-up's straddling day
deletes: old entries of records seen again since."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION errors_records_removed(p_groups bigint[], p_records text[], p_entries bigint[],
                                       p_last date[])
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

CREATE OR REPLACE FUNCTION errors_entries_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM errors_add_days(array_agg(g), array_agg(d), array_agg(e), array_agg(o)) FROM (
        SELECT group_id AS g, errors_entry_day(created_at) AS d, -count(*) AS e,
               -count(*) FILTER (WHERE status = 'open') AS o
        FROM old_rows WHERE group_id IS NOT NULL GROUP BY 1, 2
    ) AS c;
    PERFORM errors_records_removed(array_agg(g), array_agg(r), array_agg(n), array_agg(l)) FROM (
        SELECT group_id AS g, source_record_id AS r, count(*) AS n,
               max(errors_entry_day(created_at)) AS l
        FROM old_rows WHERE group_id IS NOT NULL AND source_record_id <> '' GROUP BY 1, 2
    ) AS c;
    RETURN NULL;
END $$;
"""

BACKWARD = """
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
DROP FUNCTION errors_records_removed(bigint[], text[], bigint[], date[]);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0019_entry_keys_cleared_by_delete_triggers"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
