"""The audit log page, for Sync administrators."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from errors.pagination import InvalidCursor, keyset_page, without_cursors
from syncconsole.permissions import sync_admin_required

from .filters import AuditEventFilter
from .models import AuditEvent

PAGE_SIZE = 50


@sync_admin_required
def event_list(request: HttpRequest) -> HttpResponse:
    filters = AuditEventFilter(request.GET, queryset=AuditEvent.objects.all())
    matching = filters.qs if filters.is_valid() else AuditEvent.objects.none()
    try:
        page = keyset_page(
            matching,
            size=PAGE_SIZE,
            before=request.GET.get("before"),
            after=request.GET.get("after"),
            field="at",
        )
    except InvalidCursor as exc:
        messages.warning(request, f"{exc} Showing the newest events.")
        page = keyset_page(matching, size=PAGE_SIZE, field="at")
    context = {
        "filters": filters,
        "page": page,
        "filter_query": without_cursors(request.GET).urlencode(),
    }
    status = 200 if filters.is_valid() else 400
    return render(request, "audit/event_list.html", context, status=status)
