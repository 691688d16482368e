"""The problems' record rows (errors_grouprecord) are partitioned by the day of their record's
latest entry, like the entries by their day, so that a clean-up drops a day's records with the
day's entries: no stale rows and no purge after it. partitions.purge_stale_records goes; the
horizon it read (errors_recordhorizon) is cleared, so that the running version's purge finds
nothing to do, and no longer read: the table goes in a later release. Each entries partition gets its records partition, and a
default one holds the records of days without a partition.

The table is built beside the plain one, filled with its live rows (those after the horizon:
the stale ones were counted off already), and swapped in, in one transaction; the functions
that write it are installed in the same transaction, so no writer ever sees the new table
with the old functions. (group_id, record_id) is no longer a key the database enforces (a
partitioned table's keys hold the partition key): every writer of a problem's records holds
the problem's row first (errors/sql/errors_records_added.sql)."""

from importlib import import_module

from django.db import migrations

from errors.sql import Install, render

previous = import_module("errors.migrations.0021_sql_from_one_source")

SWAP = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE errors_grouprecord_by_day (
    group_id bigint NOT NULL,
    record_id varchar(100) NOT NULL,
    entries bigint NOT NULL,
    first_day date NOT NULL,
    last_day date NOT NULL,
    moved_from date,
    PRIMARY KEY (group_id, record_id, last_day)
) PARTITION BY RANGE (last_day);
CREATE TABLE errors_grouprecord_default PARTITION OF errors_grouprecord_by_day DEFAULT;
DO $$
DECLARE
    day date;
BEGIN
    FOR day IN
        SELECT to_date(substr(c.relname, length('errors_syncerror_p') + 1), 'YYYYMMDD')
        FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'errors_syncerror'::regclass
            AND c.relname ~ '^errors_syncerror_p[0-9]{8}$'
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF errors_grouprecord_by_day FOR VALUES FROM (%L) TO (%L)',
            'errors_grouprecord_p' || to_char(day, 'YYYYMMDD'), day, day + 1);
    END LOOP;
END $$;
-- Writers of entries wait from here to the commit before their statement starts, so that
-- none is caught between the old table and the new one; readers go on.
LOCK TABLE errors_syncerror IN SHARE MODE;
LOCK TABLE errors_grouprecord IN ACCESS EXCLUSIVE MODE;
INSERT INTO errors_grouprecord_by_day (group_id, record_id, entries, first_day, last_day)
SELECT group_id, record_id, entries, first_day, last_day FROM errors_grouprecord
WHERE last_day > coalesce((SELECT day FROM errors_recordhorizon), '-infinity'::date);
DROP TABLE errors_grouprecord;
ALTER TABLE errors_grouprecord_by_day RENAME TO errors_grouprecord;
UPDATE errors_recordhorizon SET day = NULL;
"""

UNSWAP = """
SET LOCAL lock_timeout = '5s';
UPDATE errors_recordhorizon SET day = NULL;
CREATE TABLE errors_grouprecord_plain (
    group_id bigint NOT NULL,
    record_id varchar(100) NOT NULL,
    entries bigint NOT NULL,
    first_day date NOT NULL,
    last_day date NOT NULL,
    moved_from date,
    PRIMARY KEY (group_id, record_id)
);
LOCK TABLE errors_syncerror IN SHARE MODE;
LOCK TABLE errors_grouprecord IN ACCESS EXCLUSIVE MODE;
INSERT INTO errors_grouprecord_plain (group_id, record_id, entries, first_day, last_day)
SELECT group_id, record_id, entries, first_day, last_day FROM errors_grouprecord;
DROP TABLE errors_grouprecord;
ALTER TABLE errors_grouprecord_plain RENAME TO errors_grouprecord;
"""


class Migration(migrations.Migration):
    reviewed_unsafe = {
        "data-sql": "copies the live record rows once (one short row per problem and record, "
        "about a second per million) in the transaction that swaps the tables: entries being "
        "written wait for it, nothing is lost, and the entries themselves are not read.",
        "table-rewrite": "LOCK TABLE errors_syncerror IN SHARE MODE and errors_grouprecord: "
        "writers of entries wait while the record rows are copied (readers go on), so none is "
        "lost and none is caught between the two tables; nothing else reads the record rows.",
        "drop-or-rename": "errors_grouprecord is swapped for its partitioned copy under the "
        "same name, with the functions that write it (the running version writes it only "
        "through them).",
    }
    dependencies = [
        ("errors", "0030_work_heartbeat"),
    ]

    operations = [
        Install(
            "errors_records_added.sql", "7733d080ce1b26c4", render(previous.RECORDS_ADDED_0021)
        ),
        Install(
            "errors_recount_records.sql", "ee4437b3694a04fd", render(previous.RECOUNT_RECORDS_0021)
        ),
        Install(
            "errors_records_removed.sql", "f53b316c2b61921a", render(previous.RECORDS_REMOVED_0021)
        ),
        Install("errors_day_dropped.sql", "b52120c0047d9324", render(previous.DAY_DROPPED_0021)),
        # After the functions (in the same transaction): backwards, the horizon the old ones
        # read is back before they are.
        migrations.RunSQL(SWAP, UNSWAP),
    ]
