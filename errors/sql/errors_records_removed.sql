-- Entries gone row by row, one element per problem and source record (how many went, and the
-- latest day among them). A record whose entries are all on one day has an exact count: it
-- goes down, and the record goes at zero. A record spanning several days whose deleted
-- entries are all before its last_day keeps an entry on that day (a counted record always has
-- one: inserts raise it, recounts set it, a dropped day takes its records with it), so it
-- stays counted as it is; what a clean-up's straddling day deletes is mostly such old entries
-- of records seen again since. Any other record is counted again from its entries.
--
-- The records are taken day by day (the latest day of their deleted entries, l): a record's
-- row is on its last_day, never before l. Where l has a partition of the record rows, the
-- records are looked up in that partition alone, by name: a record not in it has its row on a
-- later day and stays counted as it is, unread (a lookup through the parent would try every
-- partition from l on, each as costly as a hit: two thirds of a clean-up batch's time). Its
-- problem is locked by the caller (the clean-up's batch, the delete trigger's
-- errors_add_days), so that no one counts the record again meanwhile. Where l has no
-- partition (entries dated outside the window), they are looked up through the parent.
CREATE OR REPLACE FUNCTION errors_records_removed(p_groups bigint[], p_records text[],
                                                  p_entries bigint[], p_last date[])
RETURNS void LANGUAGE plpgsql
-- Each record is looked up by its key, however few records a statement names: a hash join
-- would read the record rows whole.
SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off
AS $$
DECLARE
    day date;
    rel text;
    gone_groups bigint[];
    gone_days date[];
    recount_groups bigint[];
    recount_records text[];
    groups bigint[] := '{}';
    days date[] := '{}';
    again_groups bigint[] := '{}';
    again_records text[] := '{}';
BEGIN
    FOR day IN SELECT DISTINCT l FROM unnest(p_last) AS u(l) ORDER BY 1 LOOP
        rel := 'errors_grouprecord_p' || to_char(day, 'YYYYMMDD');
        IF NOT EXISTS (SELECT 1 FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
                       WHERE i.inhparent = 'errors_grouprecord'::regclass AND c.relname = rel) THEN
            rel := 'errors_grouprecord';
        END IF;
        EXECUTE format($sql$
            WITH c AS (
                SELECT g, rec, n FROM unnest($1, $2, $3, $4) AS c(g, rec, n, l) WHERE l = $5
            ), counted AS (
                -- Every row found is locked, also those left alone, in one order.
                SELECT r.group_id, r.record_id, r.last_day, r.first_day = r.last_day AS one_day,
                       r.first_day <> r.last_day AND $5 < r.last_day AS kept,
                       r.entries - c.n AS left_over
                FROM %1$I AS r
                JOIN c ON r.group_id = c.g AND r.record_id = c.rec AND r.last_day >= $5
                ORDER BY r.group_id, r.record_id
                FOR UPDATE OF r
            ), lowered AS (
                UPDATE %1$I AS r SET entries = counted.left_over
                FROM counted
                WHERE r.group_id = counted.group_id AND r.record_id = counted.record_id
                    AND r.last_day = counted.last_day AND counted.one_day
                    AND counted.left_over > 0
            ), gone AS (
                DELETE FROM %1$I AS r USING counted
                WHERE r.group_id = counted.group_id AND r.record_id = counted.record_id
                    AND r.last_day = counted.last_day AND counted.one_day
                    AND counted.left_over <= 0
                RETURNING r.group_id, r.last_day
            )
            SELECT (SELECT array_agg(group_id) FROM gone), (SELECT array_agg(last_day) FROM gone),
                   (SELECT array_agg(group_id) FROM counted WHERE NOT one_day AND NOT kept),
                   (SELECT array_agg(record_id) FROM counted WHERE NOT one_day AND NOT kept)
        $sql$, rel)
        INTO gone_groups, gone_days, recount_groups, recount_records
        USING p_groups, p_records, p_entries, p_last, day;
        groups := groups || coalesce(gone_groups, '{}');
        days := days || coalesce(gone_days, '{}');
        again_groups := again_groups || coalesce(recount_groups, '{}');
        again_records := again_records || coalesce(recount_records, '{}');
    END LOOP;
    IF cardinality(groups) > 0 THEN
        PERFORM errors_move_records(groups, days,
                                    array_fill(NULL::date, ARRAY[cardinality(groups)]));
    END IF;
    IF cardinality(again_groups) > 0 THEN
        PERFORM errors_recount_records(again_groups, again_records);
    END IF;
END $$;
