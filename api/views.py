"""The JSON API: the console's lists and actions for scripts, and ingestion for other
integrations. Each view checks its input, calls the same services as the console's pages,
and answers with field-level messages when the input is wrong."""

from django.http import QueryDict
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.views import APIView

from errors import bulk as bulk_actions
from errors import services as error_services
from errors.export import csv_response
from errors.filters import ErrorGroupFilter, SyncErrorFilter
from errors.models import BulkAction, ErrorGroup, SyncError, SyncErrorCleanup
from errors.views import visible_to
from sync import services as sync_services
from sync.filters import SyncJobFilter
from sync.models import SyncJob, TableMapping
from syncconsole.permissions import is_sync_admin, require_sync_admin_for_setup

from . import ingestion
from .pagination import KeysetPagination
from .permissions import CanIngest, IsSyncUser
from .serializers import (
    BulkActionRequestSerializer,
    BulkActionSerializer,
    CleanupRequestSerializer,
    CleanupSerializer,
    EntryStatusSerializer,
    ErrorGroupSerializer,
    IngestedErrorSerializer,
    ProblemStatusSerializer,
    StartJobSerializer,
    SyncErrorSerializer,
    SyncJobSerializer,
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


class Refused(Response):
    def __init__(self, message: str, code: int = status.HTTP_400_BAD_REQUEST, **extra):
        super().__init__({"detail": message, **extra}, status=code)


class ErrorListView(generics.ListAPIView):
    """Sync error entries, newest first, filtered as in the console (setup errors for
    administrators only)."""

    serializer_class = SyncErrorSerializer
    permission_classes = [IsSyncUser]
    filter_backends = [DjangoFilterBackend]
    filterset_class = SyncErrorFilter
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


class ErrorStatusView(APIView):
    """Mark one entry open, resolved or ignored, with a note."""

    permission_classes = [IsSyncUser]

    @extend_schema(tags=ERRORS, request=EntryStatusSerializer, responses={200: SyncErrorSerializer})
    def post(self, request, pk: int):
        error = get_object_or_404(SyncError, pk=pk)
        require_sync_admin_for_setup(request.user, error)
        data = _valid(EntryStatusSerializer, request)
        error_services.set_status(
            SyncError.objects.filter(pk=error.pk), data["status"], request.user, data["note"]
        )
        error.refresh_from_db()
        return Response(SyncErrorSerializer(error).data)


class ErrorActionsView(APIView):
    """One action on chosen entries (`ids`) or on all that match `filters`. For `filters`,
    first send `dry_run: true` to get the exact count, then the action with that
    `expected_count`: it is refused (409) if the entries that match are no longer that many,
    and entries written later are never included."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=ERRORS,
        request=BulkActionRequestSerializer,
        responses={
            200: inline_serializer(
                "DryRun",
                {"count": serializers.IntegerField(), "coupled": serializers.IntegerField()},
            ),
            202: BulkActionSerializer,
            409: REFUSAL,
        },
    )
    def post(self, request):
        data = _valid(BulkActionRequestSerializer, request)
        administrator = is_sync_admin(request.user)
        filter_query = QueryDict(mutable=True)
        for key, value in data.get("filters", {}).items():
            filter_query[key] = value
        try:
            if "ids" in data:
                bulk = bulk_actions.request_bulk_action(
                    action=data["action"],
                    user=request.user,
                    note=data["note"],
                    selected_ids=data["ids"],
                    setup_errors_included=administrator,
                )
            else:
                preview = bulk_actions.preview(
                    data["action"], filter_query.urlencode(), setup_errors_included=administrator
                )
                if data["dry_run"]:
                    return Response({"count": preview.count, "coupled": preview.coupled})
                if preview.count != data["expected_count"]:
                    return Refused(
                        f"{preview.count} entries match now, not {data['expected_count']}; "
                        "check the filters and send the new count.",
                        status.HTTP_409_CONFLICT,
                        count=preview.count,
                    )
                bulk = bulk_actions.request_bulk_action(
                    action=data["action"], user=request.user, note=data["note"], confirmed=preview
                )
        except bulk_actions.BulkRefused as exc:
            return Refused(str(exc))
        except error_services.QueueUnavailable as exc:
            return Refused(str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(BulkActionSerializer(bulk).data, status=status.HTTP_202_ACCEPTED)


class BulkActionDetailView(generics.RetrieveAPIView):
    """The progress and outcome of a bulk action."""

    serializer_class = BulkActionSerializer
    permission_classes = [IsSyncUser]
    queryset = BulkAction.objects.all()

    @extend_schema(tags=ERRORS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ProblemListView(generics.ListAPIView):
    """Problems (entries grouped by cause), most recently seen first."""

    serializer_class = ErrorGroupSerializer
    permission_classes = [IsSyncUser]
    filter_backends = [DjangoFilterBackend]
    filterset_class = ErrorGroupFilter
    pagination_class = KeysetPagination
    keyset_field = "last_seen"

    def get_queryset(self):
        groups = ErrorGroup.objects.select_related("mapping").filter(count__gt=0)
        if getattr(self, "swagger_fake_view", False):
            return groups.none()
        return visible_to(self.request.user, groups)

    @extend_schema(tags=PROBLEMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ProblemDetailView(generics.RetrieveAPIView):
    serializer_class = ErrorGroupSerializer
    permission_classes = [IsSyncUser]
    queryset = ErrorGroup.objects.select_related("mapping")

    def get_object(self):
        group = super().get_object()
        require_sync_admin_for_setup(self.request.user, group)
        return group

    @extend_schema(tags=PROBLEMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ProblemStatusView(APIView):
    """Resolve, ignore, reopen or snooze a problem with all its entries."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=PROBLEMS, request=ProblemStatusSerializer, responses={200: ErrorGroupSerializer}
    )
    def post(self, request, pk: int):
        group = get_object_or_404(ErrorGroup, pk=pk)
        require_sync_admin_for_setup(request.user, group)
        data = _valid(ProblemStatusSerializer, request)
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


class JobListView(generics.ListAPIView):
    """Sync jobs, newest first; POST starts one (Sync administrators)."""

    serializer_class = SyncJobSerializer
    permission_classes = [IsSyncUser]
    filter_backends = [DjangoFilterBackend]
    filterset_class = SyncJobFilter
    pagination_class = KeysetPagination
    queryset = SyncJob.objects.select_related("mapping")

    @extend_schema(tags=JOBS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=JOBS,
        request=StartJobSerializer,
        responses={202: SyncJobSerializer, 400: FIELD_MESSAGES, 503: REFUSAL},
    )
    def post(self, request):
        if not is_sync_admin(request.user):
            raise PermissionDenied("Starting a job needs the Sync administrators role.")
        data = _valid(StartJobSerializer, request)
        mapping = TableMapping.objects.filter(pk=data["mapping"]).first()
        if mapping is None:
            raise serializers.ValidationError({"mapping": ["There is no such table mapping."]})
        try:
            job = sync_services.request_sync(
                mapping, kind=data["kind"], trigger=SyncJob.Trigger.USER, user=request.user
            )
        except sync_services.JobRefused as exc:
            return Refused(str(exc))
        except sync_services.QueueUnavailable as exc:
            return Refused(str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(SyncJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobDetailView(generics.RetrieveAPIView):
    serializer_class = SyncJobSerializer
    permission_classes = [IsSyncUser]
    queryset = SyncJob.objects.select_related("mapping")

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
        responses={201: CleanupSerializer, 202: CleanupSerializer, 503: REFUSAL},
    )
    def post(self, request):
        data = _valid(CleanupRequestSerializer, request)
        if data["all"] and not is_sync_admin(request.user):
            raise PermissionDenied("Delete All Entries needs the Sync administrators role.")
        try:
            cleanup = error_services.request_cleanup(
                days=None if data["all"] else data["days"],
                trigger=SyncErrorCleanup.Trigger.API,
                user=request.user,
            )
        except error_services.QueueUnavailable as exc:
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


class IngestView(APIView):
    """Errors of another integration: one error object, a list of them, or
    `{"errors": [...]}` (at most 1,000). All are checked first; one bad entry refuses the
    whole request with a message per field (`errors.<index>.<field>`) and nothing is stored.
    Send an `Idempotency-Key` header to make a retry safe: the same key with the same body
    gets the first answer back (header `Idempotent-Replayed: true`) and stores nothing again."""

    permission_classes = [CanIngest]

    @extend_schema(
        tags=INGESTION,
        request=IngestedErrorSerializer(many=True),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Up to 200 printable characters.",
            )
        ],
        responses={
            201: INGEST_ANSWER,
            400: OpenApiResponse(description="Field messages."),
            422: REFUSAL,
        },
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "")
        if len(key) > ingestion.IDEMPOTENCY_KEY_MAX_LENGTH or not key.isprintable():
            return Refused("The Idempotency-Key must be up to 200 printable characters.")
        digest = ingestion.body_hash(request.body)
        if key:
            try:
                earlier = ingestion.replay(request.user, key, digest)
            except ingestion.KeyReusedWithOtherBody as exc:
                return Refused(str(exc), status.HTTP_422_UNPROCESSABLE_ENTITY)
            if earlier is not None:
                return _answer(earlier)
        entries = _entries_of(request.data)
        token = request.auth
        context = {"integration": getattr(token, "integration", "")}
        checked = IngestedErrorSerializer(data=entries, many=True, context=context)
        if not checked.is_valid():
            found = checked.errors
            # DRF gives the failures by index (a dict), or a list with {} for good entries.
            pairs = found.items() if isinstance(found, dict) else enumerate(found)
            problems = {str(i): e for i, e in pairs if e}
            return Response({"errors": problems}, status=status.HTTP_400_BAD_REQUEST)
        return _answer(
            ingestion.ingest(checked.validated_data, request.user, key=key, digest=digest)
        )


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


def _valid(serializer_class, request) -> dict:
    checked = serializer_class(data=request.data)
    checked.is_valid(raise_exception=True)
    return checked.validated_data


def not_found(request, exception=None):
    """Django's 404 for every path no URL matches: JSON under the API, as its views answer,
    the console's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "No such endpoint."}, status=404)
    return page_not_found(request, exception)
