"""Every parsing and formatting of times (pure): the one place that says which formats are read.

Three kinds of input, three entry points, one grammar for ISO 8601 text:

* **document and record timestamps** (a document's ``@timestamp``, a Zuul
  build's ``start_time``/``end_time``, hits read back from a cluster, the
  collector's own records, Gerrit's ``2026-11-15 10:00:00.000000000``):
  :func:`parse_timestamp`, which reads

  - ISO 8601 text (:func:`parse_iso`): ``2013-10-18T17:39:43.966Z``, a space
    instead of ``T``, no seconds or no fraction, a fraction of up to 9
    digits after ``.`` or ``,``, the zone as ``Z``, ``+01``, ``+0100`` or
    ``+01:00`` (a space before it allowed), a date alone (midnight), and
    every other form Python's ``datetime.fromisoformat`` reads (e.g. the
    basic ``20240102T030405Z``); no zone means UTC;
  - epoch **milliseconds**, as a number or as a string of up to 15 digits
    (Elasticsearch's default ``strict_date_optional_time||epoch_millis``);
  - a ``datetime`` (naive means UTC), or a non-empty list of one of the
    above (logstash 1.1 wrapped every value in a list): its first element;

  and answers an aware UTC datetime, or None for anything else (``True``,
  ``2014-5-13``, ``yesterday``...). :func:`timestamp_ms` is the same as epoch
  milliseconds, with the common form parsed in C (the store's hot path).
* **command-line values** (``--since``/``--until``/``--now``): :func:`parse_time`
  (also ``now``, durations back from now, and epoch *seconds* or
  milliseconds told apart by size), :func:`parse_cutoff`, :func:`parse_duration`.
* **log-line prefixes** (oslo.log, ``job-output.txt``, syslog, the journal):
  :func:`parse_line_timestamp`, which also says where the text after the
  timestamp begins.

Fingerprints' ``resolved_at`` (ISO 8601 or the ``date`` command's output)
is :func:`parse_fingerprint_time`. Gerrit's epoch **seconds** (stream events,
comments, ``lastUpdated``) are :func:`from_epoch_seconds`; milliseconds
both ways, :func:`to_epoch_ms` and :func:`from_epoch_ms`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from elastic_recheck.core.errors import short_repr

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EPOCH = re.compile(r"\d{9,13}(\.\d+)?")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``10d``, ``2w`` (a bare number means days)."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 10d)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "d"])


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """The one parser of ``--since``/``--until``/``--now`` values.

    ISO 8601 (UTC when no offset), epoch seconds or ms, ``now``, or a
    duration back from now: ``-10d`` or ``10d`` (``90s``, ``15m``, ``24h``,
    ``2w``; a bare number of up to 4 digits means days, as in ``collect --since 3``).
    """
    raw = text.strip()
    now = now or datetime.now(UTC)
    if raw.lower() == "now":
        return now
    if raw.startswith("-"):
        return now - parse_duration(raw[1:])
    if _EPOCH.fullmatch(raw):
        value = float(raw)
        if value > 1e11:
            value /= 1000.0
        return datetime.fromtimestamp(value, tz=UTC)
    if re.fullmatch(r"\d+(\.\d+)?\s*[smhdw]|\d{1,4}", raw):
        return now - parse_duration(raw)
    parsed = parse_iso(raw)
    if parsed is None:
        raise ValueError(f"not a time: {text!r} (use ISO 8601, epoch seconds, 'now', or 10d / -10d back from now)")
    return parsed


#: UTC offsets (hours) of the zone abbreviations the ``date`` command printed
#: on the machines that wrote the original's ``resolved_at`` values.
US_ZONES: dict[str, int] = {
    "UTC": 0, "GMT": 0, "Z": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
    "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10,
}
_DATE_OUTPUT = re.compile(r"^[A-Za-z]{3},? +[A-Za-z]{3} +\d{1,2} +\d{1,2}:\d{2}(:\d{2})? +(?P<zone>[A-Za-z]+) +\d{4}$")


def parse_fingerprint_time(value: Any) -> datetime:
    """A fingerprint's ``resolved_at``: a YAML date/datetime, ISO 8601, or ``date`` output.

    ``date`` output is what every historical fingerprint used, e.g.
    ``Tue Dec 10 12:08:42 EST 2013`` or ``Mon Jan  6 13:20:28 PST 2014``;
    the zone must be one of :data:`US_ZONES`. Naive values are UTC.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a date: {short_repr(value)}")
    text = value.strip()
    parsed = parse_iso(text)
    if parsed is None:
        m = _DATE_OUTPUT.match(text)
        if m is None:
            raise ValueError(
                f"not a date: {short_repr(value)} (use ISO 8601, e.g. 2014-01-06T13:20:28-08:00, "
                "or the date command's output, e.g. Mon Jan  6 13:20:28 PST 2014)"
            ) from None
        zone = m.group("zone").upper()
        if zone not in US_ZONES:
            raise ValueError(f"unknown time zone {m.group('zone')!r} in {short_repr(value)} (known: {', '.join(US_ZONES)})") from None
        from dateutil import parser as date_parser  # here: importing it costs every command ~20 ms

        try:
            result: datetime = date_parser.parse(text, tzinfos={zone: US_ZONES[zone] * 3600})
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"not a date: {short_repr(value)} ({exc})") from None
        return result
    return parsed


def parse_cutoff(text: str, now: datetime | None = None) -> datetime:
    """An age (``10d``, ``36h``, ``2w``, ``-10d``; a bare number means days) back from ``now``,
    or a time in any form :func:`parse_time` reads (ISO 8601, epoch)."""
    raw = text.strip()
    now = now or datetime.now(UTC)
    if not _EPOCH.fullmatch(raw):
        try:
            return now - parse_duration(raw[1:] if raw.startswith("-") else raw)
        except (ValueError, OverflowError):
            pass
    try:
        return parse_time(raw, now)
    except ValueError:
        raise ValueError(f"not an age or a time: {text!r} (use e.g. 10d, 36h, 2w, or ISO 8601)") from None



# ---------------------------------------------------------------------------
# Timestamps of documents and log lines

#: 1970-01-01T00:00:00Z.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch (naive datetimes are UTC; exact integer arithmetic, no float rounding)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_epoch_seconds(value: Any) -> datetime | None:
    """Epoch seconds (a number or its text: Gerrit's ``eventCreatedOn``, comment and
    ``lastUpdated`` times) as an aware UTC datetime; None when it is no such time."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC datetime ``ms`` milliseconds after the epoch."""
    return EPOCH + timedelta(milliseconds=ms)


def format_timestamp(ts: datetime) -> str:
    """``2014-01-27T18:08:49.123Z`` (UTC, millisecond precision, like logstash)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_EPOCH_MS_RE = re.compile(r"-?\d{1,15}$")
_MS = timedelta(milliseconds=1)


def _offset(zone: str) -> timedelta:
    """``+01``, ``-0130``, ``+01:30`` as an offset from UTC (``Z``: none)."""
    if zone == "Z":
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))


def _zoned(dt: datetime, offset: timedelta) -> datetime:
    """``dt`` (naive, wall time at ``offset``) made aware: in that zone, or in UTC when it is no valid zone (24h or more)."""
    try:
        return dt.replace(tzinfo=timezone(offset) if offset else UTC)
    except ValueError:
        return dt.replace(tzinfo=UTC) - offset


def parse_iso(text: str) -> datetime | None:
    """ISO 8601 text (the forms listed in the module docstring) as an aware datetime; None if it is not one.

    The zone is kept as written (no zone: UTC); :func:`parse_timestamp`
    converts to UTC.
    """
    text = text.strip()
    try:  # the common forms, in C
        dt = datetime.fromisoformat(text)
    except ValueError:
        m = _ISO_RE.match(text)
        if not m:
            return None
        year, month, day, hour, minute, sec, frac, zone = m.groups()
        try:
            micro = int((frac or "0")[:6].ljust(6, "0"))
            dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(sec or 0), micro)
            dt = _zoned(dt, _offset(zone or "Z"))
        except (ValueError, OverflowError):
            return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def parse_timestamp(value: Any) -> datetime | None:
    """The one parser of document and record timestamps (formats: the module docstring); aware UTC or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, list):
        return parse_timestamp(value[0]) if value else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _EPOCH_MS_RE.match(text):
        return parse_timestamp(int(text))
    dt = parse_iso(text)
    return dt.astimezone(UTC) if dt is not None else None


def timestamp_ms(value: Any) -> int | None:
    """``to_epoch_ms(parse_timestamp(value))``, with the common ISO form parsed in C."""
    if type(value) is str and len(value) >= 20 and value[10] == "T":
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return (dt - EPOCH) // _MS
    parsed = parse_timestamp(value)
    return to_epoch_ms(parsed) if parsed is not None else None


# Line prefixes, tried in order. Each yields (timestamp, rest of line).
_LINE_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?"
)
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_LINE_SYSLOG_RE = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?= )")


def parse_line_timestamp(line: str, reference: datetime | None = None) -> tuple[datetime | None, int]:
    """The timestamp a log line starts with, and where the text after it begins.

    Formats: oslo.log ``2014-01-27 18:08:49.123``, Zuul ``job-output.txt``
    ``2024-01-02 03:04:05.123456 | ...``, ISO ``2014-01-27T18:08:49Z``, syslog
    and systemd-journal ``Jan 27 18:08:49[.123456]`` (the year is taken from
    ``reference``, the build's time, going back a year when the date would be
    more than a day after it). Returns ``(None, 0)`` when there is none.
    """
    if not line:
        return None, 0
    c = line[0]
    if c.isdigit():
        m = _LINE_ISO_RE.match(line)
        if m is None:
            return None, 0
        year, month, day, hour, minute, sec, frac, zone = m.groups()
        try:
            micro = int(frac[:6].ljust(6, "0")) if frac else 0
            dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec), micro, tzinfo=UTC)
        except ValueError:
            return None, 0
        if zone and zone != "Z":
            dt -= _offset(zone)
        return dt, m.end()
    if c in "JFMASOND":
        m = _LINE_SYSLOG_RE.match(line)
        if m is None:
            return None, 0
        mon, day, hour, minute, sec, frac = m.groups()
        ref = reference or datetime.now(UTC)
        micro = int(frac.ljust(6, "0")) if frac else 0
        try:
            dt = datetime(ref.year, _MONTHS[mon], int(day), int(hour), int(minute), int(sec), micro, tzinfo=UTC)
        except ValueError:
            return None, 0
        if dt - ref > timedelta(days=1):
            try:
                dt = dt.replace(year=ref.year - 1)
            except ValueError:  # Feb 29
                return None, 0
        return dt, m.end()
    return None, 0
