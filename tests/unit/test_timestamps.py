"""The one timestamp parser (core/timestamps.py): every accepted and refused form, table-driven.

Documents, Zuul records, cluster hits, the collector's records and Gerrit
all go through ``parse_timestamp``; command-line values through
``parse_time``; log-line prefixes through ``parse_line_timestamp``. Each
table below is the written-down list of what each reads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from elastic_recheck.core.timestamps import (
    EPOCH,
    format_timestamp,
    from_epoch_ms,
    from_epoch_seconds,
    parse_iso,
    parse_line_timestamp,
    parse_time,
    parse_timestamp,
    timestamp_ms,
    to_epoch_ms,
)

BUILD_TIME = datetime(2014, 1, 27, 18, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, tzinfo=UTC)
MAY_13 = datetime(2014, 5, 13, 16, 53, 20, tzinfo=UTC)

# (value, what parse_timestamp answers)
DOCUMENT_TIMESTAMPS: list[tuple[object, datetime | None]] = [
    # ISO 8601, as logstash, Zuul, Elasticsearch and Gerrit write it
    ("2013-10-18T17:39:43.966Z", datetime(2013, 10, 18, 17, 39, 43, 966000, tzinfo=UTC)),
    ("2014-11-10T01:02:03.123+00:00", datetime(2014, 11, 10, 1, 2, 3, 123000, tzinfo=UTC)),
    ("2022-02-28T09:39:09.596000", datetime(2022, 2, 28, 9, 39, 9, 596000, tzinfo=UTC)),  # Zuul: naive is UTC
    ("2022-02-28T10:07:36", datetime(2022, 2, 28, 10, 7, 36, tzinfo=UTC)),
    ("2013-10-18 17:39:43", datetime(2013, 10, 18, 17, 39, 43, tzinfo=UTC)),
    ("2026-11-15 10:00:00.000000000", datetime(2026, 11, 15, 10, tzinfo=UTC)),  # Gerrit's REST API
    ("2013-10-18T17:39:43.123456789Z", datetime(2013, 10, 18, 17, 39, 43, 123456, tzinfo=UTC)),
    ("2014-01-27 18:08:49,777", datetime(2014, 1, 27, 18, 8, 49, 777000, tzinfo=UTC)),
    ("2014-01-01T00:00:00-0130", datetime(2014, 1, 1, 1, 30, tzinfo=UTC)),
    ("2014-01-01T02:00:00+02", datetime(2014, 1, 1, tzinfo=UTC)),
    ("2013-10-18 17:39:43 +0000", datetime(2013, 10, 18, 17, 39, 43, tzinfo=UTC)),
    ("2014-01-01T00:00+99:00", datetime(2013, 12, 27, 21, tzinfo=UTC)),  # no valid zone: the offset still applies
    ("  2014-05-13T00:00:00Z ", datetime(2014, 5, 13, tzinfo=UTC)),
    ("2014-05-13", datetime(2014, 5, 13, tzinfo=UTC)),  # a date alone is midnight
    ("2014-05-13Z", datetime(2014, 5, 13, tzinfo=UTC)),
    ("20240102T030405Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),  # basic format (datetime.fromisoformat)
    # epoch milliseconds, as a number or a string of digits (ES: epoch_millis)
    (1_400_000_000_000, MAY_13),
    (1_400_000_000_000.0, MAY_13),
    ("1400000000000", MAY_13),  # was refused by the cluster adapter
    ("-500", datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)),
    ("20240102", datetime(1970, 1, 1, 5, 37, 20, 102000, tzinfo=UTC)),  # digits are milliseconds, never a basic date
    # lists (logstash 1.1 wrapped every value) and datetimes
    (["2014-01-01T00:00:00Z"], datetime(2014, 1, 1, tzinfo=UTC)),
    (["2014-01-01T00:00:00Z", "2015-01-01T00:00:00Z"], datetime(2014, 1, 1, tzinfo=UTC)),
    ([1_400_000_000_000], MAY_13),
    (datetime(2014, 1, 1), datetime(2014, 1, 1, tzinfo=UTC)),
    (datetime(2014, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), datetime(2014, 1, 1, tzinfo=UTC)),
    # not timestamps
    ("2014-5-13", None),
    ("2014-13-01T00:00:00Z", None),
    ("yesterday", None),
    ("", None),
    ([], None),
    ({"t": 1}, None),
    (10**30, None),  # past year 9999
    ("9" * 16, None),  # more digits than epoch milliseconds have
    (True, None),
    (None, None),
]


@pytest.mark.parametrize(("value", "expected"), DOCUMENT_TIMESTAMPS)
def test_document_timestamps(value: object, expected: datetime | None) -> None:
    got = parse_timestamp(value)
    assert got == expected
    if got is not None:
        assert got.utcoffset() == timedelta(0)
        assert timestamp_ms(value) == to_epoch_ms(got)  # the store's fast path agrees
    else:
        assert timestamp_ms(value) is None


def test_parse_iso_keeps_the_zone_as_written() -> None:
    got = parse_iso("2014-01-01T02:00:00+02:00")
    assert got is not None and got.utcoffset() == timedelta(hours=2) and got == datetime(2014, 1, 1, tzinfo=UTC)
    assert parse_iso("2014-01-01 02:00:00 +0200") == got
    assert parse_iso("1400000000000") is None  # digits are not ISO 8601 (parse_timestamp reads them as ms)


def test_epoch_ms_and_format_round_trip() -> None:
    dt = datetime(2026, 11, 19, 21, 15, 47, 997000, tzinfo=UTC)
    assert to_epoch_ms(dt) == int(dt.timestamp() * 1000)
    assert format_timestamp(dt) == "2026-11-19T21:15:47.997Z"
    assert parse_timestamp(format_timestamp(dt)) == dt
    assert to_epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)) == -500


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_400_000_000, MAY_13),  # Gerrit's eventCreatedOn, comment timestamps, lastUpdated
        (1_400_000_000.5, MAY_13 + timedelta(milliseconds=500)),
        ("1400000000", MAY_13),
        (0, EPOCH),
        ("soon", None),
        (10**30, None),
        (True, None),
        (None, None),
        ([1_400_000_000], None),
    ],
)
def test_epoch_seconds(value: object, expected: datetime | None) -> None:
    assert from_epoch_seconds(value) == expected


def test_epoch_ms_both_ways() -> None:
    assert from_epoch_ms(1_400_000_000_000) == MAY_13 and from_epoch_ms(-500) == datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    assert to_epoch_ms(datetime(2014, 5, 13, 16, 53, 20)) == 1_400_000_000_000  # naive is UTC


# (command-line text, what parse_time answers at NOW)
COMMAND_LINE_TIMES: list[tuple[str, datetime]] = [
    ("now", NOW),
    ("10d", NOW - timedelta(days=10)),
    ("-10d", NOW - timedelta(days=10)),
    ("12h", NOW - timedelta(hours=12)),
    ("90s", NOW - timedelta(seconds=90)),
    ("2w", NOW - timedelta(weeks=2)),
    ("3", NOW - timedelta(days=3)),  # up to 4 digits: days
    ("1763000000", datetime.fromtimestamp(1763000000, tz=UTC)),  # 9-13 digits: epoch seconds...
    ("1763000000000", datetime.fromtimestamp(1763000000, tz=UTC)),  # ... or milliseconds, by size
    ("2026-11-10", datetime(2026, 11, 10, tzinfo=UTC)),
    ("20261110", datetime(2026, 11, 10, tzinfo=UTC)),  # 8 digits: a basic ISO date on the command line
    ("2026-11-10T12:00:00Z", datetime(2026, 11, 10, 12, tzinfo=UTC)),
    ("2026-11-10 12:00:00,5 +0100", datetime(2026, 11, 10, 11, 0, 0, 500000, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "expected"), COMMAND_LINE_TIMES)
def test_command_line_times(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


def test_command_line_times_keep_the_offset_written() -> None:
    assert parse_time("2026-11-10T12:00:00+02:00", NOW).isoformat() == "2026-11-10T12:00:00+02:00"


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "10x", ""])
def test_command_line_times_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_time(text, NOW)


# (log line, timestamp, what the rest of the line starts with)
LINE_PREFIXES: list[tuple[str, datetime, str]] = [
    ("2014-01-27 18:08:49.123 2625 ERROR nova.compute.manager boom", datetime(2014, 1, 27, 18, 8, 49, 123000, tzinfo=UTC), " 2625"),
    ("2024-01-02 03:04:05.123456 | TASK [x]", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), " | TASK"),
    ("2014-01-27T18:08:49Z started", datetime(2014, 1, 27, 18, 8, 49, tzinfo=UTC), " started"),
    ("2014-01-27T18:08:49.5+01:00 x", datetime(2014, 1, 27, 17, 8, 49, 500000, tzinfo=UTC), " x"),
    ("2014-01-27 18:08:49,777 INFO x", datetime(2014, 1, 27, 18, 8, 49, 777000, tzinfo=UTC), " INFO"),
    ("Jan 27 18:08:49 host kernel: x", datetime(2014, 1, 27, 18, 8, 49, tzinfo=UTC), " host"),
    ("Jan  7 08:08:49 host kernel: x", datetime(2014, 1, 7, 8, 8, 49, tzinfo=UTC), " host"),
    ("Mar 28 12:20:42.377230 host systemd[1]: x", datetime(2013, 3, 28, 12, 20, 42, 377230, tzinfo=UTC), " host"),
]


@pytest.mark.parametrize(("line", "expected", "rest"), LINE_PREFIXES)
def test_line_timestamps(line: str, expected: datetime, rest: str) -> None:
    ts, end = parse_line_timestamp(line, reference=BUILD_TIME)
    assert ts == expected
    assert line[end:].startswith(rest)


def test_syslog_dates_after_the_build_belong_to_the_previous_year() -> None:
    # A build on Jan 2 reading "Dec 31" lines: they are from the year before.
    ts, _ = parse_line_timestamp("Dec 31 23:59:59 host x", reference=datetime(2015, 1, 2, tzinfo=UTC))
    assert ts == datetime(2014, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "line",
    ["  File \"x.py\", line 3", "Traceback (most recent call last):", "2014-13-45 99:99:99 bad date", "Juny 3 10:00:00 x", "", "+ ls"],
)
def test_lines_without_a_timestamp(line: str) -> None:
    assert parse_line_timestamp(line, BUILD_TIME) == (None, 0)
