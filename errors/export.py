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
    ("source_app", "Source app"),
    ("source_entity", "Source table"),
    ("source_record_id", "Source record"),
    ("source_url", "Source link"),
    ("destination_app", "Destination app"),
    ("destination_entity", "Destination table"),
    ("destination_record_id", "Destination record"),
    ("destination_url", "Destination link"),
]
# A cell starting with one of these is read as a formula by spreadsheets (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def cells(error: SyncError) -> list[str]:
    values = {
        "created_at": error.created_at.isoformat(),
        "mapping": error.mapping.name if error.mapping else "",
        "source_url": error.source_link or "",
        "destination_url": error.destination_link or "",
    }
    return [
        neutralise(values[name] if name in values else getattr(error, name)) for name, _ in COLUMNS
    ]


class _Line:
    """A file-like object whose write returns the line, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def rows(queryset: QuerySet[SyncError]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield "\ufeff"  # so that spreadsheets read the file as UTF-8
    yield writer.writerow([label for _, label in COLUMNS])
    queryset = queryset.select_related("mapping")
    before = None
    while True:
        page = keyset_page(queryset, size=CHUNK, before=before)
        for error in page.items:
            yield writer.writerow(cells(error))
        if not page.has_older:
            return
        last = page.items[-1]
        before = encode_cursor(last.created_at, last.pk)


def csv_response(queryset: QuerySet[SyncError]) -> StreamingHttpResponse:
    name = f"sync-errors-{timezone.now():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(rows(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
