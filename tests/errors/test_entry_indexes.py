"""The entries table keeps one index per need: every foreign key leads an index (its lookups
and the SET NULL of a deleted row use it) and no index repeats the start of another (each one
costs every write)."""

import pytest
from django.db import connection

from errors.models import SyncError

pytestmark = pytest.mark.django_db

TABLE = SyncError._meta.db_table


def btree_indexes() -> dict[str, list[tuple[int, bool]]]:
    """Plain btree indexes of the table: their key columns with their direction."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, i.indkey::int[], i.indoption::int[]
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_am a ON a.oid = c.relam
            WHERE i.indrelid = %s::regclass AND a.amname = 'btree' AND i.indpred IS NULL
              AND i.indexprs IS NULL
            """,
            [TABLE],
        )
        return {
            name: [(key, bool(option & 1)) for key, option in zip(keys, options, strict=False)]
            for name, keys, options in cursor.fetchall()
        }


def test_no_index_repeats_the_start_of_another():
    indexes = btree_indexes()
    for name, keys in indexes.items():
        for other, other_keys in indexes.items():
            if other != name and len(keys) <= len(other_keys):
                assert other_keys[: len(keys)] != keys, f"{name} repeats the start of {other}"


def indexes_of_set_keys() -> set[int]:
    """The columns that lead a btree index of the rows where they are set (WHERE col IS NOT
    NULL): it serves every lookup by a value, which implies the column is set."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indkey[0], pg_get_expr(i.indpred, i.indrelid), a.attname
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_am am ON am.oid = c.relam
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = %s::regclass AND am.amname = 'btree' AND i.indpred IS NOT NULL
            """,
            [TABLE],
        )
        return {
            key for key, where, column in cursor.fetchall() if where == f"({column} IS NOT NULL)"
        }


def test_every_foreign_key_leads_an_index():
    leading = {keys[0][0] for keys in btree_indexes().values()} | indexes_of_set_keys()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, conkey FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype = 'f'",
            [TABLE],
        )
        for name, columns in cursor.fetchall():
            assert columns[0] in leading, f"{name} has no index"


@pytest.mark.parametrize(
    "column, index",
    [
        ("job_id", "error_job_recent"),
        ("coupling_id", "error_coupling_set"),
        ("status_changed_by_id", "error_status_changed_by"),
        ("mapping_id", "error_mapping_recent"),
        ("group_id", "error_group_recent"),
    ],
)
def test_deleting_a_related_row_finds_its_entries_by_index(column, index):
    # What Django runs for on_delete=SET_NULL (and the trigger for a deleted coupling);
    # without the index it would read every entry.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN UPDATE {TABLE} SET {column} = NULL WHERE {column} IN (1, 2)")  # noqa: S608
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # Each day's partition has its own copy of the index, named after the partition.
    assert "Seq Scan" not in plan and "Index" in plan, plan


def test_the_keys_most_entries_lack_are_indexed_only_where_set():
    """No entry has a status changer when it is written, and many have no coupling: their
    indexes leave those entries out, so that writing them does not touch the indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = %s::regclass AND a.attname IN ('coupling_id', "
            "'status_changed_by_id')",
            [TABLE],
        )
        found = cursor.fetchall()
    assert sorted(found) == [
        ("coupling_id", "(coupling_id IS NOT NULL)"),
        ("status_changed_by_id", "(status_changed_by_id IS NOT NULL)"),
    ]
