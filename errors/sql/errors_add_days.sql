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
