"""The Launchpad adapter (real launchpadlib) against a local fake of the web service."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from elastic_recheck.adapters.launchpad.trackers import CachedTracker, LaunchpadTracker, tracker_from_config
from elastic_recheck.core import config as er_config
from elastic_recheck.core.errors import BugTrackerError
from elastic_recheck.core.fingerprints import Fingerprint
from tests.fixtures.launchpad_server import LaunchpadFake


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tracker(launchpad_server: LaunchpadFake, tmp_path: Path) -> LaunchpadTracker:
    return LaunchpadTracker(launchpad_server.root, timeout=2.0, cache_dir=tmp_path / "lp")


def test_bug_data_from_bug_and_tasks(tracker: LaunchpadTracker, launchpad_server: LaunchpadFake) -> None:
    info = tracker.get("1253896")
    assert info.title == launchpad_server.bugs[1253896].title
    assert info.url == "https://bugs.launchpad.net/bugs/1253896"
    assert [(t.project, t.status, t.importance) for t in info.tasks] == [
        ("nova", "Confirmed", "High"), ("neutron", "Fix Released", "Critical"), ("tempest", "Invalid", "Undecided"),
    ]
    assert info.projects == ("nova", "neutron", "tempest")
    assert (info.status, info.importance) == ("Confirmed", "High")
    assert not (info.private or info.missing or info.stale) and info.duplicate_of is None
    assert launchpad_server.count("/devel/bugs/1253896") == 2  # the bug and its bug_tasks page


def test_series_tasks_and_duplicates(tracker: LaunchpadTracker) -> None:
    info = tracker.get("1458945")
    assert [t.target for t in info.tasks] == ["sahara", "sahara/kilo", "barbican"]
    assert info.projects == ("sahara", "barbican")
    assert info.status == "Fix Released" and info.is_open is False
    dup = tracker.get("1600000")
    assert dup.duplicate_of == "1253896"
    many = tracker.get_many(["1253896", "1600000", "1253896"])
    assert list(many) == ["1253896", "1600000"]


def test_recorded_bug_tasks(tracker: LaunchpadTracker, launchpad_server: LaunchpadFake, shared_data: Path) -> None:
    """Real bug_task records (bug 1458945, as Launchpad served them) through launchpadlib."""
    records = shared_data / "launchpad" / "stackalytics-bug-tasks-2015.jsonl"
    if not records.is_file():
        pytest.skip(f"../shared/data not present: {records} missing")
    tasks = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines() if line.strip()]
    launchpad_server.raw_tasks[1458945] = tasks
    info = tracker.get("1458945")
    assert [t.target for t in info.tasks] == [t["bug_target_name"] for t in tasks]
    assert [t.status for t in info.tasks] == [t["status"] for t in tasks]
    assert info.projects == tuple(dict.fromkeys(t["bug_target_name"].split("/")[0] for t in tasks))
    assert info.status == "Fix Released" and info.importance == "Medium"
    # fixed when the last task was released (barbican, three weeks after sahara)
    assert info.fixed_at == datetime(2015, 6, 24, 20, 59, 57, 982386, tzinfo=UTC)


def test_missing_bug(tracker: LaunchpadTracker, launchpad_server: LaunchpadFake) -> None:
    info = tracker.get("999999")
    assert info.missing and info.title is None and not info.private
    assert launchpad_server.count("/devel/bugs/999999") == 1
    assert tracker.get("not-a-number").missing  # never asked
    assert launchpad_server.count("/devel/bugs/not") == 0


@pytest.mark.parametrize("status", [401, 403])
def test_private_bug(tracker: LaunchpadTracker, launchpad_server: LaunchpadFake, status: int) -> None:
    launchpad_server.errors["/devel/bugs/1253896"] = status
    info = tracker.get("1253896")
    assert info.private and info.title is None and not info.missing
    # The fake's own private bug answers 401 like Launchpad does for anonymous users.
    assert tracker.get("1700000").private


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_fail_fast(tracker: LaunchpadTracker, launchpad_server: LaunchpadFake, status: int) -> None:
    launchpad_server.errors["/devel/bugs/1253896"] = status
    with pytest.raises(BugTrackerError, match=f"HTTP {status}") as err:
        tracker.get("1253896")
    assert err.value.retryable
    # lazr.restfulclient would retry a 503 six times with sleeps; the adapter does not.
    assert launchpad_server.count("/devel/bugs/1253896") == 1


@pytest.mark.timeout(60)
def test_timeout(launchpad_server: LaunchpadFake, tmp_path: Path) -> None:
    tracker = LaunchpadTracker(launchpad_server.root, timeout=0.5, cache_dir=tmp_path / "lp")
    tracker.get("1458945")  # logged in
    launchpad_server.delays["/devel/bugs/1253896"] = 3.0
    with pytest.raises(BugTrackerError, match="timed out") as err:
        tracker.get("1253896")
    assert err.value.retryable
    launchpad_server.delays.clear()
    assert tracker.get("1253896").title  # the adapter recovers


def test_unreachable_root_is_a_retryable_error(tmp_path: Path) -> None:
    from tests.fixtures.ircd import free_port

    tracker = LaunchpadTracker(f"http://127.0.0.1:{free_port()}/devel/", timeout=1, cache_dir=tmp_path / "lp")
    with pytest.raises(BugTrackerError) as err:
        tracker.get("1")
    assert err.value.retryable


def test_cache_hit_needs_no_request(launchpad_server: LaunchpadFake, tmp_path: Path) -> None:
    clock = Clock()
    cache = tmp_path / "bugs.sqlite3"
    cached = CachedTracker(LaunchpadTracker(launchpad_server.root, timeout=2), cache, ttl=3600, clock=clock)
    first = cached.get_many(["1253896", "999999"])
    served = len(launchpad_server.requests)
    clock.now += 3599
    second = cached.get_many(["1253896", "999999"])
    assert len(launchpad_server.requests) == served
    assert second == first
    assert second["999999"].missing  # negative answers are cached too
    # After a restart (new objects, same file): still no request, not even the login.
    restarted = CachedTracker(LaunchpadTracker(launchpad_server.root, timeout=2), cache, ttl=3600, clock=clock)
    assert restarted.get("1253896") == first["1253896"]  # every field survives the cache, fix dates included
    assert len(launchpad_server.requests) == served


def test_cache_expiry_refetches(launchpad_server: LaunchpadFake, tmp_path: Path) -> None:
    clock = Clock()
    cached = CachedTracker(LaunchpadTracker(launchpad_server.root, timeout=2), tmp_path / "c.sqlite3", ttl=600,
                           clock=clock)
    assert cached.get("1458945").title == "Use graduated oslo.policy"
    launchpad_server.bugs[1458945].title = "Use graduated oslo.policy library"
    clock.now += 601
    info = cached.get("1458945")
    assert info.title == "Use graduated oslo.policy library" and not info.stale
    assert launchpad_server.count("/devel/bugs/1458945") == 4  # 2 fetches x (bug + tasks)


def test_stale_data_while_launchpad_is_down(launchpad_server: LaunchpadFake, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="elastic_recheck.adapters.launchpad.trackers")
    clock = Clock()
    fps = [Fingerprint(bug="1367021", query="q", bug_title="glance upload times out", projects=("glance",))]
    conf = er_config.from_mapping({"bugs": {"tracker": "launchpad", "launchpad_url": launchpad_server.root,
                                            "cache_dir": str(tmp_path / "cache"), "cache_ttl": "60",
                                            "timeout": "1"}})
    tracker = tracker_from_config(conf, fps)
    assert isinstance(tracker, CachedTracker)
    tracker.clock = clock  # a fake clock instead of sleeping past the TTL
    before = tracker.get_many(["1253896", "1458945"])
    assert not any(i.stale for i in before.values())

    launchpad_server.stop()
    clock.now += 61
    got = tracker.get_many(["1253896", "1458945", "1367021"])
    assert all(i.stale for i in got.values())
    assert got["1253896"].title == before["1253896"].title
    assert got["1458945"].projects == ("sahara", "barbican")
    assert got["1367021"].title == "glance upload times out"  # never cached: the fingerprint's title
    assert tracker.get("1253896").stale
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "launchpad unavailable" in warnings[0]

    launchpad_server.start()  # same port
    clock.now += 61  # past retry_after
    fresh = tracker.get("1253896")
    assert not fresh.stale and "answers again" in caplog.text
