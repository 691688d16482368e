"""The audit log through the API (Sync administrators)."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from audit.models import AuditEvent

from .filters import ApiFilterBackend, AuditFilter
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
    filter_backends = [ApiFilterBackend]
    filterset_class = AuditFilter
    pagination_class = KeysetPagination
    keyset_field = "at"
    queryset = AuditEvent.objects.all()

    @extend_schema(tags=["Audit log"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
