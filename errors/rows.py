"""The rows of the entries list and of the problems list, drawn in Python.

A row through the template engine costs some thirty variable lookups, filters and two URL
reversals; fifty of them were most of a page's server time. Here each row is one
format_html with its values computed once: labels from a dict, links from a URL pattern
reversed once per page, dates formatted directly. The markup is the same as the template's.

Each cell names its column (data-label: a small screen shows a row as a card of labelled
cells), and each row carries what the list's keys need (static/js/console.js): while it is
not resolved, where "r" resolves it (data-resolve-url, the address its Resolve button posts
to); the table names the link that "o" opens.
"""

from collections.abc import Callable, Iterable
from urllib.parse import quote

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from .models import Category, ErrorGroup, Severity, Status, SyncError, audience_of
from .templatetags.records import entry_record_html

CATEGORY_LABELS = dict(Category.choices)
STATUS_LABELS = dict(Status.choices)
MESSAGE_LENGTH = 140
TITLE_LENGTH = 160
DASH = "—"


def url_of(name: str) -> Callable[[int], str]:
    """The URL of `name` for any pk, from one reversal: the pk is the pattern's only part."""
    marker = 987654321
    before, after = reverse(name, args=[marker]).split(str(marker))
    return lambda pk: f"{before}{pk}{after}"


def truncated(text: str, length: int) -> str:
    """As the truncatechars filter, without its cost for the many texts that fit."""
    return text if len(text) <= length else Truncator(text).chars(length)


def minute(moment) -> str:
    """A time to the minute with its zone's abbreviation, as the `moment` filter writes it."""
    return f"{moment:%Y-%m-%d %H:%M}\u00a0{moment:%Z}"


ENTRY_ROW = (
    '<tr class="status-{status}" data-row="{pk}"{resolve}>'
    '<td class="select"><input type="checkbox" name="ids" value="{pk}" '
    'aria-label="Select entry #{pk}"></td>'
    '<td class="when" data-label="Date/time">'
    '<time datetime="{iso}" title="{full}">{short}</time></td>'
    '<td data-label="Category"><span class="badge cat-{category}">{category_label}</span></td>'
    '<td class="message" data-label="Message"><a href="{url}">{message}</a>{attempts}</td>'
    '<td data-label="Mapping">{mapping}</td><td data-label="Job">{job}</td>'
    '<td data-label="Source">{source}</td><td data-label="Destination">{destination}</td>'
    '<td class="direction" data-label="Direction">{direction}</td>'
    '<td data-label="Status"><span class="status {status}">{status_label}</span></td>'
    "</tr>\n"
)
RESOLVE = ' data-resolve-url="{}"'
# An entry that counts the attempts of its record (a "once with a count" logging policy).
ATTEMPTS = (
    ' <span class="badge attempts" title="{} failed attempts counted on this entry">×{}</span>'
)


def resolve_attribute(status: str, url: str) -> str:
    """Where "r" resolves a row: nowhere once it is resolved."""
    return "" if status == Status.RESOLVED else format_html(RESOLVE, url)


def entry_rows(entries: Iterable[SyncError]) -> SafeString:
    """The table rows of these entries (their mapping's connection and their coupling
    selected with them): Source and Destination are the mapping's sides."""
    entry_url = url_of("errors:detail")
    status_url = url_of("errors:set_status")
    job_url = url_of("sync:job")
    rows = []
    for entry in entries:
        created = timezone.localtime(entry.created_at)
        if entry.integration:
            mapping: str = format_html(
                '<span title="Sent by another integration">{}</span>', entry.integration
            )
        else:
            mapping = entry.mapping.name if entry.mapping and entry.mapping.name else DASH
        job = (
            format_html('<a href="{}">#{}</a>', job_url(entry.job_id), entry.job_id)
            if entry.job_id
            else DASH
        )
        rows.append(
            format_html(
                ENTRY_ROW,
                pk=entry.pk,
                resolve=resolve_attribute(entry.status, status_url(entry.pk)),
                status=entry.status,
                status_label=STATUS_LABELS.get(entry.status, entry.status),
                iso=created.isoformat(),
                full=f"{created:%Y-%m-%d %H:%M:%S %Z}",
                short=minute(created),
                category=entry.category,
                category_label=CATEGORY_LABELS.get(entry.category, entry.category),
                url=entry_url(entry.pk),
                message=truncated(entry.message, MESSAGE_LENGTH),
                attempts=format_html(ATTEMPTS, entry.attempts, entry.attempts)
                if entry.attempts > 1
                else "",
                mapping=mapping,
                job=job,
                source=entry_record_html(entry.sides.source),
                destination=entry_record_html(entry.sides.destination),
                direction=entry.sides.direction or DASH,
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 (each row is built by format_html)


GROUP_ROW = (
    '<tr class="group-row status-{status}" data-group="{pk}" data-row="{pk}"{resolve}>'
    '<td class="severity" data-label="Severity" data-severity="{severity}">'
    '<span class="badge {severity_class}">{severity_label}</span> '
    '<span class="muted small severity-reason">{severity_reason}</span></td>'
    '<td class="problem-cell"><span class="badge cat-{category}">{category_label}</span> '
    '<a class="group-title" href="{url}">{title}</a> {history}{blocked}'
    '<span class="muted small">{audience}</span></td>'
    '<td class="owner" data-label="Owner">{owner}</td>'
    '<td data-label="Mapping">{mapping}</td>'
    '<td class="num" data-label="Entries" data-figure="count">{count}</td>'
    '<td class="num" data-label="Records" data-figure="records">{records}</td>'
    '<td class="num" data-label="Open" data-figure="open">{open}</td>'
    '<td class="when" data-label="First seen"><time datetime="{first_iso}">{first}</time></td>'
    '<td class="when" data-label="Last seen"><time datetime="{last_iso}">{last}</time></td>'
    '<td data-label="Last 14 days">{trend}</td>'
    '<td data-label="Status"><span class="status {status}">{status_label}</span>'
    "{snoozed}{regression}</td>"
    "</tr>\n"
)
REGRESSION = mark_safe(' <span class="badge regression">Regression</span>')
# The console's badge colours: red for what blocks a mapping, plain for records.
SEVERITY_CLASSES = {
    Severity.ROOT_CAUSE: "gone severity-root_cause",
    Severity.BLOCKING: "gone severity-blocking",
    Severity.RECORDS: "severity-records",
    Severity.SET_ASIDE: "severity-set_aside",
}
TAKE = (
    '<form method="post" action="{action}" class="inline-actions">'
    '<input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">'
    '<input type="hidden" name="next" value="{back}">'
    '<button type="submit" name="action" value="take" class="take">Assign to me</button>'
    "</form>"
)


def owner_cell(group: ErrorGroup, user, csrf_token: str, back: str, action: str) -> str:
    """Who owns the problem; for nobody, "Assign to me" (for whoever may see it: the list
    shows only those)."""
    owner = group.assignee_label
    if owner:
        mine = " (you)" if user is not None and group.assigned_user_id == user.pk else ""
        return format_html('<span class="assignee">{}{}</span>', owner, mine)
    if user is None or not csrf_token:
        return DASH
    return format_html(TAKE, action=action, csrf=csrf_token, back=back)


def history_note(group: ErrorGroup) -> str:
    """What is left of a problem whose entries were all deleted: "has this happened
    before?" still has an answer."""
    if group.count:
        return ""
    resolved = ""
    if group.status == Status.RESOLVED:
        who = group.status_changed_by.get_username() if group.status_changed_by else "the sync"
        resolved = f", resolved by {who}"
    return format_html(
        '<span class="muted small history-note">'
        "No entries left: last seen {}, {} in all{}.</span> ",
        minute(timezone.localtime(group.last_seen)),
        f"{group.seen_total:,}",
        resolved,
    )


def blocked_note(group: ErrorGroup, entries_url: str) -> str:
    """A problem blocked as a whole by another: its records wait for that one's (the link is
    made from the id on the row: no query)."""
    if not group.blocked_by_id:
        return ""
    return format_html(
        '<span class="muted small blocked-by">blocked by <a href="{}?group={}">#{}</a></span> ',
        entries_url,
        group.blocked_by_id,
        group.blocked_by_id,
    )


def group_rows(
    groups: Iterable[ErrorGroup], *, user=None, csrf_token: str = "", back: str = ""
) -> SafeString:
    """The table rows of these problems (their mapping and assignee selected with them, their
    `figures` set from grouping.figures_for). With a `user` and the page's `csrf_token`, an
    unassigned problem offers "Assign to me", which comes `back` to this page."""
    entries_url = reverse("errors:list")
    assignment_url = url_of("errors:group_assignment")
    status_url = url_of("errors:group_set_status")
    rows = []
    for group in groups:
        first_seen = timezone.localtime(group.first_seen)
        last_seen = timezone.localtime(group.last_seen)
        if group.integration:
            mapping: str = format_html(
                '<a href="?integration={}" title="Sent by another integration">{}</a>',
                quote(group.integration, safe="/"),
                group.integration,
            )
        else:
            mapping = group.mapping.name if group.mapping and group.mapping.name else DASH
        snoozed = ""
        if group.status == Status.SNOOZED:
            snoozed = format_html(
                ' <span class="muted small">{}</span>',
                f"until {minute(timezone.localtime(group.snoozed_until))}"
                if group.snoozed_until
                else f"{group.occurrences_until_awake} more to go",
            )
        level = group.severity_level
        rows.append(
            format_html(
                GROUP_ROW,
                pk=group.pk,
                severity=group.severity,
                severity_class=SEVERITY_CLASSES[level],
                severity_label=level.label,
                severity_reason=group.severity_reason,
                owner=owner_cell(group, user, csrf_token, back, assignment_url(group.pk)),
                resolve=resolve_attribute(group.status, status_url(group.pk)),
                category=group.category,
                category_label=CATEGORY_LABELS.get(group.category, group.category),
                url=f"{entries_url}?group={group.pk}",
                title=truncated(group.title, TITLE_LENGTH),
                history=history_note(group),
                blocked=blocked_note(group, entries_url),
                audience=audience_of(group.category).label,
                mapping=mapping,
                count=f"{group.count:,}",
                records=f"{group.figures.records:,}",
                open=f"{group.figures.open:,}",
                first_iso=first_seen.isoformat(),
                first=minute(first_seen),
                last_iso=last_seen.isoformat(),
                last=minute(last_seen),
                trend=group.figures.trend_svg,
                status=group.status,
                status_label=STATUS_LABELS.get(group.status, group.status),
                snoozed=snoozed,
                regression=REGRESSION if group.regressed_at and group.status == Status.OPEN else "",
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 (each row is built by format_html)
