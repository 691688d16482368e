-- Entries and open entries per problem and day (errors_groupday), moved on by one statement's
-- changes: one element per (problem, day) with the change of entries and of open entries,
-- for every insert (COPY too), update and delete of entries, whatever code runs it. Rows are
-- upserted in key order so that concurrent writers lock them in the same order.
CREATE OR REPLACE FUNCTION errors_add_days(p_groups bigint[], p_days date[], p_entries bigint[],
                                           p_open bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO errors_groupday AS d (group_id, day, entries, open)
    SELECT g, dd, e, o FROM unnest(p_groups, p_days, p_entries, p_open) AS c(g, dd, e, o)
    ORDER BY g, dd
    ON CONFLICT (group_id, day) DO UPDATE
        SET entries = d.entries + EXCLUDED.entries, open = d.open + EXCLUDED.open
$$;
