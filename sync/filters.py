import django_filters
from django.db.models import Q

from couplings.models import Coupling

from .models import SyncJob, TableMapping


class SyncJobFilter(django_filters.FilterSet):
    mapping = django_filters.ModelChoiceFilter(
        queryset=TableMapping.objects.all(), empty_label="Any mapping"
    )
    status = django_filters.ChoiceFilter(choices=SyncJob.Status.choices, empty_label="Any status")
    trigger = django_filters.ChoiceFilter(
        choices=SyncJob.Trigger.choices, empty_label="Any trigger"
    )

    class Meta:
        model = SyncJob
        fields = ["mapping", "status", "trigger"]


class JobPageFilter(SyncJobFilter):
    """The jobs page's filters: by status as the page shows it, "Succeeded" apart from
    "Completed with failures"."""

    status = django_filters.ChoiceFilter(
        choices=SyncJob.Outcome.choices, method="by_outcome", empty_label="Any status"
    )

    def by_outcome(self, queryset, name, value: str):
        return queryset.filter(SyncJob.with_outcome(value))


class CouplingFilter(django_filters.FilterSet):
    RESULTS = [
        (Coupling.Result.SUCCESS, "Last sync succeeded"),
        (Coupling.Result.FAILURE, "Last sync failed"),
        (Coupling.Result.SKIPPED, "Skipped by the last job"),
    ]

    mapping = django_filters.ModelChoiceFilter(
        queryset=TableMapping.objects.all(), empty_label="Any mapping"
    )
    result = django_filters.ChoiceFilter(
        choices=RESULTS, method="by_result", empty_label="Any result", label="Last result"
    )
    skipped = django_filters.BooleanFilter(field_name="is_skipped", label="Skipped")
    record = django_filters.CharFilter(method="by_record", label="Record id", max_length=100)
    job = django_filters.NumberFilter(method="by_job", label="Job", min_value=1)

    class Meta:
        model = Coupling
        fields = ["mapping", "result", "skipped", "record", "job"]

    def by_result(self, queryset, name, value: str):
        return queryset.filter(
            Q(last_result_to_destination=value) | Q(last_result_from_destination=value)
        )

    def by_record(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(source_record_id=value) | Q(destination_record_id=value))

    def by_job(self, queryset, name, value):
        """The couplings the job synchronized, failed or skipped."""
        return queryset.filter(
            Q(last_job_to_destination=value)
            | Q(last_job_from_destination=value)
            | Q(last_failed_job=value)
        )
