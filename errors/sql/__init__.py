"""The functions and triggers the errors app keeps in the database, as they are now: one file
per function (with its trigger, if it has one) in this folder, plain SQL that runs as it is
(`CREATE OR REPLACE`), apart from `{{ time_zone }}`, which render() fills in.

Each file is installed by exactly one migration, the newest that installs it, which reads it
from here: `Install("<file>", "<digest>", reverse_sql)`, the digest naming the text it was
written for. Older migrations keep their own frozen copy of the text as it stood then. To
change a function:

1. in the migration that installs the file now, replace its `Install(...)` with
   `migrations.RunSQL(render(FROZEN), reverse_sql)`, FROZEN being the file's text as it is
   now (`git show HEAD:errors/sql/<file>`) kept in that migration;
2. change the file, and install it from a new migration:
   `Install("<file>", "<digest>", reverse_sql=render(FROZEN))`, with the digest that
   `python -m errors.sql` prints.

tests/errors/test_sql_source.py checks both: that every file is installed by one migration
that names its current digest, and that what `migrate` leaves in the database is what the
files say (errors.sql.drift)."""

import hashlib
import re
from pathlib import Path

from django.conf import settings
from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent
TIME_ZONE = "{{ time_zone }}"
# The zone errors_entry_day fixes, as its body spells it (read_sql quotes it as a literal).
ENTRY_DAY_ZONE = re.compile(r"AT TIME ZONE '((?:[^']|'')*)'")


def sql_names() -> list[str]:
    """The files, by name."""
    return sorted(path.name for path in SQL_DIR.glob("*.sql"))


def raw_sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def digest(name: str) -> str:
    """What a migration that installs the file names it with: the start of its SHA-256."""
    return hashlib.sha256(raw_sql(name).encode()).hexdigest()[:16]


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render(text: str) -> str:
    """SQL text with settings.TIME_ZONE as a literal where it says {{ time_zone }}."""
    return text.replace(TIME_ZONE, quote_literal(settings.TIME_ZONE))


def read_sql(name: str) -> str:
    return render(raw_sql(name))


class Install(migrations.RunSQL):
    """Installs one file of this folder as it is now. `digest` names the text the migration
    was written for; `reverse_sql` puts back what was there before: a frozen copy of the text
    an older migration installed, a DROP for what is new, or RunSQL.noop for a text that
    changed only in its comments."""

    def __init__(self, file: str, digest: str, reverse_sql):
        self.file, self.digest = file, digest
        super().__init__(read_sql(file), reverse_sql)

    def deconstruct(self):
        return self.__class__.__qualname__, [self.file, self.digest, self.reverse_sql], {}

    def describe(self):
        return f"Install errors/sql/{self.file}"


def database_time_zone(cursor) -> str | None:
    """The zone the database's entry days are in (errors_entry_day), None before it exists."""
    cursor.execute(
        "SELECT prosrc FROM pg_proc WHERE proname = 'errors_entry_day' "
        "AND pronamespace = 'public'::regnamespace"
    )
    row = cursor.fetchone()
    if row is None:
        return None
    found = ENTRY_DAY_ZONE.search(row[0])
    return found.group(1).replace("''", "'") if found else ""


def time_zone_mismatch(cursor) -> str | None:
    """Why settings.TIME_ZONE cannot be used with this database, or None when it can."""
    zone = database_time_zone(cursor)
    if zone is None or zone == settings.TIME_ZONE:
        return None
    return (
        f"TIME_ZONE is {settings.TIME_ZONE!r}, but the database counts the entries' days in "
        f"{zone!r} (errors_entry_day): its day partitions and the problems' day figures were "
        "made with that zone."
    )


TIME_ZONE_HINT = (
    "Set TIME_ZONE back to the zone the database uses. Changing the zone of an existing "
    "database needs a migration that installs errors_entry_day with the new zone and builds "
    "the day partitions and the problems' day figures again."
)


def refuse_other_time_zone(apps, schema_editor) -> None:
    """A migration step: stop before errors_entry_day is installed again with another zone
    than the database's (the system check says the same before `migrate` starts, unless
    checks are skipped)."""
    with schema_editor.connection.cursor() as cursor:
        problem = time_zone_mismatch(cursor)
    if problem:
        raise RuntimeError(f"{problem} {TIME_ZONE_HINT}")
