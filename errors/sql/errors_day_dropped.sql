-- A day's partition of the entries dropped or emptied whole by a clean-up: DROP and TRUNCATE
-- fire no trigger, so this takes the day's entries off their problems' figures instead, from
-- the day figures alone (never reading the entries): the day's rows go, each problem's count
-- goes down by the day's entries and its records by the records whose latest entry was that
-- day. A clean-up removes every entry before its cut-off, so those records have none left;
-- their errors_grouprecord rows are in the day's partition of that table, which goes with
-- the entries' (partitions.drop_day, partitions.empty_day).
--
-- Called in the transaction that drops or empties the partitions, with the day's problems
-- locked; returns how many entries of problems went.
CREATE OR REPLACE FUNCTION errors_day_dropped(p_day date) RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM errors_groupday WHERE day = p_day
        RETURNING group_id, entries, latest_records
    ), taken AS (
        UPDATE errors_errorgroup AS g
        SET count = GREATEST(g.count - gone.entries, 0),
            records = GREATEST(g.records - gone.latest_records, 0)
        FROM gone WHERE gone.group_id = g.id
    )
    SELECT coalesce(sum(entries), 0)::bigint FROM gone
$$;
