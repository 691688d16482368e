-- Records counted again from the entries themselves (after row-level changes that the kept
-- figures cannot follow on their own: a record's entries moved to another problem, record or
-- day, or a record spanning several days lost entries on its latest day). Reads the entries by
-- the upper(source_record_id) index; only admin deletes, the demo's re-dating and the
-- row-by-row part of a clean-up get here.
CREATE OR REPLACE FUNCTION errors_recount_records(p_groups bigint[], p_records text[])
RETURNS void LANGUAGE plpgsql
-- Each record is looked up by its key in the partitions that may hold it, however few records a
-- statement names: a hash join would read every partition of the record rows whole.
SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    groups bigint[];
    days date[];
BEGIN
    -- Their problems first, in the order writers lock them: a record has one row because its
    -- writers take turns on its problem (see errors_records_added).
    PERFORM 1 FROM errors_errorgroup WHERE id = ANY (p_groups) ORDER BY fingerprint FOR UPDATE;
    -- The rows leave their days' latest_records.
    WITH gone AS (
        DELETE FROM errors_grouprecord AS r
        USING (SELECT DISTINCT g, rec FROM unnest(p_groups, p_records) AS c(g, rec)) AS c
        WHERE r.group_id = c.g AND r.record_id = c.rec
        RETURNING r.group_id, r.last_day
    )
    SELECT array_agg(group_id), array_agg(last_day) INTO groups, days FROM gone;
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
    SELECT array_agg(group_id), array_agg(last_day) INTO groups, days FROM back;
    PERFORM errors_move_records(groups, array_fill(NULL::date, ARRAY[coalesce(cardinality(groups), 0)]), days);
END $$;
