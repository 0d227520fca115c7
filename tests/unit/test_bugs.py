"""Bug tracker port: status summary, offline tracker, on-disk cache semantics."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pytest

from elastic_recheck.adapters.launchpad.trackers import (
    CachedTracker,
    LaunchpadTracker,
    OfflineTracker,
    split_service_root,
    tracker_from_config,
)
from elastic_recheck.core import config as er_config
from elastic_recheck.core.errors import BugTrackerError, ConfigError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.ports.bugs import BugInfo, BugTask, BugTracker, summarize_status


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class ScriptedTracker:
    """A tracker double implementing the port; ``down`` makes it fail like an outage."""

    name = "scripted"

    def __init__(self, titles: dict[str, str]) -> None:
        self.titles = titles
        self.calls: list[str] = []
        self.down = False
        self.reject: set[str] = set()

    def get(self, bug_id: str) -> BugInfo:
        self.calls.append(bug_id)
        if self.down:
            raise BugTrackerError("connection refused")
        if bug_id in self.reject:
            raise BugTrackerError("HTTP 400", retryable=False)
        if bug_id not in self.titles:
            return BugInfo(bug=bug_id, url=f"u/{bug_id}", missing=True, source=self.name)
        return BugInfo(bug=bug_id, url=f"u/{bug_id}", title=self.titles[bug_id], status="Confirmed",
                       tasks=(BugTask("nova", "Confirmed", "High"),), source=self.name)

    def get_many(self, bug_ids: Iterable[str]) -> dict[str, BugInfo]:
        return {b: self.get(b) for b in bug_ids}


def test_status_is_the_least_resolved_task() -> None:
    tasks = [BugTask("neutron", "Fix Released", "Critical"), BugTask("nova", "Confirmed", "High"),
             BugTask("tempest", "Invalid", "Undecided"), BugTask("cinder", "In Progress", "Low")]
    assert summarize_status(tasks) == ("Confirmed", "High")  # Critical is on a fixed task
    assert summarize_status([BugTask("a", "Fix Released", "Medium"), BugTask("b", "Invalid", "High")]) == (
        "Fix Released", "High")
    assert summarize_status([BugTask("a", "Won't Fix", "Low"), BugTask("b", "Invalid", "Low")])[0] == "Won't Fix"
    assert summarize_status([]) == (None, None)


def test_bug_info_roundtrip_and_projects() -> None:
    info = BugInfo(bug="1458945", url="https://bugs.launchpad.net/bugs/1458945", title="Use graduated oslo.policy",
                   status="Fix Released", importance="Medium",
                   tasks=(BugTask("sahara", "Fix Released", "Medium", "sahara"),
                          BugTask("sahara", "Fix Released", "Medium", "sahara/kilo"),
                          BugTask("barbican", "Fix Released", "Medium", "barbican")),
                   duplicate_of="1", stale=True)
    back = BugInfo.from_dict(info.to_dict())
    assert back == BugInfo(**{**info.__dict__, "stale": False})
    assert info.projects == ("sahara", "barbican")
    assert info.is_open is False
    ref = info.ref()
    assert (ref.bug, ref.title, ref.projects) == ("1458945", "Use graduated oslo.policy", ("sahara", "barbican"))
    fp = Fingerprint(bug="1458945", query="q", bug_title="offline", projects=("openstack/sahara", "oslo.policy"))
    ref = info.ref(fp)
    assert ref.title == "Use graduated oslo.policy"  # the tracker's title wins
    assert ref.projects == ("sahara", "barbican", "openstack/sahara", "oslo.policy")
    private = BugInfo(bug="5", url="https://bugs.launchpad.net/bugs/5", private=True)
    ref = private.ref(Fingerprint(bug="5", query="q", bug_title="known flaky", bug_url="https://example.org/5"))
    assert (ref.title, ref.url) == ("known flaky", "https://example.org/5")


def test_offline_tracker_from_fingerprints_and_file(tmp_path: Path) -> None:
    fps = [Fingerprint(bug="1253896", query="message:x", bug_title="SSH to guest fails", projects=("openstack/nova",)),
           Fingerprint(bug="gh-12", query="message:y", bug_url="https://github.com/o/r/issues/12")]
    bugs_file = tmp_path / "bugs.yaml"
    bugs_file.write_text(
        "1253896: {status: Triaged, projects: [nova, neutron]}\n"
        "1367021: {title: Glance upload times out, status: New}\n"
        "42: just a title\n",
        encoding="utf-8",
    )
    tracker = OfflineTracker(fps, bugs_file)
    assert isinstance(tracker, BugTracker)
    got = tracker.get_many(["1253896", "1367021", "gh-12", "42", "999"])
    assert got["1253896"].title == "SSH to guest fails"  # fingerprint title kept
    assert got["1253896"].projects == ("nova", "neutron")  # file wins
    assert got["1253896"].status == "Triaged"
    assert got["1367021"].title == "Glance upload times out"
    assert got["gh-12"].url == "https://github.com/o/r/issues/12"
    assert got["42"].title == "just a title"
    assert got["999"].title is None and got["999"].url == "https://bugs.launchpad.net/bugs/999"
    assert not any(i.missing or i.stale for i in got.values())


def test_bad_bugs_file(tmp_path: Path) -> None:
    bad = tmp_path / "bugs.yaml"
    bad.write_text("1: {projects: {nova: 1}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="projects"):
        OfflineTracker([], bad)
    with pytest.raises(ConfigError, match="cannot read"):
        OfflineTracker([], tmp_path / "missing.yaml")


def test_cache_serves_fresh_entries_without_asking(tmp_path: Path) -> None:
    inner, clock = ScriptedTracker({"1": "one", "2": "two"}), Clock()
    cached = CachedTracker(inner, tmp_path / "c.sqlite3", ttl=100, clock=clock)
    first = cached.get_many(["1", "2", "3"])
    assert inner.calls == ["1", "2", "3"]
    assert first["3"].missing
    clock.now += 99
    again = cached.get_many(["2", "1", "3"])
    assert inner.calls == ["1", "2", "3"]  # no new call
    assert list(again) == ["2", "1", "3"]
    assert again["1"].title == "one" and not again["1"].stale
    # A second process (or restart) reads the same file.
    other = CachedTracker(ScriptedTracker({}), tmp_path / "c.sqlite3", ttl=100, clock=clock)
    assert other.name == "scripted"
    assert other.get("2").title == "two"


def test_cache_refreshes_expired_entries(tmp_path: Path) -> None:
    inner, clock = ScriptedTracker({"1": "old title"}), Clock()
    cached = CachedTracker(inner, tmp_path / "c.sqlite3", ttl=100, clock=clock)
    assert cached.get("1").title == "old title"
    inner.titles["1"] = "new title"
    clock.now += 100
    info = cached.get("1")
    assert info.title == "new title" and inner.calls == ["1", "1"]
    assert info.fetched_at.timestamp() == pytest.approx(clock.now)


def test_outage_serves_stale_logs_once_and_backs_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="elastic_recheck.adapters.launchpad.trackers")
    inner, clock = ScriptedTracker({"1": "one", "2": "two"}), Clock()
    offline = OfflineTracker([Fingerprint(bug="3", query="q", bug_title="offline three")])
    cached = CachedTracker(inner, tmp_path / "c.sqlite3", ttl=10, fallback=offline, retry_after=60, clock=clock)
    cached.get_many(["1", "2"])
    clock.now += 11
    inner.down = True
    calls = len(inner.calls)
    got = cached.get_many(["1", "2", "3"])
    assert len(inner.calls) == calls + 1  # stopped at the first failure, not one try per bug
    assert [got[b].stale for b in "123"] == [True, True, True]
    assert got["1"].title == "one" and got["2"].title == "two"
    assert got["3"].title == "offline three"  # never cached: from the fallback
    assert cached.tracker_down
    clock.now += 30  # within retry_after: no network at all
    cached.get_many(["1", "2"])
    assert len(inner.calls) == calls + 1
    clock.now += 31  # retry; still down
    cached.get_many(["1"])
    assert len(inner.calls) == calls + 2
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    clock.now += 61
    inner.down = False
    info = cached.get("1")
    assert not info.stale and not cached.tracker_down
    assert "answers again" in caplog.text


def test_non_retryable_error_concerns_one_bug(tmp_path: Path) -> None:
    inner = ScriptedTracker({"1": "one", "2": "two"})
    inner.reject.add("1")
    cached = CachedTracker(inner, tmp_path / "c.sqlite3", clock=Clock())
    got = cached.get_many(["1", "2"])
    assert got["1"].stale and got["1"].title is None
    assert not got["2"].stale and got["2"].title == "two"
    assert not cached.tracker_down


def test_split_service_root() -> None:
    assert split_service_root("https://api.launchpad.net/devel/") == ("https://api.launchpad.net/", "devel")
    assert split_service_root("https://api.launchpad.net/1.0") == ("https://api.launchpad.net/", "1.0")
    assert split_service_root("http://127.0.0.1:8080/") == ("http://127.0.0.1:8080/", "devel")


def test_tracker_from_config(tmp_path: Path) -> None:
    fps = [Fingerprint(bug="7", query="q", bug_title="seven")]
    offline = tracker_from_config(er_config.from_mapping({}), fps)
    assert isinstance(offline, OfflineTracker) and offline.get("7").title == "seven"
    conf = er_config.from_mapping({"bugs": {"tracker": "launchpad", "cache_dir": str(tmp_path / "cache"),
                                            "launchpad_url": "http://127.0.0.1:9/devel/", "timeout": "2"}})
    lp = tracker_from_config(conf, fps)
    assert isinstance(lp, CachedTracker) and isinstance(lp.inner, LaunchpadTracker)
    assert lp.inner.service_root == "http://127.0.0.1:9/" and lp.inner.timeout == 2.0
    assert (tmp_path / "cache" / "bugs.sqlite3").exists()
    with pytest.raises(ConfigError, match="tracker must be one of"):
        tracker_from_config(er_config.from_mapping({"bugs": {"tracker": "bugzilla"}}))
