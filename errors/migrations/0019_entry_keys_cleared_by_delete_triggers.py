"""A deleted job, coupling or mapping leaves no entry naming it, even one written while it was
deleted: a statement-level trigger on each of the three tables sets the entries' key to NULL
after the delete, as a constraint's ON DELETE SET NULL would, and Django's collector no longer
does it beforehand (it read a snapshot taken before the delete waited for the writer's
FOR KEY SHARE lock, so an entry committed in between kept the id of a row that was gone).

The trigger runs once per DELETE statement, with the ids deleted as an array so that each day
partition is read through its index on the key; a delete that found nothing reads nothing. A
deleted mapping also leaves its problems without it (their key has a constraint, checked at
commit, which a problem created meanwhile would fail)."""

from django.db import migrations, models

# (table deleted from, the entries' column, other updates for that table)
REFERENCED = [
    ("sync_syncjob", "job_id", ""),
    ("couplings_coupling", "coupling_id", ""),
    (
        "sync_tablemapping",
        "mapping_id",
        "UPDATE errors_errorgroup SET mapping_id = NULL WHERE mapping_id = ANY (gone_ids);",
    ),
]


def function_name(table: str) -> str:
    return f"errors_forget_deleted_{table}"


FORWARD = "\n".join(
    f"""
CREATE FUNCTION {function_name(table)}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone_ids bigint[] := ARRAY(SELECT id FROM gone);
BEGIN
    IF cardinality(gone_ids) = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE errors_syncerror SET {column} = NULL WHERE {column} = ANY (gone_ids);
    {also}
    RETURN NULL;
END $$;
CREATE TRIGGER {function_name(table)} AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {function_name(table)}();
"""  # noqa: S608 - the names are ours
    for table, column, also in REFERENCED
)

BACKWARD = "\n".join(
    f"DROP TRIGGER IF EXISTS {function_name(table)} ON {table};"
    f" DROP FUNCTION IF EXISTS {function_name(table)}();"
    for table, _, _ in REFERENCED
)


def key(to: str) -> models.ForeignKey:
    return models.ForeignKey(
        blank=True,
        db_constraint=False,
        db_index=False,
        null=True,
        on_delete=models.DO_NOTHING,
        related_name="errors",
        to=to,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("couplings", "0007_seen_by_reconciliation"),
        ("errors", "0018_sync_error_keys_checked_by_django"),
        ("sync", "0010_reconciliation"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AlterField(model_name="syncerror", name="job", field=key("sync.syncjob")),
        migrations.AlterField(
            model_name="syncerror", name="coupling", field=key("couplings.coupling")
        ),
        migrations.AlterField(
            model_name="syncerror", name="mapping", field=key("sync.tablemapping")
        ),
    ]
