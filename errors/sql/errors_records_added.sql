-- New entries, one element per problem and source record (how many, and their first and
-- last day): a record seen for the first time (or again after its row went stale, on or
-- before errors_recordhorizon.day) counts; one whose latest day moves forward moves to the new
-- day's latest_records. moved_from carries the old last_day out of the upsert, as RETURNING
-- shows only the new row.
CREATE OR REPLACE FUNCTION errors_records_added(p_groups bigint[], p_records text[],
                                                p_entries bigint[], p_first date[],
                                                p_last date[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    horizon date := (SELECT day FROM errors_recordhorizon);
    groups bigint[];
    from_days date[];
    to_days date[];
BEGIN
    WITH up AS (
        INSERT INTO errors_grouprecord AS r
            (group_id, record_id, entries, first_day, last_day, moved_from)
        SELECT g, rec, n, f, l, NULL
        FROM unnest(p_groups, p_records, p_entries, p_first, p_last) AS c(g, rec, n, f, l)
        ORDER BY g, rec
        ON CONFLICT (group_id, record_id) DO UPDATE SET
            moved_from = CASE WHEN r.last_day <= horizon THEN NULL ELSE r.last_day END,
            entries = CASE WHEN r.last_day <= horizon THEN EXCLUDED.entries
                           ELSE r.entries + EXCLUDED.entries END,
            first_day = CASE WHEN r.last_day <= horizon THEN EXCLUDED.first_day
                             ELSE LEAST(r.first_day, EXCLUDED.first_day) END,
            last_day = CASE WHEN r.last_day <= horizon THEN EXCLUDED.last_day
                            ELSE GREATEST(r.last_day, EXCLUDED.last_day) END
        RETURNING r.group_id, r.moved_from, r.last_day
    )
    -- An entry dated on or before the horizon leaves its row stale: it is not counted, and a
    -- clean-up deletes it soon anyway.
    SELECT array_agg(group_id), array_agg(moved_from), array_agg(last_day)
    INTO groups, from_days, to_days FROM up WHERE horizon IS NULL OR last_day > horizon;
    PERFORM errors_move_records(groups, from_days, to_days);
END $$;
