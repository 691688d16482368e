"""The lag probe's chart on the mapping's page, drawn on the server as inline SVG (as the
overview's chart is): each sample of the last day as a point at its lag, late ones as
crosses, the limit as a dashed line, with a title and a description for those who do not see
it. Only numbers go in unescaped; every text goes through format_html."""

from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from .models import LagSample
from .probes import WINDOW, LagSummary, spoken

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 12, 24
HOURS_LABELLED = 6


def _nice_top(peak: float) -> float:
    for step in (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400):
        if peak <= step:
            return float(step)
    return float(peak)


def svg(summary: LagSummary, now: datetime) -> SafeString:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    start = now - WINDOW
    limit = summary.probe.limit_seconds
    lags = [s.lag_seconds or 0 for s in summary.samples]
    top = _nice_top(max([*lags, limit * 1.2, 1.0]))

    def x(at: datetime) -> float:
        return LEFT + plot_w * max(0.0, min(1.0, (at - start) / WINDOW))

    def y(seconds: float) -> float:
        return TOP + plot_h * (1 - min(seconds, top) / top)

    points, crosses = [], []
    for sample in summary.samples:
        if sample.lag_seconds is None:
            continue
        px, py = round(x(sample.written_at), 1), round(y(sample.lag_seconds), 1)
        if sample.state == LagSample.State.LATE:
            crosses.append((px - 4, py - 4, px + 4, py + 4, px - 4, py + 4, px + 4, py - 4))
        else:
            points.append((px, py))
    ticks = [(round(y(v), 1), spoken(v)) for v in (0, top / 2, top)]
    hours = [
        (round(LEFT + plot_w * i / 4, 1), f"−{24 - i * HOURS_LABELLED} h" if i < 4 else "now")
        for i in range(5)
    ]
    title = f"Lag of {summary.probe.mapping.name} over the last 24 hours"
    median, p95 = summary.median, summary.p95
    description = (
        f"{len(summary.samples)} markers; median lag {spoken(median)}, 95th percentile "
        f"{spoken(p95)}; {summary.late} late (limit {spoken(limit)})."
        if summary.samples
        else "No markers in the last 24 hours."
    )
    parts = [
        format_html(
            '<svg class="lag-chart" viewBox="0 0 {} {}" role="img" '
            'aria-labelledby="lag-chart-title lag-chart-desc">'
            '<title id="lag-chart-title">{}</title><desc id="lag-chart-desc">{}</desc>',
            WIDTH,
            HEIGHT,
            title,
            description,
        ),
        format_html_join(
            "",
            '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="axis-text" x="{}" y="{}" text-anchor="end">{}</text>',
            ((LEFT, WIDTH - RIGHT, ty, ty, LEFT - 4, ty + 4, label) for ty, label in ticks),
        ),
        format_html_join(
            "",
            '<text class="axis-text" x="{}" y="{}" text-anchor="middle">{}</text>',
            ((hx, HEIGHT - 6, label) for hx, label in hours),
        ),
        format_html(
            '<line class="limit" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="limit-text" x="{}" y="{}" text-anchor="end">limit {}</text>',
            LEFT,
            WIDTH - RIGHT,
            round(y(limit), 1),
            round(y(limit), 1),
            WIDTH - RIGHT - 2,
            round(y(limit), 1) - 3,
            spoken(limit),
        ),
        format_html_join("", '<circle class="sample" cx="{}" cy="{}" r="3"/>', points),
        format_html_join(
            "",
            '<path class="late" d="M{} {} L{} {} M{} {} L{} {}"/>',
            crosses,
        ),
        mark_safe("</svg>"),  # noqa: S308 - a constant
    ]
    return mark_safe("".join(parts))  # noqa: S308 - each part built by format_html
