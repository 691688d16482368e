"""The pages of the demo ERP and CRM: what the Source and Destination links open."""

import uuid

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .entities import APP_TITLES, ENTITIES, entities_of


def _entity_or_404(app: str, entity: str):
    try:
        return ENTITIES[(app, entity)]
    except KeyError:
        raise Http404("No such table") from None


def app_index(request: HttpRequest, app: str) -> HttpResponse:
    if app not in APP_TITLES:
        raise Http404("No such app")
    tables = [(entity, entity.model.objects.count()) for entity in entities_of(app)]
    return render(
        request, "demo/index.html", {"app": app, "app_title": APP_TITLES[app], "tables": tables}
    )


def record_list(request: HttpRequest, app: str, entity: str) -> HttpResponse:
    table = _entity_or_404(app, entity)
    records = table.model.objects.order_by(f"-{table.modified_field}")[:100]
    rows = [(record, [getattr(record, field) for field in table.fields]) for record in records]
    context = {"app": app, "app_title": APP_TITLES[app], "entity": table, "rows": rows}
    return render(request, "demo/record_list.html", context)


def record_detail(request: HttpRequest, app: str, entity: str, pk: str) -> HttpResponse:
    table = _entity_or_404(app, entity)
    context = {"app": app, "app_title": APP_TITLES[app], "entity": table, "record_id": pk}
    try:
        record = table.model.objects.filter(pk=uuid.UUID(pk)).first()
    except ValueError:
        record = None
    if record is None:
        return render(request, "demo/record_missing.html", context, status=404)
    context["record"] = record
    context["values"] = [
        (table.model._meta.get_field(field).verbose_name, getattr(record, field))
        for field in table.fields
    ]
    context["modified"] = getattr(record, table.modified_field)
    return render(request, "demo/record.html", context)
