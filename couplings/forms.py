"""Forms of the Couple page: a manual couple, and the criteria of a coupling by match."""

from django import forms
from django.core.validators import RegexValidator

from sync.models import TableMapping

from .services import SIDES, Criterion, criteria_choices

MAX_RECORDS = 500
RECORD_ID_MAX_LENGTH = 100
printable = RegexValidator(
    r"^[^\x00-\x1f\x7f]+$", "A record id cannot hold control characters or line breaks."
)
SIDE_CHOICES = [("source", "Source records"), ("destination", "Destination records")]


def record_id_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label, max_length=RECORD_ID_MAX_LENGTH, strip=True, validators=[printable]
    )


class ManualCoupleForm(forms.Form):
    source_record_id = record_id_field("Source record id")
    destination_record_id = record_id_field("Destination record id")
    synchronize_after = forms.BooleanField(
        label="Synchronize after coupling", required=False, initial=True
    )


class MatchForm(forms.Form):
    side = forms.ChoiceField(label="Couple these", choices=SIDE_CHOICES, initial="source")
    record_ids = forms.CharField(
        label="Record ids",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=MAX_RECORDS * (RECORD_ID_MAX_LENGTH + 2),
        help_text=f"One per line (at most {MAX_RECORDS}).",
        error_messages={"required": "Enter at least one record id."},
    )
    create_if_no_match = forms.BooleanField(
        label="Create a new record when nothing matches", required=False
    )
    synchronize_after = forms.BooleanField(label="Synchronize after coupling", required=False)

    def __init__(self, mapping: TableMapping, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mapping = mapping
        self.pairs = criteria_choices(mapping)
        for n, (source, destination) in enumerate(self.pairs):
            self.fields[f"match_{n}"] = forms.BooleanField(
                label=f"Match {source} with {destination}", required=False
            )
            self.fields[f"priority_{n}"] = forms.IntegerField(
                label=f"Priority of {source}",
                min_value=1,
                max_value=99,
                initial=n + 1,
                required=False,
            )
            self.fields[f"case_{n}"] = forms.BooleanField(
                label=f"Case-sensitive {source}", required=False, initial=True
            )

    def clean_record_ids(self) -> list[str]:
        ids = list(
            dict.fromkeys(
                line.strip()
                for line in self.cleaned_data["record_ids"].splitlines()
                if line.strip()
            )
        )
        if not ids:
            raise forms.ValidationError("Enter at least one record id.")
        if len(ids) > MAX_RECORDS:
            raise forms.ValidationError(f"Enter at most {MAX_RECORDS} record ids.")
        for record_id in ids:
            if len(record_id) > RECORD_ID_MAX_LENGTH:
                raise forms.ValidationError(
                    f"A record id has at most {RECORD_ID_MAX_LENGTH} characters."
                )
            printable(record_id)
        return ids

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        for n, (source, _) in enumerate(self.pairs):
            chosen = cleaned.get(f"match_{n}")
            if (
                chosen
                and cleaned.get(f"priority_{n}") is None
                and f"priority_{n}" not in self.errors
            ):
                self.add_error(f"priority_{n}", f"Give {source} a priority from 1 to 99.")
        return cleaned

    @property
    def rows(self):
        """One row per pair of fields: the checkbox, the priority and the case toggle."""
        return [
            {
                "source": source,
                "destination": destination,
                "match": self[f"match_{n}"],
                "priority": self[f"priority_{n}"],
                "case": self[f"case_{n}"],
            }
            for n, (source, destination) in enumerate(self.pairs)
        ]

    def criteria(self) -> list[Criterion]:
        data = self.cleaned_data
        return sorted(
            (
                Criterion(source, destination, data[f"priority_{n}"], bool(data[f"case_{n}"]))
                for n, (source, destination) in enumerate(self.pairs)
                if data.get(f"match_{n}")
            ),
            key=lambda c: c.priority,
        )


__all__ = ["SIDES", "ManualCoupleForm", "MatchForm"]
