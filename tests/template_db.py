"""A migrated database that the test databases are copied from.

Migrating a new test database runs every migration of the project (some 20 s here), once for
each of the suite's processes. Instead, the first run after a change to the migrations
migrates one template database, named after a digest of everything the migrations are made
of, and each test database is created as a copy of it (`CREATE DATABASE ... TEMPLATE`, under
a second), after which Django's own `migrate` of the test database finds nothing left to
apply and only runs its post-migrate steps (permissions, the role groups). A template whose
digest no longer matches is dropped when its successor is built."""

import hashlib
import os
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

# What the schema of a migrated database is made of: the migrations, the SQL files and
# helpers they read, and the packages they come with.
MIGRATION_SOURCES = (
    "*/migrations/*.py",
    "errors/sql/**/*",
    "errors/roles.py",
    "syncconsole/beat.py",
    "syncconsole/migration_ops.py",
    "syncconsole/permissions.py",
    "pyproject.toml",
)


def digest(base: Path) -> str:
    hashed = hashlib.sha256()
    for pattern in MIGRATION_SOURCES:
        for path in sorted(base.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                hashed.update(str(path.relative_to(base)).encode())
                hashed.update(path.read_bytes())
    return hashed.hexdigest()[:12]


def database_url(settings_dict: dict, name: str) -> str:
    auth = quote(settings_dict["USER"] or "", safe="")
    if settings_dict["PASSWORD"]:
        auth += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = quote(settings_dict["HOST"] or "", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgresql://{auth}@{host}{port}/{quote(name, safe='')}"


def _maintenance_connection(settings_dict: dict):
    connection = psycopg2.connect(
        dbname="postgres",
        user=settings_dict["USER"] or None,
        password=settings_dict["PASSWORD"] or None,
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
    )
    connection.autocommit = True
    return connection


def ensure_template(settings_dict: dict, base: Path) -> str:
    """The name of the migrated template for this version of the migrations, built now if
    there is none. Several test runs at once build it once: the first holds an advisory lock
    while it migrates, the others wait for it."""
    prefix = f"{settings_dict['NAME']}_tpl_"[:50]
    name = prefix + digest(base)
    building = name + "_new"
    connection = _maintenance_connection(settings_dict)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [prefix])
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(building))
                )
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
                migrated = subprocess.run(
                    [sys.executable, "manage.py", "migrate", "--noinput"],
                    cwd=base,
                    env={**os.environ, "DATABASE_URL": database_url(settings_dict, building)},
                    capture_output=True,
                    text=True,
                )
                if migrated.returncode != 0:
                    raise RuntimeError(
                        "Migrating the template of the test databases failed:\n"
                        + migrated.stdout
                        + migrated.stderr
                    )
                cursor.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(building), sql.Identifier(name)
                    )
                )
                _drop_older(cursor, prefix, name)
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [prefix])
    finally:
        connection.close()
    return name


def _drop_older(cursor, prefix: str, keep: str) -> None:
    cursor.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND datname <> %s",
        [prefix, keep],
    )
    for (old,) in cursor.fetchall():
        # One in use by a run of an older version is left to the next build.
        with suppress(psycopg2.Error):
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(old)))
