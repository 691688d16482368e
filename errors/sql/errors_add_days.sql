-- Entries, open entries and resolved entries per problem and day (errors_groupday), and each
-- problem's entry count (errors_errorgroup.count), moved on by one statement's changes: the one
-- place the entry figures are written, for every insert (COPY too), update and delete of
-- entries, whatever code runs it (see docs/development/database.md).
--
-- The arguments are one element per (problem, day) with the change of entries and of open
-- entries, counted on the day an entry was created, and of resolved entries, counted on the
-- day an entry was resolved (deletes leave it: p_resolved NULL). Day rows are upserted in key
-- order, all three figures in one statement, so that concurrent writers lock them in the same
-- order; a problem's count is its day rows' entries summed, so it moves by the same amounts.
-- A count never goes below 0 (its column's check would refuse the statement).
CREATE OR REPLACE FUNCTION errors_add_days(p_groups bigint[], p_days date[], p_entries bigint[],
                                           p_open bigint[], p_resolved bigint[] DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO errors_groupday AS d (group_id, day, entries, open, resolved)
    SELECT g, dd, e, o, coalesce(r, 0)
    FROM unnest(p_groups, p_days, p_entries, p_open, coalesce(p_resolved, '{}'))
        AS c(g, dd, e, o, r)
    ORDER BY g, dd
    ON CONFLICT (group_id, day) DO UPDATE
        SET entries = d.entries + EXCLUDED.entries, open = d.open + EXCLUDED.open,
            resolved = d.resolved + EXCLUDED.resolved;
    UPDATE errors_errorgroup AS g SET count = GREATEST(g.count + c.n, 0)
    FROM (
        SELECT grp, sum(e) AS n FROM unnest(p_groups, p_entries) AS c(grp, e) GROUP BY 1
    ) AS c
    WHERE g.id = c.grp AND c.n <> 0;
$$;
