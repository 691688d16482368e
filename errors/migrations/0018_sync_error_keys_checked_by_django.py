"""The entries' job, coupling, mapping and group are kept by Django alone, without a foreign-key
constraint in the database: each constraint made every entry written look up the row it names
at commit, the largest cost of the ingestion after the message's trigram index. Django's
collector sets these keys to NULL when a job, coupling, mapping or group is deleted, as before.
Dropping a constraint reads nothing; putting one back (backwards) checks the whole table."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("couplings", "0007_seen_by_reconciliation"),
        ("errors", "0017_group_record_latest_day"),
        ("sync", "0010_reconciliation"),
    ]

    operations = [
        migrations.AlterField(
            model_name="syncerror",
            name="coupling",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="errors",
                to="couplings.coupling",
            ),
        ),
        migrations.AlterField(
            model_name="syncerror",
            name="group",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="errors",
                to="errors.errorgroup",
            ),
        ),
        migrations.AlterField(
            model_name="syncerror",
            name="job",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="errors",
                to="sync.syncjob",
            ),
        ),
        migrations.AlterField(
            model_name="syncerror",
            name="mapping",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="errors",
                to="sync.tablemapping",
            ),
        ),
    ]
