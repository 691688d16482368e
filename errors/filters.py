"""The filters of the errors list (query parameters: category, status, mapping, connection,
job, coupling, group, q, assigned, created_after, created_before) and of the problems list,
with its order (sort)."""

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from sync.models import Connection, TableMapping

from .models import Category, ErrorGroup, Status, SyncError

SEARCH_MAX_LENGTH = 200
ASSIGNED = [("me", "Assigned to me"), ("nobody", "Unassigned")]
# The problems list's orders, the first the default: the field each is fetched by.
SORTS = {"severity": ("Severity", "severity"), "recent": ("Most recent", "last_seen")}


def owned_by(user) -> Q:
    """Problems assigned to this person or to one of their roles."""
    if user is None or not user.is_authenticated:
        return Q(pk__in=[])
    # The roles named by id: "user OR one of these roles" is an OR of two index lookups,
    # where a subquery would have the planner read every problem.
    roles = list(user.groups.values_list("pk", flat=True))
    return Q(assigned_user=user) | Q(assigned_group_id__in=roles)


UNASSIGNED = Q(assigned_user__isnull=True, assigned_group__isnull=True)


def sort_field(sort: str | None) -> str:
    """The field a problems page is ordered and fetched by (highest first)."""
    return SORTS.get(sort or "", SORTS["severity"])[1]


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
    assigned = django_filters.ChoiceFilter(
        choices=ASSIGNED,
        method="by_owner",
        empty_label="Anyone's",
        label="Owner",
        help_text="Entries of problems assigned to you (or your role), or to nobody.",
    )
    # The same as assigned=me for a named person: what a bulk action keeps of "me", as the
    # worker that runs it has no request to ask who "me" is.
    assignee = django_filters.NumberFilter(
        method="by_assignee",
        label="Assignee",
        min_value=1,
        help_text="Entries of problems assigned to this person (by id) or to their role.",
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
            "assigned",
            "assignee",
            "created",
        ]

    def by_connection(self, queryset, name, value: Connection):
        # A connection has a handful of mappings: naming their ids lets the planner use the
        # entries' mapping index and statistics instead of joining the mappings table.
        return queryset.filter(mapping_id__in=list(value.mappings.values_list("pk", flat=True)))

    def by_owner(self, queryset, name, value):
        # The problems are few beside the entries: naming their ids lets the planner use the
        # entries' problem index, as by_connection does with the mapping index.
        if value == "nobody":
            taken = ErrorGroup.objects.exclude(UNASSIGNED).values_list("pk", flat=True)
            return queryset.exclude(group_id__in=list(taken))
        owner = getattr(self.request, "user", None)
        mine = ErrorGroup.objects.filter(owned_by(owner)).values_list("pk", flat=True)
        return queryset.filter(group_id__in=list(mine))

    def by_assignee(self, queryset, name, value):
        if value != int(value):  # an id is a whole number: 1.5 names nobody
            return queryset.none()
        owner = get_user_model().objects.filter(pk=int(value)).first()
        mine = ErrorGroup.objects.filter(owned_by(owner)).values_list("pk", flat=True)
        return queryset.filter(group_id__in=list(mine))

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
    assigned = django_filters.ChoiceFilter(
        choices=ASSIGNED,
        method="by_owner",
        empty_label="Anyone's",
        label="Owner",
        help_text="Problems assigned to you (or your role), or to nobody.",
    )
    # Read by the list itself (the order it fetches pages by), not a filter of rows.
    sort = django_filters.ChoiceFilter(
        choices=[(key, label) for key, (label, _) in SORTS.items()],
        method="keep_rows",
        empty_label=None,
        label="Sort",
        help_text="severity (the default: blocking problems, then by records, then by recency) "
        "or recent (most recently seen first).",
    )

    class Meta:
        model = ErrorGroup
        fields = ["q", "status", "category", "connection", "mapping", "integration", "assigned"]

    def by_status(self, queryset, name, value):
        if value == "regressed":
            return queryset.filter(status=Status.OPEN, regressed_at__isnull=False)
        return queryset.filter(status=value)

    def by_owner(self, queryset, name, value):
        if value == "nobody":
            return queryset.filter(UNASSIGNED)
        return queryset.filter(owned_by(getattr(self.request, "user", None)))

    def keep_rows(self, queryset, name, value):
        return queryset
