"""The coupling's and the status changer's indexes on the entries hold only the entries that
have one: an entry written without (every new entry has no status changer yet) no longer
updates them. The new partial indexes are built concurrently on each partition first, then
the full ones dropped."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from syncconsole.migration_ops import AddIndexToPartitions


class Migration(migrations.Migration):
    atomic = False
    reviewed_unsafe = {
        "index-not-concurrent": "PostgreSQL cannot drop a partitioned table's index "
        "CONCURRENTLY. The drops read no row: each holds the entries' lock for a change of "
        "the catalog only, and the migration's lock timeout makes it give up (to be run "
        "again) rather than queue the writers behind it. The partial indexes that replace "
        "them are built and valid before, so no lookup is left without one."
    }
    dependencies = [
        ("errors", "0033_message_search_by_problem"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexToPartitions(
            model_name="syncerror",
            index=models.Index(
                condition=models.Q(("coupling__isnull", False)),
                fields=["coupling"],
                name="error_coupling_set",
            ),
        ),
        AddIndexToPartitions(
            model_name="syncerror",
            index=models.Index(
                condition=models.Q(("status_changed_by__isnull", False)),
                fields=["status_changed_by"],
                name="error_status_changed_by",
            ),
        ),
        migrations.RemoveIndex(model_name="syncerror", name="error_coupling"),
        # The field's own index only: Django's AlterField would drop and add its foreign-key
        # constraint again, reading the whole table.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "errors_syncerror_status_changed_by_id_d732f8d5"',
                    reverse_sql="CREATE INDEX IF NOT EXISTS "
                    '"errors_syncerror_status_changed_by_id_d732f8d5" '
                    'ON "errors_syncerror" ("status_changed_by_id")',
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="syncerror",
                    name="status_changed_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                )
            ],
        ),
    ]
