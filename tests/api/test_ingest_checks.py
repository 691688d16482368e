"""The ingestion API's quick check of a batch takes exactly what the serializer takes, as the
serializer gives it, and hands everything else to the serializer (whose messages the client
gets): never a batch the serializer refuses."""

import itertools

import pytest

from api.serializers import IngestedErrorSerializer, quick_ingest_check

GOOD = {
    "message": "Order SO-1 could not be posted: item 100 has no stock",
    "category": "validation",
    "detail": "HTTP 400\n{'error': 'no stock'}",
    "occurred_at": "2026-11-30T10:00:00.250+01:00",
    "source_app": "Shop",
    "source_entity": "orders",
    "source_record_id": "SO-1",
    "source_url": "https://shop.example.com/orders/SO-1",
    "destination_app": "ERP",
    "destination_entity": "salesOrders",
    "destination_record_id": "",
    "destination_url": "",
}

# Values to try in each field: good ones, and what each rule refuses.
TRIED = [
    "",
    " ",
    "  padded  ",
    "x" * 100,
    "x" * 101,
    "x" * 2001,
    "a\x00b",
    "\ud800 alone",
    "emoji 😀",
    "line\nbreak",
    "javascript:alert(1)",
    "http://example.com",
    " https://example.com/a b ",
    "https://[::1]/",
    "https://exämple.com/",
    "https://user@example.com:8080/x?y#z",
    "validation",
    "bogus",
    "2026-11-30T10:00:00Z",
    "2026-11-30t10:00:00z",
    "2026-02-30T10:00:00Z",
    "2026-11-30 10:00:00Z",
    "2026-11-30T10:00:00",
    "0001-01-01T00:00:00+01:00",
    1,
    1.5,
    True,
    None,
    [],
    {},
]


def serializer_answer(entries: list, integration: str):
    checked = IngestedErrorSerializer(data=entries, many=True, context={"integration": integration})
    return [dict(entry) for entry in checked.validated_data] if checked.is_valid() else None


def cases():
    for name, value in itertools.product(GOOD, TRIED):
        yield [GOOD, {**GOOD, name: value}], "Shop ↔ ERP"
    for integration in ("", " ", "Payroll", "x" * 101, None):
        entry = {**GOOD} if integration is None else {**GOOD, "integration": integration}
        yield [entry], ""
        yield [entry], "Shop ↔ ERP"
    yield [{key: value for key, value in GOOD.items() if key != "message"}], "Shop ↔ ERP"
    yield [{**GOOD, "colour": "red"}], "Shop ↔ ERP"
    yield [{"message": "only this"}], "Shop ↔ ERP"
    yield ["not an object"], "Shop ↔ ERP"
    yield [GOOD, None], "Shop ↔ ERP"


@pytest.mark.parametrize("entries, integration", list(cases()))
def test_the_quick_check_takes_what_the_serializer_takes_and_nothing_else(entries, integration):
    quick = quick_ingest_check.validated(entries, integration)
    if quick is not None:
        assert quick == serializer_answer(entries, integration)


def test_a_good_batch_takes_the_quick_way():
    entries = [{**GOOD, "source_record_id": f"SO-{n}"} for n in range(1000)]
    entries.append({"message": "The least an entry can be"})
    assert quick_ingest_check.validated(entries, "Shop ↔ ERP") == serializer_answer(
        entries, "Shop ↔ ERP"
    )
    # The good values among those tried above are taken the quick way too.
    for value in ("  padded  ", "emoji 😀", "line\nbreak", "x" * 100):
        assert quick_ingest_check.validated([{**GOOD, "source_app": value}], "Shop") is not None
