"""Parsing of times and durations given on the command line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``10d``, ``2w`` (a bare number means days)."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 10d)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "d"])


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (UTC when no offset), epoch seconds or ms, ``now``, or ``-10d`` relative to now."""
    raw = text.strip()
    now = now or datetime.now(UTC)
    if raw.lower() == "now":
        return now
    if raw.startswith("-"):
        return now - parse_duration(raw[1:])
    if re.fullmatch(r"\d{9,13}(\.\d+)?", raw):
        value = float(raw)
        if value > 1e11:
            value /= 1000.0
        return datetime.fromtimestamp(value, tz=UTC)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use ISO 8601, epoch seconds, 'now' or '-10d')") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)
