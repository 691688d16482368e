"""The small bar charts of entries per day (a problem's last 14 days, a mapping's backlog):
plain data and their drawing, below everything that computes them."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.utils.html import format_html
from django.utils.safestring import mark_safe

TREND_DAYS = 14
TREND_HEIGHT = 20
TREND_BAR_WIDTH = 5


@dataclass
class Bar:
    day: date
    count: int
    x: int
    y: int
    height: int


@dataclass
class GroupFigures:
    open: int = 0
    records: int = 0
    trend: list[Bar] = field(default_factory=list)

    @property
    def trend_width(self) -> int:
        return trend_width()

    @property
    def trend_svg(self) -> str:
        return trend_svg(
            self.trend, "Failures per day over the last 14 days (new entries and later attempts)"
        )


def trend_bars(counts: list[int], first: date) -> list[Bar]:
    """One bar per day from `first`, scaled to the highest count: what templates/_trend.html
    draws as a small inline SVG."""
    peak = max(counts, default=0) or 1
    bars = []
    for i, count in enumerate(counts):
        height = max(1, round(TREND_HEIGHT * count / peak)) if count else 0
        bars.append(
            Bar(
                first + timedelta(days=i),
                count,
                i * (TREND_BAR_WIDTH + 1),
                TREND_HEIGHT - height,
                height,
            )
        )
    return bars


def trend_svg(bars: list[Bar], label: str) -> str:
    """The same drawing as templates/_trend.html, built in one pass: a page of 50 problems
    draws 700 bars, which the template engine takes most of the page's time to render. A bar
    holds only numbers and a date, so only the label needs escaping."""
    rects = "".join(
        f'<rect x="{int(bar.x)}" y="{int(bar.y)}" width="{TREND_BAR_WIDTH}" '
        f'height="{int(bar.height)}"><title>{bar.day.isoformat()}: {int(bar.count)}</title></rect>'
        for bar in bars
    )
    return format_html(
        '<svg class="trend" width="{}" height="{}" role="img" aria-label="{}">{}</svg>',
        trend_width(len(bars)),
        TREND_HEIGHT,
        label,
        mark_safe(rects),  # noqa: S308 (numbers)
    )


def trend_width(days: int = TREND_DAYS) -> int:
    return days * (TREND_BAR_WIDTH + 1)
