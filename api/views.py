"""The JSON API: the console's lists and actions for scripts, and ingestion for other
integrations. Each view checks its input, calls the same services as the console's pages,
and answers with field-level messages when the input is wrong."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch
from django.http import HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.template import loader
from django.utils import timezone
from django.views.decorators.csrf import requires_csrf_token
from django.views.defaults import page_not_found
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.views import APIView

from errors import evidence, ownership, policies
from errors import services as error_services
from errors.export import csv_response
from errors.filters import sort_field
from errors.models import BulkAction, ErrorGroup, SyncError, SyncErrorCleanup
from errors.views import visible_to
from sync import services as sync_services
from sync.compare import compare_entry
from sync.models import Connection, JobLogLine, SyncJob, TableMapping
from syncconsole.permissions import is_sync_admin, require_sync_admin_for_setup
from syncconsole.queue import QueueUnavailable
from triage import bulk as bulk_actions
from triage import edits, fixes

from . import ingestion
from .fields import char_class, in_utc
from .filters import ApiFilterBackend, ErrorFilter, JobFilter, ProblemFilter
from .pagination import KeysetPagination
from .permissions import CanIngest, IsSyncAdmin, IsSyncUser
from .schema import ApiAutoSchema
from .serializers import (
    FUTURE_TOLERANCE,
    MAX_SNOOZE,
    BulkActionRequestSerializer,
    BulkActionSerializer,
    CleanupRequestSerializer,
    CleanupSerializer,
    CommentRequestSerializer,
    CommentSerializer,
    EditOutcomeSerializer,
    EditRequestSerializer,
    EntryEditSerializer,
    EntryFixesSerializer,
    EntryStatusSerializer,
    ErrorGroupSerializer,
    FixOutcomeSerializer,
    FixRequestSerializer,
    IngestedErrorSerializer,
    ProblemAssignmentSerializer,
    ProblemPolicySerializer,
    ProblemStatusSerializer,
    StartJobSerializer,
    SyncErrorSerializer,
    SyncJobDetailSerializer,
    SyncJobSerializer,
    quick_ingest_check,
)

ERRORS = ["Errors"]
PROBLEMS = ["Problems"]
JOBS = ["Jobs"]
CLEANUP = ["Clean-up"]
INGESTION = ["Ingestion"]
REFUSAL = inline_serializer("Refusal", {"detail": serializers.CharField()})
# A request that does not pass its checks: a message per field, or a detail.
FIELD_MESSAGES = OpenApiResponse(
    OpenApiTypes.OBJECT, description="A message per field that is not valid, or a detail."
)
CHANGED = inline_serializer("Changed", {"changed": serializers.IntegerField()})
# A request the description allows, that the state of things refuses: a job that runs
# already, records that are not there, a moment out of the range taken.
CONFLICT = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="The request is well formed, but the present state refuses it: a detail, "
    "or a message per field.",
)
NOT_FOUND = OpenApiResponse(
    OpenApiTypes.OBJECT, description="An object the request names is not there."
)


def example(name: str, value: dict) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


class Refused(Response):
    def __init__(self, message: str, code: int = status.HTTP_400_BAD_REQUEST, **extra):
        super().__init__({"detail": message, **extra}, status=code)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The present state refuses this request."
    default_code = "conflict"


class ErrorListView(generics.ListAPIView):
    """Sync error entries, newest first, filtered as in the console (setup errors for
    administrators only)."""

    serializer_class = SyncErrorSerializer
    permission_classes = [IsSyncUser]
    filter_backends = [ApiFilterBackend]
    filterset_class = ErrorFilter
    pagination_class: type[BasePagination] | None = KeysetPagination

    def get_queryset(self):
        errors = SyncError.objects.select_related("mapping", "status_changed_by")
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI description has no user
            return errors.none()
        return visible_to(self.request.user, errors)

    @extend_schema(tags=ERRORS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ErrorExportView(ErrorListView):
    """All entries that match the filters as CSV, streamed (cells that a spreadsheet would
    run as a formula are neutralised)."""

    pagination_class = None

    @extend_schema(tags=ERRORS, responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, *args, **kwargs):
        return csv_response(self.filter_queryset(self.get_queryset()))


class ErrorDetailView(generics.RetrieveAPIView):
    serializer_class = SyncErrorSerializer
    permission_classes = [IsSyncUser]
    queryset = SyncError.objects.select_related("mapping", "status_changed_by")

    def get_object(self):
        error = super().get_object()
        require_sync_admin_for_setup(self.request.user, error)
        return error

    @extend_schema(tags=ERRORS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _evidence_response(archive: evidence.Evidence) -> HttpResponse:
    response = HttpResponse(archive.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{archive.filename}"'
    return response


ZIP = {(200, "application/zip"): OpenApiTypes.BINARY}


class ErrorEvidenceView(APIView):
    """The entry's evidence archive (zip): the entry as stored, its problem, job, mapping,
    connection without secrets and latest setup health check; credentials blanked."""

    permission_classes = [IsSyncUser]

    @extend_schema(tags=ERRORS, responses=ZIP)
    def get(self, request, pk: int):
        error = get_object_or_404(SyncError.objects.select_related("mapping__connection"), pk=pk)
        return _evidence_response(evidence.entry_evidence(error, request.user))


class ErrorStatusView(APIView):
    """Mark one entry open, resolved or ignored, with a note."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=ERRORS,
        request=EntryStatusSerializer,
        responses={200: SyncErrorSerializer},
        examples=[example("Resolve", {"status": "resolved", "note": "Fixed in the ERP."})],
    )
    def post(self, request, pk: int):
        error = get_object_or_404(SyncError, pk=pk)
        require_sync_admin_for_setup(request.user, error)
        data = _valid(EntryStatusSerializer, request)
        error_services.set_status(
            SyncError.objects.filter(pk=error.pk), data["status"], request.user, data["note"]
        )
        error.refresh_from_db()
        return Response(SyncErrorSerializer(error).data)


class ErrorFixesView(APIView):
    """The one-click fixes of an entry, as its page offers them: list them, or do one. A fix
    that queues a job answers 202 with the job; one done at once (Remove coupling, Delete the
    remaining record, Check records) answers 200 with what it did."""

    permission_classes = [IsSyncUser]

    @extend_schema(tags=ERRORS, responses={200: EntryFixesSerializer, 404: NOT_FOUND})
    def get(self, request, pk: int):
        entry = _entry_to_fix(request, pk)
        offered = [{"fix": fix, "title": fixes.FIXES[fix]} for fix in fixes.fixes_for(entry)]
        return Response(EntryFixesSerializer({"entry": entry.pk, "fixes": offered}).data)

    @extend_schema(
        tags=ERRORS,
        request=FixRequestSerializer,
        responses={
            200: FixOutcomeSerializer,
            202: FixOutcomeSerializer,
            400: FIELD_MESSAGES,
            404: NOT_FOUND,
            409: CONFLICT,
        },
        examples=[example("Retry", {"fix": "retry"})],
    )
    def post(self, request, pk: int):
        entry = _entry_to_fix(request, pk)
        data = _valid(FixRequestSerializer, request)
        try:
            outcome = fixes.apply_fix(entry, data["fix"], user=request.user)
        except fixes.FixRefused as exc:
            raise Conflict(str(exc)) from exc
        return Response(
            FixOutcomeSerializer(outcome).data,
            status=status.HTTP_202_ACCEPTED if outcome.job else status.HTTP_200_OK,
        )


def _now(shown) -> str | None:
    """A value an app holds now, as text (sync.compare.Shown); None when not read."""
    if shown is None or not shown.present or shown.hidden:
        return None
    return "" if shown.empty else shown.full


class ErrorEditView(APIView):
    """Edit and retry, for an entry of a record an app refused to write: GET the fields
    that may be edited, with their kind, the value the retry sends and what each app holds
    now, and the edits kept on the entry; POST the values to retry with. Each value is
    checked against the mapping's field (409 with a message per field; nothing is kept);
    the edit is kept on the entry and a retry of the record queued (202 with the job). The
    record is written once, with the values typed, for as long as the source values they
    replace stay as they were."""

    permission_classes = [IsSyncUser]

    @extend_schema(tags=ERRORS, responses={200: EntryEditSerializer, 404: NOT_FOUND, 409: CONFLICT})
    def get(self, request, pk: int):
        entry = _entry_to_fix(request, pk)
        try:
            fields = edits.fields_to_edit(entry)
        except edits.EditRefused as exc:
            raise Conflict(str(exc)) from exc
        comparison = compare_entry(entry)
        held = {row.write_field: row for row in comparison.rows} if comparison else {}
        rows = [
            {
                "name": item.name,
                "read": item.read,
                "kind": item.kind,
                "max_length": item.max_length,
                "sent": item.sent,
                "source_now": _now(getattr(held.get(item.name), "source_now", None)),
                "destination_now": _now(getattr(held.get(item.name), "other_now", None)),
            }
            for item in fields
        ]
        answer = {"entry": entry.pk, "fields": rows, "edits": edits.edits_on(entry)}
        return Response(EntryEditSerializer(answer).data)

    @extend_schema(
        tags=ERRORS,
        request=EditRequestSerializer,
        responses={
            200: EditOutcomeSerializer,
            202: EditOutcomeSerializer,
            400: FIELD_MESSAGES,
            404: NOT_FOUND,
            409: CONFLICT,
        },
        examples=[example("Phone number", {"values": {"phoneNumber": "+45 3333 4444"}})],
    )
    def post(self, request, pk: int):
        entry = _entry_to_fix(request, pk)
        data = _valid(EditRequestSerializer, request)
        try:
            outcome = edits.edit_and_retry(entry, data["values"], user=request.user, via="api")
        except edits.EditRefused as exc:
            # Which fields there are and what each takes is the entry's: a value the request's
            # shape allows, that the field refuses, is a conflict with the present state.
            if exc.fields:
                return Response(
                    {"detail": str(exc), "values": exc.fields}, status=status.HTTP_409_CONFLICT
                )
            raise Conflict(str(exc)) from exc
        return Response(
            EditOutcomeSerializer(outcome).data,
            status=status.HTTP_202_ACCEPTED if outcome.job else status.HTTP_200_OK,
        )


class ErrorActionsView(APIView):
    """One action on chosen entries (`ids`) or on all that match `filters`. For `filters`,
    first send `dry_run: true` to get the exact count, then the action with that
    `expected_count`: it is refused (409) if the entries that match are no longer that many,
    and entries written later are never included."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=ERRORS,
        request=BulkActionRequestSerializer,
        examples=[
            example(
                "Count first",
                {"action": "resolve", "filters": {"category": "conflict"}, "dry_run": True},
            ),
            example("Chosen entries", {"action": "ignore", "ids": [41, 42], "note": "Tests"}),
        ],
        responses={
            200: inline_serializer(
                "DryRun",
                {"count": serializers.IntegerField(), "coupled": serializers.IntegerField()},
            ),
            202: BulkActionSerializer,
            404: NOT_FOUND,
            409: REFUSAL,
        },
    )
    def post(self, request):
        data = _valid(BulkActionRequestSerializer, request)
        administrator = is_sync_admin(request.user)
        try:
            if "ids" in data:
                chosen = visible_to(request.user, SyncError.objects.filter(pk__in=data["ids"]))
                if not chosen.exists():
                    raise NotFound("None of these entries is there.")
                bulk = bulk_actions.request_bulk_action(
                    action=data["action"],
                    user=request.user,
                    note=data["note"],
                    selected_ids=data["ids"],
                    setup_errors_included=administrator,
                )
            else:
                preview = None
                if not _names_nothing(data["filters"]):
                    preview = bulk_actions.preview(
                        data["action"],
                        _filter_query(data["filters"]),
                        setup_errors_included=administrator,
                    )
                count, coupled = (preview.count, preview.coupled) if preview else (0, 0)
                if data["dry_run"]:
                    return Response({"count": count, "coupled": coupled})
                if count != data["expected_count"]:
                    return Refused(
                        f"{count} entries match now, not {data['expected_count']}; "
                        "check the filters and send the new count.",
                        status.HTTP_409_CONFLICT,
                        count=count,
                    )
                if preview is None or not count:
                    raise NotFound("No entry matches these filters; nothing was changed.")
                bulk = bulk_actions.request_bulk_action(
                    action=data["action"], user=request.user, note=data["note"], confirmed=preview
                )
        except bulk_actions.BulkRefused as exc:
            return Refused(str(exc), status.HTTP_409_CONFLICT)
        except QueueUnavailable as exc:
            return Refused(str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(BulkActionSerializer(bulk).data, status=status.HTTP_202_ACCEPTED)


def _filter_query(filters: dict) -> str:
    """The filters as the errors list's query string."""
    query = QueryDict(mutable=True)
    for key, value in filters.items():
        query[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return query.urlencode()


def _names_nothing(filters: dict) -> bool:
    """Whether the filters name a mapping or a connection that is not there: then no entry
    matches them (the list's filter would refuse the id)."""
    return (
        "mapping" in filters and not TableMapping.objects.filter(pk=filters["mapping"]).exists()
    ) or (
        "connection" in filters and not Connection.objects.filter(pk=filters["connection"]).exists()
    )


class BulkActionDetailView(generics.RetrieveAPIView):
    """The progress and outcome of a bulk action."""

    serializer_class = BulkActionSerializer
    permission_classes = [IsSyncUser]
    queryset = BulkAction.objects.all()

    @extend_schema(tags=ERRORS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


PROBLEM_RELATIONS = ("mapping", "assigned_user", "assigned_group")


class ProblemListView(generics.ListAPIView):
    """Problems (entries grouped by cause), by severity (`sort=severity`, the default:
    blocking problems first, then by records, then by recency) or most recently seen first
    (`sort=recent`)."""

    serializer_class = ErrorGroupSerializer
    permission_classes = [IsSyncUser]
    filter_backends = [ApiFilterBackend]
    filterset_class = ProblemFilter
    pagination_class = KeysetPagination

    @property
    def keyset_field(self) -> str:
        # The filters have checked `sort` before the pages are fetched.
        return sort_field(self.request.query_params.get("sort"))

    def get_queryset(self):
        # The filter `history` picks problems with entries (by default) or those with none.
        groups = ErrorGroup.objects.select_related(*PROBLEM_RELATIONS)
        if getattr(self, "swagger_fake_view", False):
            return groups.none()
        return visible_to(self.request.user, groups)

    @extend_schema(tags=PROBLEMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ProblemDetailView(generics.RetrieveAPIView):
    serializer_class = ErrorGroupSerializer
    permission_classes = [IsSyncUser]
    queryset = ErrorGroup.objects.select_related(*PROBLEM_RELATIONS)

    def get_object(self):
        group = super().get_object()
        require_sync_admin_for_setup(self.request.user, group)
        return group

    @extend_schema(tags=PROBLEMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ProblemEvidenceView(APIView):
    """The problem's evidence archive (zip): its newest entries, its history, their jobs,
    the mapping, the connection without secrets and its latest setup health check."""

    permission_classes = [IsSyncUser]

    @extend_schema(tags=PROBLEMS, responses=ZIP)
    def get(self, request, pk: int):
        group = get_object_or_404(ErrorGroup.objects.select_related("mapping__connection"), pk=pk)
        return _evidence_response(evidence.problem_evidence(group, request.user))


class ProblemStatusView(APIView):
    """Resolve, ignore, reopen or snooze a problem with all its entries."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=PROBLEMS,
        request=ProblemStatusSerializer,
        examples=[example("Snooze", {"status": "snoozed", "more_occurrences": 10})],
        responses={200: ErrorGroupSerializer, 409: CONFLICT},
    )
    def post(self, request, pk: int):
        group = get_object_or_404(ErrorGroup, pk=pk)
        require_sync_admin_for_setup(request.user, group)
        data = _valid(ProblemStatusSerializer, request)
        until = data.get("snoozed_until")
        now = timezone.now()
        if until is not None and not now < until <= now + MAX_SNOOZE:
            raise Conflict({"snoozed_until": ["The snooze must end in the future, within a year."]})
        error_services.set_group_status(
            group,
            data["status"],
            request.user,
            data["note"],
            snoozed_until=data.get("snoozed_until"),
            more_occurrences=data.get("more_occurrences"),
        )
        group.refresh_from_db()
        return Response(ErrorGroupSerializer(group).data)


def _problem(request, pk: int) -> ErrorGroup:
    problem = get_object_or_404(ErrorGroup.objects.select_related(*PROBLEM_RELATIONS), pk=pk)
    require_sync_admin_for_setup(request.user, problem)
    return problem


class ProblemAssignmentView(APIView):
    """Who owns a problem: take it (`{"assignee": "me"}`, anyone who may see it), give it back
    (`{"assignee": "nobody"}`: its assignee, or a Sync administrator), or assign it to a
    person (`user`) or to a role (`group`: Sync users or Sync administrators), which needs
    the Sync administrators role. A setup problem goes only to Sync administrators (409)."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=PROBLEMS,
        request=ProblemAssignmentSerializer,
        examples=[
            example("Take it", {"assignee": "me"}),
            example("To a person", {"user": 7}),
        ],
        responses={200: ErrorGroupSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request, pk: int):
        problem = _problem(request, pk)
        data = _valid(ProblemAssignmentSerializer, request)
        try:
            if data.get("assignee") == "me":
                problem = ownership.take(problem, request.user)
            elif data.get("assignee") == "nobody":
                problem = ownership.unassign(problem, request.user)
            elif "user" in data:
                user = get_user_model().objects.filter(pk=data["user"]).first()
                if user is None:
                    raise NotFound({"user": ["There is no such user."]})
                problem = ownership.assign(problem, request.user, to_user=user)
            else:
                group = Group.objects.filter(pk=data["group"]).first()
                if group is None:
                    raise NotFound({"group": ["There is no such role."]})
                problem = ownership.assign(problem, request.user, to_group=group)
        except ownership.OwnershipRefused as exc:
            if exc.forbidden:
                raise PermissionDenied(str(exc)) from exc
            raise Conflict(str(exc)) from exc
        return Response(ErrorGroupSerializer(problem).data)


class ProblemPolicyView(APIView):
    """The problem's policies (Sync administrators): a coupling that fails with it is
    skipped after `skip_after_failures` identical failures in a row (1 to 20) instead of its
    mapping's number, null going back to the mapping's; `entry_logging` logs an entry for
    every failed attempt of a record (`every_attempt`) or one that counts them (`once`), ""
    going back to the mapping's. What is not sent is left as it is."""

    permission_classes = [IsSyncAdmin]

    @extend_schema(
        tags=PROBLEMS,
        request=ProblemPolicySerializer,
        examples=[
            example("After three failures", {"skip_after_failures": 3}),
            example("The mapping's policy", {"skip_after_failures": None}),
            example("One entry per record", {"entry_logging": "once"}),
        ],
        responses={200: ErrorGroupSerializer, 404: NOT_FOUND},
    )
    def post(self, request, pk: int):
        problem = _problem(request, pk)
        if not request.body:
            # Every field may be left out, but not the object that holds them.
            raise serializers.ValidationError(
                {"detail": ["Send a JSON object with the policies to set."]}
            )
        data = _valid(ProblemPolicySerializer, request)
        try:
            if "skip_after_failures" in data:
                problem = policies.set_skip_after(
                    problem, request.user, data["skip_after_failures"]
                )
            if "transient_retries" in data or "retry_delay_seconds" in data:
                problem = policies.set_retries(
                    problem,
                    request.user,
                    data.get("transient_retries", problem.transient_retries),
                    data.get("retry_delay_seconds", problem.retry_delay_seconds),
                )
            if "entry_logging" in data:
                problem = policies.set_entry_logging(problem, request.user, data["entry_logging"])
        except policies.PolicyRefused as exc:
            return Refused(str(exc))
        return Response(ErrorGroupSerializer(problem).data)


class ProblemCommentsView(APIView):
    """A problem's discussion, newest last; POST adds to it (anyone who may see the problem).
    The text is kept as it is sent, trimmed, and shown as text."""

    permission_classes = [IsSyncUser]

    @extend_schema(tags=PROBLEMS, responses={200: CommentSerializer(many=True), 404: NOT_FOUND})
    def get(self, request, pk: int):
        problem = _problem(request, pk)
        return Response(CommentSerializer(ownership.comments_of(problem), many=True).data)

    @extend_schema(
        tags=PROBLEMS,
        request=CommentRequestSerializer,
        examples=[example("Comment", {"text": "The customer's VAT number is fixed in the ERP."})],
        responses={201: CommentSerializer, 400: FIELD_MESSAGES, 404: NOT_FOUND},
    )
    def post(self, request, pk: int):
        problem = _problem(request, pk)
        data = _valid(CommentRequestSerializer, request)
        try:
            written = ownership.comment(problem, request.user, data["text"])
        except ownership.OwnershipRefused as exc:
            if exc.forbidden:
                raise PermissionDenied(str(exc)) from exc
            raise serializers.ValidationError({"text": [str(exc)]}) from exc
        return Response(CommentSerializer(written).data, status=status.HTTP_201_CREATED)


class JobListView(generics.ListAPIView):
    """Sync jobs, newest first; POST starts one (Sync administrators)."""

    serializer_class = SyncJobSerializer
    permission_classes = [IsSyncUser]
    filter_backends = [ApiFilterBackend]
    filterset_class = JobFilter
    pagination_class = KeysetPagination
    queryset = SyncJob.objects.select_related("mapping")

    @extend_schema(tags=JOBS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=JOBS,
        request=StartJobSerializer,
        examples=[example("Start", {"mapping": 2, "kind": "modified"})],
        responses={
            202: SyncJobSerializer,
            400: FIELD_MESSAGES,
            404: NOT_FOUND,
            409: REFUSAL,
            503: REFUSAL,
        },
    )
    def post(self, request):
        if not is_sync_admin(request.user):
            raise PermissionDenied("Starting a job needs the Sync administrators role.")
        data = _valid(StartJobSerializer, request)
        mapping = TableMapping.objects.filter(pk=data["mapping"]).first()
        if mapping is None:
            raise NotFound({"mapping": ["There is no such table mapping."]})
        try:
            job = sync_services.request_sync(
                mapping, kind=data["kind"], trigger=SyncJob.Trigger.USER, user=request.user
            )
        except sync_services.JobRefused as exc:
            return Refused(str(exc), status.HTTP_409_CONFLICT)
        except QueueUnavailable as exc:
            return Refused(str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(SyncJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobDetailView(generics.RetrieveAPIView):
    """A sync job, with the lines it logged while it ran."""

    serializer_class = SyncJobDetailSerializer
    permission_classes = [IsSyncUser]
    queryset = SyncJob.objects.select_related("mapping").prefetch_related(
        Prefetch("log_lines", queryset=JobLogLine.objects.order_by("pk"))
    )

    @extend_schema(tags=JOBS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CleanupView(APIView):
    """Delete the entries older than N days, or all entries (Sync administrators). Small
    clean-ups are done at once (201); larger ones run in a worker (202): follow `url` or
    GET /api/v1/cleanups/<id>/."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=CLEANUP,
        request=CleanupRequestSerializer,
        examples=[example("Older than", {"days": 90})],
        responses={201: CleanupSerializer, 202: CleanupSerializer, 503: REFUSAL},
    )
    def post(self, request):
        data = _valid(CleanupRequestSerializer, request)
        try:
            cleanup = error_services.request_cleanup(
                days=None if data["all"] else data["days"],
                trigger=SyncErrorCleanup.Trigger.API,
                user=request.user,
            )
        except error_services.CleanupRefused as exc:
            if exc.forbidden:
                raise PermissionDenied(str(exc)) from exc
            return Refused(str(exc))
        except QueueUnavailable as exc:
            return Refused(str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        code = status.HTTP_201_CREATED if cleanup.is_finished else status.HTTP_202_ACCEPTED
        return Response(CleanupSerializer(cleanup).data, status=code)


class CleanupDetailView(generics.RetrieveAPIView):
    serializer_class = CleanupSerializer
    permission_classes = [IsSyncUser]
    queryset = SyncErrorCleanup.objects.all()

    @extend_schema(tags=CLEANUP)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


INGEST_ANSWER = inline_serializer(
    "Ingested",
    {
        "stored": serializers.IntegerField(),
        "entries": serializers.ListField(child=serializers.DictField()),
        "groups": serializers.ListField(child=serializers.DictField()),
    },
)


IDEMPOTENCY_KEY = {
    "type": "string",
    "maxLength": ingestion.IDEMPOTENCY_KEY_MAX_LENGTH,
    "pattern": f"^{char_class(''.join(map(chr, range(0x20, 0x7F))))}*$",
}


class IngestSchema(ApiAutoSchema):
    """The body: one error, a list of them, or `{"errors": [...]}`."""

    def _get_request_for_media_type(self, serializer, direction="request"):
        entry = self.resolve_serializer(IngestedErrorSerializer, direction).ref
        batch = {
            "type": "array",
            "items": entry,
            "minItems": 1,
            "maxItems": ingestion.MAX_ENTRIES,
        }
        wrapped = {
            "type": "object",
            "properties": {"errors": batch},
            "required": ["errors"],
            "additionalProperties": False,
        }
        return {"oneOf": [entry, batch, wrapped]}, True


class IngestView(APIView):
    """Errors of another integration: one error object, a list of them, or
    `{"errors": [...]}` (at most 1,000). All are checked first; one bad entry refuses the
    whole request with a message per field (`errors.<index>.<field>`) and nothing is stored:
    a 400 when an entry is not as described, a 409 when one happened more than five minutes
    in the future. Send an `Idempotency-Key` header to make a retry safe: the same key with
    the same body gets the first answer back (header `Idempotent-Replayed: true`) and
    stores nothing again; the same key with another body is refused (409)."""

    permission_classes = [CanIngest]
    schema = IngestSchema()

    @extend_schema(
        tags=INGESTION,
        request=IngestedErrorSerializer,
        examples=[
            example(
                "One error",
                {
                    "message": "Order SO-1042 could not be posted: item 100 has no stock",
                    "category": "validation",
                    "source_app": "Shop",
                    "source_record_id": "SO-1042",
                    "source_url": "https://shop.example.com/orders/SO-1042",
                },
            )
        ],
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                IDEMPOTENCY_KEY,
                OpenApiParameter.HEADER,
                description="Up to 200 printable ASCII characters.",
            )
        ],
        responses={
            201: INGEST_ANSWER,
            400: OpenApiResponse(description="Field messages."),
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The Idempotency-Key was used with another body (a detail); or "
                "an entry's moment is out of range (field messages).",
            ),
        },
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "")
        if len(key) > ingestion.IDEMPOTENCY_KEY_MAX_LENGTH or not (
            key.isascii() and key.isprintable()
        ):
            return Refused("The Idempotency-Key must be up to 200 printable ASCII characters.")
        digest = ingestion.body_hash(request.body)
        if key:
            try:
                earlier = ingestion.replay(request.user, key, digest)
            except ingestion.KeyReusedWithOtherBody as exc:
                # The key's first request, kept, conflicts with this one.
                return Refused(str(exc), status.HTTP_409_CONFLICT)
            if earlier is not None:
                return _answer(earlier)
        entries = _entries_of(request.data)
        token = request.auth
        context = {"integration": getattr(token, "integration", "")}
        # A batch that plainly keeps the rules skips the serializer's work per field; any
        # other is checked by the serializer, which says what is wrong.
        validated = quick_ingest_check.validated(entries, context["integration"])
        if validated is None:
            checked = IngestedErrorSerializer(data=entries, many=True, context=context)
            if not checked.is_valid():
                found = checked.errors
                # DRF gives the failures by index (a dict), or a list with {} for good entries.
                pairs = found.items() if isinstance(found, dict) else enumerate(found)
                problems = {str(i): e for i, e in pairs if e}
                return Response({"errors": problems}, status=status.HTTP_400_BAD_REQUEST)
            validated = checked.validated_data
        out_of_range = {
            str(i): {"occurred_at": [message]}
            for i, entry in enumerate(validated)
            if (message := _out_of_range(entry.get("occurred_at")))
        }
        if out_of_range:
            return Response({"errors": out_of_range}, status=status.HTTP_409_CONFLICT)
        return _answer(ingestion.ingest(validated, request.user, key=key, digest=digest))


def _out_of_range(moment) -> str:
    """Why the console cannot take this moment, or ""."""
    if moment is None:
        return ""
    if not in_utc(moment):
        return "This moment is out of the range of dates the console keeps."
    if moment > timezone.now() + FUTURE_TOLERANCE:
        return "This moment is in the future."
    return ""


def _answer(answer: ingestion.Answer) -> Response:
    response = Response(answer.body, status=answer.status_code)
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _entries_of(data) -> list:
    if isinstance(data, dict) and set(data) == {"errors"}:
        data = data["errors"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise serializers.ValidationError(
            {"non_field_errors": ['Send an error object, a list of them, or {"errors": [...]}.']}
        )
    if len(data) > ingestion.MAX_ENTRIES:
        raise serializers.ValidationError(
            {"non_field_errors": [f"Send at most {ingestion.MAX_ENTRIES:,} errors at once."]}
        )
    return data


def _entry_to_fix(request, pk: int) -> SyncError:
    """An entry a fix or an edit acts on, with its coupling and connection; a setup entry for
    administrators only."""
    entry = get_object_or_404(
        SyncError.objects.select_related("coupling__mapping", "mapping__connection"), pk=pk
    )
    require_sync_admin_for_setup(request.user, entry)
    return entry


def _valid(serializer_class, request) -> dict:
    checked = serializer_class(data=request.data)
    checked.is_valid(raise_exception=True)
    return checked.validated_data


def not_found(request, exception=None):
    """Django's 404 for every path no URL matches: JSON under the API, as its views answer,
    the console's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "No such endpoint.", "request_id": _request_id(request)}, status=404
        )
    return page_not_found(request, exception)


@requires_csrf_token
def server_error(request):
    """Django's 500: JSON under the API, a plain page elsewhere. Both name the request id, for
    a person to quote. Neither reads the database nor the signed-in person: the database
    may be what failed."""
    request_id = _request_id(request)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error.", "request_id": request_id}, status=500)
    page = loader.get_template("500.html").render({"request_id": request_id})
    return HttpResponse(page, status=500)


def _request_id(request) -> str:
    # Set by syncconsole.request_ids.RequestIdMiddleware.
    return getattr(request, "request_id", "")
