-- New entries written by a writer that leaves their figures to the database: the previous
-- release's record_errors, still running while a rolling upgrade migrates before it rolls the
-- workers (docs/operations/upgrades.md), and any INSERT or COPY that goes round record_errors.
-- record_errors counts its own batch (errors.figures.entries_added) and says so for the
-- statements of its batch with the setting syncconsole.figures_by_writer = 'on': the WHEN
-- clause then skips the trigger, so a batch is counted once. Once no release that leaves its
-- figures to this trigger runs any more, a later release drops it.
--
-- Once per statement, with its rows as a transition table, one aggregate per problem and day
-- and one per problem and record. Entries of no problem count nowhere. An entry written
-- resolved (with the time it was) counts on the day it was resolved too.
CREATE OR REPLACE FUNCTION errors_entries_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM errors_add_days(array_agg(g), array_agg(d), array_agg(e), array_agg(o),
                            array_agg(r)) FROM (
        SELECT g, d, sum(e)::bigint AS e, sum(o)::bigint AS o, sum(r)::bigint AS r FROM (
            SELECT group_id AS g, errors_entry_day(created_at) AS d, count(*) AS e,
                   count(*) FILTER (WHERE status = 'open') AS o, 0 AS r
            FROM new_rows WHERE group_id IS NOT NULL GROUP BY 1, 2
            UNION ALL
            SELECT group_id, errors_entry_day(status_changed_at), 0, 0, count(*)
            FROM new_rows
            WHERE group_id IS NOT NULL AND status = 'resolved' AND status_changed_at IS NOT NULL
            GROUP BY 1, 2
        ) AS c GROUP BY 1, 2
    ) AS c;
    PERFORM errors_records_added(array_agg(g), array_agg(r), array_agg(n), array_agg(f),
                                 array_agg(l)) FROM (
        SELECT group_id AS g, source_record_id AS r, count(*) AS n,
               min(errors_entry_day(created_at)) AS f, max(errors_entry_day(created_at)) AS l
        FROM new_rows WHERE group_id IS NOT NULL AND source_record_id <> '' GROUP BY 1, 2
    ) AS c;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER errors_entries_inserted AFTER INSERT ON errors_syncerror
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (current_setting('syncconsole.figures_by_writer', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION errors_entries_inserted();
