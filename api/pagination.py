"""Keyset pages for the API, as in the console: the cost of a page does not grow with how deep
it is or how large the table is, and totals are the planner's estimate unless it is small.

A cursor is the one a `next` or `previous` link gives: text of the URL-safe base64
alphabet. One that is not is refused (400); one that is but names no page answers 404, as
a page that is not there."""

import re

from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from errors.pagination import InvalidCursor, estimated_total, keyset_page

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
CURSOR_MAX_LENGTH = 200
CURSOR_PATTERN = "^[A-Za-z0-9_-]+$"


CURSOR_SCHEMA = {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": CURSOR_MAX_LENGTH}


class KeysetPagination(BasePagination):
    def paginate_queryset(self, queryset, request, view=None):
        query = request.query_params
        problems = {}
        raw_size = query.get("page_size")
        if raw_size is not None and not (
            raw_size.isascii() and raw_size.isdecimal() and 1 <= int(raw_size) <= MAX_PAGE_SIZE
        ):
            problems["page_size"] = [f"A whole number from 1 to {MAX_PAGE_SIZE}."]
        for name in ("before", "after"):
            cursor = query.get(name)
            if cursor is not None and not (
                re.fullmatch(CURSOR_PATTERN, cursor) and len(cursor) <= CURSOR_MAX_LENGTH
            ):
                problems[name] = ["A cursor from a `next` or `previous` link."]
        if problems:
            raise serializers.ValidationError(problems)
        size = int(raw_size) if raw_size is not None else DEFAULT_PAGE_SIZE
        field = getattr(view, "keyset_field", "created_at")
        try:
            self.page = keyset_page(
                queryset,
                size=size,
                field=field,
                before=query.get("before"),
                after=query.get("after"),
            )
        except InvalidCursor:
            raise NotFound(
                "That page link names no page: follow a `next` or `previous` link."
            ) from None
        self.total = estimated_total(queryset, field=field, page=self.page)
        self.request = request
        return self.page.items

    def _link(self, name: str, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        url = remove_query_param(remove_query_param(url, "before"), "after")
        return replace_query_param(url, name, cursor)

    def get_paginated_response(self, data):
        return Response(
            {
                "total": self.total.value,
                "total_is_exact": self.total.exact,
                "next": self._link("before", self.page.older_cursor),
                "previous": self._link("after", self.page.newer_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["total", "total_is_exact", "next", "previous", "results"],
            "properties": {
                "total": {
                    "type": "integer",
                    "description": "Counted up to 1,000 when the planner "
                    "expects at most 10,000, else its estimate.",
                },
                "total_is_exact": {"type": "boolean"},
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next (older) page.",
                },
                "previous": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The previous (newer) page.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "before",
                "in": "query",
                "required": False,
                "schema": CURSOR_SCHEMA,
                "description": "A cursor from `next`: the page older than it.",
            },
            {
                "name": "after",
                "in": "query",
                "required": False,
                "schema": CURSOR_SCHEMA,
                "description": "A cursor from `previous`: the page newer than it.",
            },
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_PAGE_SIZE,
                    "default": DEFAULT_PAGE_SIZE,
                },
            },
        ]
