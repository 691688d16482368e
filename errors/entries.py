"""Writing sync error entries in bulk: checked first, then ids from the table's sequence in
one statement and the rows with PostgreSQL's COPY, in the caller's transaction.

Every value is checked column by column (a C loop per column, not Python work per field),
so a batch that cannot be stored fails as a whole, with an error that names the entry and
the field, before anything is written."""

import io
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from functools import cache
from operator import attrgetter, itemgetter
from typing import cast

from django.db import IntegrityError, connection, models

from . import figures
from .models import SyncError

NULL = "\\N"
# Never part of a checked value (NUL cannot be stored in PostgreSQL text), so it can join the
# values of a column while they are escaped together.
JOIN = "\x00"
REPLACEMENT = "\ufffd"
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# As json.dumps escapes NUL and surrogates (a pair too: an emoji only costs a second look).
UNSTORABLE_IN_JSON = ("\\u0000", "\\ud")
# COPY's text format: these four would end a value or a row, or start an escape.
COPY_ESCAPES = [("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")]


class InvalidEntries(ValueError):
    """A batch holds an entry that cannot be stored as it is; nothing of it was written."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def clean_entries(errors: Sequence[SyncError]) -> None:
    """Check every entry before anything is written: required values present, text within
    its column's length, categories and statuses known. Text from other systems may hold
    what PostgreSQL cannot store (NUL, unpaired surrogates): such a character becomes U+FFFD
    on the entry itself, so that what is stored is what the caller holds (in the values sent,
    as they are written: only then are they turned into JSON)."""
    problems: list[str] = []
    columns = _column_values(errors)
    for field in _columns():
        if field.primary_key:
            continue
        values = columns[field.attname]
        if not field.null and None in values:
            problems += _problems(field, "is missing", [v is None for v in values])
            continue
        if not isinstance(field, models.CharField | models.TextField):
            continue
        texts = _texts(values)
        if not _storable(JOIN.join(texts), len(texts)):
            texts = [UNSTORABLE.sub(REPLACEMENT, text) for text in texts]
            for error, text, value in zip(errors, texts, values, strict=True):
                if value is not None:
                    setattr(error, field.attname, text)
        if field.max_length and max(map(len, texts)) > field.max_length:
            too_long = [len(text) > field.max_length for text in texts]
            problems += _problems(field, f"is longer than {field.max_length} characters", too_long)
        if field.choices:
            known = {choice for choice, _ in field.flatchoices}
            if not known.issuperset(texts):
                problems += _problems(
                    field, "is not a known choice", [t not in known for t in texts]
                )
    if problems:
        raise InvalidEntries(problems)


# Not kept by a constraint in the database (see SyncError.job): checked here once per batch
# and referenced row, where a constraint looked each one up again for every entry; a delete
# of the row clears the key by trigger.
REFERENCES = ("job", "coupling", "mapping")


def check_references(errors: Sequence[SyncError]) -> None:
    """Raise IntegrityError, as a foreign-key constraint would, when an entry names a job,
    coupling or mapping that does not exist: one statement for the batch. The rows named are
    locked against deletion (FOR KEY SHARE, as a constraint's check does) until the caller's
    transaction ends; run it inside that transaction. A delete that waited for the lock then
    clears the keys of the entries written meanwhile (its table's trigger); one that came
    first makes this check wait for it and find the row gone."""
    named, parts, params = {}, [], []
    for name in REFERENCES:
        field = cast(models.ForeignKey, SyncError._meta.get_field(name))
        ids = {pk for pk in _values(errors, field) if pk is not None}
        if not ids:
            continue
        target = cast(type[models.Model], field.related_model)._meta
        named[name] = (field, target.db_table, ids)
        parts.append(
            f"{name} AS (SELECT {target.pk.column} AS id FROM {target.db_table}"  # noqa: S608
            f" WHERE {target.pk.column} = ANY(%s) ORDER BY 1 FOR KEY SHARE)"
        )
        params.append(sorted(ids))
    if not named:
        return
    found = " UNION ALL ".join(f"SELECT '{name}', id FROM {name}" for name in named)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} {found}", params)  # the names are ours
        existing = defaultdict(set)
        for name, pk in cursor.fetchall():
            existing[name].add(pk)
    for name, (field, table, ids) in named.items():
        missing = ids - existing[name]
        if missing:
            raise IntegrityError(
                f"{SyncError._meta.db_table}.{field.column} names no row of {table}: "
                + ", ".join(map(str, sorted(missing)[:10]))
            )


def insert_entries(errors: list[SyncError]) -> list[SyncError]:
    """Write checked entries (see clean_entries) in two statements, whatever their number,
    and set their ids as bulk_create would. Their figures are its caller's to count
    (figures.entries_added, in the same transaction): the first statement says so for the
    transaction, so that the insert trigger kept for the previous release's writers skips
    the COPY."""
    if not errors:
        return errors
    table = SyncError._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s),"  # noqa: S608 - ours
            f" {figures.COUNTED_BY_WRITER} AS counted",
            [_sequence(table), len(errors), figures.BY_WRITER],
        )
        ids = [row[0] for row in cursor.fetchall()]
        for error, pk in zip(errors, ids, strict=True):
            error.pk = pk
        columns, data = copy_rows(errors)
        names = ", ".join(connection.ops.quote_name(field.column) for field in columns)
        statement = f"COPY {connection.ops.quote_name(table)} ({names}) FROM STDIN"
        logged = getattr(cursor, "debug_sql", None)  # in DEBUG, listed with the queries
        with logged(statement) if logged else nullcontext(), connection.wrap_database_errors:
            cursor.cursor.copy_expert(statement, io.BytesIO(data.encode()))
    for error in errors:
        error._state.adding = False
        error._state.db = connection.alias
    return errors


def copy_rows(errors: list[SyncError]) -> tuple[list[models.Field], str]:
    """The columns of the COPY and its rows in COPY's text format."""
    values = _column_values(errors)
    # A column NULL in every row of the batch (most entries are never blocked, counted on or
    # changed yet) is left out: the table's default, NULL, fills it, and neither the COPY
    # text nor the server's reading of it has to spell it out in each row.
    columns = [
        field
        for field in _columns()
        if not (field.attname in _NULL_BY_DEFAULT and _all_null(values[field.attname]))
    ]
    cells = [_cells(field, errors, values[field.attname]) for field in columns]
    return columns, "\n".join(map("\t".join, zip(*cells, strict=True))) + "\n"


@cache
def _columns() -> list[models.Field]:
    return list(SyncError._meta.concrete_fields)


# The nullable columns whose default in the database is NULL (no db_default).
_NULL_BY_DEFAULT = frozenset(
    field.attname
    for field in SyncError._meta.concrete_fields
    if field.null and field.db_default is models.NOT_PROVIDED
)


def _all_null(values: list) -> bool:
    return values.count(None) == len(values)


@cache
def _sequence(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        return cursor.fetchone()[0]


def _cells(field: models.Field, errors: list[SyncError], values: list) -> list[str]:
    """One column of the COPY rows (the entries' values of the field), in its text format."""
    if isinstance(field, models.CharField | models.TextField):
        escaped = _escaped(_texts(values))
        if field.null:
            return [NULL if v is None else e for v, e in zip(values, escaped, strict=True)]
        return escaped
    if isinstance(field, models.ForeignKey | models.IntegerField | models.AutoField):
        return [NULL if v is None else str(int(v)) for v in values]
    if isinstance(field, models.DateTimeField):
        return [
            NULL
            if v is None
            else v.isoformat()
            if v.__class__ is datetime and v.tzinfo is not None
            else _prepared(field, v).isoformat()
            for v in values
        ]
    if isinstance(field, models.JSONField):
        encode = (field.encoder or json.JSONEncoder)().encode  # as json.dumps does
        texts = [encode(v) for v in values if v is not None]
        joined = JOIN.join(texts)
        if any(escape in joined for escape in UNSTORABLE_IN_JSON):
            values = [_clean_json(v) for v in values]
            for error, value in zip(errors, values, strict=True):
                setattr(error, field.attname, value)
            texts = [encode(v) for v in values if v is not None]
        each = iter(_escaped(texts))
        return [NULL if v is None else next(each) for v in values]
    prepared = [None if v is None else _prepared(field, v) for v in values]
    each = iter(_escaped([str(v) for v in prepared if v is not None]))
    return [NULL if v is None else next(each) for v in prepared]


def _prepared(field: models.Field, value):
    return field.get_db_prep_save(value, connection)


def _column_values(errors: Sequence[SyncError]) -> dict[str, list]:
    """Every column's values: each entry's read in one call, then turned into columns (one
    pass over the entries, rather than one per column)."""
    names = [field.attname for field in _columns()]
    try:
        rows = list(map(itemgetter(*names), map(vars, errors)))
    except KeyError:
        rows = list(map(attrgetter(*names), errors))
    return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))


def _values(errors: Sequence[SyncError], field: models.Field) -> list:
    """A column's values, read straight from the entries' __dict__ where they all are (the
    foreign keys' attributes are Python descriptors, slow at this count)."""
    try:
        return list(map(itemgetter(field.attname), map(vars, errors)))
    except KeyError:
        return list(map(attrgetter(field.attname), errors))


def _texts(values: list) -> list[str]:
    # str subclasses (a Category, a Status) join and measure as their value.
    if all(issubclass(kind, str) for kind in set(map(type, values))):
        return values
    return [v if isinstance(v, str) else "" if v is None else str(v) for v in values]


def _escaped(texts: list[str]) -> list[str]:
    """The texts escaped for COPY, all at once: joined, replaced, split again."""
    if not texts:
        return texts
    joined = JOIN.join(texts)
    if not _storable(joined, len(texts)):
        raise InvalidEntries(
            ["a value holds NUL or an unpaired surrogate: clean the entries first"]
        )
    for char, escape in COPY_ESCAPES:
        if char in joined:
            joined = joined.replace(char, escape)
    return joined.split(JOIN)


def _storable(joined: str, count: int) -> bool:
    """Whether PostgreSQL can hold `count` texts joined by JOIN: no NUL in any of them, and
    valid UTF-8 once encoded."""
    if joined.count(JOIN) != count - 1:
        return False
    try:
        joined.encode()
    except UnicodeEncodeError:
        return False
    return True


def _clean_json(value):
    if isinstance(value, str):
        return UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_clean_json(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    return value


def _problems(field: models.Field, what: str, wrong: list[bool]) -> list[str]:
    return [f"entry {i}: {field.name} {what}" for i, bad in enumerate(wrong) if bad]
