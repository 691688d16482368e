"""The pages of the demo ERP and CRM: what the Source and Destination links open."""

import uuid

from django.contrib import messages
from django.forms import modelform_factory
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .entities import APP_TITLES, ENTITIES, entities_of


def shown(record, field: str):
    """A field's value as a page shows it: a choice by its label, related records by name."""
    model_field = record._meta.get_field(field)
    if model_field.many_to_many:
        return ", ".join(str(related) for related in getattr(record, field).all()) or None
    if model_field.choices:
        return getattr(record, f"get_{field}_display")()
    value = getattr(record, field)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or None
    return value


def _entity_or_404(app: str, entity: str):
    try:
        return ENTITIES[(app, entity)]
    except KeyError:
        raise Http404("No such table") from None


def app_index(request: HttpRequest, app: str) -> HttpResponse:
    if app not in APP_TITLES:
        raise Http404("No such app")
    tables = [(entity, entity.model._default_manager.count()) for entity in entities_of(app)]
    return render(
        request, "demo/index.html", {"app": app, "app_title": APP_TITLES[app], "tables": tables}
    )


def record_list(request: HttpRequest, app: str, entity: str) -> HttpResponse:
    table = _entity_or_404(app, entity)
    records = table.model.objects.order_by(f"-{table.modified_field}")[:100]
    rows = [(record, [shown(record, field) for field in table.fields]) for record in records]
    context = {"app": app, "app_title": APP_TITLES[app], "entity": table, "rows": rows}
    return render(request, "demo/record_list.html", context)


@require_http_methods(["GET", "POST"])
def record_detail(request: HttpRequest, app: str, entity: str, pk: str) -> HttpResponse:
    """A record of a demo app; a signed-in person can change it here, as in the real app,
    and the change reaches the other app at the next synchronization."""
    table = _entity_or_404(app, entity)
    context = {"app": app, "app_title": APP_TITLES[app], "entity": table, "record_id": pk}
    try:
        record = table.model.objects.filter(pk=uuid.UUID(pk)).first()
    except ValueError:
        record = None
    if record is None:
        return render(request, "demo/record_missing.html", context, status=404)
    context["record"] = record
    form_class = modelform_factory(table.model, fields=table.fields)
    form = None
    if request.user.is_authenticated:
        form = form_class(request.POST if request.method == "POST" else None, instance=record)
        if request.method == "POST" and form.is_valid():
            form.save()
            messages.success(request, f"{table.title} {record} is saved.")
            return redirect(request.path)
    elif request.method == "POST":
        return render(request, "demo/record.html", {**context, "refused": True}, status=403)
    context["form"] = form
    context["values"] = [
        (table.model._meta.get_field(field).verbose_name, shown(record, field))
        for field in table.fields
    ]
    context["modified"] = getattr(record, table.modified_field)
    return render(request, "demo/record.html", context)
