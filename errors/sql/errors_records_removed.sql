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
