"""Each problem's day figures also count the entries resolved that day (GroupDay.resolved), so
that the overview draws new against resolved entries per day without reading the entries.

errors_add_days takes the resolved entries as a fifth argument (deletes pass none), and the
insert and update triggers count an entry on the day its status became resolved, in the same
upsert as the other figures. The figures of the entries resolved until now are filled in once
from the entries (the day they were resolved is their status_changed_at); an entry resolved
before the console kept that time counts nowhere."""

from importlib import import_module

from django.db import migrations, models

from errors.sql import Install, render

previous = import_module("errors.migrations.0021_sql_from_one_source")

FILL = """
INSERT INTO errors_groupday AS d (group_id, day, entries, open, resolved)
SELECT group_id, errors_entry_day(status_changed_at), 0, 0, count(*)
FROM errors_syncerror
WHERE status = 'resolved' AND status_changed_at IS NOT NULL AND group_id IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (group_id, day) DO UPDATE SET resolved = EXCLUDED.resolved;
"""

ENTRIES_INSERTED_0022 = """
-- New entries (INSERT and COPY alike): once per statement, with its rows as a transition
-- table, one aggregate per problem and day and one per problem and record, so the cost per
-- statement does not grow with its rows one by one. Entries of no problem count nowhere. An
-- entry written resolved (with the time it was) counts on the day it was resolved too.
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
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION errors_entries_inserted();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0021_sql_from_one_source"),
    ]

    operations = [
        migrations.AddField(
            model_name="groupday",
            name="resolved",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddIndex(
            model_name="groupday",
            index=models.Index(fields=["day"], name="groupday_day"),
        ),
        # The same name with another argument list would be a second function beside it.
        migrations.RunSQL(
            "DROP FUNCTION errors_add_days(bigint[], date[], bigint[], bigint[]);",
            render(previous.ADD_DAYS_0021),
        ),
        Install(
            "errors_add_days.sql",
            "7483a15d2c77fcf6",
            "DROP FUNCTION errors_add_days(bigint[], date[], bigint[], bigint[], bigint[]);",
        ),
        migrations.RunSQL(
            render(ENTRIES_INSERTED_0022),
            render(previous.ENTRIES_INSERTED_0021),
        ),
        Install(
            "errors_entries_updated.sql",
            "737b56d3e34f84e3",
            render(previous.ENTRIES_UPDATED_0021),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
    ]
