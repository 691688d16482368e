-- The day an entry counts on: its moment in TIME_ZONE. The entries' day partitions, the
-- problems' day figures (errors_groupday) and a dropped day's figures all use this day, so the
-- zone is fixed in the database as a literal (IMMUTABLE, and the same from every connection,
-- psql included): {{ time_zone }} is settings.TIME_ZONE when the migration runs. A later change
-- of TIME_ZONE would split days differently from the partitions and figures already there:
-- the system check syncconsole.E005 refuses it, and a migration that installs this file stops
-- first when the zones differ (errors.sql.refuse_other_time_zone, as in migration 0021).
CREATE OR REPLACE FUNCTION errors_entry_day(moment timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (moment AT TIME ZONE {{ time_zone }})::date $$;
