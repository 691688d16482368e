"""The filters of the errors list (query parameters: category, status, mapping, connection,
job, coupling, group, q, created_after, created_before) and of the problems page.

Their labels are the words the pages show, and a value that is not valid is answered in
them: "Created from: enter a date as YYYY-MM-DD". A person is offered only the categories they
may open: a Sync user never sees a setup category."""

from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from sync.models import Connection, TableMapping
from syncconsole.permissions import is_sync_admin

from .models import SETUP_CATEGORIES, Category, ErrorGroup, Status, SyncError

SEARCH_MAX_LENGTH = 200


def categories_for(user) -> list[tuple[str, str]]:
    """The categories a person may open: a Sync user's are the coupled-record ones."""
    if is_sync_admin(user):
        return list(Category.choices)
    return [(value, label) for value, label in Category.choices if value not in SETUP_CATEGORIES]


def day_filter(label: str, description: str, method: str) -> django_filters.DateFilter:
    return django_filters.DateFilter(
        method=method,
        label=label,
        help_text=description,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "placeholder": "YYYY-MM-DD"}),
    )


def start_of(day: date) -> datetime:
    """Midnight at the start of a day in the active time zone (the person's own)."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class CategoriesByRole(django_filters.FilterSet):
    """The console's pages name who looks (`viewer`): the category filter offers that person
    the categories they may open, and any other is a value that is not valid. (The API names no
    viewer: it keeps the categories its description lists, and a Sync user's setup category
    matches nothing there.)"""

    def __init__(self, *args, viewer=None, **kwargs):
        super().__init__(*args, **kwargs)
        if viewer is not None:
            self.filters["category"].extra["choices"] = categories_for(viewer)


class SyncErrorFilter(CategoriesByRole):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        max_length=SEARCH_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "Message or record id", "type": "search"}),
    )
    category = django_filters.ChoiceFilter(
        choices=Category.choices, label="Category", empty_label="Any category"
    )
    status = django_filters.ChoiceFilter(
        choices=Status.choices, label="Status", empty_label="Any status"
    )
    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.all(),
        method="by_connection",
        label="Connection",
        empty_label="Any connection",
    )
    mapping = django_filters.ModelChoiceFilter(
        queryset=TableMapping.objects.select_related("connection"),
        label="Mapping",
        empty_label="Any mapping",
    )
    job = django_filters.NumberFilter(field_name="job_id", label="Job", min_value=1)
    coupling = django_filters.NumberFilter(field_name="coupling_id", label="Coupling", min_value=1)
    group = django_filters.NumberFilter(field_name="group_id", label="Problem", min_value=1)
    integration = django_filters.CharFilter(
        label="Integration", max_length=100, help_text="Entries sent by another integration."
    )
    # Whole days in the person's time zone, as bounds on the time itself (the index on it
    # serves them); both days are included.
    created_after = day_filter("Created from", "From this day (YYYY-MM-DD, included).", "from_day")
    created_before = day_filter("Created to", "Until this day (YYYY-MM-DD, included).", "to_day")

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
            "created_after",
            "created_before",
        ]

    def by_connection(self, queryset, name, value: Connection):
        # A connection has a handful of mappings: naming their ids lets the planner use the
        # entries' mapping index and statistics instead of joining the mappings table.
        return queryset.filter(mapping_id__in=list(value.mappings.values_list("pk", flat=True)))

    def from_day(self, queryset, name, value: date):
        return queryset.filter(created_at__gte=start_of(value))

    def to_day(self, queryset, name, value: date):
        if value == date.max:  # the last day there is has no day after it to end before
            return queryset
        return queryset.filter(created_at__lt=start_of(value + timedelta(days=1)))

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


class ErrorGroupFilter(CategoriesByRole):
    STATUSES = [*Status.choices, ("regressed", "Regressed")]

    status = django_filters.ChoiceFilter(
        choices=STATUSES, method="by_status", label="Status", empty_label="Any status"
    )
    q = django_filters.CharFilter(
        field_name="title",
        lookup_expr="icontains",
        label="Search",
        max_length=SEARCH_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "Message", "type": "search"}),
    )
    category = django_filters.ChoiceFilter(
        choices=Category.choices, label="Category", empty_label="Any category"
    )
    connection = django_filters.ModelChoiceFilter(
        field_name="mapping__connection",
        queryset=Connection.objects.all(),
        label="Connection",
        empty_label="Any connection",
    )
    mapping = django_filters.ModelChoiceFilter(
        queryset=TableMapping.objects.select_related("connection"),
        label="Mapping",
        empty_label="Any mapping",
    )

    integration = django_filters.CharFilter(label="Integration", max_length=100)

    class Meta:
        model = ErrorGroup
        fields = ["q", "status", "category", "connection", "mapping", "integration"]

    def by_status(self, queryset, name, value):
        if value == "regressed":
            return queryset.filter(status=Status.OPEN, regressed_at__isnull=False)
        return queryset.filter(status=value)
