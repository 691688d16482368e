"""What every benchmark shares: its own database, a COPY loader, timing and reporting.

Benchmarks run against a database of their own (the configured database's name with
`_bench` appended, created and migrated on first use), never against the console's data.
"""

import io
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BENCH_DB_SUFFIX = "_bench"


def setup_django() -> None:
    """Point Django at the benchmark database (creating and migrating it) and set it up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncconsole.settings")
    os.environ.setdefault("DEBUG", "0")
    import django
    from django.conf import settings

    if settings.configured and getattr(settings, "_bench_ready", False):
        return
    url = os.environ.get("DATABASE_URL")
    if not url:
        from syncconsole.embedded_db import ensure_running

        url = ensure_running(Path(__file__).resolve().parent.parent / ".data")
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    if not name.endswith(BENCH_DB_SUFFIX):
        name += BENCH_DB_SUFFIX
    bench_url = urlunsplit(parts._replace(path="/" + name))
    _create_database(url, name)
    os.environ["DATABASE_URL"] = bench_url
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    settings._bench_ready = True


def _create_database(url: str, name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()


COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Load rows with PostgreSQL's COPY (text format), in chunks; returns how many."""
    from django.db import connection

    def cell(value: object) -> str:
        if value is None:
            return r"\N"
        text = str(value)
        return text.translate(COPY_ESCAPES)

    total = 0
    chunk: list[str] = []
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg2 cursor, for copy_expert

        def flush() -> None:
            raw.copy_expert(statement, io.StringIO("".join(chunk)))
            chunk.clear()

        for row in rows:
            chunk.append("\t".join(cell(v) for v in row) + "\n")
            total += 1
            if len(chunk) >= 100_000:
                flush()
        if chunk:
            flush()
    return total


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sample(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Milliseconds of each of `runs` calls, after `warmup` calls that are not counted."""
    for _ in range(warmup):
        fn()
    return [timed(fn) * 1000 for _ in range(runs)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def analyze(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


@contextmanager
def stage(title: str):
    start = time.perf_counter()
    print(f"  {title} ...", flush=True)
    yield
    print(f"  {title}: {time.perf_counter() - start:.1f} s", flush=True)


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    try:
        cpu = subprocess.run(
            ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        cpu = platform.processor()
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({cpu or 'unknown CPU'}), PostgreSQL {pg}, Python {python}"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float) -> str:
    return f"{value:,.1f} ms"
