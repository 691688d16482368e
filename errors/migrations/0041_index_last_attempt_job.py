"""The entries a job attempted again (its failures counted on entries of earlier jobs) are
found by the job of their latest attempt: a partial index, built concurrently on each
partition."""

from django.db import migrations, models

from syncconsole.migration_ops import AddIndexToPartitions


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("errors", "0040_seen_total_counts_failures"),
    ]

    operations = [
        AddIndexToPartitions(
            model_name="syncerror",
            index=models.Index(
                condition=models.Q(("last_attempt_job_id__isnull", False)),
                fields=["last_attempt_job_id"],
                name="error_last_attempt_job",
            ),
        ),
    ]
