"""errors_records_added walks a record's days latest first along errors_groupday's key and
stops at the first that holds its row, whatever the planner makes of the record rows'
partitions: with few of them it sorted the days instead, looking the row up on every day."""

from importlib import import_module

from django.db import migrations

from errors.sql import Install, render

records_looked_up_on_their_days = import_module(
    "errors.migrations.0035_records_looked_up_on_their_days"
)


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0035_records_looked_up_on_their_days"),
    ]

    operations = [
        Install(
            "errors_records_added.sql",
            "87ff4951ac3d243f",
            render(records_looked_up_on_their_days.RECORDS_ADDED_0035),
        ),
    ]
