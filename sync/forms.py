"""The lag probe's settings on the mapping's page."""

from django import forms

from .fields import field_pairs
from .models import (
    PROBE_INTERVAL_MINUTES,
    PROBE_LIMIT_SECONDS,
    PROBE_MARKER_LENGTH,
    ProbeDirection,
    TableMapping,
)


class LagProbeForm(forms.Form):
    direction = forms.ChoiceField(
        choices=ProbeDirection.choices,
        help_text="Which side's record the probe changes.",
    )
    record_id = forms.CharField(
        max_length=100, label="Record id", help_text="A coupled record on that side."
    )
    marker_field = forms.CharField(
        max_length=100,
        label="Marker field",
        help_text="A text field the mapping carries that way; the probe overwrites it.",
    )
    marker_length = forms.IntegerField(
        min_value=PROBE_MARKER_LENGTH[0],
        max_value=PROBE_MARKER_LENGTH[1],
        initial=30,
        label="Field length",
        help_text="The longest text the field takes on both sides.",
    )
    interval_minutes = forms.IntegerField(
        min_value=PROBE_INTERVAL_MINUTES[0],
        max_value=PROBE_INTERVAL_MINUTES[1],
        initial=5,
        label="Every (minutes)",
    )
    limit_seconds = forms.IntegerField(
        min_value=PROBE_LIMIT_SECONDS[0],
        max_value=PROBE_LIMIT_SECONDS[1],
        initial=300,
        label="Limit (seconds)",
    )
    is_enabled = forms.BooleanField(required=False, initial=True, label="Enabled")

    def __init__(self, *args, mapping: TableMapping, **kwargs):
        super().__init__(*args, **kwargs)
        carried = sorted(
            {
                p.read
                for direction in ("to_destination", "from_destination")
                for p in field_pairs(mapping.field_mappings, direction)
                if p.lookup is None and not p.has_constant
            }
        )
        if carried:
            self.fields["marker_field"].help_text += " Carried: " + ", ".join(carried) + "."
