"""What every page draws the same way: times with their zone, and the fields of a filter form
with what is wrong with them.

{% load console %}
{{ job.started_at|moment }}           2025-03-04 14:05 CET (the person's own zone)
{{ job.started_at|moment:"seconds" }} 2025-03-04 14:05:09 CET
{% filter_field form.mapping %}       its label, its box, and what is wrong with the value
{% filter_errors form %}              every wrong value, named by its field's label
"""

from datetime import datetime

from django import forms, template
from django.core.exceptions import ValidationError
from django.forms import BoundField
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

# A no-break space before the zone: a narrow cell may break a time after its day, never
# between the time and its zone.
MINUTE = "Y-m-d H:i\u00a0T"
SECOND = "Y-m-d H:i:s\u00a0T"
DAY_FORMAT = "enter a date as YYYY-MM-DD"


@register.filter
def moment(value: datetime | None, precision: str = "") -> str:
    """A time in the active zone (the person's, see syncconsole.timezones), with the zone's
    abbreviation, so that nobody takes it for another zone's; "" for no time, as `date`."""
    if not value:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return format_date(value, SECOND if precision == "seconds" else MINUTE)


def error_id(field: BoundField) -> str:
    return f"{field.auto_id}-error"


def sentence(label: str, message: str) -> str:
    """ "Created from: enter a date as YYYY-MM-DD" from the label and the field's message."""
    if len(message) > 1 and message[0].isupper() and message[1].islower():
        message = message[0].lower() + message[1:]
    return f"{label}: {message}"


def messages_of(field: BoundField, errors: list[ValidationError]) -> str:
    """What is wrong with a field's value; a day that cannot be read says how to write one."""
    if isinstance(field.field, forms.DateField):
        return " ".join(DAY_FORMAT if e.code == "invalid" else " ".join(e.messages) for e in errors)
    return " ".join(message for e in errors for message in e.messages)


@register.simple_tag
def filter_errors(form) -> SafeString | str:
    """What is wrong with the values of a filter form, each named as its field is labelled;
    the form's fields point at their message (filter_field)."""
    if not form.errors:
        return ""
    errors = form.errors.as_data()
    lines = [
        (error_id(field), sentence(str(field.label), messages_of(field, errors[field.name])))
        for field in form
        if field.name in errors
    ]
    lines += [("", str(message)) for message in form.non_field_errors()]
    return format_html(
        '<div class="form-errors" role="alert" id="filter-errors">'
        "<p><strong>The filters were not applied.</strong></p><ul>{}</ul></div>",
        format_html_join("", '<li id="{}">{}</li>', lines),
    )


@register.simple_tag
def filter_field(field: BoundField) -> SafeString:
    """A filter's label and box. A value that is not valid stays in its box as it was typed
    (a date box shows it as text: a browser empties a date box it cannot read), marked
    invalid and described by its message."""
    attrs: dict[str, str | bool] = {}
    widget = field.field.widget
    if field.errors:
        attrs = {"aria-invalid": "true", "aria-describedby": error_id(field)}
        if getattr(widget, "input_type", "") == "date":
            attrs["placeholder"] = "YYYY-MM-DD"
            widget = type(widget)(attrs={**widget.attrs, "type": "text"})
    box = field.as_widget(widget=widget, attrs=attrs)
    return format_html('<label for="{}">{}</label>{}', field.id_for_label, field.label, box)
