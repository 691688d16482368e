"""Migrations that are safe under traffic, on an entries table of tens of millions of rows.

`check_project` reads the SQL of every migration after the reviewed ones
(`syncconsole.migrations_reviewed`), as `sqlmigrate` prints it, and refuses each statement that
rewrites a table, reads a whole table under a lock that stops writers, or leaves the running
version of the console unable to work (see docs/operations/upgrades.md). The SQL rather than the
operations: what PostgreSQL does is decided by the statement, whichever operation wrote it.

`migration_lock_timeout` is the other half: a migration that waits for a lock queues every
reader and writer of the table behind it, so it gives up after MIGRATION_LOCK_TIMEOUT instead.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlparse
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState

from .migrations_reviewed import REVIEWED

# rule: (what goes wrong, the safe way)
RULES = {
    "index-not-concurrent": (
        "builds the index while writes to the table wait",
        "use AddIndexConcurrently (or RemoveIndexConcurrently) in a migration with atomic = False;"
        " on a partitioned table, syncconsole.migration_ops.AddIndexToPartitions",
    ),
    "index-on-partitioned-table": (
        "PostgreSQL cannot build an index CONCURRENTLY on a partitioned table",
        "use syncconsole.migration_ops.AddIndexToPartitions in a migration with atomic = False",
    ),
    "volatile-default": (
        "a volatile default is computed for every row: the table is rewritten",
        "add the column nullable, fill it in batches from a task, then add the default",
    ),
    "column-rewrite": (
        "a serial, identity or stored generated column rewrites the table",
        "add a plain nullable column and fill it in batches",
    ),
    "not-null-without-db-default": (
        "a NOT NULL column without a default kept in the database fails the inserts of the"
        " running version, which does not know the column",
        "make it null=True, or give it db_default= a constant (kept by PostgreSQL, read from"
        " the catalogue without a rewrite)",
    ),
    "alter-column-type": (
        "changing a column's type rewrites the table (and its indexes) under an exclusive lock",
        "add a new column, write both, fill the new one in batches, read it, and drop the old"
        " one in a later release",
    ),
    "set-not-null": (
        "SET NOT NULL reads the whole table under an exclusive lock",
        'add CHECK ("col" IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT in the next statement,'
        " then SET NOT NULL (which then reads nothing) and drop the check",
    ),
    "constraint-not-valid": (
        "a foreign key or check added without NOT VALID reads the whole table while writes wait",
        "add it with NOT VALID and VALIDATE CONSTRAINT it in a later statement (RunSQL with"
        " state_operations; the field with db_constraint=False until then)",
    ),
    "unique-without-index": (
        "a unique, primary key or exclusion constraint builds its index while writes wait",
        "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE USING INDEX",
    ),
    "drop-or-rename": (
        "the running version still reads and writes what is dropped or renamed",
        "stop using it in one release (SeparateDatabaseAndState keeps it in the database), drop"
        " it in the next, and mark that migration reviewed",
    ),
    "table-rewrite": (
        "rewrites or locks the whole table",
        "leave it to maintenance outside an upgrade (REINDEX CONCURRENTLY, pg_repack)",
    ),
    "run-python": (
        "runs code whose cost on a large table the checker cannot see",
        "keep it to small tables, or move the work to a task that runs in batches; then mark the"
        " migration reviewed_unsafe = {'run-python': 'why it is safe'}",
    ),
    "data-sql": (
        "reads or writes rows, whose cost on a large table the checker cannot see",
        "keep it to small tables, or move the work to a task that runs in batches; then mark the"
        " migration reviewed_unsafe = {'data-sql': 'why it is safe'}",
    ),
}


@dataclass(frozen=True)
class Finding:
    migration: str
    operation: str
    rule: str
    statement: str

    def __str__(self) -> str:
        problem, safe_way = RULES[self.rule]
        return (
            f"{self.migration}: {self.operation}\n    {self.statement}\n"
            f"    [{self.rule}] {problem}.\n    Safe way: {safe_way}."
        )


VOLATILE = re.compile(
    r"\b(random|gen_random_uuid|uuid_generate_v\w*|clock_timestamp|timeofday|nextval|"
    r"txid_current)\s*\(",
    re.I,
)
NAME = r'(?:"(?:[^"]|"")+"|[\w$]+)(?:\.(?:"(?:[^"]|"")+"|[\w$]+))?'
ALTER_TABLE = re.compile(rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?({NAME})", re.I)
CREATE_TABLE = re.compile(
    rf"^CREATE\s+(?:UNLOGGED\s+|TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({NAME})", re.I
)
CREATE_INDEX = re.compile(
    rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:{NAME}\s+)?"
    rf"ON\s+(ONLY\s+)?({NAME})",
    re.I,
)
DATA = re.compile(r"^(UPDATE|DELETE|INSERT|MERGE|COPY|DO|SELECT|WITH|TRUNCATE|CALL)\b", re.I)
REWRITES = re.compile(
    r"^(VACUUM\s+FULL|CLUSTER|LOCK\b|REINDEX\s+(?!.*CONCURRENTLY))|"
    r"\bSET\s+(TABLESPACE|LOGGED|UNLOGGED)\b",
    re.I,
)


def _bare(name: str) -> str:
    return name.split(".")[-1].strip('"').replace('""', '"')


def _without_literals(sql: str) -> str:
    """The statement without its comments, strings and function bodies, which say nothing about
    locks and could hide a keyword."""
    sql = sqlparse.format(sql, strip_comments=True)
    sql = re.sub(r"\$(\w*)\$.*?\$\1\$", "$$$$", sql, flags=re.S)
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return " ".join(sql.split()).rstrip(";").strip()


def statements(sql_lines: list[str]) -> Iterator[tuple[str, str]]:
    """(as written, as judged) for each statement of the collected SQL."""
    for text in sql_lines:
        for statement in sqlparse.split(text):
            judged = _without_literals(statement)
            if judged:
                yield " ".join(statement.split()), judged


def statement_rules(
    sql: str, new_tables: set[str], partitioned: set[str], dropped_defaults: set[str]
) -> list[str]:
    """The rules one statement breaks, `sql` without literals (see _without_literals)."""
    if match := CREATE_TABLE.match(sql):
        new_tables.add(_bare(match[1]))
        return []
    if DATA.match(sql):
        return ["data-sql"]
    if match := CREATE_INDEX.match(sql):
        concurrently, only, table = match[1], match[2], _bare(match[3])
        if table in new_tables or only:
            return []
        if not concurrently:
            return ["index-not-concurrent"]
        return ["index-on-partitioned-table"] if table in partitioned else []
    if re.match(r"^DROP\s+INDEX\b(?!\s+CONCURRENTLY)", sql, re.I):
        return ["index-not-concurrent"]
    if re.match(r"^DROP\s+TABLE\b", sql, re.I):
        return ["drop-or-rename"]
    if REWRITES.search(sql):
        return ["table-rewrite"]
    match = ALTER_TABLE.match(sql)
    if not match or _bare(match[1]) in new_tables:
        return []
    return _alter_table_rules(sql, dropped_defaults)


def _alter_table_rules(sql: str, dropped_defaults: set[str]) -> list[str]:
    broken = []
    actions = ALTER_TABLE.sub("", sql, count=1)
    for action in re.split(
        r",\s*(?=(?:ADD|ALTER|DROP|VALIDATE|RENAME|SET)\b)", actions, flags=re.I
    ):
        upper = action.strip().upper()
        if re.match(r"ADD\s+(CONSTRAINT\s+\S+\s+)?(FOREIGN\s+KEY|CHECK)\b", upper):
            if not re.search(r"\bNOT\s+VALID\b", upper):
                broken.append("constraint-not-valid")
        elif re.match(r"ADD\s+(CONSTRAINT\s+\S+\s+)?(UNIQUE|PRIMARY\s+KEY|EXCLUDE)\b", upper):
            if not re.search(r"\bUSING\s+INDEX\b", upper):
                broken.append("unique-without-index")
        elif column := re.match(
            rf"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?({NAME})", action.strip(), re.I
        ):
            broken += _new_column_rules(_bare(column[1]), action, upper, dropped_defaults)
        elif re.match(r"ALTER\s+(COLUMN\s+)?\S+\s+(SET\s+DATA\s+)?TYPE\b", upper):
            broken.append("alter-column-type")
        elif re.match(r"ALTER\s+(COLUMN\s+)?\S+\s+SET\s+NOT\s+NULL\b", upper):
            broken.append("set-not-null")
        elif re.match(r"DROP\s+(?!CONSTRAINT\b)", upper) or re.match(r"RENAME\b", upper):
            broken.append("drop-or-rename")
    return broken


def _new_column_rules(name: str, action: str, upper: str, dropped_defaults: set[str]) -> list[str]:
    broken = []
    has_default = re.search(r"\bDEFAULT\b", upper)
    if has_default and VOLATILE.search(action):
        broken.append("volatile-default")
    if re.search(r"\b(BIG|SMALL)?SERIAL\b|\bGENERATED\b", upper):
        broken.append("column-rewrite")
    if re.search(r"\bNOT\s+NULL\b", upper) and (not has_default or name in dropped_defaults):
        broken.append("not-null-without-db-default")
    if re.search(r"\bREFERENCES\b|\bCHECK\s*\(", upper):
        broken.append("constraint-not-valid")
    if re.search(r"\bUNIQUE\b|\bPRIMARY\s+KEY\b", upper):
        broken.append("unique-without-index")
    return broken


def _dropped_defaults(judged: list[str]) -> set[str]:
    """Columns whose default the same operation drops at once: Django adds a NOT NULL column
    with its Python default in the database only while it fills the rows."""
    found = set()
    for sql in judged:
        for match in re.finditer(rf"ALTER\s+COLUMN\s+({NAME})\s+DROP\s+DEFAULT", sql, re.I):
            found.add(_bare(match[1]))
    return found


def _runs_python(operation) -> bool:
    if isinstance(operation, migrations.RunPython):
        return True
    if isinstance(operation, migrations.SeparateDatabaseAndState):
        return any(_runs_python(inner) for inner in operation.database_operations)
    return False


def _collect(app_label, operation, editor, from_state, to_state) -> None:
    if isinstance(operation, migrations.SeparateDatabaseAndState):
        state = from_state.clone()
        for inner in operation.database_operations:
            before = state.clone()
            inner.state_forwards(app_label, state)
            _collect(app_label, inner, editor, before, state)
    elif not isinstance(operation, migrations.RunPython):
        operation.database_forwards(app_label, editor, from_state, to_state)


def partitioned_tables(connection) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'p'"
            " AND relnamespace = current_schema()::regnamespace"
        )
        return {row[0] for row in cursor.fetchall()}


def check_migration(
    migration: Migration, state: ProjectState, connection, partitioned: set[str]
) -> list[Finding]:
    """The findings of one migration, from the project state before it, as sqlmigrate would
    print its SQL (nothing is run: RunPython is not called)."""
    label = f"{migration.app_label}.{migration.name}"
    waived = getattr(migration, "reviewed_unsafe", {}) or {}
    if any(not str(why).strip() for why in waived.values()):
        raise ValueError(f"{label}: reviewed_unsafe must say why each rule is waived")
    findings = []
    new_tables: set[str] = set()
    state = state.clone()
    with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
        for operation in migration.operations:
            described = operation.describe()
            if _runs_python(operation):
                findings.append(Finding(label, described, "run-python", "RunPython"))
            start = len(editor.collected_sql)
            before = state.clone()
            operation.state_forwards(migration.app_label, state)
            _collect(migration.app_label, operation, editor, before, state)
            written = list(statements(editor.collected_sql[start:]))
            dropped = _dropped_defaults([judged for _, judged in written])
            for text, judged in written:
                for rule in statement_rules(judged, new_tables, partitioned, dropped):
                    findings.append(Finding(label, described, rule, text))
    return [finding for finding in findings if finding.rule not in waived]


def checked_migrations(loader: MigrationLoader) -> list[tuple[str, str]]:
    """Every migration after the reviewed ones, in the order migrate applies them."""
    graph = loader.graph
    reviewed: set[tuple[str, str]] = set()
    for app, name in REVIEWED.items():
        if (app, name) not in graph.nodes:
            raise ValueError(f"migrations_reviewed names {app}.{name}, which does not exist")
        reviewed.update(node for node in graph.forwards_plan((app, name)) if node[0] == app)
    plan: list[tuple[str, str]] = []
    for leaf in sorted(graph.leaf_nodes()):
        for node in graph.forwards_plan(leaf):
            if node not in reviewed and node not in plan:
                plan.append(node)
    return plan


def check_project(connection) -> list[Finding]:
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    partitioned = partitioned_tables(connection)
    findings = []
    for node in checked_migrations(loader):
        state = loader.project_state(node, at_end=False)
        findings += check_migration(loader.graph.nodes[node], state, connection, partitioned)
    return findings


@contextmanager
def migration_lock_timeout(connection, milliseconds: int) -> Iterator[None]:
    """The connection's statements wait at most this long for a lock, for the time of the
    block (0: as long as the server's own setting says)."""
    if not milliseconds:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{int(milliseconds)}ms"])
    try:
        yield
    finally:
        if connection.connection is not None and not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
