"""CSV export of any filtered list of entries, streamed in keyset pages so that a large export
never sits in memory, with cells a spreadsheet would run as a formula neutralised."""

import csv
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from .models import SyncError
from .pagination import encode_cursor, keyset_page

CHUNK = 2000
COLUMNS = [
    ("id", "Entry"),
    ("created_at", "Created"),
    ("category", "Category"),
    ("status", "Status"),
    ("status_note", "Status note"),
    ("message", "Message"),
    ("integration", "Integration"),
    ("mapping", "Mapping"),
    ("job_id", "Job"),
    ("group_id", "Problem"),
    # Source and Destination are the mapping's sides, as the pages show them.
    ("source.app", "Source app"),
    ("source.entity", "Source table"),
    ("source.record_id", "Source record"),
    ("source.name", "Source number"),
    ("source.link", "Source link"),
    ("source.gone", "Source deleted"),
    ("destination.app", "Destination app"),
    ("destination.entity", "Destination table"),
    ("destination.record_id", "Destination record"),
    ("destination.name", "Destination number"),
    ("destination.link", "Destination link"),
    ("destination.gone", "Destination deleted"),
    ("direction", "Direction"),
]
# A cell starting with one of these is read as a formula by spreadsheets (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def cells(error: SyncError) -> list[str]:
    sides = error.sides
    values: dict[str, object] = {
        "created_at": error.created_at.isoformat(),
        "mapping": error.mapping.name if error.mapping else "",
        "direction": sides.direction,
    }
    for side, record in (("source", sides.source), ("destination", sides.destination)):
        values.update(
            {
                f"{side}.app": record.app,
                f"{side}.entity": record.entity,
                f"{side}.record_id": record.record_id,
                f"{side}.name": record.name,
                # A deleted record's address opens nothing; it stays on the entry's page.
                f"{side}.link": record.link or "",
                f"{side}.gone": "yes" if record.gone else "",
            }
        )
    return [
        neutralise(values[name] if name in values else getattr(error, name)) for name, _ in COLUMNS
    ]


class _Line:
    """A file-like object whose write returns the line, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def rows(queryset: QuerySet[SyncError]) -> Iterator[str]:
    """The file in pieces: the header, then one piece per keyset page of CHUNK entries (a
    piece per line would be a write to the client per entry)."""
    writer = csv.writer(_Line())
    # The byte order mark, so that spreadsheets read the file as UTF-8.
    yield "\ufeff" + writer.writerow([label for _, label in COLUMNS])
    queryset = queryset.select_related("mapping__connection", "coupling")
    before = None
    while True:
        page = keyset_page(queryset, size=CHUNK, before=before)
        if page.items:
            yield "".join(writer.writerow(cells(error)) for error in page.items)
        if not page.has_older:
            return
        last = page.items[-1]
        before = encode_cursor(last.created_at, last.pk)


def csv_response(queryset: QuerySet[SyncError]) -> StreamingHttpResponse:
    name = f"sync-errors-{timezone.now():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(rows(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
