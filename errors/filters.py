"""The filters of the errors list (query parameters: category, status, mapping, connection,
job, coupling, group, q, created_after, created_before)."""

import django_filters
from django import forms
from django.db.models import Q

from sync.models import Connection, TableMapping

from .models import Category, ErrorGroup, Status, SyncError

SEARCH_MAX_LENGTH = 200


class SyncErrorFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        max_length=SEARCH_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "Message or record id", "type": "search"}),
    )
    category = django_filters.ChoiceFilter(choices=Category.choices, empty_label="Any category")
    status = django_filters.ChoiceFilter(choices=Status.choices, empty_label="Any status")
    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.all(), method="by_connection", empty_label="Any connection"
    )
    mapping = django_filters.ModelChoiceFilter(
        queryset=TableMapping.objects.select_related("connection"), empty_label="Any mapping"
    )
    job = django_filters.NumberFilter(field_name="job_id", label="Job", min_value=1)
    coupling = django_filters.NumberFilter(field_name="coupling_id", label="Coupling", min_value=1)
    group = django_filters.NumberFilter(field_name="group_id", label="Group", min_value=1)
    integration = django_filters.CharFilter(
        label="Integration", max_length=100, help_text="Entries sent by another integration."
    )
    created = django_filters.DateFromToRangeFilter(
        field_name="created_at",
        label="Date",
        widget=django_filters.widgets.DateRangeWidget(attrs={"type": "date"}),
    )

    class Meta:
        model = SyncError
        fields = [
            "q",
            "category",
            "status",
            "connection",
            "mapping",
            "job",
            "coupling",
            "group",
            "integration",
            "created",
        ]

    def by_connection(self, queryset, name, value: Connection):
        # A connection has a handful of mappings: naming their ids lets the planner use the
        # entries' mapping index and statistics instead of joining the mappings table.
        return queryset.filter(mapping_id__in=list(value.mappings.values_list("pk", flat=True)))

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # Message text is matched anywhere (trigram index); record ids are matched whole,
        # as people paste them from the other app.
        return queryset.filter(
            Q(message__icontains=value)
            | Q(source_record_id__iexact=value)
            | Q(destination_record_id__iexact=value)
        )


class ErrorGroupFilter(django_filters.FilterSet):
    STATUSES = [*Status.choices, ("regressed", "Regressed")]

    status = django_filters.ChoiceFilter(
        choices=STATUSES, method="by_status", empty_label="Any status"
    )
    q = django_filters.CharFilter(
        field_name="title",
        lookup_expr="icontains",
        label="Search",
        max_length=SEARCH_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "Message", "type": "search"}),
    )
    category = django_filters.ChoiceFilter(choices=Category.choices, empty_label="Any category")
    connection = django_filters.ModelChoiceFilter(
        field_name="mapping__connection",
        queryset=Connection.objects.all(),
        empty_label="Any connection",
    )
    mapping = django_filters.ModelChoiceFilter(
        queryset=TableMapping.objects.select_related("connection"), empty_label="Any mapping"
    )

    integration = django_filters.CharFilter(label="Integration", max_length=100)

    class Meta:
        model = ErrorGroup
        fields = ["q", "status", "category", "connection", "mapping", "integration"]

    def by_status(self, queryset, name, value):
        if value == "regressed":
            return queryset.filter(status=Status.OPEN, regressed_at__isnull=False)
        return queryset.filter(status=value)
