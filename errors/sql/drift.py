"""Whether the functions and triggers in the database are those errors/sql says.

The files are run into a scratch schema inside a savepoint that is rolled back (their trigger
tables copied there empty, so nothing real is changed), and PostgreSQL's own descriptions
(pg_get_functiondef, pg_get_triggerdef) of what they made are compared, whitespace aside,
with those of what the public schema holds: a function or trigger changed by hand, one
missing, and one that no file has all show."""

import difflib
import re

from django.db import connection, transaction

from . import read_sql, sql_names

SCRATCH = "errors_sql_expected"
TRIGGER_TABLE = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?TRIGGER\s+\w+\s+(?:BEFORE|AFTER|INSTEAD\s+OF)\s+.*?\s+ON\s+(\w+)",
    re.IGNORECASE | re.DOTALL,
)

# Functions and triggers of a schema, but those of extensions (pg_trgm's, in public) and
# those PostgreSQL makes itself (foreign keys' triggers, clones on partitions).
FUNCTIONS = """
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       pg_get_functiondef(p.oid)
FROM pg_proc AS p
WHERE p.pronamespace = %s::regnamespace AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
"""
TRIGGERS = """
SELECT t.tgname || ' ON ' || c.relname, pg_get_triggerdef(t.oid)
FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal AND t.tgparentid = 0
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                  WHERE d.classid = 'pg_trigger'::regclass AND d.objid = t.oid
                  AND d.deptype = 'e')
"""


class _Rollback(Exception):
    pass


def _described(cursor, schema: str) -> dict[str, str]:
    described = {}
    for query, kind in ((FUNCTIONS, "function"), (TRIGGERS, "trigger")):
        cursor.execute(query, [schema])
        for name, definition in cursor.fetchall():
            # The scratch schema spelled as the real one.
            described[f"{kind} {name}"] = definition.replace(f"{SCRATCH}.", "public.")
    return described


def _same(one: str, other: str) -> bool:
    """Equal but for whitespace (line ends, indentation)."""
    return one.split() == other.split()


def expected_and_found() -> tuple[dict[str, str], dict[str, str]]:
    """What the files make and what the database holds, each as {"function f(args)" or
    "trigger t ON table": its definition as PostgreSQL describes it}."""
    texts = [read_sql(name) for name in sql_names()]
    tables = sorted({table for text in texts for table in TRIGGER_TABLE.findall(text)})
    described: dict[str, dict[str, str]] = {}
    try:
        # Everything here is rolled back, SET LOCAL too, also inside a caller's transaction.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL search_path = public")
            described["found"] = _described(cursor, "public")
            cursor.execute(f"CREATE SCHEMA {SCRATCH}")
            for table in tables:
                cursor.execute(f"CREATE TABLE {SCRATCH}.{table} (LIKE public.{table})")
            cursor.execute(f"SET LOCAL search_path = {SCRATCH}, public")
            # Bodies are compared, not run: they need not find what they name.
            cursor.execute("SET LOCAL check_function_bodies = off")
            for text in texts:
                cursor.execute(text)
            described["expected"] = _described(cursor, SCRATCH)
            raise _Rollback
    except _Rollback:
        pass
    return described["expected"], described["found"]


def sql_drift() -> list[str]:
    """How the database differs from errors/sql, one line (or a short diff) per function or
    trigger; empty when it holds exactly what the files say."""
    expected, found = expected_and_found()
    drift = []
    for key in sorted(expected.keys() - found.keys()):
        drift.append(f"{key} is in errors/sql but not in the database")
    for key in sorted(found.keys() - expected.keys()):
        drift.append(f"{key} is in the database but in no file of errors/sql")
    for key in sorted(expected.keys() & found.keys()):
        if not _same(expected[key], found[key]):
            diff = difflib.unified_diff(
                expected[key].splitlines(), found[key].splitlines(), lineterm="", n=0
            )
            drift.append(f"{key} differs from errors/sql:\n" + "\n".join(list(diff)[2:]))
    return drift
