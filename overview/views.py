"""The overview page: the console's home."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from syncconsole.permissions import sync_user_required

from . import chart
from .figures import DAYS, overview_for


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
