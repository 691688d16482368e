"""errors_records_removed takes the records of deleted entries day by day and looks them up in
that day's partition of the record rows alone, by name, instead of in every partition from that
day on: the look-ups were two thirds of a clean-up batch's time on its straddling day."""

from importlib import import_module

from django.db import migrations

from errors.sql import Install, render

records_go_with_their_day = import_module("errors.migrations.0031_records_go_with_their_day")


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0036_records_days_walked_latest_first"),
    ]

    operations = [
        Install(
            "errors_records_removed.sql",
            "7d79976388fece81",
            render(records_go_with_their_day.RECORDS_REMOVED_0031),
        ),
    ]
