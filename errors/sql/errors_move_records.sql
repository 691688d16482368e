-- Records affected (errors_errorgroup.records) and, per day, the records whose latest entry
-- is on that day (errors_groupday.latest_records). Each element moves one record of a problem
-- from the day it counted on (NULL: not counted yet) to its new latest day (NULL: no longer
-- counted). Keeping the latest day per record is what lets a clean-up drop a whole day and
-- take its records off without reading a row (errors_day_dropped).
CREATE OR REPLACE FUNCTION errors_move_records(p_groups bigint[], p_from date[], p_to date[])
RETURNS void LANGUAGE sql AS $$
    WITH moves AS (
        SELECT g, t AS day, 1 AS n FROM unnest(p_groups, p_from, p_to) AS m(g, f, t)
        WHERE t IS NOT NULL AND f IS DISTINCT FROM t
        UNION ALL
        SELECT g, f, -1 FROM unnest(p_groups, p_from, p_to) AS m(g, f, t)
        WHERE f IS NOT NULL AND f IS DISTINCT FROM t
    ), days AS (
        INSERT INTO errors_groupday AS d (group_id, day, entries, open, latest_records)
        SELECT g, day, 0, 0, sum(n) FROM moves GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
        ON CONFLICT (group_id, day) DO UPDATE
            SET latest_records = d.latest_records + EXCLUDED.latest_records
    )
    UPDATE errors_errorgroup AS g SET records = GREATEST(g.records + c.n, 0)
    FROM (
        SELECT g, sum((t IS NOT NULL)::int - (f IS NOT NULL)::int) AS n
        FROM unnest(p_groups, p_from, p_to) AS m(g, f, t) GROUP BY 1
    ) AS c
    WHERE g.id = c.g AND c.n <> 0
$$;
