"""Migration operations for what Django has no safe form of."""

from django.contrib.postgres.operations import NotInTransactionMixin
from django.db.migrations.operations import AddIndex


def partitions_of(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
        [table],
    )
    return [row[0] for row in cursor.fetchall()]


def _index_state(cursor, name: str) -> bool | None:
    """Whether the index is valid; None when there is none."""
    cursor.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
        [name],
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


class AddIndexToPartitions(NotInTransactionMixin, AddIndex):
    """AddIndexConcurrently for a partitioned table (the entries), where PostgreSQL cannot
    build an index CONCURRENTLY: the index is declared on the parent alone (ON ONLY: no row is
    read, it stays invalid), built CONCURRENTLY on each partition, and each partition's index
    attached to it; the parent's index is valid once all are. Partitions created meanwhile get
    the index with their table. Run again after a failure, it drops the invalid index a failed
    build left on a partition and builds it again. Needs a migration with atomic = False."""

    atomic = False

    def describe(self):
        return f"Concurrently create index {self.index.name} on each partition of {self.model_name}"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not schema_editor.collect_sql:  # sqlmigrate and the checker only read the SQL
            self._ensure_not_in_transaction(schema_editor)
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        table = model._meta.db_table
        parent = self.index.create_sql(model, schema_editor)
        parent.template = parent.template.replace(
            "INDEX %(name)s ON %(table)s", "INDEX IF NOT EXISTS %(name)s ON ONLY %(table)s"
        )
        schema_editor.execute(parent)
        with schema_editor.connection.cursor() as cursor:
            partitions = partitions_of(cursor, table)
        for partition in partitions:
            suffix = partition.removeprefix(f"{table}_")
            name = f"{self.index.name}_{suffix}"[:63]
            with schema_editor.connection.cursor() as cursor:
                state = _index_state(cursor, name)
            if state is False:
                schema_editor.execute(
                    f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}"
                )
            if state is not True:
                child = self.index.create_sql(model, schema_editor, concurrently=True)
                child.rename_table_references(table, partition)
                child.parts["name"] = schema_editor.quote_name(name)
                schema_editor.execute(child)
            schema_editor.execute(
                f"ALTER INDEX {schema_editor.quote_name(self.index.name)}"
                f" ATTACH PARTITION {schema_editor.quote_name(name)}"
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._ensure_not_in_transaction(schema_editor)
        super().database_backwards(app_label, schema_editor, from_state, to_state)
