"""The filters of the errors list (query parameters: category, status, mapping, connection,
job, attempted_in, coupling, group, q, assigned, assignee, created_after, created_before) and of the
problems page, with its order (sort).

Their labels are the words the pages show, and a value that is not valid is answered in
them: "Created from: enter a date as YYYY-MM-DD". A person is offered only the categories they
may open: a Sync user never sees a setup category."""

from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from sync.models import Connection, TableMapping
from syncconsole.permissions import is_sync_admin

from .models import SETUP_CATEGORIES, Category, ErrorGroup, Status, SyncError
from .search import search as search_entries

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
    # A record logged once with a count of attempts, or a failed create tried again, fails in
    # later jobs without a new entry: its entry names the job of its latest attempt.
    attempted_in = django_filters.NumberFilter(
        field_name="last_attempt_job_id",
        label="Attempted again in job",
        min_value=1,
        help_text="Entries of earlier jobs whose latest attempt, counted on them, was in this job.",
    )
    coupling = django_filters.NumberFilter(field_name="coupling_id", label="Coupling", min_value=1)
    group = django_filters.NumberFilter(field_name="group_id", label="Problem", min_value=1)
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
            "attempted_in",
            "coupling",
            "group",
            "integration",
            "assigned",
            "assignee",
            "created_after",
            "created_before",
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

    def from_day(self, queryset, name, value: date):
        return queryset.filter(created_at__gte=start_of(value))

    def to_day(self, queryset, name, value: date):
        if value == date.max:  # the last day there is has no day after it to end before
            return queryset
        return queryset.filter(created_at__lt=start_of(value + timedelta(days=1)))

    def search(self, queryset, name, value):
        # A word of the message, or a whole record id as people paste it from the other app.
        return search_entries(queryset, value)


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
    assigned = django_filters.ChoiceFilter(
        choices=ASSIGNED,
        method="by_owner",
        empty_label="Anyone's",
        label="Owner",
        help_text="Problems assigned to you (or your role), or to nobody.",
    )
    # Problems with entries, or (on asking) those with none left: their history. A checkbox
    # is never empty, so this filter always runs.
    history = django_filters.BooleanFilter(
        method="by_history",
        widget=forms.CheckboxInput,
        label="No entries left",
        help_text="Problems whose entries were all deleted: when they were last seen, how many"
        " entries they had, how they were resolved.",
    )
    # Read by the list itself (the order it fetches pages by), not a filter of rows.
    sort = django_filters.ChoiceFilter(
        choices=[(key, label) for key, (label, _) in SORTS.items()],
        method="keep_rows",
        empty_label=None,
        label="Sort",
        help_text="severity (the default: root causes, then blocking problems, then by "
        "records, then by recency) or recent (most recently seen first).",
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

    def by_history(self, queryset, name, value):
        return queryset.filter(count=0) if value else queryset.filter(count__gt=0)

    def keep_rows(self, queryset, name, value):
        return queryset
