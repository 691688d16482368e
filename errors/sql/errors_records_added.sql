-- New entries, one element per problem and source record (how many, and their first and last
-- day), written by errors.figures.entries_added once per batch of record_errors. The record
-- rows are partitioned by their last_day like the entries by their day, so that a clean-up
-- drops a day's records with the day: a record seen for the first time counts; one whose
-- latest day moves forward leaves its old day's partition for the new one (a delete and an
-- insert: a partition key cannot move in an upsert) and moves to the new day's
-- latest_records; one seen again on or before its latest day only grows.
--
-- A record has one row: (group_id, record_id) is not a key the partitioned table can enforce
-- (its keys must hold last_day), so it holds because every writer of a problem's record rows
-- holds the problem's row locked first (record_errors' upsert of the problems, the clean-up's
-- batches, the delete trigger through errors_add_days, errors_recount_records itself).
CREATE OR REPLACE FUNCTION errors_records_added(p_groups bigint[], p_records text[],
                                                p_entries bigint[], p_first date[],
                                                p_last date[])
RETURNS void LANGUAGE plpgsql
-- Each record is looked up by its key in the partitions that may hold it, however few records a
-- statement names: a hash join would read every partition of the record rows whole.
SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    groups bigint[];
    from_days date[];
    to_days date[];
BEGIN
    WITH c AS (
        SELECT g, rec, n, f, l
        FROM unnest(p_groups, p_records, p_entries, p_first, p_last) AS c(g, rec, n, f, l)
    ), grown AS (
        UPDATE errors_grouprecord AS r
        SET entries = r.entries + c.n, first_day = LEAST(r.first_day, c.f)
        FROM c WHERE r.group_id = c.g AND r.record_id = c.rec AND r.last_day >= c.l
        RETURNING r.group_id, r.record_id
    ), moved AS (
        DELETE FROM errors_grouprecord AS r USING c
        WHERE r.group_id = c.g AND r.record_id = c.rec AND r.last_day < c.l
        RETURNING r.group_id, r.record_id, r.entries, r.first_day, r.last_day
    ), added AS (
        INSERT INTO errors_grouprecord AS r (group_id, record_id, entries, first_day, last_day)
        SELECT c.g, c.rec, c.n + coalesce(m.entries, 0), LEAST(c.f, coalesce(m.first_day, c.f)),
               c.l
        FROM c LEFT JOIN moved AS m ON m.group_id = c.g AND m.record_id = c.rec
        WHERE NOT EXISTS (SELECT 1 FROM grown WHERE grown.group_id = c.g AND grown.record_id = c.rec)
        ORDER BY 1, 2
        RETURNING r.group_id, r.record_id, r.last_day
    )
    SELECT array_agg(a.group_id), array_agg(m.last_day), array_agg(a.last_day)
    INTO groups, from_days, to_days
    FROM added AS a LEFT JOIN moved AS m ON m.group_id = a.group_id AND m.record_id = a.record_id;
    PERFORM errors_move_records(groups, from_days, to_days);
END $$;
