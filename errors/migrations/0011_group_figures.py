"""Figures of each problem kept on write by the database: entries and open entries per day
(GroupDay), entries per source record (GroupRecord) and the count of those records
(ErrorGroup.records). Statement-level triggers with transition tables on the entries table
keep them for every insert (COPY too), update and delete, whatever code runs it: one
aggregate per statement, upserted in key order so concurrent writers lock rows in the same
order. Figures of rows already there are filled in from the entries."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FUNCTIONS = """
CREATE FUNCTION errors_entry_day(moment timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (moment AT TIME ZONE '%(zone)s')::date $$;

CREATE FUNCTION errors_add_days(p_groups bigint[], p_days date[], p_entries bigint[],
                                p_open bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO errors_groupday AS d (group_id, day, entries, open)
    SELECT g, dd, e, o FROM unnest(p_groups, p_days, p_entries, p_open) AS c(g, dd, e, o)
    ORDER BY g, dd
    ON CONFLICT (group_id, day) DO UPDATE
        SET entries = d.entries + EXCLUDED.entries, open = d.open + EXCLUDED.open
$$;

-- A record that gets its first entry in a problem adds one to the problem's records; one
-- whose last entry goes takes one off, and its row goes.
CREATE FUNCTION errors_add_records(p_groups bigint[], p_records text[], p_deltas bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    emptied tid[];
BEGIN
    WITH up AS (
        INSERT INTO errors_grouprecord AS r (group_id, record_id, entries)
        SELECT g, rec, n FROM unnest(p_groups, p_records, p_deltas) AS c(g, rec, n)
        ORDER BY g, rec
        ON CONFLICT (group_id, record_id) DO UPDATE SET entries = r.entries + EXCLUDED.entries
        RETURNING r.ctid AS at, r.group_id, r.entries, r.xmax = 0 AS created
    ), moved AS (
        SELECT group_id, count(*) FILTER (WHERE created AND entries > 0)
                         - count(*) FILTER (WHERE NOT created AND entries <= 0) AS n
        FROM up GROUP BY group_id
    ), counted AS (
        UPDATE errors_errorgroup AS g SET records = GREATEST(g.records + moved.n, 0)
        FROM moved WHERE g.id = moved.group_id AND moved.n <> 0
    )
    SELECT array_agg(at) FILTER (WHERE entries <= 0) INTO emptied FROM up;
    -- By the row versions just written (locked by this transaction): a TID scan, whatever
    -- the planner guesses about the arrays.
    IF emptied IS NOT NULL THEN
        DELETE FROM errors_grouprecord WHERE ctid = ANY(emptied);
    END IF;
END $$;

"""

# One function per kind of statement: a transition table exists only for the kinds that have it.
CHANGED = """
CREATE FUNCTION errors_entries_%(name)s() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM errors_add_days(array_agg(g), array_agg(d), array_agg(e), array_agg(o)) FROM (
        WITH changes AS (%(changes)s)
        SELECT group_id AS g, errors_entry_day(created_at) AS d, sum(sign) AS e,
               coalesce(sum(sign) FILTER (WHERE status = 'open'), 0) AS o
        FROM changes GROUP BY 1, 2
        HAVING sum(sign) <> 0 OR coalesce(sum(sign) FILTER (WHERE status = 'open'), 0) <> 0
    ) AS c;
    PERFORM errors_add_records(array_agg(g), array_agg(r), array_agg(n)) FROM (
        WITH changes AS (%(changes)s)
        SELECT group_id AS g, source_record_id AS r, sum(sign) AS n FROM changes
        WHERE source_record_id <> '' GROUP BY 1, 2 HAVING sum(sign) <> 0
    ) AS c;
    RETURN NULL;
END $$;
CREATE TRIGGER errors_entries_%(name)s AFTER %(event)s ON errors_syncerror
    REFERENCING %(tables)s FOR EACH STATEMENT EXECUTE FUNCTION errors_entries_%(name)s();
"""
NEW_ROWS = (
    "SELECT group_id, created_at, status, source_record_id, 1 AS sign FROM new_rows"
    " WHERE group_id IS NOT NULL"
)
OLD_ROWS = (
    "SELECT group_id, created_at, status, source_record_id, -1 AS sign FROM old_rows"
    " WHERE group_id IS NOT NULL"
)
TRIGGERS = [
    {"name": "inserted", "event": "INSERT", "tables": "NEW TABLE AS new_rows",
     "changes": NEW_ROWS},
    {"name": "updated", "event": "UPDATE",
     "tables": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
     "changes": f"{NEW_ROWS} UNION ALL {OLD_ROWS}"},
    {"name": "deleted", "event": "DELETE", "tables": "OLD TABLE AS old_rows",
     "changes": OLD_ROWS},
]  # fmt: skip

DROP_FUNCTIONS = """
DROP TRIGGER errors_entries_inserted ON errors_syncerror;
DROP TRIGGER errors_entries_updated ON errors_syncerror;
DROP TRIGGER errors_entries_deleted ON errors_syncerror;
DROP FUNCTION errors_entries_inserted();
DROP FUNCTION errors_entries_updated();
DROP FUNCTION errors_entries_deleted();
DROP FUNCTION errors_add_records(bigint[], text[], bigint[]);
DROP FUNCTION errors_add_days(bigint[], date[], bigint[], bigint[]);
DROP FUNCTION errors_entry_day(timestamptz);
"""

FILL = """
INSERT INTO errors_groupday (group_id, day, entries, open)
SELECT group_id, errors_entry_day(created_at), count(*), count(*) FILTER (WHERE status = 'open')
FROM errors_syncerror WHERE group_id IS NOT NULL GROUP BY 1, 2;
INSERT INTO errors_grouprecord (group_id, record_id, entries)
SELECT group_id, source_record_id, count(*) FROM errors_syncerror
WHERE group_id IS NOT NULL AND source_record_id <> '' GROUP BY 1, 2;
UPDATE errors_errorgroup AS g SET records = r.n
FROM (SELECT group_id, count(*) AS n FROM errors_grouprecord GROUP BY 1) AS r
WHERE g.id = r.group_id;
"""


def create_functions(apps, schema_editor):
    zone = settings.TIME_ZONE.replace("'", "")
    schema_editor.execute(FUNCTIONS % {"zone": zone})
    for trigger in TRIGGERS:
        schema_editor.execute(CHANGED % trigger)
    schema_editor.execute(FILL)


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0010_partition_entries"),
    ]

    operations = [
        migrations.AddField(
            model_name="errorgroup",
            name="records",
            field=models.PositiveBigIntegerField(
                default=0, db_default=0, help_text="Distinct source records among its entries."
            ),
        ),
        migrations.CreateModel(
            name="GroupDay",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "group",
                        "day",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("day", models.DateField()),
                ("entries", models.BigIntegerField(default=0)),
                ("open", models.BigIntegerField(default=0)),
                (
                    "group",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="days",
                        to="errors.errorgroup",
                    ),
                ),
            ],
            options={
                "verbose_name": "problem day",
            },
        ),
        migrations.CreateModel(
            name="GroupRecord",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "group",
                        "record_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("record_id", models.CharField(max_length=100)),
                ("entries", models.BigIntegerField(default=0)),
                (
                    "group",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="errors.errorgroup",
                    ),
                ),
            ],
            options={
                "verbose_name": "problem record",
            },
        ),
        migrations.RunPython(create_functions, migrations.RunPython.noop),
        migrations.RunSQL(migrations.RunSQL.noop, DROP_FUNCTIONS),
    ]
