"""The original's fingerprints load unchanged, ``resolved_at`` written by ``date`` included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from elastic_recheck.core.fingerprint_loading import load_fingerprints

QUERIES = "elastic-recheck-queries"


def test_every_shipped_fingerprint_loads(shared_data: Path) -> None:
    loaded = load_fingerprints(shared_data / QUERIES)
    assert loaded.errors == []
    assert len(loaded.fingerprints) == len(list((shared_data / QUERIES).glob("*.yaml")))


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # the two shapes the `date` command wrote into the original's queries
        ("Tue Dec 10 12:08:42 EST 2013", datetime(2013, 12, 10, 17, 8, 42, tzinfo=UTC)),
        ("Mon Jan  6 13:20:28 PST 2014", datetime(2014, 1, 6, 21, 20, 28, tzinfo=UTC)),
        ("Wed Jul 16 09:10:11 EDT 2014", datetime(2014, 7, 16, 13, 10, 11, tzinfo=UTC)),
        ("Fri Mar 14 23:59:59 CDT 2014", datetime(2014, 3, 15, 4, 59, 59, tzinfo=UTC)),
        ("Thu Jan  2 08:00:00 UTC 2014", datetime(2014, 1, 2, 8, 0, 0, tzinfo=UTC)),
        ("2014-01-06T13:20:28-08:00", datetime(2014, 1, 6, 21, 20, 28, tzinfo=UTC)),
        ("2014-01-06", datetime(2014, 1, 6, tzinfo=UTC)),
    ],
)
def test_resolved_at_from_the_date_command(shared_data: Path, tmp_path: Path, written: str, expected: datetime) -> None:
    text = (shared_data / QUERIES / "1260311.yaml").read_text()
    (tmp_path / "1260311.yaml").write_text(text.rstrip("\n") + f"\nresolved_at: {written}\n")
    loaded = load_fingerprints(tmp_path)
    assert loaded.errors == []
    assert loaded.fingerprints[0].resolved_at == expected


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("Tue Dec 10 12:08:42 XYZ 2013", "unknown time zone 'XYZ'"),
        ("Tue Dec 41 12:08:42 EST 2013", "not a date"),
        ("last tuesday", "not a date"),
    ],
)
def test_bad_resolved_at_points_at_its_line(shared_data: Path, tmp_path: Path, written: str, message: str) -> None:
    text = (shared_data / QUERIES / "1260311.yaml").read_text().rstrip("\n") + "\n"
    line = text.count("\n") + 1
    (tmp_path / "1260311.yaml").write_text(text + f"resolved_at: {written}\n")
    loaded = load_fingerprints(tmp_path)
    assert loaded.fingerprints == []
    (err,) = loaded.errors
    assert (err.line, err.col) == (line, 1)
    assert message in err.message
    assert str(err).startswith(f"{tmp_path / '1260311.yaml'}:{line}:1: 'resolved_at': ")
