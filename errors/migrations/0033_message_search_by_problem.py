"""The message search moves from a trigram index on every entry to one on the problems'
titles (errors.search): the problems' index is built concurrently, then the entries' dropped."""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    reviewed_unsafe = {
        "index-not-concurrent": "PostgreSQL cannot drop a partitioned table's index "
        "CONCURRENTLY. The drop reads no row: it holds the entries' lock for a change of the "
        "catalog only, and the migration's lock timeout makes it give up (to be run again) "
        "rather than queue the writers behind it. The version before searches messages through "
        "this index: until its web processes are rolled, a message search there reads the "
        "partitions of the days it lists."
    }
    dependencies = [("errors", "0032_entry_figures_by_their_writer")]

    operations = [
        AddIndexConcurrently(
            model_name="errorgroup",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper("title"), name="gin_trgm_ops"
                ),
                name="group_title_trgm",
            ),
        ),
        migrations.RemoveIndex(model_name="syncerror", name="error_message_trgm"),
    ]
