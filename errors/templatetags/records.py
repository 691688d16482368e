"""The link to a record in its app, as lists show it on every row (a tag rather than an
included template: an include per cell costs more than the rest of a row)."""

from django import template
from django.template.defaultfilters import truncatechars
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from errors.links import safe_link

register = template.Library()


@register.filter
def http_link(url) -> str:
    """The address when it is an absolute http(s) one, else nothing: whatever a page links to
    may have come from another system or an old row, so it is checked where it is drawn."""
    return safe_link(url or "") or ""


@register.simple_tag
def record_link(link, label, app="", entity="", record_id="") -> str:
    """A link when `link` is a safe http(s) address, else the record id, else a dash."""
    link = safe_link(link or "")
    if link:
        return format_html(
            '<a class="record-link" href="{}" target="_blank" rel="noopener noreferrer" '
            'title="{} · {} {}">{}</a>',
            link,
            app,
            entity,
            record_id,
            label,
        )
    if record_id:
        return format_html(
            '<span class="muted" title="{} · {}">{}</span>',
            app,
            entity,
            truncatechars(record_id, 18),
        )
    return mark_safe('<span class="muted">—</span>')  # noqa: S308 (a constant)


def entry_record_html(record) -> str:
    """One of an entry's records (an EntryRecord) as a list shows it: a link to it in its app
    that says which app and which record, the same words without a link when it is known to
    be gone or its address is not an http(s) one, or its app and table when the entry names
    no record on that side."""
    if record.gone:
        return format_html(
            '<span class="record-gone" title="Deleted in {}: {}">{} <span class="badge gone">'
            "deleted</span></span>",
            record.app or "its app",
            record.title,
            record.label,
        )
    link = record.link
    if link:
        return format_html(
            '<a class="record-link" href="{}" target="_blank" rel="noopener noreferrer" '
            'title="{}">{}</a>',
            link,
            record.title,
            record.label,
        )
    if record.record_id:
        return format_html('<span title="{}">{}</span>', record.title, record.label)
    if record.label:
        return format_html(
            '<span class="muted" title="No record of {} is named here">{} (no record)</span>',
            record.label,
            record.label,
        )
    return mark_safe('<span class="muted">—</span>')  # noqa: S308 (a constant)


@register.simple_tag
def entry_record(record) -> str:
    return entry_record_html(record)
