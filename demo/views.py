"""The pages of the demo ERP and CRM: what the Source and Destination links open."""

import uuid

from django.contrib import messages
from django.forms import modelform_factory
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from .entities import APP_TITLES, ENTITIES, entities_of
from .models import ErpCurrency, ErpCurrencyExchangeRate

RateForm = modelform_factory(
    ErpCurrencyExchangeRate,
    fields=["starting_date", "exchange_rate_amount", "relational_exchange_rate_amount"],
)


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
    if isinstance(value, dict):  # a role's privileges and their access levels
        return ", ".join(f"{name} ({level})" for name, level in value.items()) or None
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
    fields = [table.model._meta.get_field(f) for f in table.fields]
    records = (
        table.model.objects.select_related(*[f.name for f in fields if f.many_to_one])
        .prefetch_related(*[f.name for f in fields if f.many_to_many])
        .order_by(f"-{table.modified_field}")[:100]
    )
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
    if isinstance(record, ErpCurrency):
        _exchange_rates(request, record, context)
    return render(request, "demo/record.html", context)


def _exchange_rates(request: HttpRequest, currency: ErpCurrency, context: dict) -> None:
    """A currency's exchange rates, newest first, and (signed in) a form to add one, as
    Business Central's Currency Exchange Rates page shows them."""
    context["exchange_rates"] = ErpCurrencyExchangeRate.objects.filter(
        currency_code=currency.code
    ).order_by("-starting_date")
    if request.user.is_authenticated:
        context["rate_form"] = context.get("rate_form") or RateForm(
            initial={"starting_date": timezone.localdate(), "relational_exchange_rate_amount": 1}
        )


@require_POST
def add_exchange_rate(request: HttpRequest, pk: str) -> HttpResponse:
    """Add an exchange rate to a currency of the demo ERP, from its page."""
    try:
        currency = ErpCurrency.objects.filter(pk=uuid.UUID(pk)).first()
    except ValueError:
        currency = None
    if currency is None:
        raise Http404("No such currency")
    page = f"/demo/erp/currencies/{currency.pk}/"
    if not request.user.is_authenticated:
        return HttpResponse("Sign in to change records.", status=403, content_type="text/plain")
    form = RateForm(request.POST, instance=ErpCurrencyExchangeRate(currency_code=currency.code))
    if form.is_valid():
        if ErpCurrencyExchangeRate.objects.filter(
            currency_code=currency.code, starting_date=form.cleaned_data["starting_date"]
        ).exists():
            form.add_error("starting_date", "The currency has a rate from that date already.")
        else:
            form.save()
            messages.success(request, f"The exchange rate of {currency.code} is saved.")
            return redirect(page)
    messages.error(
        request,
        "The exchange rate was not saved: "
        + "; ".join(
            f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items()
        ),
    )
    return redirect(page)
