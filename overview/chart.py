"""The overview's chart, drawn on the server as inline SVG: per day, a bar of the entries that
came and one of those resolved, on a common scale, with the days of changes marked on the same
time axis; a title and a description for those who do not see it, and the same figures as the
rows of a table.

Drawn in Python, in one pass, as the lists' rows are (errors/rows.py): through the template
engine, its sixty bars and thirty rows were most of the page's time. Only numbers and dates
are put in unescaped; every text goes through format_html."""

import math
from dataclasses import dataclass, field
from datetime import date

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from .figures import Change, Day

SLOT = 36  # the width of a day
BAR = 13
GAP = (SLOT - 2 * BAR - 1) // 2  # on each side of a day's two bars
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 18, 24  # room for the scale, the marks and the dates
PLOT_HEIGHT = 160
LABEL_EVERY = 7  # days between two dates on the axis, counted back from today
TITLE_LENGTH = 600


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    height: int
    day: date
    count: int


@dataclass(frozen=True)
class Tick:
    y: int
    value: int


@dataclass(frozen=True)
class DayLabel:
    x: int
    text: str


@dataclass(frozen=True)
class Mark:
    """The changes of one day: a line across the plot and its number above it."""

    number: int
    x: int
    day: date
    changes: list[Change]

    @property
    def title(self) -> str:
        text = f"{self.day:%Y-%m-%d}: " + "; ".join(f"{c.label}: {c.summary}" for c in self.changes)
        return Truncator(text).chars(TITLE_LENGTH)


@dataclass
class Chart:
    width: int
    height: int
    top: int
    bottom: int
    left: int
    right: int
    new: list[Bar] = field(default_factory=list)
    resolved: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    labels: list[DayLabel] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    title: str = ""
    description: str = ""

    @property
    def svg(self) -> SafeString:
        return svg(self)

    @property
    def changes(self) -> SafeString:
        return changes_list(self.marks)


local = timezone.localtime


def short(day: date) -> str:
    return f"{day:%b} {day.day}"


def scale_top(peak: int) -> int:
    """The top of the scale: the peak rounded up to a round number (1 to 6, 8 or 10 times a
    power of ten)."""
    if peak <= 1:
        return 1
    power = 10 ** math.floor(math.log10(peak))
    return next(step * power for step in (1, 2, 3, 4, 5, 6, 8, 10) if step * power >= peak)


def draw(days: list[Day], title: str) -> Chart:
    top_value = scale_top(max([d.new for d in days] + [d.resolved for d in days], default=0))
    bottom = TOP + PLOT_HEIGHT
    chart = Chart(
        width=LEFT + SLOT * len(days) + RIGHT,
        height=bottom + BOTTOM,
        top=TOP,
        bottom=bottom,
        left=LEFT,
        right=LEFT + SLOT * len(days),
        title=title,
        description=describe(days),
    )

    def bar(x: int, count: int, day: date) -> Bar:
        height = round(PLOT_HEIGHT * count / top_value)
        if count and not height:
            height = 1  # a day with a few entries on a tall scale still shows
        return Bar(x, bottom - height, height, day, count)

    for i, day in enumerate(days):
        x = LEFT + SLOT * i
        chart.new.append(bar(x + GAP, day.new, day.day))
        chart.resolved.append(bar(x + GAP + BAR + 1, day.resolved, day.day))
        if (len(days) - 1 - i) % LABEL_EVERY == 0:
            chart.labels.append(DayLabel(x + SLOT // 2, short(day.day)))
        if day.changes:
            chart.marks.append(Mark(len(chart.marks) + 1, x + SLOT // 2, day.day, day.changes))
    halves = [0, top_value // 2, top_value] if top_value % 2 == 0 else [0, top_value]
    chart.ticks = [Tick(bottom - round(PLOT_HEIGHT * v / top_value), v) for v in halves]
    return chart


def describe(days: list[Day]) -> str:
    """The chart in one paragraph, for those who do not see it."""
    if not days:
        return ""
    new, resolved = sum(d.new for d in days), sum(d.resolved for d in days)
    text = (
        f"From {short(days[0].day)} to {short(days[-1].day)}, "
        f"{new:,} entr{'y' if new == 1 else 'ies'} came and {resolved:,} "
        f"{'was' if resolved == 1 else 'were'} resolved."
    )
    busiest = max(days, key=lambda d: (d.new, d.day))
    if busiest.new:
        text += f" The most came on {short(busiest.day)}: {busiest.new:,}."
    changed = [d for d in days if d.changes]
    if changed:
        text += (
            f" {len(changed)} day{'' if len(changed) == 1 else 's'} with changes "
            f"{'is' if len(changed) == 1 else 'are'} marked."
        )
    return text


def _bars(bars: list[Bar], kind: str) -> str:
    # Numbers and dates only: nothing to escape.
    return "".join(
        f'<rect class="{kind}" x="{b.x}" y="{b.y}" width="{BAR}" height="{b.height}">'
        f"<title>{b.day:%Y-%m-%d}: {b.count:,} {kind}</title></rect>"
        for b in bars
    )


def svg(chart: Chart) -> SafeString:
    grid = "".join(
        f'<line class="grid" x1="{chart.left}" x2="{chart.right}" y1="{t.y}" y2="{t.y}"/>'
        f'<text class="axis-text" x="{chart.left - 6}" y="{t.y + 4}" text-anchor="end">'
        f"{t.value:,}</text>"
        for t in chart.ticks
    )
    labels = "".join(
        f'<text class="axis-text" x="{label.x}" y="{chart.bottom + 16}" '
        f'text-anchor="middle">{label.text}</text>'
        for label in chart.labels
    )
    marks = format_html_join(
        "",
        '<g class="mark" data-day="{}"><title>{}</title><line x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text x="{}" y="{}" text-anchor="middle">{}</text></g>',
        (
            (
                f"{m.day:%Y-%m-%d}",
                m.title,
                m.x,
                m.x,
                chart.top - 4,
                chart.bottom,
                m.x,
                chart.top - 6,
                m.number,
            )
            for m in chart.marks
        ),
    )
    return format_html(
        '<svg class="overview-chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-labelledby="chart-title chart-desc"><title id="chart-title">{title}</title>'
        '<desc id="chart-desc">{description}</desc>{grid}<g class="bars">{new}{resolved}</g>'
        "{marks}{labels}</svg>",
        w=chart.width,
        h=chart.height,
        title=chart.title,
        description=chart.description,
        grid=mark_safe(grid),  # noqa: S308 (numbers)
        new=mark_safe(_bars(chart.new, "new")),  # noqa: S308 (numbers and dates)
        resolved=mark_safe(_bars(chart.resolved, "resolved")),  # noqa: S308 (numbers and dates)
        marks=marks,
        labels=mark_safe(labels),  # noqa: S308 (dates)
    )


def table_rows(days: list[Day], changes_shown: bool) -> SafeString:
    """The chart's figures as the rows of a table: a day, its new and resolved entries and,
    for administrators, the kinds of change made that day."""
    rows = []
    for day in days:
        iso = f"{day.day:%Y-%m-%d}"
        cells = (
            f'<tr data-day="{iso}"><th scope="row"><time datetime="{iso}">{iso}</time></th>'
            f'<td class="num" data-figure="new">{day.new:,}</td>'
            f'<td class="num" data-figure="resolved">{day.resolved:,}</td>'
        )
        if changes_shown:
            kinds = ", ".join(dict.fromkeys(c.label for c in day.changes))
            cells += format_html("<td>{}</td>", kinds)
        rows.append(cells + "</tr>\n")
    return mark_safe("".join(rows))  # noqa: S308 (numbers, dates and escaped labels)


def changes_list(marks: list[Mark]) -> SafeString:
    """The marked days and their changes, numbered as on the chart, newest change first."""
    items = []
    for mark in marks:
        changes = format_html_join(
            "",
            '<li data-change="{}"><span class="badge">{}</span> {} '
            '<span class="muted small">· {}, <time datetime="{}">{}</time></span></li>',
            (
                (c.kind, c.label, c.summary, c.actor, c.at.isoformat(), f"{local(c.at):%H:%M}")
                for c in mark.changes
            ),
        )
        items.append(
            format_html(
                '<li value="{}" data-day="{}"><strong>{}</strong><ul>{}</ul></li>\n',
                mark.number,
                f"{mark.day:%Y-%m-%d}",
                f"{mark.day:%Y-%m-%d}",
                changes,
            )
        )
    return mark_safe("".join(items))  # noqa: S308 (each item built by format_html)
