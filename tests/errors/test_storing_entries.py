"""Entries are stored exactly as given, whatever text other systems send, in a constant
number of statements; a batch that cannot be stored writes nothing."""

import random
import re
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from errors.entries import InvalidEntries
from errors.grouping import SKIP_NOTE, normalize, record_errors
from errors.models import Category, ErrorGroup, GroupDay, Status, SyncError
from tests.factories import make_coupling, make_error, make_job, make_mapping

pytestmark = pytest.mark.django_db

HOSTILE = [
    "tab\there, newline\nthere, carriage return\r\nand the end",
    "back\\slash, \\N, \\t, \\\\., a lone \\",
    "\\.",
    "\\N",
    "quotes ' \" ` and a comma, ; semicolon",
    "emoji 🧾🔥, accents é ü ß, right-to-left שלום, combining e\u0301, CJK 同步错误",
    "",
    " leading and trailing spaces ",
    "\x01\x02\x1b[31m control characters \x7f",
]
FIELDS = [
    "message",
    "detail",
    "source_record_id",
    "destination_record_id",
    "source_url",
    "destination_url",
    "source_entity",
    "status_note",
]


def entry(mapping=None, **fields) -> SyncError:
    defaults = {
        "created_at": timezone.now(),
        "mapping": mapping,
        "category": Category.VALIDATION,
        "message": "The field name of record C1 cannot be 'x'.",
    }
    return SyncError(**{**defaults, **fields})


def stored(error: SyncError) -> dict:
    return {
        field.attname: getattr(error, field.attname) for field in SyncError._meta.concrete_fields
    }


def test_hostile_text_is_read_back_exactly_as_it_was_given():
    mapping = make_mapping()
    job = make_job(mapping)
    coupling = make_coupling(mapping)
    errors = [
        entry(
            mapping,
            job=job,
            coupling=coupling,
            **{name: text for name in FIELDS},
            sent_values={"sent": {"name": text, "a\tkey\\": [text, 1, None]}, "read": {}},
        )
        for text in HOSTILE
    ]
    errors.append(entry(mapping, message="x" * SyncError.MESSAGE_MAX_LENGTH, detail="y" * 10**6))
    errors.append(entry(mapping, message="🔥" * SyncError.MESSAGE_MAX_LENGTH, detail="\n" * 1000))

    returned = record_errors(errors)

    for error in returned:
        assert stored(SyncError.objects.get(pk=error.pk)) == stored(error)
    assert SyncError.objects.get(pk=returned[0].pk).message == HOSTILE[0]


def test_nul_and_unpaired_surrogates_become_the_replacement_character():
    errors = [
        entry(
            message="before\x00after",
            detail="\x00",
            source_record_id="C\udcff1",
            sent_values={"name": "a\x00b", "k\x00": ["\ud800"]},
        ),
        entry(message="plain"),
    ]

    returned = record_errors(errors)

    first = SyncError.objects.get(pk=returned[0].pk)
    assert (first.message, first.detail, first.source_record_id) == (
        "before\ufffdafter",
        "\ufffd",
        "C\ufffd1",
    )
    assert first.sent_values == {"name": "a\ufffdb", "k\ufffd": ["\ufffd"]}
    assert stored(first) == stored(returned[0])
    assert SyncError.objects.get(pk=returned[1].pk).message == "plain"


def test_returned_entries_carry_their_ids_and_groups_as_stored():
    mapping = make_mapping()
    errors = [entry(mapping, message=f"Record C{i} failed: {i % 3}.") for i in range(30)]
    errors += [entry(mapping, category=Category.CONFLICT, message="Changed in both apps.")]

    returned = record_errors(errors)

    assert returned == errors
    ids = [error.pk for error in returned]
    assert ids == sorted(ids) and None not in ids
    rows = dict(SyncError.objects.filter(pk__in=ids).values_list("pk", "group_id"))
    assert rows == {error.pk: error.group_id for error in returned}
    assert len({error.group_id for error in returned}) == 2
    groups = ErrorGroup.objects.in_bulk([returned[0].group_id, returned[-1].group_id])
    assert [groups[error.group_id].count for error in (returned[0], returned[-1])] == [30, 1]
    # Stored, as bulk_create leaves them: saving again updates the row.
    returned[0].status_note = "Looked at."
    returned[0].save()
    assert SyncError.objects.count() == 31
    assert SyncError.objects.get(pk=returned[0].pk).status_note == "Looked at."


def test_a_batch_is_written_in_the_same_few_statements_whatever_its_size():
    mapping = make_mapping()
    # Looks up the table's sequence once per process, and creates the batches' problem.
    record_errors([entry(mapping, message="Record C0 failed.")])
    counts = []
    for size in (10, 1000):
        with CaptureQueriesContext(connection) as queries:
            record_errors(entry(mapping, message=f"Record C{i} failed.") for i in range(size))
        counts.append(len(queries))
        assert any(q["sql"].startswith("COPY ") for q in queries.captured_queries)
    # The day's partition, a savepoint, the job, coupling and mapping named, the groups, the
    # ids, the COPY, its figures, the savepoint's release.
    assert counts[0] == counts[1] <= 8
    # A batch that creates problems reads the ownership rules and the alert subscriptions too
    # (the alerts' outbox is written in the same transaction), once, however many.
    with CaptureQueriesContext(connection) as queries:
        record_errors(entry(mapping, message=f"Field {i} is too long.", category=f) for i, f in
                      enumerate(["validation", "conflict", "other"] * 300))  # fmt: skip
    assert len(queries) == counts[0] + 2


@pytest.mark.parametrize(
    "bad, problem",
    [
        ({"category": "mystery"}, "entry 1: category is not a known choice"),
        ({"status": "deleted"}, "entry 1: status is not a known choice"),
        ({"source_record_id": "C" * 101}, "entry 1: source_record_id is longer than 100"),
        ({"message": "m" * 2049}, "entry 1: message is longer than 2048"),
        ({"created_at": None}, "entry 1: created_at is missing"),
        ({"message": None}, "entry 1: message is missing"),
    ],
)
def test_a_batch_with_an_entry_that_cannot_be_stored_writes_nothing(bad, problem):
    mapping = make_mapping()
    first = make_error(mapping=mapping, category=Category.VALIDATION, message="Record C1 failed.")
    groups_before = list(ErrorGroup.objects.values_list("pk", "count", "last_seen"))
    batch = [
        entry(mapping, message="Record C2 failed."),
        entry(mapping, **{"message": "Record C3 failed.", **bad}),
        entry(mapping, message="Something new."),
    ]

    with pytest.raises(InvalidEntries) as raised:
        record_errors(batch)

    assert problem in str(raised.value)
    assert list(SyncError.objects.values_list("pk", flat=True)) == [first.pk]
    assert list(ErrorGroup.objects.values_list("pk", "count", "last_seen")) == groups_before


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_database_refuses_at_commit_writes_nothing():
    mapping = make_mapping()
    first = make_error(mapping=mapping, category=Category.VALIDATION, message="Record C1 failed.")
    batch = [entry(mapping, message="Record C2 failed."), entry(mapping, job_id=987654321)]

    with pytest.raises(IntegrityError):
        record_errors(batch)

    assert list(SyncError.objects.values_list("pk", flat=True)) == [first.pk]
    assert ErrorGroup.objects.get().count == 1
    assert record_errors([entry(mapping, message="Record C3 failed.")])[0].pk > first.pk


def test_entries_of_a_snoozed_problem_still_arrive_snoozed_in_a_batch():
    mapping = make_mapping()
    first = make_error(mapping=mapping, category=Category.VALIDATION, message="Record C1 failed.")
    ErrorGroup.objects.filter(pk=first.group_id).update(
        status=Status.SNOOZED, snoozed_until=timezone.now() + timedelta(days=1)
    )
    returned = record_errors(entry(mapping, message=f"Record C{i} failed.") for i in range(5))
    statuses = set(
        SyncError.objects.filter(pk__in=[e.pk for e in returned]).values_list(
            "status", "status_note"
        )
    )
    assert statuses == {("snoozed", "The problem is snoozed.")}


# The patterns as they were written before each got its quick test: the same groups come out.
REFERENCE = [
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<id>",
    ),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*"), "<email>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<value>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<code>"),
    (re.compile(r"\b[A-Z]*\d[\w-]*"), "<n>"),
]
PIECES = [
    "Record",
    "C00012",
    "01f84185-438a-48df-b273-6df52f613c26",
    "2026-11-24T19:29:28.123Z",
    "2026-11-24 19:29",
    "sales@pedal.example.com",
    "a@b",
    "'quoted'",
    '"double"',
    "'",
    "0x1F",
    "0X1F",
    "-",
    ":",
    "@",
    "12:30",
    "x-1.a@b",
    "The record will be skipped for further synchronization due to a repeatable failure.",
    "\n",
    "\t",
    "  ",
    "é",
    "🔥",
    "prvCreate",
]


def test_the_quick_tests_leave_normalizing_unchanged():
    def reference(message: str) -> str:
        text = SKIP_NOTE.sub("", message)
        for pattern, placeholder in REFERENCE:
            text = pattern.sub(placeholder, text)
        return " ".join(text.split())[: SyncError.MESSAGE_MAX_LENGTH]

    rng = random.Random(5)
    for _ in range(5000):
        pieces = rng.choices(PIECES, k=rng.randrange(1, 9))
        message = rng.choice(["", " "]).join(pieces)
        assert normalize(message) == reference(message), message


def test_the_keys_of_an_entry_are_checked_once_per_batch_not_by_constraints():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a"
            " ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
            " WHERE c.conrelid = 'errors_syncerror'::regclass AND c.contype = 'f'"
        )
        constrained = {row[0] for row in cursor.fetchall()}
    assert constrained.isdisjoint({"job_id", "coupling_id", "mapping_id", "group_id"})
    mapping = make_mapping()
    job = make_job(mapping)
    couplings = [make_coupling(mapping) for _ in range(3)]
    batch = [entry(mapping, job=job, coupling=couplings[i % 3]) for i in range(30)]

    with CaptureQueriesContext(connection) as queries:
        record_errors(batch)

    lookups = [q["sql"] for q in queries if "FOR KEY SHARE" in q["sql"]]
    assert len(lookups) == 1  # the job, the couplings and the mapping together


@pytest.mark.parametrize("key", ["job_id", "coupling_id", "mapping_id"])
def test_an_entry_naming_a_row_that_does_not_exist_is_refused(key):
    mapping = make_mapping()
    first = make_error(mapping=mapping, category=Category.VALIDATION, message="Record C1 failed.")

    with pytest.raises(IntegrityError, match=key):
        record_errors([entry(mapping, message="Record C2 failed."), entry(**{key: 987654321})])

    assert list(SyncError.objects.values_list("pk", flat=True)) == [first.pk]


def test_deleting_a_job_coupling_or_mapping_leaves_its_entries_without_it():
    mapping = make_mapping()
    job = make_job(mapping)
    coupling = make_coupling(mapping)
    (error,) = record_errors([entry(mapping, job=job, coupling=coupling)])

    job.delete()
    coupling.delete()
    error.refresh_from_db()
    assert (error.job_id, error.coupling_id, error.mapping_id) == (None, None, mapping.pk)
    mapping.delete()
    error.refresh_from_db()
    assert error.mapping_id is None


def test_a_new_entry_is_stored_only_by_record_errors_which_keeps_its_figures():
    mapping = make_mapping()
    with pytest.raises(TypeError, match="record_errors"):
        SyncError.objects.create(created_at=timezone.now(), mapping=mapping, message="x")
    assert not SyncError.objects.exists()
    stored = record_errors([entry(mapping, message="Record C1 failed.", source_record_id="C1")])[0]
    group = ErrorGroup.objects.get(pk=stored.group_id)
    assert (group.count, group.records) == (1, 1)
    assert GroupDay.objects.get(group=group).entries == 1


def copied_columns(queries) -> set[str]:
    copy = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith("COPY "))
    return set(re.findall(r'"(\w+)"', copy.split("(", 1)[1].split(")", 1)[0]))


def test_a_column_null_in_every_entry_of_the_batch_is_left_to_its_default():
    mapping, job = make_mapping(), make_job()
    with CaptureQueriesContext(connection) as queries:
        plain = record_errors([entry(mapping, job=job) for _ in range(3)])
    copied = copied_columns(queries)
    assert {"message", "job_id", "attempts"} <= copied
    assert not {"sent_values", "blocked_by_entry_id", "status_changed_at"} & copied
    # One entry with values sent: the column is written, NULL for the others.
    with CaptureQueriesContext(connection) as queries:
        mixed = record_errors(
            [entry(mapping, sent_values={"sent": {"name": "Contoso"}}), entry(mapping)]
        )
    assert "sent_values" in copied_columns(queries)
    stored = {e.pk: e for e in SyncError.objects.filter(pk__in=[e.pk for e in plain + mixed])}
    assert [stored[e.pk].sent_values for e in mixed] == [{"sent": {"name": "Contoso"}}, None]
    assert all(stored[e.pk].sent_values is None for e in plain)
    assert all(stored[e.pk].attempts == 1 for e in plain)
