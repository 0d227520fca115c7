"""The IRC text of a returning bug and the ledger of what was announced (no IRC here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from elastic_recheck.contrib.announce import (
    FORGET_AFTER,
    MAX_REMEMBERED_BUILDS,
    AnnouncementLedger,
    format_returning,
    locked_ledger,
)
from elastic_recheck.core.errors import StoreError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.search_types import BuildSummary
from elastic_recheck.report.stale_fingerprints import Returning

NOW = datetime(2026, 11, 20, tzinfo=UTC)
RESOLVED = datetime(2026, 11, 1, tzinfo=UTC)


def build(uuid: str, hours_ago: float, log_url: str | None = "https://logs.example.org/x/") -> BuildSummary:
    t = NOW - timedelta(hours=hours_ago)
    fields = {"build_status": "FAILURE"} | ({"log_url": log_url} if log_url is not None else {})
    return BuildSummary(uuid=uuid, fields=fields, first_seen=t, last_seen=t, docs=1)


def returning(
    bug: str = "1234567",
    uuids: tuple[str, ...] = ("b3", "b2", "b1"),
    *,
    known: bool = True,
    status: str | None = "Fix Released",
    log_url: str | None = None,
) -> Returning:
    builds = tuple(
        build(u, i + 1, log_url if log_url is not None else f"https://logs.example.org/{u}/")
        for i, u in enumerate(uuids)
    )
    since = RESOLVED if known else NOW - timedelta(days=10)
    fp = Fingerprint(bug=bug, query='message:"x"', resolved_at=RESOLVED if known else None)
    return Returning(fingerprint=fp, since=since, date_known=known, status=status, builds=builds)


def test_message_with_known_date() -> None:
    assert format_returning(returning(), "Widget explodes", NOW) == (
        "Bug 1234567 (Widget explodes) was marked Fix Released on 2026-11-01 but its fingerprint hit "
        "3 failed builds since: https://logs.example.org/b3/"
    )


def test_message_without_closed_status_title_or_date() -> None:
    assert format_returning(returning(uuids=("b1",), status=None), None, NOW) == (
        "Bug 1234567 was resolved on 2026-11-01 but its fingerprint hit 1 failed build since: "
        "https://logs.example.org/b1/"
    )
    # Reopened in the tracker but resolved_at still in the YAML: not "marked Confirmed".
    assert " was resolved on " in format_returning(returning(status="Confirmed"), None, NOW)
    assert format_returning(returning(known=False), "T", NOW) == (
        "Bug 1234567 (T) is marked Fix Released (fix date unknown) but its fingerprint hit 3 failed builds "
        "in the last 10 days: https://logs.example.org/b3/"
    )


def test_message_is_one_clean_line() -> None:
    text = format_returning(returning(log_url="javascript:alert(1)"), "evil\r\nPRIVMSG #x :hi\x00 \ud83d", NOW)
    assert "\r" not in text and "\n" not in text and "\x00" not in text
    text.encode("utf-8")  # a lone surrogate would make this raise
    assert text.endswith("since: build b3")  # no link that is not http(s)


def test_ledger_due_and_record(tmp_path: Path) -> None:
    ledger = AnnouncementLedger(tmp_path / "l.json")
    r = returning(uuids=("b2", "b1"))
    assert ledger.due([r]) == [r]
    ledger.record([r], ["#qa"], NOW)
    assert ledger.due([r]) == []
    # The same builds seen through a window that lost the oldest: nothing new.
    assert ledger.due([returning(uuids=("b2",))]) == []
    # A new build: due again, even when the count did not grow (sliding window).
    grown = returning(uuids=("b3", "b2"))
    assert ledger.due([grown]) == [grown]
    # A new resolved_at is a new episode.
    other = Returning(
        fingerprint=r.fingerprint, since=RESOLVED + timedelta(days=1), date_known=True, status=r.status, builds=r.builds
    )
    assert ledger.due([other]) == [other]
    ledger.record([grown], ["#qa"], NOW)
    assert ledger.entries["1234567"].builds == ["b3", "b2", "b1"]
    assert ledger.entries["1234567"].count == 2


def test_unknown_date_is_not_a_new_episode_every_run(tmp_path: Path) -> None:
    ledger = AnnouncementLedger(tmp_path / "l.json")
    first = returning(known=False, uuids=("b1",))
    ledger.record([first], ["#qa"], NOW)
    # An hour later the window [now - 10 days, now) moved; the build did not change.
    later = Returning(
        fingerprint=first.fingerprint, since=first.since + timedelta(hours=1), date_known=False,
        status=first.status, builds=first.builds,
    )
    assert ledger.due([later]) == []


def test_ledger_roundtrip_cap_and_forget(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "l.json"
    ledger = AnnouncementLedger(path)
    many = returning(uuids=tuple(f"u{i:04d}" for i in range(MAX_REMEMBERED_BUILDS + 20)))
    ledger.record([many, returning(bug="42")], ["#qa", "#infra"], NOW - FORGET_AFTER - timedelta(hours=1))
    ledger.save()
    loaded = AnnouncementLedger.load(path)
    assert loaded.entries == ledger.entries
    assert len(loaded.entries["1234567"].builds) == MAX_REMEMBERED_BUILDS
    assert loaded.entries["1234567"].builds[0] == "u0000"  # newest kept
    assert json.loads(path.read_text())["version"] == 1
    # Bug 42 stopped coming back a month ago: forgotten; the other is still returning.
    assert loaded.forget_old([many], NOW) == ["42"]
    assert set(loaded.entries) == {"1234567"}


@pytest.mark.parametrize("text", ["{bad", "[]", '{"version": 99, "bugs": {}}', '{"version": 1, "bugs": {"1": 5}}'])
def test_bad_ledger_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "l.json"
    path.write_text(text)
    with pytest.raises(StoreError, match="not an announcement ledger"):
        AnnouncementLedger.load(path)


def test_lock_is_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    with locked_ledger(path) as ledger:
        assert ledger.entries == {}
        with pytest.raises(StoreError, match="another"), locked_ledger(path):
            pass
    with locked_ledger(path):  # released
        pass
