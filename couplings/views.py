"""The Couple page: couple a record by hand or by match, and the outcome of a run by match."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from errors.models import SyncError
from sync import services as sync_services
from sync.connectors import ConnectorError
from sync.models import TableMapping
from syncconsole.permissions import sync_user_required
from syncconsole.queue import QueueUnavailable

from . import services
from .forms import ManualCoupleForm, MatchForm
from .models import CouplingRun


def _digits(value: str | None) -> int | None:
    return (
        int(value) if value and value.isascii() and value.isdecimal() and len(value) < 10 else None
    )


@sync_user_required
@require_http_methods(["GET", "POST"])
def couple(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    mapping_id = _digits(data.get("mapping"))
    if mapping_id is None:
        if data.get("mapping"):
            messages.error(request, "Choose a table mapping from the list.")
        mappings = TableMapping.objects.select_related("connection").order_by(
            "connection__name", "dependency_order", "name"
        )
        status = 400 if data.get("mapping") else 200
        return render(
            request, "couplings/choose_mapping.html", {"mappings": mappings}, status=status
        )
    mapping = get_object_or_404(TableMapping.objects.select_related("connection"), pk=mapping_id)
    error_id = _digits(data.get("error"))
    error = SyncError.objects.filter(pk=error_id, mapping=mapping).first() if error_id else None
    side = data["side"] if data.get("side") in services.SIDES else "source"
    record = data.get("record", "")[:100]
    context = couple_context(mapping, side, [record], other=data.get("other", "")[:100])
    context["error"] = error
    if request.method == "GET":
        return render(request, "couplings/couple.html", context)

    action = request.POST.get("action", "")
    if action == "couple":
        manual = context["manual"] = ManualCoupleForm(request.POST)
        if not manual.is_valid():
            return render(request, "couplings/couple.html", context, status=400)
        try:
            coupling, job = services.couple_manually(
                mapping,
                manual.cleaned_data["source_record_id"],
                manual.cleaned_data["destination_record_id"],
                request.user,
                synchronize_after=manual.cleaned_data["synchronize_after"],
            )
        except (services.CouplingRefused, ConnectorError) as exc:
            manual.add_error(None, str(exc))
            return render(request, "couplings/couple.html", context, status=409)
        except (sync_services.JobRefused, QueueUnavailable) as exc:
            messages.warning(request, f"Coupled, but not synchronized: {exc}")
            return redirect(_couplings_url(mapping, manual.cleaned_data["source_record_id"]))
        messages.success(request, f"Coupled {coupling}.")
        if job is not None:
            messages.success(request, f"Synchronizing the coupled records as job #{job.pk}.")
            return redirect(job)
        return redirect(error if error else _couplings_url(mapping, coupling.source_record_id))
    if action not in ("preview", "match"):
        messages.error(request, "Choose Couple, Find candidates or Couple by match.")
        return render(request, "couplings/couple.html", context, status=400)
    match = context["match"] = MatchForm(mapping, request.POST)
    if not match.is_valid():
        return render(request, "couplings/couple.html", context, status=400)
    chosen = match.cleaned_data
    if action == "preview":
        try:
            with services.Apps(mapping) as apps:
                context["preview"] = [
                    services.find_match(
                        mapping, chosen["side"], record_id, match.criteria(), apps=apps
                    )
                    for record_id in chosen["record_ids"][
                        : settings.COUPLE_BY_MATCH_ASYNC_THRESHOLD
                    ]
                ]
        except ConnectorError as exc:
            messages.error(request, f"The apps could not be asked: {exc}")
        context["preview_cut"] = (
            len(chosen["record_ids"]) > settings.COUPLE_BY_MATCH_ASYNC_THRESHOLD
        )
        return render(request, "couplings/couple.html", context)
    try:
        run = services.couple_by_match(
            mapping,
            chosen["side"],
            chosen["record_ids"],
            match.criteria(),
            create_if_no_match=chosen["create_if_no_match"],
            synchronize_after=chosen["synchronize_after"],
            user=request.user,
        )
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
        return render(request, "couplings/couple.html", context, status=503)
    return redirect(run)


def couple_context(
    mapping: TableMapping, side: str, record_ids: list[str], *, other: str = ""
) -> dict:
    """The Couple page's forms, filled in with the records to couple."""
    first = record_ids[0] if record_ids else ""
    manual = ManualCoupleForm(
        initial={
            f"{side}_record_id": first,
            f"{services.other_side(side)}_record_id": other,
        }
    )
    match = MatchForm(mapping, initial={"side": side, "record_ids": "\n".join(record_ids)})
    return {"mapping": mapping, "error": None, "manual": manual, "match": match}


def _couplings_url(mapping: TableMapping, record_id: str) -> str:
    return reverse("sync:couplings") + "?" + urlencode({"mapping": mapping.pk, "record": record_id})


@sync_user_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(
        CouplingRun.objects.select_related("mapping__connection", "sync_job", "requested_by"),
        pk=pk,
    )
    if request.GET.get("format") == "json":
        return JsonResponse(
            {
                "state": run.state,
                "finished": run.is_finished,
                "done": len(run.results),
                "total": len(run.record_ids),
                "message": run.message,
            }
        )
    criteria = services.criteria_from_dicts(run.criteria)
    return render(request, "couplings/run.html", {"run": run, "criteria": criteria})
