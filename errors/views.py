"""The Integration Synchronization Errors console: list, detail, status and clean-up."""

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q, Sum, prefetch_related_objects
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from couplings.models import Coupling
from couplings.views import couple_context
from sync.compare import compare_entry
from sync.mapping_health import failing
from sync.models import SyncJob, TableMapping
from sync.transformations import KINDS
from syncconsole.permissions import (
    is_sync_admin,
    require_sync_admin_for_setup,
    sync_user_required,
)
from syncconsole.queue import QueueUnavailable
from triage import bulk as bulk_actions
from triage import edits, fixes

from . import blocking, evidence, services
from .export import csv_response
from .filters import ErrorGroupFilter, SyncErrorFilter, sort_field
from .forms import EntryEditForm, ProblemStatusForm
from .grouping import figures_for
from .models import (
    SETUP_CATEGORIES,
    BulkAction,
    ErrorGroup,
    Status,
    SyncError,
    SyncErrorCleanup,
)
from .ownership_views import problem_ownership
from .pagination import InvalidCursor, estimated_total, keyset_page, without_cursors
from .remedies import remedy_for
from .rows import entry_rows, group_rows

# Snoozing is for a whole problem: its new entries are what ends the snooze.
ENTRY_STATUSES = (Status.OPEN, Status.RESOLVED, Status.IGNORED)


def visible_to(user, queryset):
    """Setup errors are for administrators: Sync users see coupled-record errors only."""
    if is_sync_admin(user):
        return queryset
    return queryset.exclude(category__in=SETUP_CATEGORIES)


def hidden_setup_entries(user) -> int:
    """How many open setup entries a Sync user does not see, counted from the groups' figures."""
    if is_sync_admin(user):
        return 0
    figures = ErrorGroup.objects.filter(
        category__in=SETUP_CATEGORIES, status=Status.OPEN
    ).aggregate(total=Sum("count"))
    return figures["total"] or 0


@dataclass
class Attention:
    """What still needs someone when no problem is listed: the pages say "Everything is in
    step" only when this is empty."""

    skipped: int = 0  # couplings left out after a repeated failure
    failing: list[tuple] = field(default_factory=list)  # (mapping, records failing)
    paused: list = field(default_factory=list)  # mappings paused by the circuit breaker
    hidden_setup_entries: int = 0  # open setup entries a Sync user does not see

    def __bool__(self) -> bool:
        return bool(self.skipped or self.failing or self.paused or self.hidden_setup_entries)


def needs_attention(user) -> Attention:
    """Skipped couplings, mappings with failing records and paused mappings, whatever their
    entries became (resolved, ignored, deleted by a clean-up). Three small queries, run only
    when a page has no entry or problem to show."""

    failing_counts = dict(
        Coupling.objects.filter(failing())
        .values("mapping_id")
        .annotate(n=Count("pk"))
        .values_list("mapping_id", "n")
    )
    mappings = list(
        TableMapping.objects.filter(
            Q(pk__in=list(failing_counts)) | Q(paused_at__isnull=False)
        ).order_by("dependency_order", "name")
    )
    return Attention(
        skipped=Coupling.objects.filter(is_skipped=True).count(),
        failing=[(m, failing_counts[m.pk]) for m in mappings if m.pk in failing_counts],
        paused=[m for m in mappings if m.is_paused],
        hidden_setup_entries=hidden_setup_entries(user),
    )


# What a row of the list shows besides the entry, read in two small queries after the page. A
# join in the page's query let the planner, misled by a problem's stale row estimate during an
# error storm (it expected 39 rows of a million), sort every entry of the problem for a page.
ROW_RELATIONS = (
    Prefetch("mapping", queryset=TableMapping.objects.select_related("connection")),
    "coupling",
)


@sync_user_required
def error_list(request: HttpRequest) -> HttpResponse:
    # A row links its job by id: the job itself is not read. Its mapping's connection and
    # its coupling tell the mapping's sides of its records and whether one is gone: read
    # after the page (ROW_RELATIONS), so that the page's own query reads the entries alone,
    # along their index in the list's order, whatever the planner expects of the filters.
    errors = visible_to(request.user, SyncError.objects.all())
    filters = SyncErrorFilter(request.GET, queryset=errors, request=request, viewer=request.user)
    status = 200
    if filters.is_valid():
        matching = filters.qs
    else:
        matching = errors.none()
        status = 400
    try:
        page = keyset_page(
            matching,
            size=settings.SYNC_ERRORS_PER_PAGE,
            before=request.GET.get("before"),
            after=request.GET.get("after"),
        )
    except InvalidCursor as exc:
        messages.warning(request, f"{exc} Showing the newest entries.")
        page = keyset_page(matching, size=settings.SYNC_ERRORS_PER_PAGE)
    if not page.items and request.GET.get("after"):
        page = keyset_page(matching, size=settings.SYNC_ERRORS_PER_PAGE)
    prefetch_related_objects(page.items, *ROW_RELATIONS)

    filter_query = without_cursors(request.GET)
    group = (
        visible_to(
            request.user,
            ErrorGroup.objects.select_related(
                "status_changed_by", "mapping", "assigned_user", "assigned_group", "assigned_by"
            ),
        )
        .filter(pk=filters.form.cleaned_data.get("group"))
        .first()
        if status == 200 and filters.form.cleaned_data.get("group")
        else None
    )
    context = {
        "filters": filters,
        "page": page,
        "entry_rows": entry_rows(page.items),
        # A problem blocked by another: the root of the chain is shown in place of a cause.
        "root_cause": blocking.root_of(group),
        "total": estimated_total(matching, page=page),
        "filter_query": filter_query.urlencode(),
        "is_filtered": any(value for key, value in filter_query.items()),
        "bulk_actions": [*BulkAction.Action.choices, (COUPLE, "Couple by match…")],
        "retention_days": settings.SYNC_ERROR_RETENTION_DAYS,
        "hidden_setup_entries": hidden_setup_entries(request.user),
        "attention": (needs_attention(request.user) if status == 200 and not page.items else None),
        "group": group,
        # Its owner and discussion, when the list is a problem's page.
        "ownership": problem_ownership(request.user, group) if group is not None else None,
        "rule_kinds": list(KINDS.items()),
    }
    return render(request, "errors/list.html", context, status=status)


@sync_user_required
def error_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The entries the list shows for these filters, all of them, as CSV."""
    errors = visible_to(request.user, SyncError.objects.all())
    filters = SyncErrorFilter(request.GET, queryset=errors, request=request)
    if not filters.is_valid():
        problems = "; ".join(
            f"{field}: {message}" for field, ms in filters.errors.items() for message in ms
        )
        return HttpResponse(
            f"The filters are not valid ({problems}).", status=400, content_type="text/plain"
        )
    return csv_response(filters.qs)


@sync_user_required
def group_list(request: HttpRequest) -> HttpResponse:
    """The default view: one row per problem, with its figures and the last 14 days, by
    severity (or most recent first)."""
    groups = visible_to(
        request.user,
        ErrorGroup.objects.select_related(
            "mapping", "assigned_user", "assigned_group", "status_changed_by"
        ),
    )
    filters = ErrorGroupFilter(request.GET, queryset=groups, request=request, viewer=request.user)
    # Problems whose entries were all deleted keep their history: the filter `history` lists
    # them, and only them.
    matching = filters.qs if filters.is_valid() else groups.none()
    field = sort_field(filters.form.cleaned_data.get("sort") if filters.is_valid() else None)
    try:
        page = keyset_page(
            matching,
            size=settings.SYNC_ERRORS_PER_PAGE,
            before=request.GET.get("before"),
            after=request.GET.get("after"),
            field=field,
        )
    except InvalidCursor as exc:
        messages.warning(request, f"{exc} Showing the first problems.")
        page = keyset_page(matching, size=settings.SYNC_ERRORS_PER_PAGE, field=field)
    figures = figures_for(page.items)
    for group in page.items:
        group.figures = figures[group.pk]
    filter_query = without_cursors(request.GET)
    context = {
        "filters": filters,
        "page": page,
        "group_rows": group_rows(
            page.items,
            user=request.user,
            csrf_token=get_token(request),
            back=request.get_full_path(),
        ),
        "total": estimated_total(matching, field=field, page=page),
        "by_severity": field == "severity",
        "filter_query": filter_query.urlencode(),
        # The order is not a filter: a sorted page shows everything still.
        "is_filtered": any(value for key, value in filter_query.items() if key != "sort"),
        "hidden_setup_entries": hidden_setup_entries(request.user),
        "attention": (
            needs_attention(request.user) if filters.is_valid() and not page.items else None
        ),
    }
    return render(
        request, "errors/group_list.html", context, status=200 if filters.is_valid() else 400
    )


@sync_user_required
@require_POST
def group_set_status(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(ErrorGroup, pk=pk)
    require_sync_admin_for_setup(request.user, group)
    form = ProblemStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return redirect(group)
    data = form.cleaned_data
    status = data["status"]
    changed = services.set_group_status(
        group,
        status,
        request.user,
        note=data["note"],
        snoozed_until=data.get("snooze_until") if status == Status.SNOOZED else None,
        more_occurrences=data.get("more_occurrences") if status == Status.SNOOZED else None,
    )
    label = Status(status).label.lower()
    if status == Status.SNOOZED:
        label += (
            f" until {timezone.localtime(data['snooze_until']):%Y-%m-%d %H:%M %Z}"
            if data.get("snooze_until")
            else f" until {data['more_occurrences']:,} more occurrences"
        )
    messages.success(
        request, f"The problem is now {label}, with {changed} entr{'y' if changed == 1 else 'ies'}."
    )
    return redirect(group)


@sync_user_required
@require_POST
def error_fix(request: HttpRequest, pk: int) -> HttpResponse:
    """One-click fixes of an entry (triage.fixes), each through the couplings and the sync
    engine."""
    error = get_object_or_404(
        SyncError.objects.select_related("coupling__mapping", "mapping__connection"), pk=pk
    )
    require_sync_admin_for_setup(request.user, error)
    try:
        outcome = fixes.apply_fix(error, request.POST.get("action", ""), user=request.user)
    except fixes.FixRefused as exc:
        messages.error(request, str(exc))
        return redirect(error)
    messages.success(request, outcome.message)
    return redirect(outcome.job or error)


def _entry_for_page(request: HttpRequest, pk: int) -> SyncError:
    error = get_object_or_404(
        SyncError.objects.select_related(
            "mapping__connection",
            "job",
            "coupling__mapping",
            "status_changed_by",
            "group__assigned_user",
            "group__assigned_group",
        ),
        pk=pk,
    )
    require_sync_admin_for_setup(request.user, error)
    return error


def _detail(
    request: HttpRequest, error: SyncError, edit_form: EntryEditForm | None = None
) -> HttpResponse:
    editable = edits.can_edit(error)
    if editable and edit_form is None:
        edit_form = EntryEditForm(edits.fields_to_edit(error))
    comparison = compare_entry(error)
    blocker = blocking.blocker_of(error)
    context = {
        "error": error,
        "statuses": Status,
        "blocker": blocker,
        # A setup entry's message is for administrators, even as what blocks another.
        "blocker_shown": blocker is not None
        and blocker.entry is not None
        and (not blocker.entry.is_setup_error or is_sync_admin(request.user)),
        "remedy": remedy_for(error),
        "fixes": fixes.fixes_for(error),
        "comparison": comparison,
        "couple_url": couple_url(error),
        "edit_form": edit_form if editable else None,
        "edit_rows": _edit_rows(edit_form, comparison) if editable and edit_form else [],
        "record_edits": edits.edits_on(error) if error.source_record_id else [],
    }
    return render(request, "errors/detail.html", context)


def _edit_rows(form: EntryEditForm, comparison) -> list:
    """Each field to edit with its input and what each app holds now (sync.compare)."""
    held = {row.write_field: row for row in comparison.rows} if comparison else {}
    return [(item, bound, held.get(item.name)) for item, bound in form.rows()]


@sync_user_required
def error_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, _entry_for_page(request, pk))


@sync_user_required
@require_POST
def error_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit and retry: the values typed for the refused record (triage.edits)."""
    error = _entry_for_page(request, pk)
    try:
        form = EntryEditForm(edits.fields_to_edit(error), request.POST)
    except edits.EditRefused as exc:
        messages.error(request, str(exc))
        return redirect(error)
    if form.is_valid():
        try:
            outcome = edits.edit_and_retry(error, form.changed_values(), user=request.user)
        except edits.EditRefused as exc:
            form.add_field_errors(exc.fields)
            if not exc.fields:
                form.add_error(None, str(exc))
        else:
            messages.success(request, outcome.message)
            return redirect(error)
    return _detail(request, error, form)


def evidence_response(archive: evidence.Evidence) -> HttpResponse:
    response = HttpResponse(archive.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{archive.filename}"'
    return response


@sync_user_required
@require_POST
def error_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    """The entry's evidence archive, to attach to a support case. A POST: each download is
    recorded in the audit log, and a GET changes nothing."""
    error = get_object_or_404(SyncError.objects.select_related("mapping__connection"), pk=pk)
    return evidence_response(evidence.entry_evidence(error, request.user))


@sync_user_required
@require_POST
def group_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    """The problem's evidence archive: its newest entries and its history."""
    group = get_object_or_404(ErrorGroup.objects.select_related("mapping__connection"), pk=pk)
    return evidence_response(evidence.problem_evidence(group, request.user))


def read_side(mapping, source_app: str, source_entity: str) -> str:
    """Which side of the mapping an entry's record was read from (its "source")."""
    connection = mapping.connection
    if source_app == connection.destination_app and source_entity == mapping.destination_entity:
        return "destination"
    return "source"


def couple_url(error: SyncError) -> str:
    """Where to couple the entry's record when it is not coupled (or its coupling was
    removed): the Couple page with the record, and the record it was coupled to, filled in."""
    if error.coupling_id or error.mapping is None or not error.source_record_id:
        return ""
    mapping = error.mapping
    side = read_side(mapping, error.source_app, error.source_entity)
    query = {
        "mapping": mapping.pk,
        "side": side,
        "record": error.source_record_id,
        "error": error.pk,
    }
    if error.destination_record_id:
        query["other"] = error.destination_record_id
    return reverse("couplings:couple") + "?" + urlencode(query)


@sync_user_required
@require_POST
def error_set_status(request: HttpRequest, pk: int) -> HttpResponse:
    error = get_object_or_404(SyncError, pk=pk)
    require_sync_admin_for_setup(request.user, error)
    status = request.POST.get("status", "")
    if status not in ENTRY_STATUSES:
        messages.error(request, "Choose open, resolved or ignored.")
        return redirect(error)
    try:
        services.set_status(
            SyncError.objects.filter(pk=error.pk),
            status,
            request.user,
            note=request.POST.get("note", ""),
        )
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect(error)
    messages.success(request, f"Entry #{error.pk} is now {Status(status).label.lower()}.")
    return redirect(error)


def _cleanup_days(request: HttpRequest, action: str) -> int | None:
    if action == SyncErrorCleanup.Action.ALL:
        return None
    return services.cleanup_days(request.POST.get("days") or request.GET.get("days"))


@sync_user_required
@require_http_methods(["GET", "POST"])
def cleanup_confirm(request: HttpRequest, action: str) -> HttpResponse:
    if action not in SyncErrorCleanup.Action.values:
        raise Http404
    try:
        days = _cleanup_days(request, action)
        services.check_cleanup(days, request.user)
    except services.CleanupRefused as exc:
        if exc.forbidden:
            raise PermissionDenied(str(exc)) from exc
        messages.error(request, str(exc))
        return redirect("errors:list")

    if request.method == "POST":
        try:
            cleanup = services.request_cleanup(
                days=days, trigger=SyncErrorCleanup.Trigger.CONSOLE, user=request.user
            )
        except QueueUnavailable as exc:
            messages.error(request, str(exc))
            return redirect("errors:list")
        if cleanup.is_finished:
            messages.success(request, cleanup_outcome(cleanup))
            return redirect("errors:list")
        return redirect(cleanup)

    preview = services.preview_cleanup(days)
    return render(request, "errors/cleanup_confirm.html", {"preview": preview, "action": action})


def cleanup_outcome(cleanup: SyncErrorCleanup) -> str:
    if cleanup.state == SyncErrorCleanup.State.FAILED:
        return f"The clean-up failed: {cleanup.error_message}"
    noun = "entry" if cleanup.deleted_count == 1 else "entries"
    what = "" if cleanup.days is None else f" older than {cleanup.days} days"
    return f"Deleted {cleanup.deleted_count:,} {noun}{what}."


@sync_user_required
def cleanup_progress(request: HttpRequest, pk: int) -> HttpResponse:
    cleanup = get_object_or_404(SyncErrorCleanup, pk=pk)
    if request.GET.get("format") == "json":
        return JsonResponse(
            {
                "state": cleanup.state,
                "state_display": cleanup.get_state_display(),
                "expected_count": cleanup.expected_count,
                "deleted_count": cleanup.deleted_count,
                "progress_percent": cleanup.progress_percent,
                "finished": cleanup.is_finished,
                "outcome": cleanup_outcome(cleanup) if cleanup.is_finished else "",
                "list_url": reverse("errors:list"),
            }
        )
    return render(
        request,
        "errors/cleanup_progress.html",
        {"cleanup": cleanup, "outcome": cleanup_outcome(cleanup)},
    )


def _clean_filter_query(raw: str, user) -> str:
    """The list's filters as posted back, re-encoded so nothing but a query string remains.
    "Assigned to me" becomes this person's id: a bulk action reads its filters again later,
    in a worker, where nobody is "me"."""
    query = without_cursors(QueryDict(raw[:2000]))
    if query.get("assigned") == "me":
        query.pop("assigned")
        query["assignee"] = str(user.pk)
    return query.urlencode()


def _selected_ids(values: list[str]) -> list[int]:
    try:
        ids = [int(value) for value in values]
    except ValueError:
        raise bulk_actions.BulkRefused("The selection is not valid.") from None
    if any(pk < 1 for pk in ids):
        raise bulk_actions.BulkRefused("The selection is not valid.")
    return ids


COUPLE = "couple"


def couple_entries(
    request: HttpRequest, filter_query: str, scope: str, administrator: bool
) -> HttpResponse:
    """The Couple page, filled in with the records of the chosen entries that are not coupled:
    nothing changes until the person couples them there."""

    entries = bulk_actions.matching(filter_query, setup_errors_included=administrator)
    if scope == BulkAction.Scope.SELECTION:
        entries = entries.filter(pk__in=_selected_ids(request.POST.getlist("ids"))[:500])
    elif scope != BulkAction.Scope.FILTER:
        raise bulk_actions.BulkRefused("Choose the selected entries or all matching entries.")
    mappings = {m.pk: m for m in TableMapping.objects.select_related("connection")}
    chosen = bulk_actions.records_to_couple(
        entries, lambda pk, app, entity: read_side(mappings[pk], app, entity)
    )
    context = couple_context(mappings[chosen.mapping_id], chosen.side, chosen.record_ids)
    context["from_entries"] = chosen
    return render(request, "couplings/couple.html", context)


@sync_user_required
@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    """One action on the selected entries, or on all that match the filters after the exact
    count was shown and confirmed."""
    filter_query = _clean_filter_query(request.POST.get("filter_query", ""), request.user)
    back = reverse("errors:list") + (f"?{filter_query}" if filter_query else "")
    action = request.POST.get("action", "")
    note = request.POST.get("note", "")
    scope = request.POST.get("scope", "")
    administrator = is_sync_admin(request.user)
    try:
        if action == COUPLE:
            return couple_entries(request, filter_query, scope, administrator)
        if scope == BulkAction.Scope.SELECTION:
            bulk = bulk_actions.request_bulk_action(
                action=action,
                user=request.user,
                note=note,
                filter_query=filter_query,
                selected_ids=_selected_ids(request.POST.getlist("ids")),
                setup_errors_included=administrator,
            )
        elif scope == BulkAction.Scope.FILTER:
            token = request.POST.get("confirmation", "")
            if not token:
                preview = bulk_actions.preview(
                    action, filter_query, setup_errors_included=administrator
                )
                if not preview.count:
                    raise bulk_actions.BulkRefused("No entry matches the filters.")
                context = {
                    "preview": preview,
                    "action_label": BulkAction.Action(action).label,
                    "note": note,
                    "back": back,
                    "filters": [
                        (key, value) for key, value in QueryDict(filter_query).items() if value
                    ],
                }
                return render(request, "errors/bulk_confirm.html", context)
            confirmed = bulk_actions.confirmed_preview(token)
            if confirmed.setup_errors_included and not administrator:
                raise PermissionDenied("Setup and connection errors are for Sync administrators.")
            bulk = bulk_actions.request_bulk_action(
                action=action, user=request.user, note=note, confirmed=confirmed
            )
        else:
            raise bulk_actions.BulkRefused("Choose the selected entries or all matching entries.")
    except bulk_actions.BulkRefused as exc:
        messages.error(request, str(exc))
        return redirect(back)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if bulk.is_finished:
        level = messages.success if bulk.state == BulkAction.State.DONE else messages.error
        level(request, f"{bulk.get_action_display()}: {bulk.outcome}")
        return redirect(back)
    return redirect(bulk)


@sync_user_required
def bulk_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """A bulk action's progress and, once it queued sync jobs, what each job achieved and how
    many of its entries have been resolved since: followed live until the jobs finish."""

    bulk = get_object_or_404(BulkAction.objects.select_related("requested_by"), pk=pk)
    jobs = list(SyncJob.objects.filter(pk__in=bulk.job_ids).select_related("mapping"))
    jobs.sort(key=lambda job: job.pk)
    # Status changes tell nothing about records: only actions on records say what resolved.
    on_records = bulk.action not in bulk_actions.STATUS_ACTIONS
    resolved = bulk_actions.resolved_since(bulk) if on_records and bulk.is_finished else None
    jobs_finished = all(job.is_finished for job in jobs)
    state = {
        "state": bulk.state,
        "state_display": bulk.get_state_display(),
        "expected_count": bulk.expected_count,
        "processed_count": bulk.processed_count,
        "progress_percent": bulk.progress_percent,
        "finished": bulk.is_finished,
        "outcome": bulk.outcome if bulk.is_finished else "",
        "job_urls": [reverse("sync:job", args=[job.pk]) for job in jobs],
        "jobs": [_job_summary(job) for job in jobs],
        "jobs_finished": jobs_finished,
        "resolved_since": resolved,
        # The page follows the action, then the jobs it queued, until all are finished.
        "following": not (bulk.is_finished and jobs_finished),
    }
    if request.GET.get("format") == "json":
        return JsonResponse(state)
    list_url = reverse("errors:list") + (f"?{bulk.filter_query}" if bulk.filter_query else "")
    context = {"bulk": bulk, "list_url": list_url, "jobs": jobs, "state": state}
    return render(request, "errors/bulk_progress.html", context)


def _job_summary(job) -> dict:
    """What a job queued by a bulk action achieved, for its progress page."""
    return {
        "id": job.pk,
        "url": job.get_absolute_url(),
        "mapping": job.mapping.name,
        "outcome": job.outcome,
        "outcome_display": job.outcome_display,
        "finished": job.is_finished,
        "records_read": job.records_read,
        "written": job.inserted + job.modified,
        "failed": job.failed,
        "errors_url": reverse("errors:list") + f"?job={job.pk}",
    }
