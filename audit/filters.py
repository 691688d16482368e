from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.utils import timezone

from .models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(
        choices=AuditEvent.Action.choices, empty_label="Any action"
    )
    user = django_filters.CharFilter(
        field_name="actor_label",
        lookup_expr="iexact",
        label="User",
        help_text='A user name, or "system".',
        max_length=150,
    )
    since = django_filters.DateFilter(
        method="from_day",
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        method="until_day",
        label="Until",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    # Whole days in the console's time zone, as bounds on the time itself (so the index on it
    # serves the filter).
    def from_day(self, queryset, name, value):
        return queryset.filter(at__gte=_start_of(value))

    def until_day(self, queryset, name, value):
        return queryset.filter(at__lt=_start_of(value + timedelta(days=1)))

    class Meta:
        model = AuditEvent
        fields = ["action", "user", "since", "until"]


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
