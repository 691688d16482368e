"""Forms of the triage actions: everything a person posts is checked here first."""

from datetime import timedelta
from typing import cast

from django import forms
from django.utils import timezone

from sync.edits import MAX_TEXT_LENGTH, EditableField
from sync.models import Connection, TableMapping

from .models import AlertSubscription, Status
from .services import STATUS_NOTE_MAX_LENGTH

SNOOZE_PERIODS = {
    "1h": ("1 hour", timedelta(hours=1)),
    "1d": ("1 day", timedelta(days=1)),
    "7d": ("1 week", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
}
MAX_SNOOZE = timedelta(days=365)
MAX_MORE_OCCURRENCES = 1_000_000


class ProblemStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)
    note = forms.CharField(max_length=STATUS_NOTE_MAX_LENGTH, required=False, strip=True)
    snooze_for = forms.ChoiceField(
        choices=[("", "—")] + [(key, label) for key, (label, _) in SNOOZE_PERIODS.items()],
        required=False,
    )
    snooze_until = forms.DateTimeField(
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )
    more_occurrences = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_MORE_OCCURRENCES
    )

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if data.get("status") != Status.SNOOZED:
            return data
        now = timezone.now()
        given = [
            name for name in ("snooze_for", "snooze_until", "more_occurrences") if data.get(name)
        ]
        if len(given) != 1:
            raise forms.ValidationError(
                "Snooze for a period, until a date, or until a number of new occurrences: "
                "choose exactly one."
            )
        if data.get("snooze_for"):
            data["snooze_until"] = now + SNOOZE_PERIODS[data["snooze_for"]][1]
        until = data.get("snooze_until")
        if until is not None:
            if until <= now:
                self.add_error("snooze_until", "The snooze must end in the future.")
            elif until > now + MAX_SNOOZE:
                self.add_error("snooze_until", "A snooze lasts at most a year.")
        return data

    def error_text(self) -> str:
        return " ".join(
            f"{'' if field == '__all__' else self.fields[field].label or field}: {message}".lstrip(
                ": "
            )
            for field, messages in self.errors.items()
            for message in messages
        )


class EntryEditForm(forms.Form):
    """Edit and retry: one input per field of the refused record that may be edited,
    prefilled with the value the retry would send. The values are checked against the
    mapping's fields by the service (triage.edits); the form only gathers what changed."""

    PREFIX = "value_"

    def __init__(self, fields: list[EditableField], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.editable = fields
        for item in fields:
            self.fields[self.PREFIX + item.name] = forms.CharField(
                label=item.name,
                required=False,
                strip=False,
                max_length=MAX_TEXT_LENGTH,
                initial=self.shown(item.sent),
                help_text=item.kind_label,
            )

    @staticmethod
    def shown(value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def rows(self):
        """(field, bound input) in the mapping's order, for the template."""
        return [(item, self[self.PREFIX + item.name]) for item in self.editable]

    def changed_values(self) -> dict[str, str]:
        """The values that differ from the ones shown: what the person edited."""
        return {
            item.name: self.cleaned_data[self.PREFIX + item.name]
            for item in self.editable
            if self.cleaned_data[self.PREFIX + item.name] != self.shown(item.sent)
        }

    def add_field_errors(self, problems: dict[str, str]) -> None:
        for name, message in problems.items():
            key = self.PREFIX + name
            self.add_error(key if key in self.fields else None, message)


def scope_choices() -> list:
    """The choices of a "Where" field: every connection, one connection or one mapping."""
    connections = Connection.objects.order_by("name")
    mappings = TableMapping.objects.select_related("connection").order_by(
        "connection__name", "name"
    )
    return [
        ("", "Every connection"),
        ("Connection", [(f"connection:{c.pk}", c.name) for c in connections]),
        (
            "Table mapping",
            [(f"mapping:{m.pk}", f"{m.connection.name} · {m.name}") for m in mappings],
        ),
    ]


def scope_of(value: str | None) -> tuple[int | None, int | None]:
    """(connection id, mapping id) of a "Where" field's chosen value."""
    kind, _, pk = (value or "").partition(":")
    return (int(pk) if kind == "connection" else None, int(pk) if kind == "mapping" else None)


class AlertSubscriptionForm(forms.ModelForm):
    """Which events, and where: every connection, one connection or one table mapping."""

    scope = forms.ChoiceField(required=False, label="Where")

    class Meta:
        model = AlertSubscription
        fields = ["new_problems", "regressions", "setup_errors"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.user = user
        cast(forms.ChoiceField, self.fields["scope"]).choices = scope_choices()
        if self.instance.mapping_id:
            self.initial["scope"] = f"mapping:{self.instance.mapping_id}"
        elif self.instance.connection_id:
            self.initial["scope"] = f"connection:{self.instance.connection_id}"

    def clean(self):
        super().clean()
        data = self.cleaned_data
        self.instance.connection_id, self.instance.mapping_id = scope_of(data.get("scope"))
        duplicate = AlertSubscription.objects.filter(
            user=self.instance.user,
            connection_id=self.instance.connection_id,
            mapping_id=self.instance.mapping_id,
        ).exclude(pk=self.instance.pk)
        if duplicate.exists():
            raise forms.ValidationError(
                "You already have a subscription for this; change that one instead."
            )
        return data
