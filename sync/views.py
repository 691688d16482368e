"""Console pages of the synchronization: table mappings, jobs and couplings."""

import json

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from couplings import actions
from couplings.models import Coupling
from errors.models import EntryRecord, SyncError
from errors.pagination import InvalidCursor, estimated_total, keyset_page, without_cursors
from syncconsole.permissions import sync_admin_required, sync_user_required
from syncconsole.queue import QueueUnavailable
from triage import rules

from . import breaker, health, lag_chart, probes, services
from .connectors import ConnectorPairs
from .filters import CouplingFilter, JobPageFilter
from .forms import LagProbeForm
from .mapping_health import with_health
from .models import (
    Connection,
    ConnectionCheck,
    LagProbe,
    MappingRule,
    SyncJob,
    TableMapping,
    spoken,
)
from .notifications import (
    BadNotification,
    answers_handshake,
    handle_notification,
    validation_answer,
)

# Business Central sends up to 1,000 notifications in one request before it sends one
# `collection` notification instead.
MAX_NOTIFICATION_BYTES = 1024 * 1024


@sync_user_required
def mapping_list(request: HttpRequest) -> HttpResponse:
    mappings = with_health(
        TableMapping.objects.order_by("connection__name", "dependency_order", "name")
    )
    return render(request, "sync/mapping_list.html", {"mappings": mappings, "kinds": SyncJob.Kind})


@sync_admin_required
def connection_list(request: HttpRequest) -> HttpResponse:
    """Each connection with the outcome of its last setup health check."""
    last = ConnectionCheck.objects.filter(connection=OuterRef("pk")).order_by("-checked_at", "-pk")
    connections = list(
        Connection.objects.annotate(last_check_id=Subquery(last.values("pk")[:1])).order_by("name")
    )
    checks = ConnectionCheck.objects.in_bulk(
        [c.last_check_id for c in connections if c.last_check_id]
    )
    for connection in connections:
        connection.last_check = checks.get(connection.last_check_id)
    return render(request, "sync/connection_list.html", {"connections": connections})


@sync_admin_required
@require_http_methods(["GET", "POST"])
def connection_health(request: HttpRequest, pk: int) -> HttpResponse:
    """The setup health check of a connection: the last one on GET (a check costs several
    calls to both apps), a new one on POST "Check now"."""
    connection = get_object_or_404(Connection, pk=pk)
    if request.method == "POST":
        checked = health.run_check(connection, user=request.user)
        errors = len(checked.errors)
        if errors:
            messages.error(
                request, f"Checked: {errors} problem{'s' if errors != 1 else ''} to fix."
            )
        else:
            messages.success(request, "Checked: nothing blocks the synchronization.")
        return redirect("sync:connection_health", pk=connection.pk)
    check = connection.checks.select_related("checked_by").first()
    context = {
        "connection": connection,
        "check": check,
        "mappings": connection.mappings.filter(is_enabled=True),
        "subscriptions": connection.change_subscriptions.all(),
    }
    return render(request, "sync/connection_health.html", context)


@sync_user_required
def mapping_health(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "sync/mapping_health.html", _mapping_page(pk))


def _mapping_page(pk: int, probe_form: LagProbeForm | None = None) -> dict:
    """What the mapping's page shows: its health, jobs, backlog, rules and lag probe."""
    mappings = with_health(TableMapping.objects.filter(pk=pk))
    if not mappings:
        raise Http404("No such table mapping.")
    mapping = mappings[0]
    mapping_rules = MappingRule.objects.filter(mapping=mapping).select_related(
        "current__made_by", "created_by", "switched_off_by", "origin_problem"
    )
    return {
        "mapping": mapping,
        "recent_jobs": SyncJob.objects.filter(mapping=mapping).order_by("-created_at", "-pk")[:10],
        "snapshots": mapping.health_snapshots.order_by("-day")[:14],
        "rules": mapping_rules.order_by("-is_active", "-kept", "-pk"),
        **_lag_context(mapping, probe_form),
    }


def _lag_context(mapping: TableMapping, form: LagProbeForm | None = None) -> dict:
    now = timezone.now()
    probe = LagProbe.objects.filter(mapping=mapping).first()
    lag = probes.summary(probe, now) if probe else None
    if form is None:
        initial = (
            {name: getattr(probe, name) for name in LagProbeForm.base_fields} if probe else None
        )
        form = LagProbeForm(initial=initial, mapping=mapping)
    return {
        "probe": probe,
        "lag": lag,
        "lag_now_words": spoken(probes.current_lag(lag.latest, now)) if lag else "",
        "lag_chart": lag_chart.svg(lag, now) if lag else None,
        "recent_samples": list(reversed(lag.samples))[:10] if lag else [],
        "probe_form": form,
    }


@sync_admin_required
@require_POST
def mapping_lag_probe(request: HttpRequest, pk: int) -> HttpResponse:
    """Set up, change or switch off the mapping's lag probe."""
    mapping = get_object_or_404(TableMapping.objects.select_related("connection"), pk=pk)
    form = LagProbeForm(request.POST, mapping=mapping)
    if form.is_valid():
        try:
            probes.save_probe(mapping, **form.cleaned_data, user=request.user)
        except probes.ProbeRefused as refused:
            for name, problems in refused.problems.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
        else:
            messages.success(request, f"The lag probe of {mapping.name} is saved.")
            return redirect(reverse("sync:mapping_health", args=[mapping.pk]) + "#lag")
    messages.error(request, "The lag probe is not saved: see the messages under its settings.")
    return render(request, "sync/mapping_health.html", _mapping_page(pk, form), status=400)


@sync_admin_required
@require_POST
def rule_switch_off(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(MappingRule, pk=pk)
    try:
        rules.switch_off(rule, request.user)
    except rules.RuleRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rule #{rule.pk} on {rule.field} is switched off.")
    return redirect(reverse("sync:mapping_health", args=[rule.mapping_id]) + "#rules")


@sync_admin_required
@require_POST
def rule_revert(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(MappingRule, pk=pk)
    try:
        version = rules.revert(rule, request.user)
    except rules.RuleRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Rule #{rule.pk} on {rule.field} is back to {version.description} "
            f"(version {version.number}).",
        )
    return redirect(reverse("sync:mapping_health", args=[rule.mapping_id]) + "#rules")


@sync_admin_required
@require_POST
def mapping_resume(request: HttpRequest, pk: int) -> HttpResponse:
    mapping = get_object_or_404(TableMapping, pk=pk)
    if not mapping.is_paused:
        messages.info(request, f"{mapping.name} is not paused.")
    else:
        breaker.resume_by_hand(mapping, request.user)
        messages.success(request, f"{mapping.name} is resumed: its next job runs as usual.")
    return redirect("sync:mapping_health", pk=mapping.pk)


@sync_admin_required
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
    except (services.JobRefused, QueueUnavailable) as exc:
        messages.error(request, str(exc))
        return redirect("sync:mappings")
    messages.success(
        request, f"{SyncJob.Kind(kind).label} of {mapping.name} is queued as #{job.pk}."
    )
    return redirect(job)


@sync_user_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = SyncJob.objects.select_related("mapping")
    filters = JobPageFilter(request.GET, queryset=jobs)
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
        "total": estimated_total(matching, page=page),
        "filter_query": without_cursors(request.GET).urlencode(),
        "any_running": any(not job.is_finished for job in page.items),
    }
    return render(request, "sync/job_list.html", context, status=200 if filters.is_valid() else 400)


@sync_user_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(
        SyncJob.objects.select_related("mapping__connection", "requested_by"), pk=pk
    )
    if request.GET.get("format") == "json":
        return JsonResponse(job_state(job))
    context = {
        "job": job,
        # Its failures counted as later attempts on entries of earlier jobs (no new entry).
        "attempted_again": SyncError.objects.filter(last_attempt_job_id=job.pk)
        .exclude(job_id=job.pk)
        .count(),
        "state": json.dumps(job_state(job)),
        # The job's own story, in one query (bounded by JOB_LOG_MAX_LINES as it is written).
        "log_lines": list(job.log_lines.order_by("pk")),
        "log_limit_lines": settings.JOB_LOG_MAX_LINES,
        "log_limit_kb": settings.JOB_LOG_MAX_BYTES // 1024,
    }
    return render(request, "sync/job_detail.html", context)


def job_state(job: SyncJob) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "outcome": job.outcome,
        "outcome_display": job.outcome_display,
        "finished": job.is_finished,
        "records_read": job.records_read,
        "inserted": job.inserted,
        "modified": job.modified,
        "deleted": job.deleted,
        "unchanged": job.unchanged,
        "skipped": job.skipped,
        "failed": job.failed,
        "retrying": job.retrying,
        "message": job.message,
    }


@sync_user_required
def coupling_list(request: HttpRequest) -> HttpResponse:
    couplings = Coupling.objects.select_related("mapping__connection")
    return _coupling_page(request, couplings, "sync/coupling_list.html", size=50)


def _coupling_page(request: HttpRequest, couplings, template: str, *, size: int) -> HttpResponse:
    """A filtered page of couplings, newest first, with both records' addresses."""
    couplings = couplings.annotate(error_count=Count("errors"))
    filters = CouplingFilter(request.GET, queryset=couplings)
    matching = filters.qs.order_by("-pk") if filters.is_valid() else couplings.none()
    before = request.GET.get("before", "")
    if before.isascii() and before.isdecimal():
        matching = matching.filter(pk__lt=int(before))
    rows = list(matching[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]
    _attach_record_urls(rows)
    context = {
        "filters": filters,
        "couplings": rows,
        "older": rows[-1].pk if has_older and rows else None,
        "filter_query": without_cursors(request.GET).urlencode(),
    }
    return render(request, template, context, status=200 if filters.is_valid() else 400)


@csrf_exempt
@require_POST
def notification(request: HttpRequest, connection_id: int, side: str) -> HttpResponse:
    """Where the apps POST their change notifications, each in its app's shape: Business
    Central's handshake and notifications (authenticated by the client state), Dataverse's
    webhook (authenticated by its key)."""
    if side not in ("source", "destination"):
        return JsonResponse({"error": "Unknown side."}, status=404)
    connection = get_object_or_404(Connection, pk=connection_id)
    if "validationToken" in request.GET:
        if not answers_handshake(connection, side):
            return JsonResponse(
                {"error": "This side's app does not ask for a handshake."}, status=400
            )
        try:
            token = validation_answer(request.GET["validationToken"])
        except BadNotification as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        # Business Central registers the subscription when the token comes back as text.
        return HttpResponse(token, content_type="text/plain; charset=utf-8")
    if len(request.body) > MAX_NOTIFICATION_BYTES:
        return JsonResponse({"error": "The notification is too large."}, status=413)
    try:
        payload = json.loads(request.body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "The notification must be JSON."}, status=400)
    try:
        jobs = handle_notification(connection, side, payload, request.GET.dict())
    except PermissionError as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    except BadNotification as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"queued": [job.pk for job in jobs]}, status=202)


SKIPPED_PAGE_SIZE = 100


@sync_user_required
def skipped_list(request: HttpRequest) -> HttpResponse:
    """Coupled Data Synchronization Errors: the couplings left out after a repeated failure."""
    couplings = Coupling.objects.filter(is_skipped=True).select_related(
        "mapping__connection", "last_failed_job"
    )
    return _coupling_page(request, couplings, "sync/skipped_list.html", size=SKIPPED_PAGE_SIZE)


@sync_user_required
@require_POST
def skipped_action(request: HttpRequest) -> HttpResponse:
    action = request.POST.get("action", "")
    skipped = Coupling.objects.filter(is_skipped=True)
    selected = skipped.filter(
        pk__in=[v for v in request.POST.getlist("coupling") if v.isascii() and v.isdecimal()]
    )
    back = redirect(reverse("sync:skipped") + "?" + request.POST.get("filter_query", ""))
    if action == "retry_all":
        mapping_id = request.POST.get("mapping", "")
        selected = (
            skipped.filter(mapping_id=int(mapping_id))
            if mapping_id.isascii() and mapping_id.isdecimal()
            else skipped
        )
    elif action not in ("retry", "find_deleted"):
        messages.error(request, "Choose Retry, Retry All or Find for Deleted.")
        return back
    if not selected.exists():
        messages.error(request, "Choose at least one skipped coupling.")
        return back
    if action == "find_deleted":
        gone = actions.find_for_deleted(selected)
        messages.success(
            request,
            f"Checked {selected.count()} couplings: {gone['source']} gone in the source app, "
            f"{gone['destination']} gone in the destination app.",
        )
        return back
    retried = actions.retry_by_mapping(selected, user=request.user)
    for job, count in retried.jobs:
        messages.success(
            request,
            f"{job.mapping.name}: {count} couplings are taken back and queued as job #{job.pk}.",
        )
    for mapping, why, _ in retried.refused:
        messages.error(request, f"{mapping.name}: {why}")
    return back


def _attach_record_urls(couplings: list[Coupling]) -> None:
    """Give each coupling the addresses of its two records, one connector per connection,
    and both records as the pages show them (`records`: its app and id, gone or not)."""
    with ConnectorPairs() as connectors:
        for coupling in couplings:
            connection = coupling.mapping.connection
            source, destination = connectors.of(connection)
            coupling.source_url = source.record_url(
                coupling.mapping.source_entity, coupling.source_record_id
            )
            coupling.destination_url = destination.record_url(
                coupling.mapping.destination_entity, coupling.destination_record_id
            )
            coupling.records = [
                EntryRecord(
                    side=side,
                    app=getattr(connection, f"{side}_app"),
                    entity=getattr(coupling.mapping, f"{side}_entity"),
                    record_id=getattr(coupling, f"{side}_record_id"),
                    url=getattr(coupling, f"{side}_url"),
                    gone=getattr(coupling, f"{side}_exists") is False,
                )
                for side in ("source", "destination")
            ]
