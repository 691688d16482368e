"""The figures of new entries are computed once per batch by their one writer, record_errors
(errors.figures.entries_added), in its transaction: the statement-level insert trigger that
aggregated every COPY's rows again goes. Updates and deletes keep their triggers, which stay
the one path for those."""

from importlib import import_module

from django.db import migrations

from errors.sql import render

previous = import_module("errors.migrations.0022_resolved_per_day")


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0031_records_go_with_their_day"),
    ]

    operations = [
        migrations.RunSQL(
            "SET LOCAL lock_timeout = '5s';"
            "DROP TRIGGER errors_entries_inserted ON errors_syncerror;"
            "DROP FUNCTION errors_entries_inserted();",
            render(previous.ENTRIES_INSERTED_0022),
        ),
    ]
