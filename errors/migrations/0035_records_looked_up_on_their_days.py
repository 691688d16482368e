"""New entries' record rows are looked up only in the day partitions that may hold them: the
days on which the record's problem has records whose latest entry is that day, latest first,
until the row is found, each partition pruned at run time, instead of every day partition;
the steps of errors_records_added hand each other their rows through one aggregate instead of
joins, and it runs without JIT.

The insert trigger kept for the previous release's writers (0032) skips the statements of
record_errors, which counts its batch itself and says so (syncconsole.figures_by_writer): a
rolling upgrade counts the entries of both releases once."""

from importlib import import_module

from django.db import migrations

from errors.sql import Install, render

records_go_with_their_day = import_module("errors.migrations.0031_records_go_with_their_day")
resolved_per_day = import_module("errors.migrations.0022_resolved_per_day")


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0034_partial_entry_indexes"),
    ]

    operations = [
        Install(
            "errors_records_added.sql",
            "ae2ea25d554fdb0d",
            render(records_go_with_their_day.RECORDS_ADDED_0031),
        ),
        Install(
            "errors_entries_inserted.sql",
            "a9ea40e811534fce",
            render(resolved_per_day.ENTRIES_INSERTED_0022),
        ),
    ]
