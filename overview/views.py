"""The overview page: the console's home."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from syncconsole import metrics as process_metrics
from syncconsole.monitoring import monitoring_only
from syncconsole.permissions import sync_user_required

from . import chart
from .figures import DAYS, overview_for
from .monitoring import DatabaseFigures


@sync_user_required
def overview(request: HttpRequest) -> HttpResponse:
    figures = overview_for(request.user)
    title = f"New and resolved entries per day over the last {DAYS} days"
    if figures.changes_shown:
        title += ", with the days of changes marked"
    context = {
        "overview": figures,
        "chart": chart.draw(figures.days, title),
        "figure_rows": chart.table_rows(figures.days, figures.changes_shown),
        "days": DAYS,
    }
    return render(request, "overview.html", context)


@monitoring_only
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text exposition: the figures the processes counted and those read now."""
    body = process_metrics.exposition(DatabaseFigures())
    return HttpResponse(body, content_type=process_metrics.CONTENT_TYPE)
