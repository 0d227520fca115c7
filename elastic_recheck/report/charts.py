"""Trend charts as inline SVG, generated in Python.

No JavaScript library is involved, so pages work offline and from
``file://``. Every bucket that holds at least one build becomes one
``<g class="bar">`` (with one ``<rect>`` per build status, stacked), so a test
can count bars against the backend's histogram. Every text that comes from
the store (status names) is escaped; CSS classes are chosen from a fixed set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from elastic_recheck.search import Bucket
from elastic_recheck.stats import DAY, HOUR, floor_time, status_labels, to_ms

#: build_status -> CSS class (anything else is "st-other").
STATUS_CLASS = {
    "FAILURE": "st-failure",
    "SUCCESS": "st-success",
    "POST_FAILURE": "st-post-failure",
    "TIMED_OUT": "st-timeout",
}


@dataclass(frozen=True)
class ChartSize:
    width: int = 720
    height: int = 160
    left: int = 34
    bottom: int = 18
    top: int = 6
    right: int = 6


SMALL = ChartSize(width=360, height=64, left=26, bottom=14, top=4, right=2)
LARGE = ChartSize()


def status_class(status: str) -> str:
    return STATUS_CLASS.get(status, "st-other")


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def bars_in_window(buckets: Sequence[Bucket], start: datetime, end: datetime) -> list[Bucket]:
    """The buckets a chart draws: those with builds, overlapping ``[start, end)``."""
    first = floor_time(start, HOUR)
    return [b for b in buckets if b.total > 0 and first <= b.start < end]


def trend_svg(
    buckets: Sequence[Bucket],
    start: datetime,
    end: datetime,
    *,
    interval: timedelta = HOUR,
    size: ChartSize = LARGE,
    label: str = "",
    compact: bool = False,
) -> Markup:
    """A bar chart of distinct builds per bucket, stacked by build status.

    ``compact`` draws one plain rect per bucket (red when it holds a failure)
    without per-bar tooltips, for pages with hundreds of charts.
    """
    first = floor_time(start, interval)
    span_ms = max(1, to_ms(end) - to_ms(first))
    plot_w = size.width - size.left - size.right
    plot_h = size.height - size.top - size.bottom
    bars = bars_in_window(buckets, start, end)
    ymax = max((b.total for b in bars), default=0)
    scale = plot_h / ymax if ymax else 0.0
    bar_w = max(1.0, plot_w * (interval / timedelta(milliseconds=span_ms)) - 0.5)
    base_y = size.top + plot_h

    def x_of(t: datetime) -> float:
        return size.left + plot_w * (to_ms(t) - to_ms(first)) / span_ms

    title = label or "distinct builds per hour"
    parts: list[str] = [
        (
            f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'width="{size.width}" height="{size.height}" viewBox="0 0 {size.width} {size.height}" '
            f'data-bars="{len(bars)}" data-ymax="{ymax}" aria-label="{escape(title)}">'
        )
    ]
    parts.append(f"<title>{escape(title)}</title>")
    # Axes and day grid.
    parts.append(
        f'<line class="axis" x1="{size.left}" y1="{base_y}" x2="{size.width - size.right}" y2="{base_y}"/>'
    )
    parts.append(f'<line class="axis" x1="{size.left}" y1="{size.top}" x2="{size.left}" y2="{base_y}"/>')
    parts.append(
        f'<text class="ylabel" x="{size.left - 3}" y="{size.top + 8}" text-anchor="end">{ymax}</text>'
    )
    day = floor_time(first, DAY)
    if day < first:
        day += DAY
    show_labels = size.width >= 500
    while day < end:
        x = _fmt(x_of(day))
        parts.append(f'<line class="grid" x1="{x}" y1="{size.top}" x2="{x}" y2="{base_y}"/>')
        if show_labels:
            parts.append(
                f'<text class="xlabel" x="{x}" y="{size.height - 4}" text-anchor="middle">'
                f"{day:%m-%d}</text>"
            )
        day += DAY
    # Bars: one element of class "bar" per bucket with data.
    order = status_labels(bars)
    for b in bars:
        x = _fmt(x_of(b.start))
        if compact:
            # One rect per bucket (index pages hold hundreds of charts).
            h = max(0.5, b.total * scale)
            cls = "st-failure" if b.counts.get("FAILURE") else status_class(order[0] if order else "")
            parts.append(
                f'<rect class="bar {cls}" x="{x}" y="{_fmt(base_y - h)}" width="{_fmt(bar_w)}" height="{_fmt(h)}"/>'
            )
            continue
        detail = ", ".join(f"{s} {b.counts[s]}" for s in order if b.counts.get(s))
        parts.append(
            f'<g class="bar" data-t="{to_ms(b.start)}" data-n="{b.total}">'
            f"<title>{b.start:%Y-%m-%d %H:%M} UTC: {escape(detail)}</title>"
        )
        y = float(base_y)
        for s in order:
            n = b.counts.get(s, 0)
            if not n:
                continue
            h = max(0.5, n * scale)
            y -= h
            parts.append(
                f'<rect class="{status_class(s)}" x="{x}" y="{_fmt(y)}" width="{_fmt(bar_w)}" height="{_fmt(h)}"/>'
            )
        parts.append("</g>")
    if not bars:
        parts.append(
            f'<text class="empty" x="{size.left + plot_w / 2:.0f}" y="{size.top + plot_h / 2 + 4:.0f}" '
            f'text-anchor="middle">no hits in this window</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
