"""Console pages of the synchronization: table mappings, jobs and couplings."""

import json

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from couplings.models import Coupling
from errors.pagination import InvalidCursor, estimated_total, keyset_page, without_cursors
from syncconsole.permissions import staff_required

from . import services
from .connectors import connector_for
from .filters import CouplingFilter, SyncJobFilter
from .models import Connection, SyncJob, TableMapping
from .notifications import handle_notification

MAX_NOTIFICATION_BYTES = 64 * 1024


@staff_required
def mapping_list(request: HttpRequest) -> HttpResponse:
    last_job = SyncJob.objects.filter(mapping=OuterRef("pk")).order_by("-created_at", "-pk")
    mappings = (
        TableMapping.objects.select_related("connection")
        .annotate(
            last_job_id=Subquery(last_job.values("pk")[:1]),
            coupled=Count("couplings"),
            skipped=Count("couplings", filter=Q(couplings__is_skipped=True)),
        )
        .order_by("connection__name", "dependency_order", "name")
    )
    mappings = list(mappings)
    jobs = SyncJob.objects.in_bulk([m.last_job_id for m in mappings if m.last_job_id])
    for mapping in mappings:
        mapping.last_job = jobs.get(mapping.last_job_id)
    return render(request, "sync/mapping_list.html", {"mappings": mappings, "kinds": SyncJob.Kind})


@staff_required
@require_POST
def mapping_start(request: HttpRequest, pk: int) -> HttpResponse:
    mapping = get_object_or_404(TableMapping, pk=pk)
    kind = request.POST.get("kind", "")
    if kind not in SyncJob.Kind.values:
        messages.error(request, "Choose Synchronize Modified Records or Run Full Synchronization.")
        return redirect("sync:mappings")
    try:
        job = services.request_sync(
            mapping, kind=kind, trigger=SyncJob.Trigger.USER, user=request.user
        )
    except (services.JobRefused, services.QueueUnavailable) as exc:
        messages.error(request, str(exc))
        return redirect("sync:mappings")
    messages.success(
        request, f"{SyncJob.Kind(kind).label} of {mapping.name} is queued as #{job.pk}."
    )
    return redirect(job)


@staff_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = SyncJob.objects.select_related("mapping")
    filters = SyncJobFilter(request.GET, queryset=jobs)
    matching = filters.qs if filters.is_valid() else jobs.none()
    try:
        page = keyset_page(
            matching, size=50, before=request.GET.get("before"), after=request.GET.get("after")
        )
    except InvalidCursor as exc:
        messages.warning(request, f"{exc} Showing the newest jobs.")
        page = keyset_page(matching, size=50)
    context = {
        "filters": filters,
        "page": page,
        "total": estimated_total(matching),
        "filter_query": without_cursors(request.GET).urlencode(),
        "any_running": any(not job.is_finished for job in page.items),
    }
    return render(request, "sync/job_list.html", context, status=200 if filters.is_valid() else 400)


@staff_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(
        SyncJob.objects.select_related("mapping__connection", "requested_by"), pk=pk
    )
    if request.GET.get("format") == "json":
        return JsonResponse(job_state(job))
    return render(
        request, "sync/job_detail.html", {"job": job, "state": json.dumps(job_state(job))}
    )


def job_state(job: SyncJob) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "finished": job.is_finished,
        "records_read": job.records_read,
        "inserted": job.inserted,
        "modified": job.modified,
        "deleted": job.deleted,
        "unchanged": job.unchanged,
        "skipped": job.skipped,
        "failed": job.failed,
        "message": job.message,
    }


@staff_required
def coupling_list(request: HttpRequest) -> HttpResponse:
    couplings = Coupling.objects.select_related("mapping__connection").annotate(
        error_count=Count("errors")
    )
    filters = CouplingFilter(request.GET, queryset=couplings)
    matching = filters.qs.order_by("-pk") if filters.is_valid() else couplings.none()
    before = request.GET.get("before", "")
    if before.isdigit():
        matching = matching.filter(pk__lt=int(before))
    rows = list(matching[:51])
    has_older = len(rows) > 50
    rows = rows[:50]
    connectors = {}
    for coupling in rows:
        connection = coupling.mapping.connection
        if connection.pk not in connectors:
            connectors[connection.pk] = (
                connector_for(connection, "source"),
                connector_for(connection, "destination"),
            )
        source, destination = connectors[connection.pk]
        coupling.source_url = source.record_url(
            coupling.mapping.source_entity, coupling.source_record_id
        )
        coupling.destination_url = destination.record_url(
            coupling.mapping.destination_entity, coupling.destination_record_id
        )
    context = {
        "filters": filters,
        "couplings": rows,
        "older": rows[-1].pk if has_older and rows else None,
        "filter_query": without_cursors(request.GET).urlencode(),
    }
    return render(
        request, "sync/coupling_list.html", context, status=200 if filters.is_valid() else 400
    )


@csrf_exempt
@require_POST
def notification(request: HttpRequest, connection_id: int, side: str) -> HttpResponse:
    """Where the apps POST their change notifications (authenticated by the client state)."""
    if side not in ("source", "destination"):
        return JsonResponse({"error": "Unknown side."}, status=404)
    connection = get_object_or_404(Connection, pk=connection_id)
    if len(request.body) > MAX_NOTIFICATION_BYTES:
        return JsonResponse({"error": "The notification is too large."}, status=413)
    try:
        payload = json.loads(request.body)
        if not isinstance(payload, dict):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "The notification must be a JSON object."}, status=400)
    try:
        jobs = handle_notification(connection, side, payload)
    except PermissionError as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    return JsonResponse({"queued": [job.pk for job in jobs]}, status=202)


def notification_url(connection: Connection, side: str) -> str:
    base = settings.DEMO_BASE_URL if settings.DEMO_APPS_ENABLED else ""
    return base + reverse("sync:notification", args=[connection.pk, side])
