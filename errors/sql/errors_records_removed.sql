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
