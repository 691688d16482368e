-- A day's partition of the entries dropped whole by a clean-up: DROP TABLE fires no trigger,
-- so this takes the day's entries off their problems' figures instead, from the day figures
-- alone (never reading the entries): the day's rows go, each problem's count goes down by the
-- day's entries and its records by the records whose latest entry was that day. A clean-up
-- removes every entry before its cut-off, so those records have none left; their
-- errors_grouprecord rows stay behind as stale rows (last_day on or before the horizon, which
-- the other functions treat as absent) until partitions.purge_stale_records deletes them.
--
-- partitions.drop_day calls it in the transaction that detaches and drops the partition, with
-- the day's problems locked; returns how many entries of problems went.
CREATE OR REPLACE FUNCTION errors_day_dropped(p_day date) RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM errors_groupday WHERE day = p_day
        RETURNING group_id, entries, latest_records
    ), taken AS (
        UPDATE errors_errorgroup AS g
        SET count = GREATEST(g.count - gone.entries, 0),
            records = GREATEST(g.records - gone.latest_records, 0)
        FROM gone WHERE gone.group_id = g.id
    ), horizon AS (
        UPDATE errors_recordhorizon SET day = GREATEST(day, p_day)
    )
    SELECT coalesce(sum(entries), 0)::bigint FROM gone
$$;
