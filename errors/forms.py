"""Forms of the triage actions: everything a person posts is checked here first."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from .models import Status
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
        data = super().clean()
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
