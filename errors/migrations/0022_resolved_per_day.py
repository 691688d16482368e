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
        Install(
            "errors_entries_inserted.sql",
            "620d327732aaa179",
            render(previous.ENTRIES_INSERTED_0021),
        ),
        Install(
            "errors_entries_updated.sql",
            "737b56d3e34f84e3",
            render(previous.ENTRIES_UPDATED_0021),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
    ]
