"""The functions and triggers the errors app keeps in the database now come from one place,
errors/sql, one file each, which this migration installs as they are: the same code as
migrations 0011, 0017, 0019 and 0020 left, with comments (backwards they stay). The
errors_records_removed without the last day, which 0020 replaced but left behind, goes."""

from django.db import migrations

from errors.sql import Install

# As migration 0017 installed it (migration 0020's reverse calls it).
RECORDS_REMOVED_0017 = """
CREATE FUNCTION errors_records_removed(p_groups bigint[], p_records text[], p_entries bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    horizon date := (SELECT day FROM errors_recordhorizon);
    emptied tid[];
    recount_groups bigint[];
    recount_records text[];
    groups bigint[];
    days date[];
BEGIN
    WITH c AS (
        SELECT g, rec, n FROM unnest(p_groups, p_records, p_entries) AS c(g, rec, n)
    ), counted AS (
        SELECT r.ctid AS at, r.group_id, r.record_id, r.last_day, r.first_day = r.last_day AS one_day,
               r.entries - c.n AS left_over
        FROM errors_grouprecord AS r JOIN c ON r.group_id = c.g AND r.record_id = c.rec
        WHERE horizon IS NULL OR r.last_day > horizon
        ORDER BY r.group_id, r.record_id
        FOR UPDATE OF r
    ), lowered AS (
        UPDATE errors_grouprecord AS r SET entries = counted.left_over
        FROM counted WHERE r.ctid = counted.at AND counted.one_day AND counted.left_over > 0
    )
    SELECT array_agg(at) FILTER (WHERE one_day AND left_over <= 0),
           array_agg(group_id) FILTER (WHERE NOT one_day),
           array_agg(record_id) FILTER (WHERE NOT one_day)
    INTO emptied, recount_groups, recount_records FROM counted;
    IF emptied IS NOT NULL THEN
        WITH gone AS (
            DELETE FROM errors_grouprecord WHERE ctid = ANY(emptied)
            RETURNING group_id, last_day
        )
        SELECT array_agg(group_id), array_agg(last_day) INTO groups, days FROM gone;
        PERFORM errors_move_records(groups, days,
                                    array_fill(NULL::date, ARRAY[coalesce(cardinality(groups), 0)]));
    END IF;
    IF recount_groups IS NOT NULL THEN
        PERFORM errors_recount_records(recount_groups, recount_records);
    END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("errors", "0020_records_kept_by_later_entries"),
    ]

    operations = [
        migrations.RunSQL(
            "DROP FUNCTION errors_records_removed(bigint[], text[], bigint[]);",
            RECORDS_REMOVED_0017,
        ),
        Install("errors_entry_day.sql", "5c8f89cbb77323e6", migrations.RunSQL.noop),
        Install("errors_add_days.sql", "8e7ae53625d65a98", migrations.RunSQL.noop),
        Install("errors_move_records.sql", "a747a4c53b562f40", migrations.RunSQL.noop),
        Install("errors_records_added.sql", "c648dc17db1bb849", migrations.RunSQL.noop),
        Install("errors_recount_records.sql", "9994b3c14d26db3c", migrations.RunSQL.noop),
        Install("errors_records_removed.sql", "5a95c48594fb7d50", migrations.RunSQL.noop),
        Install("errors_entries_inserted.sql", "d4238f6e14f45d31", migrations.RunSQL.noop),
        Install("errors_entries_updated.sql", "f5033ede10689183", migrations.RunSQL.noop),
        Install("errors_entries_deleted.sql", "89460609085c8bc9", migrations.RunSQL.noop),
        Install(
            "errors_forget_deleted_sync_syncjob.sql", "d88f264af4aa63ae", migrations.RunSQL.noop
        ),
        Install(
            "errors_forget_deleted_couplings_coupling.sql",
            "4615afd22994191e",
            migrations.RunSQL.noop,
        ),
        Install(
            "errors_forget_deleted_sync_tablemapping.sql",
            "d4c1060fc40d7cce",
            migrations.RunSQL.noop,
        ),
    ]
