"""Benchmark 3: ingestion of sync error entries through errors.grouping.record_errors, the one
path the sync engine takes (grouping and every index in place), onto a table that already
holds 1,000,000 entries; against one INSERT per entry, bulk_create, record_errors as it was
(grouping, then bulk_create), the previous round's way (a trigram index on every entry's
message, put back for the measurement) and PostgreSQL's COPY into a narrow table (the limit).
Then the ingestion API (POST /api/v1/ingest/) beside bulk_create of the same entries; where
each microsecond of an entry goes (each index, the figure triggers, the foreign-key
constraints the entries had before), what the problems' record rows cost a batch
(bench/record_rows.py), several writers at once, and Python's share.

Each figure is the median of several runs; a run writes its entries in batches, each batch
in its own transaction, as the engine does (one batch per page it read). The entries written
are deleted after each measurement, so every one starts on the same table."""

import io
import json
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from unittest import mock

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import ingestion
from api.models import ApiToken
from api.serializers import IngestedErrorSerializer, quick_ingest_check
from couplings.models import Coupling
from errors import figures, grouping
from errors.entries import check_references, clean_entries, copy_rows, insert_entries
from errors.grouping import fingerprint, record_errors
from errors.models import ErrorGroup, SyncError
from sync.connectors.odata import SideConfig
from sync.engine import RETRY_BATCH
from sync.models import SyncJob
from syncconsole.permissions import INTEGRATIONS

from . import record_rows
from .common import analyze, median, stage, table
from .data import FIELDS, TEMPLATES, VALUES, bench_mappings, clear_errors, generate_errors

TARGET = 25_000  # entries per second, by one writer in batches of a page
API_TARGET = 2.0  # the API against bulk_create of the same entries
# The previous round's figure (RESULTS.md of 2026-11-25, 1,000,000 entries, batches of 1,000),
# with the trigram index on every entry's message that this round takes away; the same way is
# measured again in this run by putting that index back.
PREVIOUS_ROUND = 9_420
PREVIOUS_INDEX = "bench_message_trgm"
PAGE = SideConfig.page_size  # the engine writes a page's failures in one batch
BIG_BATCH = 5_000
COUPLINGS_PER_MAPPING = 2_000
TABLE = SyncError._meta.db_table
NARROW = "bench_narrow_entries"
# Differences of a few µs an entry are within the noise of a shared machine.
NOISE_US = 5.0
NARROWER_ROW = "without the values sent and the app's answer (a narrower row, at most)"


def run(quick: bool) -> str:
    size = 20_000 if quick else 1_000_000
    per_run = 5_000 if quick else 20_000
    runs = 3 if quick else 5
    with stage(f"{size:,} entries"):
        if SyncError.objects.count() != size:
            clear_errors()
            generate_errors(size)
            analyze(TABLE)
    mappings = bench_mappings()
    couplings = _couplings(mappings)
    bench = Bench(mappings, couplings, runs)

    rows = []
    with stage("naive ways and record_errors"):
        rows.append(
            (
                "one INSERT per entry, no grouping",
                "1",
                bench.rate(bench.save_each, per_run // 10, 1),
            )
        )
        rows.append(
            ("bulk_create, no grouping", f"{PAGE:,}", bench.rate(bench.bulk_create, per_run, PAGE))
        )
        with mock.patch.object(grouping, "insert_entries", _bulk_create):
            rows.append(
                (
                    "record_errors before: grouping, then bulk_create",
                    f"{PAGE:,}",
                    bench.rate(record_errors, per_run, PAGE),
                )
            )
        for batch in (RETRY_BATCH, PAGE, BIG_BATCH):
            rows.append(
                (
                    "**record_errors now: grouping, COPY**",
                    f"{batch:,}",
                    bench.rate(record_errors, per_run, batch),
                )
            )
        with _previous_round_index():
            rows.append(
                (
                    "record_errors, previous round: with a trigram index on every message",
                    f"{PAGE:,}",
                    bench.rate(record_errors, per_run, PAGE),
                )
            )
        for batch in (PAGE, BIG_BATCH):
            rows.append(
                (
                    "COPY into a narrow table, no index (the limit)",
                    f"{batch:,}",
                    bench.rate_narrow(per_run, batch),
                )
            )
    now = _find(rows, "**record_errors now", f"{PAGE:,}")
    big = _find(rows, "**record_errors now", f"{BIG_BATCH:,}")
    before = _find(rows, "record_errors, previous round", f"{PAGE:,}")

    with stage("the ingestion API beside bulk_create"):
        n = per_run
        api_rows = [
            (
                "bulk_create of the same entries, no check, no grouping",
                bench.rate_api_bulk(per_run),
            ),
            ("**POST /api/v1/ingest/: every check, grouping**", bench.rate_api(n)),
        ]
        api_ratio = api_rows[1][1] / api_rows[0][1]

    with stage("where each microsecond goes"):
        parts = bench.breakdown(per_run // 2, PAGE)
        trips = bench.round_trips(PAGE)
    with stage("the record rows"):
        records_section, _ = record_rows.measure(runs, PAGE)
    with stage("writers in parallel"):
        parallel = [
            (writers, bench.rate_parallel(writers, per_run // writers, PAGE))
            for writers in (1, 2, 3)
        ]

    with stage("Python's share"):
        python = bench.python_share(per_run)
    total = SyncError.objects.count()

    met = now >= TARGET
    lines = [
        "## Ingestion (benchmark 3)",
        "",
        f"Entries like the engine's ({len(mappings)} mappings, {len(TEMPLATES)} message "
        f"templates with record ids and values, job, coupling, links, response body, values "
        f"sent) written through `errors.grouping.record_errors` onto `{TABLE}` holding "
        f"{size:,} entries ({total:,} after the run: what each measurement wrote was deleted) "
        f"with its {len(_indexes())} secondary indexes and {len(_foreign_keys())} foreign-key "
        "constraint(s) (job, coupling and mapping are checked once per batch instead; the group "
        "is the one the batch's upsert returned). "
        f"Median of {runs} runs of {per_run:,} entries (one INSERT per entry: "
        f"{per_run // 10:,}); each batch is its own transaction. The engine writes one batch "
        f"per page it read: {PAGE:,} records a page, {RETRY_BATCH} when it retries by id.",
        "",
        table(
            ["how", "batch", "entries/s", "vs one INSERT per entry"],
            [
                (how, batch, f"{rate:,.0f}", f"{rate / rows[0][2]:,.1f}×")
                for how, batch, rate in rows
            ],
        ),
        "",
        f"**Target ≥ {TARGET:,} entries/s: {'met' if met else 'not met'}** — "
        f"{now:,.0f}/s in batches of {PAGE:,}, {big:,.0f}/s in batches of {BIG_BATCH:,}; "
        f"{now / _find(rows, 'record_errors before', f'{PAGE:,}'):,.1f}× record_errors "
        f"with bulk_create, {now / before:,.2f}× the previous round's way measured in this run "
        f"(recorded then: {PREVIOUS_ROUND:,}/s).",
        "",
        "### The ingestion API",
        "",
        f"`POST /api/v1/ingest/` (Django's test client through the whole stack: the token, "
        f"the JSON, every check, record_errors, the answer) in batches of {PAGE:,} of another "
        "integration's entries (no job, coupling or mapping), beside Django's bulk_create of the "
        f"same entries into the same table in the same run; median of {runs} runs of "
        f"{per_run:,}.",
        "",
        table(
            ["how", "entries/s", "vs bulk_create"],
            [(how, f"{rate:,.0f}", f"{rate / api_rows[0][1]:,.2f}×") for how, rate in api_rows],
        ),
        "",
        f"**Target ≥ {API_TARGET:.0f}× bulk_create: "
        f"{'met' if api_ratio >= API_TARGET else 'not met'}** — {api_ratio:,.2f}×.",
        "",
        "### Where each microsecond goes",
        "",
        f"record_errors in batches of {PAGE:,} ({per_run // 2:,} entries a run), as shipped and "
        "then with one part taken away (or put back) at a time, all in one transaction rolled "
        "back at the end (nothing rebuilt between them; nothing commits, so the commit's WAL "
        "flush is in none of these, and a constraint put back checks at each statement). "
        "`insert_entries` is the ids, the COPY text and the COPY itself; the rest is the "
        "checks, the fingerprints, the group upsert and the figure triggers' work that runs "
        "after the COPY statement. The cost of a part is what the entry saves without it; "
        "a few µs are within the noise of this shared machine.",
        "",
        table(
            ["table", "µs per entry", "of which insert_entries", "cost of the part"],
            [
                (what, f"{total:,.1f}", f"{copy:,.1f}", _cost(total, parts[0][1]))
                for what, total, copy in parts
            ],
        ),
        "",
        records_section,
        "",
        "### Writers in parallel",
        "",
        f"The same entries written by several processes at once, each its own batches of "
        f"{PAGE:,} in their own transactions (the engine's workers and the ingestion API "
        f"write at the same time); {per_run:,} entries a run in all, on {os.cpu_count()} cores "
        "shared with PostgreSQL.",
        "",
        table(
            ["writers", "entries/s in all", "vs one writer"],
            [(w, f"{rate:,.0f}", f"{rate / parallel[0][1]:,.2f}×") for w, rate in parallel],
        ),
        "",
        "### Python's share",
        "",
        f"The same {per_run:,} entries through the Python steps alone (no database), in "
        f"batches of {PAGE:,}:",
        "",
        table(["step", "µs per entry"], [(step, f"{us:,.1f}") for step, us in python]),
    ]
    reading = _reading(met, now, parts, python, parallel, trips)
    if api_ratio < API_TARGET:
        reading += "\n\n" + _api_reading(bench.api_parts(per_run))
    return "\n".join(lines) + "\n\n" + reading


class Bench:
    def __init__(self, mappings, couplings, runs: int):
        self.mappings = mappings
        self.couplings = couplings
        self.runs = runs
        self.rng = random.Random(3)

    def entries(self, n: int) -> list[SyncError]:
        """Failures as the engine logs them: one job per run, most of them of coupled
        records."""
        rng = self.rng
        mapping = rng.choice(self.mappings)
        job = SyncJob.objects.create(
            mapping=mapping, started_at=timezone.now(), status=SyncJob.Status.RUNNING
        )
        pool = self.couplings[mapping.pk]
        errors = []
        for _ in range(n):
            category, template = rng.choice(TEMPLATES)
            record = f"C{rng.randrange(10_000_000):08d}"
            coupling = rng.choice(pool) if rng.random() < 0.8 else None
            target = coupling.destination_record_id if coupling else ""
            field, value = rng.choice(FIELDS), rng.choice(VALUES)
            message = template.format(id=record, field=field, value=value, date="2026-11-25")
            errors.append(
                SyncError(
                    created_at=timezone.now(),
                    job=job,
                    mapping=mapping,
                    coupling=coupling,
                    category=category,
                    source_app="Business Central",
                    source_entity=mapping.source_entity,
                    source_record_id=record,
                    source_url=f"https://erp.example.com/customers/{record}",
                    destination_app="Dynamics 365 Sales",
                    destination_entity=mapping.destination_entity,
                    destination_record_id=target,
                    destination_url=f"https://crm.example.com/main.aspx?id={target}"
                    if target
                    else "",
                    message=message,
                    detail=f'{{"error": {{"code": "0x80040237", "message": "{message}"}}}}',
                    sent_values={
                        "kind": "update",
                        "sent": {field: value, "name": "Contoso Ltd."},
                        "read": {field: value.lower(), "name": "Contoso Ltd."},
                    },
                )
            )
        return errors

    def rate(self, write: Callable[[list[SyncError]], object], n: int, batch: int) -> float:
        """Median entries per second of writing n entries in batches."""
        rates = []
        for _ in range(self.runs + 1):  # the first warms up
            errors = self.entries(n)
            batches = [errors[i : i + batch] for i in range(0, n, batch)]
            mark = _last_id()
            groups = _group_figures()
            start = time.perf_counter()
            for chunk in batches:
                write(chunk)
            rates.append(n / (time.perf_counter() - start))
            _forget_since(mark, groups)
        return median(rates[1:])

    def save_each(self, errors: list[SyncError]) -> None:
        # One INSERT per entry, as save() would send it (save() itself refuses a new entry:
        # record_errors is the one way to store one with its figures).
        for error in errors:
            SyncError.objects.bulk_create([error])

    def bulk_create(self, errors: list[SyncError]) -> None:
        SyncError.objects.bulk_create(errors)

    def api_payloads(self, n: int) -> list[list[dict]]:
        """The entries as another integration sends them, a request body per page."""
        errors = self.entries(n)
        entries = [
            {
                "message": e.message,
                "category": e.category,
                "detail": e.detail,
                "occurred_at": e.created_at.isoformat(),
                **{name: getattr(e, name) for name in API_TEXTS},
            }
            for e in errors
        ]
        entries = json.loads(json.dumps(entries))  # as they arrive: plain JSON values
        return [entries[i : i + PAGE] for i in range(0, n, PAGE)]

    def rate_api_bulk(self, n: int) -> float:
        """bulk_create of the entries the API is sent, as they are: no check, no grouping."""

        def write(batch: list[dict]) -> None:
            SyncError.objects.bulk_create(
                SyncError(
                    integration=API_INTEGRATION,
                    created_at=datetime.fromisoformat(entry["occurred_at"]),
                    **{k: v for k, v in entry.items() if k != "occurred_at"},
                )
                for entry in batch
            )

        return self._rate_bodies(n, write)

    def rate_api(self, n: int) -> float:
        client = _api_client()

        def write(batch: list[dict]) -> None:
            response = client.post(INGEST_URL, json.dumps(batch), content_type="application/json")
            assert response.status_code == 201, response.content[:500]

        return self._rate_bodies(n, write)

    def _rate_bodies(self, n: int, write: Callable[[list[dict]], None]) -> float:
        rates = []
        for _ in range(self.runs + 1):  # the first warms up
            bodies = self.api_payloads(n)
            mark, groups = _last_id(), _group_figures()
            start = time.perf_counter()
            for body in bodies:
                with transaction.atomic():
                    write(body)
            rates.append(n / (time.perf_counter() - start))
            _forget_since(mark, groups)
        return median(rates[1:])

    def api_parts(self, n: int) -> list[tuple[str, float]]:
        """Where an API entry's time goes: µs per entry of each step alone, and the request
        as a whole; the rest is the request's reading, the token and the answer's JSON."""
        client = _api_client()
        user = User.objects.get(username=API_USER)
        steps: list[tuple[str, Callable[[list[dict]], object]]] = [
            (
                "checks by the serializer (the way before)",
                lambda b: IngestedErrorSerializer(
                    data=b, many=True, context={"integration": API_INTEGRATION}
                ).is_valid(raise_exception=True),
            ),
            (
                "checks of the batch at once (the way now)",
                lambda b: quick_ingest_check.validated(b, API_INTEGRATION),
            ),
            (
                "checks at once and storing: record_errors, the answer's problems",
                lambda b: ingestion.ingest(
                    quick_ingest_check.validated(b, API_INTEGRATION) or [], user
                ),
            ),
            (
                "the whole request",
                lambda b: client.post(INGEST_URL, json.dumps(b), content_type="application/json"),
            ),
        ]
        parts = []
        for name, step in steps:
            timings = []
            for _ in range(self.runs):
                bodies = self.api_payloads(n)
                mark, groups = _last_id(), _group_figures()
                start = time.perf_counter()
                for body in bodies:
                    with transaction.atomic():
                        step(body)
                timings.append((time.perf_counter() - start) * 1e6 / n)
                _forget_since(mark, groups)
            parts.append((name, median(timings)))
        return parts

    def rate_narrow(self, n: int, batch: int) -> float:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {NARROW}")
            cursor.execute(
                f"CREATE TABLE {NARROW} (id bigint, created_at timestamptz, message text)"
            )
        rates = []
        for _ in range(self.runs + 1):
            errors = self.entries(n)
            start = time.perf_counter()
            for i in range(0, n, batch):
                data = "".join(
                    f"{k}\t{e.created_at.isoformat()}\t{e.message}\n"
                    for k, e in enumerate(errors[i : i + batch], start=i)
                )
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.cursor.copy_expert(
                        f"COPY {NARROW} FROM STDIN", io.BytesIO(data.encode())
                    )
            rates.append(n / (time.perf_counter() - start))
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {NARROW}")
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {NARROW}")
        return median(rates[1:])

    def breakdown(self, n: int, batch: int) -> list[tuple[str, float, float]]:
        """record_errors as shipped, then with one part taken away (or put back) at a time:
        (what, µs per entry in all, µs per entry in insert_entries: ids, COPY text, COPY).
        All of it in one transaction rolled back at the end, so that nothing has to be
        rebuilt; each part in a savepoint of its own. Nothing commits, so the deferred
        checks of a constraint put back are made immediate, and the commit's own cost (the
        WAL flush) is in none of these figures."""
        parts = []
        with transaction.atomic():
            for what, statements in _variants():
                with transaction.atomic():
                    _execute(*statements)
                    parts.append((what, *self._timed_parts(n, batch)))
                    transaction.set_rollback(True)
                if what == "as shipped":
                    # The narrower row, at most: the same entries without what is rarely
                    # read, as a side table would keep it out of the entries' rows (writing
                    # it there on top). Measured next to the table as shipped, before the
                    # rows the other measurements leave behind (rolled back, not yet
                    # vacuumed) weigh on its indexes.
                    with transaction.atomic():
                        parts.append((NARROWER_ROW, *self._timed_parts(n, batch, narrower=True)))
                        transaction.set_rollback(True)
            transaction.set_rollback(True)
        return parts

    def round_trips(self, batch: int) -> tuple[int, float]:
        """The statements record_errors sends for one batch (its transaction's own
        included), and what a round trip to the server costs here, in µs: the median of
        SELECT 1 sent 1,000 times."""
        errors = self.entries(batch)
        with CaptureQueriesContext(connection) as sent, transaction.atomic():
            record_errors(errors)
            transaction.set_rollback(True)
        # The block's BEGIN and ROLLBACK stand for the batch's own BEGIN and COMMIT (each a
        # round trip too); record_errors' transaction is a savepoint inside it.
        savepoints = [q for q in sent.captured_queries if "SAVEPOINT" in q["sql"]]
        statements = len(sent.captured_queries) - len(savepoints)
        timings = []
        with connection.cursor() as cursor:
            for _ in range(self.runs):
                start = time.perf_counter()
                for _ in range(1_000):
                    cursor.execute("SELECT 1")
                timings.append((time.perf_counter() - start) * 1e3)
        return statements, median(timings)

    def _timed_parts(self, n: int, batch: int, narrower: bool = False) -> tuple[float, float]:
        totals, copies = [], []
        for _ in range(self.runs + 1):  # the first warms up
            errors = self.entries(n)
            if narrower:
                for error in errors:
                    error.sent_values, error.detail = None, ""
            spent = [0.0]

            def timed_insert(chunk, spent=spent):
                start = time.perf_counter()
                try:
                    return insert_entries(chunk)
                finally:
                    spent[0] += time.perf_counter() - start

            with mock.patch.object(grouping, "insert_entries", timed_insert):
                start = time.perf_counter()
                for i in range(0, n, batch):
                    record_errors(errors[i : i + batch])
                totals.append((time.perf_counter() - start) * 1e6 / n)
            copies.append(spent[0] * 1e6 / n)
        return median(totals[1:]), median(copies[1:])

    def rate_parallel(self, writers: int, n: int, batch: int) -> float:
        """Entries per second of `writers` processes writing n entries each at once, each
        batch its own transaction, as the engine's workers and the ingestion API do."""
        context = multiprocessing.get_context("fork")
        rates = []
        for run in range(self.runs + 1):  # the first warms up
            mark, groups = _last_id(), _group_figures()
            connections.close_all()  # each process opens its own
            ready = context.Barrier(writers + 1)
            processes = [
                context.Process(target=self._writer, args=(run * 100 + k, n, batch, ready))
                for k in range(writers)
            ]
            for process in processes:
                process.start()
            ready.wait()
            start = time.perf_counter()
            for process in processes:
                process.join()
            rates.append(writers * n / (time.perf_counter() - start))
            failed = [p.exitcode for p in processes if p.exitcode]
            if failed:
                raise RuntimeError(f"a writer failed (exit codes {failed})")
            _forget_since(mark, groups)
        return median(rates[1:])

    def _writer(self, seed: int, n: int, batch: int, ready) -> None:
        self.rng = random.Random(seed)
        errors = self.entries(n)
        ready.wait()
        for i in range(0, n, batch):
            record_errors(errors[i : i + batch])
        connections.close_all()

    def python_share(self, n: int) -> list[tuple[str, float]]:
        errors = self.entries(n)
        batches = [errors[i : i + PAGE] for i in range(0, n, PAGE)]
        steps = [
            ("checking every value (clean_entries)", lambda b: clean_entries(b)),
            (
                "checking the job, coupling and mapping named (one statement: a round trip)",
                lambda b: check_references(b),
            ),
            (
                "fingerprints (grouping)",
                lambda b: [fingerprint(e.mapping_id, e.category, e.message) for e in b],
            ),
            ("COPY text of the rows", copy_rows),
        ]
        for error in errors:
            error.pk = 0
        shares = []
        for name, step in steps:
            timings = []
            for _ in range(self.runs):
                start = time.perf_counter()
                for chunk in batches:
                    step(chunk)
                timings.append((time.perf_counter() - start) * 1e6 / n)
            shares.append((name, median(timings)))
        return shares


def _bulk_create(errors: list[SyncError]) -> list[SyncError]:
    """insert_entries as it was: bulk_create, which, like insert_entries, says that its
    caller counts the entries' figures (the insert trigger would count them again)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {figures.COUNTED_BY_WRITER}", [figures.BY_WRITER])
    return SyncError.objects.bulk_create(errors)


API_USER = "bench-integration"
API_INTEGRATION = "Shop ↔ ERP"
INGEST_URL = "/api/v1/ingest/"
API_TEXTS = [
    "source_app",
    "source_entity",
    "source_record_id",
    "source_url",
    "destination_app",
    "destination_entity",
    "destination_record_id",
    "destination_url",
]


def _api_client():
    """A client of another integration: a user in the Integrations role, with its token."""
    from django.test import Client

    user, _ = User.objects.get_or_create(username=API_USER)
    user.groups.add(Group.objects.get(name=INTEGRATIONS))
    _, key = ApiToken.issue(user, "bench", integration=API_INTEGRATION)
    host = next(h for h in settings.ALLOWED_HOSTS if "*" not in h)
    return Client(HTTP_HOST=host, headers={"Authorization": f"Bearer {key}"})


@contextmanager
def _previous_round_index():
    """The trigram index on every entry's message that the previous round had, for the
    time of the block (built on the whole table, then dropped)."""
    _execute(PREVIOUS_INDEX_SQL)
    try:
        yield
    finally:
        _execute(f'DROP INDEX IF EXISTS "{PREVIOUS_INDEX}"')


PREVIOUS_INDEX_SQL = (
    f'CREATE INDEX IF NOT EXISTS "{PREVIOUS_INDEX}" ON {TABLE} '
    "USING gin (upper(message) gin_trgm_ops)"
)


def _couplings(mappings) -> dict[int, list[Coupling]]:
    pools = {}
    for mapping in mappings:
        existing = list(Coupling.objects.filter(mapping=mapping, source_record_id__startswith="B"))
        if len(existing) < COUPLINGS_PER_MAPPING:
            Coupling.objects.bulk_create(
                Coupling(
                    mapping=mapping,
                    source_record_id=f"B{i:07d}",
                    destination_record_id=f"{random.getrandbits(128):032x}",
                )
                for i in range(len(existing), COUPLINGS_PER_MAPPING)
            )
            existing = list(
                Coupling.objects.filter(mapping=mapping, source_record_id__startswith="B")
            )
        pools[mapping.pk] = existing
    return pools


def _last_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {TABLE}")
        return cursor.fetchone()[0]


def _group_figures() -> dict[int, tuple]:
    return {
        pk: figures
        for pk, *figures in ErrorGroup.objects.values_list("pk", "count", "first_seen", "last_seen")
    }


def _forget_since(mark: int, groups: dict[int, tuple]) -> None:
    """Delete what a run wrote, and put the groups' figures back as they were."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id > %s", [mark])
        cursor.execute(
            f"DELETE FROM {ErrorGroup._meta.db_table} WHERE NOT (id = ANY(%s))", [list(groups)]
        )
        cursor.execute(
            f"""
            UPDATE {ErrorGroup._meta.db_table} AS g
            SET count = f.count, first_seen = f.first_seen, last_seen = f.last_seen
            FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
                 AS f(id, count, first_seen, last_seen)
            WHERE g.id = f.id
            """,
            [list(groups), *map(list, zip(*groups.values(), strict=True))],
        )


def _indexes() -> list[tuple[str, str]]:
    """The table's secondary indexes: (name, definition)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) "
            "ORDER BY 1",
            [TABLE],
        )
        return cursor.fetchall()


def _foreign_keys() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY 1",
            [TABLE],
        )
        return cursor.fetchall()


def _variants() -> list[tuple[str, list[str]]]:
    """What the breakdown measures: a label and the statements that make the table so."""
    variants = [("as shipped", [])]
    variants.append(("without the figure triggers", [f"ALTER TABLE {TABLE} DISABLE TRIGGER USER"]))
    for name, _ in _indexes():
        variants.append((f"without index `{name}`", [f'DROP INDEX "{name}"']))
    variants.append(
        ("with a trigram index on every message (the previous round)", [PREVIOUS_INDEX_SQL])
    )
    variants.append(
        (
            "with foreign-key constraints on job, coupling, mapping, group (before)",
            ["SET CONSTRAINTS ALL IMMEDIATE", *_foreign_keys_before()],
        )
    )
    variants.append(
        (
            "primary key only: no secondary index, no trigger",
            [f"ALTER TABLE {TABLE} DISABLE TRIGGER USER"]
            + [f'DROP INDEX "{name}"' for name, _ in _indexes()],
        )
    )
    return variants


def _foreign_keys_before() -> list[str]:
    statements = []
    for name in ("job", "coupling", "mapping", "group"):
        field = SyncError._meta.get_field(name)
        target = field.related_model._meta
        statements.append(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT bench_fk_{name} FOREIGN KEY ({field.column}) "
            f"REFERENCES {target.db_table} ({target.pk.column}) DEFERRABLE INITIALLY DEFERRED"
        )
    return statements


def _execute(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _find(rows, how: str, batch: str) -> float:
    return next(rate for h, b, rate in rows if h.startswith(how) and b == batch)


def _cost(us: float, shipped: float) -> str:
    if us == shipped:
        return "—"
    saved = shipped - us
    return f"{saved:+,.1f} µs per entry ({saved / shipped * 100:+,.0f} %)"


def _reading(met, now, parts, python, parallel, trips: tuple[int, float]) -> str:
    shipped = parts[0][1]
    cost = {what: shipped - us for what, us, _ in parts}
    narrower = cost.pop(NARROWER_ROW)
    statements, trip_us = trips
    indexes = {what: c for what, c in cost.items() if what.startswith("without index")}
    trigram = -cost.get("with a trigram index on every message (the previous round)", 0.0)
    btrees = sum(indexes.values())
    triggers = cost.get("without the figure triggers", 0.0)
    keys = -cost.get("with foreign-key constraints on job, coupling, mapping, group (before)", 0.0)
    bare = next(us for what, us, _ in parts if what.startswith("primary key only"))
    python_us = sum(us for step, us in python if "round trip" not in step)
    best = max(parallel, key=lambda row: row[1])
    text = (
        "### Reading\n\n"
        f"As shipped an entry costs {shipped:,.0f} µs in batches of {PAGE:,} (without the "
        f"commit). Python's part is about {python_us:,.0f} µs (checks, fingerprint, COPY "
        f"text). The message search no longer indexes every entry: that trigram index, put "
        f"back, would cost {trigram:,.0f} µs. The other indexes cost {btrees:,.0f} µs "
        f"together (each measured alone), the figure triggers {triggers:,.0f} µs; with no "
        f"secondary index and no trigger an entry costs {bare:,.0f} µs. The foreign-key "
        f"constraints the entries no longer have would add {keys:,.0f} µs. {best[0]} "
        f"writer(s) at once reach {best[1]:,.0f} entries/s.\n\n"
    )
    if met:
        return text + f"The target ({TARGET:,}/s by one writer) is met."
    budget = 1e6 / TARGET
    largest = sorted(
        [(what, c) for what, c in cost.items() if c > 0 and what.startswith("without")]
        + [("Python's work", python_us), ("the table with no secondary index", bare)],
        key=lambda row: -row[1],
    )[:5]
    return text + (
        f"**The target is not met** ({now:,.0f}/s against {TARGET:,}/s by one writer in "
        f"batches of {PAGE:,}: {budget:,.0f} µs an entry with the commit). Where the time "
        "goes, largest first: "
        + "; ".join(f"{what.removeprefix('without ')} {c:,.1f} µs" for what, c in largest)
        + ". "
        + _plans_reading(narrower, statements, trip_us, gap=1e6 / now - budget)
    )


def _plans_reading(narrower: float, statements: int, trip_us: float, gap: float) -> str:
    """What the two plans left would save an entry, as this run measured them, against the
    µs an entry must lose to meet the target (`gap`)."""
    saved_by_trips = (statements - 1) * trip_us / PAGE
    row = (
        f"would take {narrower:,.1f} µs an entry off the entries' own write at most"
        if narrower > NOISE_US
        else f"took nothing measurable off the entries' own write ({narrower:+,.1f} µs)"
    )
    return (
        "The two plans not carried out, as this run measured them: a narrower entry row (the "
        "values sent and the app's answer kept apart, in a side table partitioned by day) "
        f"{row}, before the side table's write comes on top; one round trip a batch "
        f"(record_errors sends "
        f"{statements} statements a batch, its transaction's included, and a round trip costs "
        f"{trip_us:,.0f} µs here) would save at most {saved_by_trips:,.1f} µs an entry: "
        f"together {max(narrower, 0) + saved_by_trips:,.1f} of the {gap:,.1f} µs an entry "
        "must lose. "
        "Next: the figures' statement of a batch is "
        'the largest part of the table\'s own cost ("The record rows"): its fixed part (a new '
        "problem's records, with no look-up at all) costs as much as the look-ups, so fewer "
        "statements and rows per batch there; and the COPY into a table with the list's "
        "indexes, which no plan above takes away."
    )


def _api_reading(parts: list[tuple[str, float]]) -> str:
    steps = dict(parts)
    whole = steps["the whole request"]
    stored = steps["checks at once and storing: record_errors, the answer's problems"]
    checks = steps["checks of the batch at once (the way now)"]
    return (
        f"**The API's target is not met.** Where an API entry's {whole:,.1f} µs go: "
        f"storing (record_errors, the answer's problems) {stored - checks:,.1f} µs, the checks "
        f"{checks:,.1f} µs (the serializer's took "
        f"{steps['checks by the serializer (the way before)']:,.1f} µs), the rest (reading "
        f"the JSON, the token, the answer) {whole - stored:,.1f} µs. Next: storing is the "
        "writer's (above); the API follows it."
    )
