"""The figures of new entries are computed once per batch by their one writer, record_errors
(errors.figures.entries_added), in its transaction. The statement-level insert trigger that
aggregated every COPY's rows again stays in this release nevertheless: the previous release's
workers, which leave their entries' figures to it, keep writing while a rolling upgrade
migrates (docs/operations/upgrades.md). 0035 makes it skip the batches of record_errors; a
later release drops it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0031_records_go_with_their_day"),
    ]

    operations: list = []
