"""Keyset pagination, newest first, and totals that never count a big table.

A page is fetched with `(created_at, id)` bounds instead of OFFSET, so the cost of a page
does not grow with how deep it is or how large the table is.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, models
from django.db.models import Q, QuerySet
from django.http import QueryDict

EXACT_COUNT_LIMIT = 1000
# Planner estimates above this are shown as they are ("About N"): far enough above
# EXACT_COUNT_LIMIT that a misestimate by a factor of ten still means "more than a thousand".
TRUSTED_ESTIMATE_FROM = 10 * EXACT_COUNT_LIMIT

CURSOR_PARAMETERS = ("before", "after")


class InvalidCursor(ValueError):
    pass


def encode_cursor(position: datetime | int, pk: int) -> str:
    """A page's bound: a moment (its time order) or a whole number (a rank), and the id."""
    value = position.isoformat() if isinstance(position, datetime) else position
    raw = json.dumps([value, pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode_cursor(cursor: str, kind: type = datetime) -> tuple:
    """The bound of a cursor made for an order of this kind (a moment, or int for a rank)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not _whole(pk):
            raise ValueError
        if kind is int:
            if not _whole(value):
                raise ValueError
            return value, pk
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError
        return moment, pk
    except (ValueError, TypeError, binascii.Error, UnicodeError, json.JSONDecodeError) as exc:
        raise InvalidCursor("That page link is not valid.") from exc


def _kind_of(queryset: QuerySet, field: str) -> type:
    """int for an order by a whole number (a generated rank too), else a moment."""
    model_field = queryset.model._meta.get_field(field)
    model_field = getattr(model_field, "output_field", model_field)
    return int if isinstance(model_field, models.IntegerField) else datetime


@dataclass
class KeysetPage:
    items: list
    older_cursor: str | None
    newer_cursor: str | None

    @property
    def has_older(self) -> bool:
        return self.older_cursor is not None

    @property
    def has_newer(self) -> bool:
        return self.newer_cursor is not None


def keyset_page(
    queryset: QuerySet,
    *,
    size: int,
    before: str | None = None,
    after: str | None = None,
    field: str = "created_at",
) -> KeysetPage:
    """One page of `queryset`, highest (newest) `field` first: the page below (older than)
    `before`, above (newer than) `after`, or the first page."""
    kind = _kind_of(queryset, field)
    if after:
        moment, pk = decode_cursor(after, kind)
        # field >= moment bounds the index range; the OR picks the exact start.
        rows = list(
            queryset.filter(**{f"{field}__gte": moment})
            .filter(Q(**{f"{field}__gt": moment}) | Q(pk__gt=pk))
            .order_by(field, "pk")[: size + 1]
        )
        has_newer = len(rows) > size
        items = list(reversed(rows[:size]))
        has_older = True
    else:
        if before:
            moment, pk = decode_cursor(before, kind)
            queryset = queryset.filter(**{f"{field}__lte": moment}).filter(
                Q(**{f"{field}__lt": moment}) | Q(pk__lt=pk)
            )
        rows = list(queryset.order_by(f"-{field}", "-pk")[: size + 1])
        has_older = len(rows) > size
        items = rows[:size]
        has_newer = bool(before)
    if not items:
        return KeysetPage([], None, None)
    return KeysetPage(
        items,
        encode_cursor(getattr(items[-1], field), items[-1].pk) if has_older else None,
        encode_cursor(getattr(items[0], field), items[0].pk) if has_newer else None,
    )


@dataclass(frozen=True)
class Total:
    value: int
    exact: bool


def planner_estimate(queryset: QuerySet) -> int:
    """How many rows the planner expects `queryset` to match (EXPLAIN only, nothing is run)."""
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def estimated_total(
    queryset: QuerySet, *, field: str = "created_at", page: KeysetPage | None = None
) -> Total:
    """Exact up to EXACT_COUNT_LIMIT rows, else the planner's estimate (no full count).

    A page with nothing newer and nothing older holds every match: its length is the total.
    Otherwise the planner is asked first: when it expects many more matches than
    EXACT_COUNT_LIMIT its estimate is the answer, without counting anything (a bounded count
    of a word found in a tenth of the messages still walks thousands of index entries and
    rows). Only a small estimate is checked by counting up to EXACT_COUNT_LIMIT + 1 rows in
    the list's own order, so that counting walks the same index as the page."""
    if page is not None and not page.has_older and not page.has_newer:
        return Total(len(page.items), True)
    estimate = planner_estimate(queryset)
    # A page with an older one behind it has at least its rows and one more.
    at_least = len(page.items) + 1 if page is not None and page.has_older else 0
    if estimate > TRUSTED_ESTIMATE_FROM:
        return Total(max(estimate, at_least), False)
    seen = queryset.order_by(f"-{field}", "-pk")[: EXACT_COUNT_LIMIT + 1].count()
    if seen <= EXACT_COUNT_LIMIT:
        return Total(seen, True)
    return Total(max(estimate, seen), False)


def without_cursors(query: QueryDict) -> QueryDict:
    """The list's query (its filters) without the page cursors, for the pager's links."""
    filters = query.copy()
    for key in CURSOR_PARAMETERS:
        filters.pop(key, None)
    return filters
