"""Drop the single-column indexes Django made for four foreign keys of the entries: each
duplicates the start of a composite index (error_job_recent, error_coupling,
error_mapping_recent, error_group_recent), which serves the same lookups and the SET NULL of a
deleted row, while every index costs each write. Only the indexes go: the foreign-key
constraints stay as they are (re-creating them would check the whole table)."""

import django.db.models.deletion
from django.db import migrations, models

DUPLICATES = {
    "coupling": "errors_syncerror_coupling_id_a26fd5dc",
    "group": "errors_syncerror_group_id_eeb5c6b8",
    "job": "errors_syncerror_job_id_0eefd2e7",
    "mapping": "errors_syncerror_mapping_id_e40a4d66",
}
TARGETS = {
    "coupling": "couplings.coupling",
    "group": "errors.errorgroup",
    "job": "sync.syncjob",
    "mapping": "sync.tablemapping",
}


class Migration(migrations.Migration):
    dependencies = [
        ("couplings", "0007_seen_by_reconciliation"),
        ("errors", "0015_problem_alerts"),
        ("sync", "0010_reconciliation"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "errors_syncerror" ("{name}_id")',
                )
                for name, index in DUPLICATES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="syncerror",
                    name=name,
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="errors",
                        to=target,
                    ),
                )
                for name, target in TARGETS.items()
            ],
        )
    ]
