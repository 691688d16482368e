"""The API of table mappings, connections and couplings: what the console's mapping, health,
couple and skipped-records pages do, for scripts."""

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from couplings import actions
from couplings import services as coupling_services
from couplings.models import Coupling, CouplingRun
from sync import breaker, health, probes
from sync import services as sync_services
from sync.connectors import ConnectorError
from sync.mapping_health import with_health
from sync.models import Connection, LagProbe, TableMapping
from syncconsole.queue import QueueUnavailable

from .filters import ApiCouplingFilter, ApiFilterBackend
from .pagination import KeysetPagination
from .permissions import IsSyncAdmin, IsSyncUser
from .serializers import (
    ChosenCouplingsSerializer,
    ConnectionCheckSerializer,
    ConnectionSerializer,
    CoupleByMatchSerializer,
    CoupleSerializer,
    CouplingIdsSerializer,
    CouplingRunSerializer,
    CouplingSerializer,
    LagProbeRequestSerializer,
    LagSerializer,
    MappingSerializer,
)
from .views import (
    CONFLICT,
    FIELD_MESSAGES,
    NOT_FOUND,
    REFUSAL,
    Conflict,
    Refused,
    _valid,
    example,
)

MAPPINGS = ["Mappings and connections"]
RETRIED = inline_serializer(
    "Retried",
    {
        "jobs": serializers.ListField(child=serializers.IntegerField()),
        "refused": serializers.ListField(child=serializers.CharField()),
    },
)
CHECKED = inline_serializer(
    "Checked",
    {
        "checked": serializers.IntegerField(),
        "gone": serializers.DictField(child=serializers.IntegerField()),
    },
)
REMOVED = inline_serializer(
    "Removed",
    {
        "removed": serializers.BooleanField(),
        "resolved_entries": serializers.IntegerField(
            help_text="How many of its open entries were resolved."
        ),
    },
)
COUPLED = inline_serializer(
    "Coupled",
    {
        **CouplingSerializer().get_fields(),
        "mapping": serializers.IntegerField(),
        "sync_job": serializers.IntegerField(
            allow_null=True, help_text="The job that synchronizes the records, when asked."
        ),
        "detail": serializers.CharField(
            required=False, help_text="Why the records were coupled but not synchronized."
        ),
    },
)
COUPLINGS = ["Couplings"]


def _mapping(pk: int) -> TableMapping:
    mapping = TableMapping.objects.select_related("connection").filter(pk=pk).first()
    if mapping is None:
        raise NotFound({"mapping": ["There is no such table mapping."]})
    return mapping


class MappingListView(APIView):
    """Table mappings with their health: couplings in step, failing and skipped, open
    entries, last successful sync, and whether the circuit breaker paused them."""

    permission_classes = [IsSyncUser]

    @extend_schema(tags=MAPPINGS, responses={200: MappingSerializer(many=True)})
    def get(self, request):
        mappings = with_health(
            TableMapping.objects.order_by("connection__name", "dependency_order", "name")
        )
        return Response(MappingSerializer(mappings, many=True).data)


class MappingResumeView(APIView):
    """Resume a mapping the circuit breaker paused (Sync administrators)."""

    permission_classes = [IsSyncAdmin]

    @extend_schema(tags=MAPPINGS, request=None, responses={200: MappingSerializer})
    def post(self, request, pk: int):
        mapping = get_object_or_404(TableMapping, pk=pk)
        if mapping.is_paused:
            breaker.resume_by_hand(mapping, request.user)
        mapping = with_health(TableMapping.objects.filter(pk=pk))[0]
        return Response(MappingSerializer(mapping).data)


LAG_HOURS = (1, 168)
LAG_SAMPLES_SHOWN = 1000


def _lag_body(mapping: TableMapping, hours: int) -> dict:
    now = timezone.now()
    probe = LagProbe.objects.filter(mapping=mapping).first()
    if probe is None:
        return {
            "probe": None,
            "hours": hours,
            "latest_lag_seconds": None,
            "latest_state": None,
            "median_seconds": None,
            "p95_seconds": None,
            "late": 0,
            "samples": [],
        }
    lag = probes.summary(probe, now, timedelta(hours=hours))
    return {
        "probe": probe,
        "hours": hours,
        "latest_lag_seconds": probes.current_lag(lag.latest, now),
        "latest_state": lag.latest.state if lag.latest else None,
        "median_seconds": lag.median,
        "p95_seconds": lag.p95,
        "late": lag.late,
        "samples": list(reversed(lag.samples))[:LAG_SAMPLES_SHOWN],
    }


class MappingLagView(APIView):
    """The mapping's lag probe and its samples of the last `hours` (1 to 168, default 24),
    newest first, with the latest lag, the median and the 95th percentile; PUT (or POST)
    sets the probe up, changes it or switches it off (Sync administrators)."""

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsSyncUser()]
        return [IsSyncAdmin()]

    @extend_schema(
        tags=MAPPINGS,
        parameters=[
            OpenApiParameter(
                "hours",
                {"type": "integer", "minimum": LAG_HOURS[0], "maximum": LAG_HOURS[1]},
                description="The window, in hours (1 to 168; 24 when not given).",
                required=False,
            )
        ],
        responses={200: LagSerializer, 400: FIELD_MESSAGES, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        mapping = _mapping(pk)
        raw = request.query_params.get("hours", "24")
        low, high = LAG_HOURS
        if not raw.isdigit() or not low <= int(raw) <= high:
            return Refused(f"hours must be a whole number from {low} to {high}.")
        return Response(LagSerializer(_lag_body(mapping, int(raw))).data)

    @extend_schema(
        tags=MAPPINGS,
        request=LagProbeRequestSerializer,
        examples=[
            example(
                "Every minute, limit 5 minutes",
                {
                    "direction": "to_destination",
                    "record_id": "9c1f0a5e-4f1e-4c3b-8a52-0d1c7e2b9f10",
                    "marker_field": "displayName",
                    "marker_length": 100,
                    "interval_minutes": 1,
                    "limit_seconds": 300,
                    "is_enabled": True,
                },
            )
        ],
        responses={200: LagSerializer, 400: FIELD_MESSAGES, 404: NOT_FOUND, 409: CONFLICT},
    )
    def put(self, request, pk: int):
        mapping = _mapping(pk)
        data = _valid(LagProbeRequestSerializer, request)
        try:
            probes.save_probe(mapping, **data, user=request.user)
        except probes.ProbeRefused as refused:
            # Well formed, but the mapping refuses it: a field it does not carry, a record
            # that is not coupled, a direction it does not synchronize.
            return Response(refused.problems, status=status.HTTP_409_CONFLICT)
        return Response(LagSerializer(_lag_body(mapping, 24)).data)

    @extend_schema(
        tags=MAPPINGS,
        request=LagProbeRequestSerializer,
        responses={200: LagSerializer, 400: FIELD_MESSAGES, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request, pk: int):
        return self.put(request, pk)


class ConnectionListView(generics.ListAPIView):
    """Connections, never with their secrets (Sync administrators)."""

    serializer_class = ConnectionSerializer
    permission_classes = [IsSyncAdmin]
    queryset = Connection.objects.order_by("name")
    pagination_class = None

    @extend_schema(tags=MAPPINGS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ConnectionCheckView(APIView):
    """Test the connection now: the setup health check against both apps, with a severity
    and a remedy per finding (Sync administrators)."""

    permission_classes = [IsSyncAdmin]

    @extend_schema(tags=MAPPINGS, request=None, responses={201: ConnectionCheckSerializer})
    def post(self, request, pk: int):
        connection = get_object_or_404(Connection, pk=pk)
        check = health.run_check(connection, user=request.user)
        return Response(ConnectionCheckSerializer(check).data, status=status.HTTP_201_CREATED)


class CouplingListView(generics.ListCreateAPIView):
    """Couplings (filters `mapping`, `result`, `skipped`, `record`, `job`), newest first;
    POST couples two records by hand (both are read from their apps first)."""

    serializer_class = CouplingSerializer
    permission_classes = [IsSyncUser]
    filter_backends = [ApiFilterBackend]
    filterset_class = ApiCouplingFilter
    pagination_class = KeysetPagination
    queryset = Coupling.objects.select_related("mapping")

    @extend_schema(tags=COUPLINGS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=COUPLINGS,
        request=CoupleSerializer,
        examples=[
            example(
                "By hand",
                {"mapping": 2, "source_record_id": "C00030", "destination_record_id": "A-17"},
            )
        ],
        responses={
            201: COUPLED,
            400: FIELD_MESSAGES,
            404: NOT_FOUND,
            409: REFUSAL,
            502: REFUSAL,
        },
    )
    def post(self, request, *args, **kwargs):
        data = _valid(CoupleSerializer, request)
        mapping = _mapping(data["mapping"])
        try:
            coupling, job = coupling_services.couple_manually(
                mapping,
                data["source_record_id"],
                data["destination_record_id"],
                request.user,
                synchronize_after=data["synchronize_after"],
            )
        except coupling_services.CouplingRefused as exc:
            return Refused(str(exc), status.HTTP_409_CONFLICT)
        except ConnectorError as exc:
            # An app that cannot be reached to check the records is its failure, not ours.
            return Refused(str(exc), status.HTTP_502_BAD_GATEWAY)
        except (sync_services.JobRefused, QueueUnavailable) as exc:
            # The coupling stays: only the synchronization that was asked for is not done.
            coupling = Coupling.objects.get(
                mapping=mapping, source_record_id=data["source_record_id"]
            )
            body = {
                **CouplingSerializer(coupling).data,
                "sync_job": None,
                "detail": f"Coupled, but not synchronized: {exc}",
            }
            return Response(body, status=status.HTTP_201_CREATED)
        body = {**CouplingSerializer(coupling).data, "sync_job": job.pk if job else None}
        return Response(body, status=status.HTTP_201_CREATED)


class CouplingDetailView(generics.RetrieveDestroyAPIView):
    """One coupling; DELETE removes it (its open entries are resolved)."""

    serializer_class = CouplingSerializer
    permission_classes = [IsSyncUser]
    queryset = Coupling.objects.select_related("mapping")

    @extend_schema(tags=COUPLINGS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=COUPLINGS, responses={200: REMOVED})
    def delete(self, request, *args, **kwargs):
        coupling = self.get_object()
        resolved = actions.remove_coupling(coupling, user=request.user)
        return Response({"removed": True, "resolved_entries": resolved})


class CoupleByMatchView(APIView):
    """Couple records by matching fields: each to its single match that is not coupled yet
    (created on the other side when nothing matches and `create_if_no_match`). Small runs
    answer with every outcome (201); larger ones run in a worker (202): follow
    GET /api/v1/coupling-runs/<id>/."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=COUPLINGS,
        request=CoupleByMatchSerializer,
        examples=[
            example(
                "By number",
                {
                    "mapping": 2,
                    "side": "source",
                    "record_ids": ["C00030"],
                    "criteria": [{"source": "number", "destination": "accountnumber"}],
                },
            )
        ],
        responses={
            201: CouplingRunSerializer,
            202: CouplingRunSerializer,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def post(self, request):
        data = _valid(CoupleByMatchSerializer, request)
        mapping = _mapping(data["mapping"])
        pairs = set(coupling_services.criteria_choices(mapping))
        criteria = []
        for n, row in enumerate(data["criteria"]):
            if (row["source"], row["destination"]) not in pairs:
                raise Conflict(
                    {
                        "criteria": {
                            str(n): [
                                f"{row['source']} = {row['destination']} is not a field pair of "
                                f"{mapping.name}."
                            ]
                        }
                    }
                )
            criteria.append(coupling_services.Criterion(**row))
        criteria.sort(key=lambda c: c.priority)
        try:
            run = coupling_services.couple_by_match(
                mapping,
                data["side"],
                data["record_ids"],
                criteria,
                create_if_no_match=data["create_if_no_match"],
                synchronize_after=data["synchronize_after"],
                user=request.user,
            )
        except QueueUnavailable as exc:
            return Refused(str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        code = status.HTTP_201_CREATED if run.is_finished else status.HTTP_202_ACCEPTED
        return Response(CouplingRunSerializer(run).data, status=code)


class CouplingRunDetailView(generics.RetrieveAPIView):
    serializer_class = CouplingRunSerializer
    permission_classes = [IsSyncUser]
    queryset = CouplingRun.objects.all()

    @extend_schema(tags=COUPLINGS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CouplingRetryView(APIView):
    """Take skipped or failing couplings back into synchronization and synchronize them now
    (one job per mapping): the chosen `ids`, or every skipped one (`all_skipped`)."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=COUPLINGS,
        request=CouplingIdsSerializer,
        responses={202: RETRIED, 404: NOT_FOUND},
        examples=[example("Every skipped one", {"all_skipped": True, "mapping": 2})],
    )
    def post(self, request):
        data = _valid(CouplingIdsSerializer, request)
        if data["all_skipped"]:
            chosen = Coupling.objects.filter(is_skipped=True)
            if "mapping" in data:
                chosen = chosen.filter(mapping_id=data["mapping"])
        else:
            chosen = Coupling.objects.filter(pk__in=data["ids"])
        if not chosen.exists():
            raise NotFound(
                "No coupling is skipped."
                if data["all_skipped"]
                else "None of these couplings is there."
            )
        retried = actions.retry_by_mapping(chosen, user=request.user)
        return Response(
            {
                "jobs": retried.job_ids,
                "refused": [f"{mapping.name}: {why}" for mapping, why, _ in retried.refused],
            },
            status=status.HTTP_202_ACCEPTED,
        )


class FindForDeletedView(APIView):
    """Ask both apps whether each coupling's records still exist (at most 500)."""

    permission_classes = [IsSyncUser]

    @extend_schema(
        tags=COUPLINGS,
        request=ChosenCouplingsSerializer,
        responses={200: CHECKED},
        examples=[example("Chosen", {"ids": [7, 8]})],
    )
    def post(self, request):
        data = _valid(ChosenCouplingsSerializer, request)
        chosen = Coupling.objects.filter(pk__in=data["ids"])
        gone = actions.find_for_deleted(chosen)
        return Response({"checked": chosen.count(), "gone": gone})
