"""The time frame every report number is computed over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from elastic_recheck.core.search_types import TimeWindow
from elastic_recheck.core.stats import DAY

#: The default window, as in the original graph.json (what logstash kept).
DEFAULT_DAYS = 10.0

#: Ages offered by the uncategorized pages' filter, in hours.
AGE_FILTERS_HOURS: tuple[int, ...] = (24, 48, 168, 240)


@dataclass(frozen=True)
class ReportWindow:
    """``[now - days, now)`` plus the last-24-hours sub-window."""

    now: datetime
    days: float = DEFAULT_DAYS

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("ReportWindow.now must be timezone-aware")
        if self.days <= 0:
            raise ValueError("days must be positive")

    @property
    def start(self) -> datetime:
        # Departure from the original (docs/compatibility.md): days=N means
        # exactly N x 24 hours, not the whole daily indices of the last N days.
        return self.now - timedelta(days=self.days)

    @property
    def day_start(self) -> datetime:
        return max(self.start, self.now - DAY)

    @property
    def partial_days(self) -> bool:
        """Whether the window starts (and so ends) inside a UTC day: its first and last days are partial."""
        start = self.start
        return (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0)

    @property
    def time_window(self) -> TimeWindow:
        return TimeWindow(start=self.start, end=self.now)

    @property
    def last_day(self) -> TimeWindow:
        return TimeWindow(start=self.day_start, end=self.now)

    def at_data(self, newest_event: datetime | None) -> ReportWindow:
        """This window, or, when the newest indexed event is older than its start (so it would be
        empty: the store's data ended earlier), one as long ending just after that event."""
        if newest_event is None or newest_event >= self.start:
            return self
        return ReportWindow(now=newest_event + timedelta(seconds=1), days=self.days)

    @property
    def age_filters(self) -> tuple[int, ...]:
        """The age filters that fit in the window (the whole window is always offered)."""
        hours = self.days * 24
        out = [h for h in AGE_FILTERS_HOURS if h < hours]
        out.append(int(hours) if hours == int(hours) else int(hours) + 1)
        return tuple(out)
