"""The API's filters: the console's, read as the OpenAPI description gives them. A parameter
that is sent has a value the description allows, or the request is refused (400); an empty
value is not taken for "any", as a console form sends it. Ids are whole numbers from 1, and
an id that names nothing matches nothing, as it does for a job or a group; the description
of every parameter is made here too (`describe`), from the same rules."""

from dataclasses import dataclass
from datetime import date

import django_filters
from django import forms
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers

from audit.filters import AuditEventFilter
from errors.filters import ErrorGroupFilter, SyncErrorFilter
from sync.filters import CouplingFilter, SyncJobFilter
from sync.models import Connection

from .fields import DAY, MAX_ID, NUL, char_class

TEXT_PATTERN = f"^{char_class(NUL, negated=True)}*$"


def is_id(value: str) -> bool:
    return value.isascii() and value.isdecimal() and 1 <= int(value) <= MAX_ID


class IdField(forms.Field):
    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not is_id(value):
            raise forms.ValidationError(f"A whole number from 1 to {MAX_ID}.")
        return int(value)


class IdFilter(django_filters.Filter):
    """An object by its id; an id that names nothing matches nothing."""

    field_class = IdField


@dataclass(frozen=True)
class Parameter:
    name: str
    schema: dict
    description: str
    # How a value is checked before the filter's own form reads it (see CHECKS).
    check: str


def _choices(f: django_filters.Filter) -> list[str]:
    choices = f.extra.get("choices", [])
    if callable(choices):
        choices = choices()
    return [str(value) for value, _ in choices]


def parameters_of(filterset_class) -> list[Parameter]:
    parameters = []
    for name, f in filterset_class.base_filters.items():
        text = str(f.extra.get("help_text") or f.label or "")
        if isinstance(f, IdFilter):
            schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
            parameters.append(Parameter(name, schema, text, "id"))
        elif isinstance(f, django_filters.ChoiceFilter):
            schema = {"type": "string", "enum": _choices(f)}
            parameters.append(Parameter(name, schema, text, "choice"))
        elif isinstance(f, django_filters.BooleanFilter):
            parameters.append(Parameter(name, {"type": "boolean"}, text, "boolean"))
        elif isinstance(f, django_filters.DateFromToRangeFilter):
            for suffix, bound in (("after", "From"), ("before", "Until")):
                schema = {"type": "string", "format": "date"}
                description = f"{bound} this day (YYYY-MM-DD, included)."
                parameters.append(Parameter(f"{name}_{suffix}", schema, description, "date"))
        elif isinstance(f, django_filters.DateFilter):
            schema = {"type": "string", "format": "date"}
            parameters.append(Parameter(name, schema, text or "A day (YYYY-MM-DD).", "date"))
        elif isinstance(f, django_filters.CharFilter):
            schema = {"type": "string", "pattern": TEXT_PATTERN}
            if f.extra.get("max_length"):
                schema["maxLength"] = f.extra["max_length"]
            parameters.append(Parameter(name, schema, text, "text"))
        else:  # pragma: no cover - a filter of a kind the API does not describe yet
            raise TypeError(f"{filterset_class.__name__}.{name}: {type(f).__name__}")
    return parameters


def _text_fits(value: str, schema: dict) -> bool:
    # The filters strip the text they search for; its length is what was sent.
    return NUL not in value and len(value) <= schema.get("maxLength", len(value))


# The checks of the values sent, before the filters' forms read them (an empty value is
# "any" to a form, and a form reads "1.0" as an id or "2024-1-5" as a day).
CHECKS = {
    "id": (lambda value, schema: is_id(value), "A whole number from 1."),
    "choice": (lambda value, schema: bool(value), "One of the values, or no parameter."),
    "boolean": (lambda value, schema: value in ("true", "false"), "true or false."),
    "date": (lambda value, schema: bool(DAY.fullmatch(value)), "A day, YYYY-MM-DD."),
    "text": (_text_fits, "Text without NUL characters, of the length the API takes."),
}


def check_parameters(filterset_class, query: QueryDict) -> dict[str, list[str]]:
    """What is wrong with the parameters sent, by parameter, before the filters read them."""
    problems = {}
    for parameter in parameters_of(filterset_class):
        if parameter.name not in query:
            continue
        test, message = CHECKS[parameter.check]
        if not test(query[parameter.name], parameter.schema):
            problems[parameter.name] = [message]
    return problems


class ApiFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            problems = check_parameters(filterset_class, request.query_params)
            if problems:
                raise serializers.ValidationError(problems)
        return super().filter_queryset(request, queryset, view)


class ErrorFilter(SyncErrorFilter):
    connection = IdFilter(method="by_connection_id", label="Connection")
    mapping = IdFilter(field_name="mapping_id", label="Table mapping")
    job = IdFilter(field_name="job_id", label="Job")
    attempted_in = IdFilter(
        field_name="last_attempt_job_id",
        label="Entries of earlier jobs whose latest attempt, counted on them, was in this job.",
    )
    coupling = IdFilter(field_name="coupling_id", label="Coupling")
    group = IdFilter(field_name="group_id", label="Problem")
    assignee = IdFilter(
        method="by_assignee",
        label="Entries of problems assigned to this person (by id) or to their role.",
    )

    def by_connection_id(self, queryset, name, value: int):
        return self.by_connection(queryset, name, Connection(pk=value))


class ProblemFilter(ErrorGroupFilter):
    connection = IdFilter(field_name="mapping__connection_id", label="Connection")
    mapping = IdFilter(field_name="mapping_id", label="Table mapping")


class JobFilter(SyncJobFilter):
    mapping = IdFilter(field_name="mapping_id", label="Table mapping")


class ApiCouplingFilter(CouplingFilter):
    mapping = IdFilter(field_name="mapping_id", label="Table mapping")
    job = IdFilter(method="by_job", label="Job")


class AuditFilter(AuditEventFilter):
    def until_day(self, queryset, name, value):
        # The last day there is has no day after it to end before.
        return queryset if value == date.max else super().until_day(queryset, name, value)
