"""The scheduled partition task's description says what it does now: the days ahead of the
window (SYNC_ERROR_PARTITION_DAYS_AHEAD, two by default, no longer a week), the empty days past
it dropped, and the day tables a stopped clean-up left detached dropped. A description someone
changed in the admin is left as it is."""

from django.db import migrations

from syncconsole.beat import ScheduleOperation

NAME = "Create sync error partitions"
BEFORE = "Creates the day partitions of the sync error entries a week ahead."
NOW = (
    "Creates the day partitions of the sync error entries for the days ahead "
    "(SYNC_ERROR_PARTITION_DAYS_AHEAD), drops the empty days past them and the day tables a "
    "stopped clean-up left detached."
)


def describe(old: str, new: str):
    def run(apps, schema_editor):
        tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
        tasks.filter(name=NAME, description=old).update(description=new)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0037_records_removed_day_by_day"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [ScheduleOperation(describe(BEFORE, NOW), describe(NOW, BEFORE))]
