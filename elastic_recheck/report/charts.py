"""Trend charts as inline SVG, generated in Python (no JavaScript).

A chart shows distinct builds per UTC day of the window (see
:func:`elastic_recheck.core.stats.day_buckets`), one slot per day and a date
under it, so the pages work offline and from ``file://``. Every day with at
least one build becomes one ``<g class="bar">`` holding a ``<title>`` (the
browser's tooltip: the date and the count per build status) and one
``<rect>`` per status, stacked; its total is written above it.

Failures and successes differ without colour: failed builds are solid and
always at the bottom of a bar, successful ones are hollow (outlined) and on
top, other statuses sit between. The palette is Okabe-Ito's
(colour-blind safe); :func:`legend` names every class a chart uses.

The width follows the page: the bars live in a nested SVG with a
``viewBox`` stretched to the chart's width, while the text is placed in
percent, so labels keep their size on a phone and on a wide screen. Every
text that comes from the store (status names) is escaped; CSS classes come
from a fixed set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from elastic_recheck.core.search_types import Bucket
from elastic_recheck.core.stats import DAY

FAILURE = "FAILURE"
SUCCESS = "SUCCESS"

#: build_status -> CSS class (anything else is "st-other").
STATUS_CLASS = {
    FAILURE: "st-failure",
    "POST_FAILURE": "st-post-failure",
    "TIMED_OUT": "st-timeout",
    SUCCESS: "st-success",
}

#: CSS class -> legend text, in stacking order (bottom first).
LEGEND = {
    "st-failure": "failed build",
    "st-post-failure": "post failure",
    "st-timeout": "timed out",
    "st-other": "other result",
    "st-success": "successful build",
}

#: build_status -> how a bar's tooltip names it (other statuses as they are).
TOOLTIP = {FAILURE: "failed", "POST_FAILURE": "post failure", "TIMED_OUT": "timed out", SUCCESS: "succeeded"}

#: Width of one day slot in the bars' own coordinates (the viewBox is stretched).
SLOT = 100
#: Gap on each side of a bar, in slot units.
GAP = 14


@dataclass(frozen=True)
class ChartSize:
    """``width`` is a CSS length (the large charts follow the page); heights are pixels."""

    width: str = "100%"
    height: int = 180
    #: Room above the bars for their totals.
    top: int = 16
    #: Room below for the dates.
    bottom: int = 18
    #: Label every day under its bar (else only the first and last day).
    every_date: bool = True


#: The bug pages' charts: as wide as the page.
LARGE = ChartSize()
#: The index sparklines.
SMALL = ChartSize(width="260", height=62, top=12, bottom=13, every_date=False)


def status_class(status: str) -> str:
    return STATUS_CLASS.get(status, "st-other")


def stack_order(statuses: Iterable[str]) -> list[str]:
    """Statuses bottom first: failures, then the other statuses (sorted), successes on top."""
    seen = set(statuses)
    middle = sorted(seen - {FAILURE, SUCCESS})
    return [s for s in (FAILURE,) if s in seen] + middle + [s for s in (SUCCESS,) if s in seen]


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def bars_in_window(days: Sequence[Bucket]) -> list[Bucket]:
    """The day buckets a chart draws as bars: those with builds."""
    return [b for b in days if b.total > 0]


def _day_title(b: Bucket, order: Sequence[str], start: datetime, end: datetime) -> str:
    part = ""
    if b.start < start:
        part = f" (from {start:%H:%M} UTC)"
    elif b.start + DAY > end:
        part = f" (until {end:%H:%M} UTC)"
    detail = ", ".join(f"{b.counts[s]} {TOOLTIP.get(s, s)}" for s in order if b.counts.get(s))
    total = f"{b.total} build{'s' if b.total != 1 else ''}"
    return f"{b.start:%a %Y-%m-%d}{part}: {total} ({detail})"


def _date_label(t: datetime, first: bool, prev: datetime | None) -> str:
    """``Nov 10`` for the first label and at a new month, else the day of the month."""
    if first or prev is None or prev.month != t.month:
        return f"{t:%b} {t.day}"
    return str(t.day)


def trend_svg(
    days: Sequence[Bucket],
    start: datetime,
    end: datetime,
    *,
    size: ChartSize = LARGE,
    label: str = "",
) -> Markup:
    """A bar chart of distinct builds per day, stacked by build status.

    ``days`` are one bucket per UTC day of ``[start, end)`` in order (empty
    days included, as :func:`~elastic_recheck.core.stats.day_buckets` returns them).
    """
    n = max(1, len(days))
    bars = bars_in_window(days)
    ymax = max((b.total for b in bars), default=0)
    plot_h = size.height - size.top - size.bottom
    order = stack_order(s for b in bars for s, c in b.counts.items() if c)
    failed = sum(b.counts.get(FAILURE, 0) for b in bars)
    total = sum(b.total for b in bars)
    title = label or "distinct builds per day"
    if days:
        summary = f"{title}: {failed} failed of {total} builds, {days[0].start:%Y-%m-%d} to {days[-1].start:%Y-%m-%d}"
    else:
        summary = title
    parts: list[str] = [
        (
            f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'width="{size.width}" height="{size.height}" '
            f'data-bars="{len(bars)}" data-days="{len(days)}" data-ymax="{ymax}" aria-label="{escape(summary)}">'
        ),
        f"<title>{escape(summary)}</title>",
    ]
    # Partial days (the window's first and last) get a light background.
    for i, b in enumerate(days if bars else ()):
        if b.start < start or b.start + DAY > end:
            parts.append(
                f'<rect class="partial" x="{_fmt(100 * i / n)}%" y="{size.top}" '
                f'width="{_fmt(100 / n)}%" height="{plot_h}"/>'
            )
    # The bars, in a nested SVG whose viewBox stretches to the chart's width.
    vb_h = max(ymax, 1)
    parts.append(
        f'<svg class="plot" x="0" y="{size.top}" width="100%" height="{plot_h}" '
        f'viewBox="0 0 {n * SLOT} {vb_h}" preserveAspectRatio="none">'
    )
    for i, b in enumerate(days):
        if not b.total:
            continue
        x = i * SLOT + GAP
        parts.append(
            f'<g class="bar" data-day="{b.start:%Y-%m-%d}" data-n="{b.total}" data-failed="{b.counts.get(FAILURE, 0)}">'
            f"<title>{escape(_day_title(b, order, start, end))}</title>"
        )
        y = float(vb_h)
        for s in order:
            c = b.counts.get(s, 0)
            if not c:
                continue
            y -= c
            parts.append(
                f'<rect class="{status_class(s)}" x="{x}" y="{_fmt(y)}" width="{SLOT - 2 * GAP}" height="{c}"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    base_y = size.top + plot_h
    parts.append(f'<line class="axis" x1="0" y1="{base_y}" x2="100%" y2="{base_y}"/>')
    # Totals above the bars, dates below.
    scale = plot_h / vb_h
    for i, b in enumerate(days):
        if b.total:
            y = base_y - b.total * scale - 3
            parts.append(
                f'<text class="count" x="{_fmt(100 * (i + 0.5) / n)}%" y="{_fmt(y)}" text-anchor="middle">{b.total}</text>'
            )
    date_y = size.height - 3
    if size.every_date:
        prev: datetime | None = None
        for i, b in enumerate(days):
            parts.append(
                f'<text class="xlabel" x="{_fmt(100 * (i + 0.5) / n)}%" y="{date_y}" text-anchor="middle">'
                f"{_date_label(b.start, i == 0, prev)}</text>"
            )
            prev = b.start
    elif days:
        parts.append(f'<text class="xlabel" x="0" y="{date_y}" text-anchor="start">{days[0].start:%b} {days[0].start.day}</text>')
        if len(days) > 1:
            last = days[-1].start
            parts.append(f'<text class="xlabel" x="100%" y="{date_y}" text-anchor="end">{last:%b} {last.day}</text>')
    if not bars:
        parts.append(
            f'<text class="empty" x="50%" y="{size.top + plot_h // 2 + 4}" text-anchor="middle">no hits in this window</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(statuses: Iterable[str] = (FAILURE, SUCCESS)) -> Markup:
    """The key of the charts' classes, in stacking order (bottom first)."""
    classes = []
    for s in stack_order(statuses):
        cls = status_class(s)
        if cls not in classes:
            classes.append(cls)
    items = "".join(f'<span class="key {c}"><span class="swatch"></span>{LEGEND[c]}</span>' for c in classes)
    return Markup(f'<span class="legend">{items}</span>')


def chart_statuses(*charts: Sequence[Bucket]) -> set[str]:
    """Every status that has builds in some of ``charts`` (always FAILURE and SUCCESS)."""
    out = {FAILURE, SUCCESS}
    for days in charts:
        out.update(s for b in days for s, c in b.counts.items() if c)
    return out


def rate_svg(
    days: Sequence[tuple[datetime, float | None, float | None]],
    start: datetime,
    end: datetime,
    *,
    labels: tuple[str, str] = ("explained by a fingerprint", "explained or recurring"),
    size: ChartSize = LARGE,
) -> Markup:
    """Two daily percentages (0-100) as lines with a dot per day: ``(day, first, second)``.

    A day without failed builds (None) breaks the lines. Every dot's
    ``<title>`` says the date and both values.
    """
    n = max(1, len(days))
    plot_h = size.height - size.top - size.bottom
    summary = f"{labels[0]} and {labels[1]}, percent of failed builds per day"
    parts: list[str] = [
        (
            f'<svg class="trend rate" xmlns="http://www.w3.org/2000/svg" role="img" width="{size.width}" '
            f'height="{size.height}" data-days="{len(days)}" aria-label="{escape(summary)}">'
        ),
        f"<title>{escape(summary)}</title>",
    ]
    for i, (day, _a, _b) in enumerate(days):
        if day < start or day + DAY > end:
            parts.append(
                f'<rect class="partial" x="{_fmt(100 * i / n)}%" y="{size.top}" width="{_fmt(100 / n)}%" height="{plot_h}"/>'
            )
    parts.append(
        f'<svg class="plot" x="0" y="{size.top}" width="100%" height="{plot_h}" '
        f'viewBox="0 0 {n * SLOT} 100" preserveAspectRatio="none">'
    )
    for k, cls in ((2, "rate-covered"), (1, "rate-explained")):
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, (_day, first, second) in enumerate(days):
            value = first if k == 1 else second
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{i * SLOT + SLOT // 2},{_fmt(100 - value)}")
        if segment:
            segments.append(segment)
        for seg in segments:
            parts.append(f'<polyline class="{cls}" fill="none" vector-effect="non-scaling-stroke" points="{" ".join(seg)}"/>')
    parts.append("</svg>")
    base_y = size.top + plot_h
    parts.append(f'<line class="axis" x1="0" y1="{base_y}" x2="100%" y2="{base_y}"/>')
    for i, (day, a, b) in enumerate(days):
        if a is None or b is None:
            continue
        tip = escape(f"{day:%Y-%m-%d}: {a:.1f}% {labels[0]}, {b:.1f}% {labels[1]}")
        for value, cls in ((b, "rate-covered"), (a, "rate-explained")):
            y = size.top + plot_h * (100 - value) / 100
            parts.append(
                f'<circle class="{cls}" cx="{_fmt(100 * (i + 0.5) / n)}%" cy="{_fmt(y)}" r="3" '
                f'data-day="{day:%Y-%m-%d}" data-rate="{value:.1f}"><title>{tip}</title></circle>'
            )
    date_y = size.height - 3
    prev: datetime | None = None
    for i, (day, _a, _b) in enumerate(days):
        if size.every_date:
            parts.append(
                f'<text class="xlabel" x="{_fmt(100 * (i + 0.5) / n)}%" y="{date_y}" text-anchor="middle">'
                f"{_date_label(day, i == 0, prev)}</text>"
            )
        prev = day
    parts.append("</svg>")
    return Markup("".join(parts))


def rate_legend(labels: tuple[str, str] = ("explained by a fingerprint", "explained or recurring")) -> Markup:
    """The key of :func:`rate_svg`'s two lines."""
    items = "".join(
        f'<span class="key {c}"><span class="swatch"></span>{escape(t)}</span>'
        for c, t in (("rate-explained", labels[0]), ("rate-covered", labels[1]))
    )
    return Markup(f'<span class="legend">{items}</span>')
