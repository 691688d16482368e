-- Deleted entries (any DELETE: the clean-up's batches, the admin, psql): taken off their
-- days, problems and records. A dropped day partition fires no trigger; errors_day_dropped
-- takes its figures off instead.
CREATE OR REPLACE FUNCTION errors_entries_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM errors_add_days(array_agg(g), array_agg(d), array_agg(e), array_agg(o)) FROM (
        SELECT group_id AS g, errors_entry_day(created_at) AS d, -count(*) AS e,
               -count(*) FILTER (WHERE status = 'open') AS o
        FROM old_rows WHERE group_id IS NOT NULL GROUP BY 1, 2
    ) AS c;
    PERFORM errors_records_removed(array_agg(g), array_agg(r), array_agg(n), array_agg(l)) FROM (
        SELECT group_id AS g, source_record_id AS r, count(*) AS n,
               max(errors_entry_day(created_at)) AS l
        FROM old_rows WHERE group_id IS NOT NULL AND source_record_id <> '' GROUP BY 1, 2
    ) AS c;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER errors_entries_deleted AFTER DELETE ON errors_syncerror
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION errors_entries_deleted();
