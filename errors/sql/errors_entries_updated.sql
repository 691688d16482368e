-- Changed entries: a status change moves open entries between days' figures, and resolved
-- entries onto the day they were resolved (an entry reopened leaves that day again); an entry
-- that changed problem or day moves its entry between days and problems too. Status changes
-- leave the records as they are; a record whose entries changed problem, record or day is
-- counted again.
CREATE OR REPLACE FUNCTION errors_entries_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM errors_add_days(array_agg(g), array_agg(d), array_agg(e), array_agg(o),
                            array_agg(r)) FROM (
        WITH changes AS (
            SELECT group_id, created_at, status, status_changed_at, 1 AS sign FROM new_rows
            WHERE group_id IS NOT NULL
            UNION ALL
            SELECT group_id, created_at, status, status_changed_at, -1 FROM old_rows
            WHERE group_id IS NOT NULL
        ), figures AS (
            SELECT group_id AS g, errors_entry_day(created_at) AS d, sum(sign) AS e,
                   coalesce(sum(sign) FILTER (WHERE status = 'open'), 0) AS o, 0 AS r
            FROM changes GROUP BY 1, 2
            UNION ALL
            SELECT group_id, errors_entry_day(status_changed_at), 0, 0, sum(sign)
            FROM changes WHERE status = 'resolved' AND status_changed_at IS NOT NULL
            GROUP BY 1, 2
        )
        SELECT g, d, sum(e)::bigint AS e, sum(o)::bigint AS o, sum(r)::bigint AS r
        FROM figures GROUP BY 1, 2
        HAVING sum(e) <> 0 OR sum(o) <> 0 OR sum(r) <> 0
    ) AS c;
    PERFORM errors_recount_records(array_agg(g), array_agg(r)) FROM (
        WITH changes AS (
            SELECT group_id, source_record_id, created_at, 1 AS sign FROM new_rows
            UNION ALL
            SELECT group_id, source_record_id, created_at, -1 FROM old_rows
        )
        SELECT DISTINCT group_id AS g, source_record_id AS r FROM (
            SELECT group_id, source_record_id FROM changes
            WHERE group_id IS NOT NULL AND source_record_id <> ''
            GROUP BY group_id, source_record_id, errors_entry_day(created_at)
            HAVING sum(sign) <> 0
        ) AS moved
    ) AS c;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER errors_entries_updated AFTER UPDATE ON errors_syncerror
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION errors_entries_updated();
