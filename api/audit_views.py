"""The audit log through the API (Sync administrators)."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from audit.filters import AuditEventFilter
from audit.models import AuditEvent

from .pagination import KeysetPagination
from .permissions import IsSyncAdmin


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "object_label",
            "summary",
            "details",
        ]
        read_only_fields = fields


class AuditEventListView(generics.ListAPIView):
    """Every deletion, resolution and change of a setting, newest first: filter by `action`,
    `user` (a user name, or "system"), `since` and `until` (dates)."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsSyncAdmin]
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter
    pagination_class = KeysetPagination
    keyset_field = "at"
    queryset = AuditEvent.objects.all()

    @extend_schema(tags=["Audit log"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
