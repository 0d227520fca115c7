"""The bot's "failures in the last 24 h" counts: made once per bug, reused by the reports that follow."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.bot.outcome import OutcomeBuilder, _RecentCounts
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.lucene.ast import Query
from elastic_recheck.core.search_types import QuerySpec

REPO = Path(__file__).resolve().parents[2]


class CountingStore(EmbeddedStore):
    """The real store, counting its ``count_builds`` calls."""

    calls = 0

    def count_builds(self, spec: QuerySpec, *, query: Query | None = None) -> int:
        self.calls += 1
        return super().count_builds(spec, query=query)


@pytest.fixture
def store(sample_store: Path) -> Iterator[CountingStore]:
    s = CountingStore(sample_store)
    yield s
    s.close()


def _busiest(store: EmbeddedStore) -> tuple[Fingerprint, datetime]:
    """A sample fingerprint and a time whose previous 24 h hold failed builds it matches."""
    fps = load_fingerprints(REPO / "queries").fingerprints
    end = datetime(2026, 11, 20, tzinfo=UTC)
    best: tuple[int, Fingerprint, datetime] | None = None
    for fp in fps:
        for day in range(10):
            at = end - timedelta(days=day)
            n = OutcomeBuilder(store, BotSettings(count_cache_s=0), None, time.time)._fails_24h(fp, at)
            if n and (best is None or n > best[0]):
                best = (n, fp, at)
    assert best is not None, "no sample fingerprint hit a failed build"
    return best[1], best[2]


def test_a_count_serves_the_reports_within_the_cache_window(store: CountingStore) -> None:
    fp, at = _busiest(store)
    exact = OutcomeBuilder(store, BotSettings(count_cache_s=0), None, time.time)
    fresh = exact._fails_24h(fp, at)
    later = exact._fails_24h(fp, at + timedelta(hours=6))

    builder = OutcomeBuilder(store, BotSettings(count_cache_s=300), None, time.time)
    store.calls = 0
    assert builder._fails_24h(fp, at) == fresh
    assert builder._fails_24h(fp, at + timedelta(seconds=120)) == fresh  # reused
    assert builder._fails_24h(fp, at - timedelta(seconds=60)) == fresh  # an older report, still within the window
    assert store.calls == 1
    # Past the window: counted again, for the new report's own 24 h.
    assert builder._fails_24h(fp, at + timedelta(hours=6)) == later
    assert store.calls == 2


def test_no_cache_counts_for_every_report(store: CountingStore) -> None:
    fp, at = _busiest(store)
    builder = OutcomeBuilder(store, BotSettings(count_cache_s=0), None, time.time)
    store.calls = 0
    first = builder._fails_24h(fp, at)
    assert builder._fails_24h(fp, at + timedelta(seconds=1)) == first
    assert store.calls == 2


def test_other_bugs_and_changed_queries_are_counted_apart() -> None:
    counts = _RecentCounts()
    made: list[str] = []

    def count(value: int, name: str) -> int:
        made.append(name)
        return value

    assert counts.get(("1", "message:a"), 1000.0, 300, lambda: count(3, "a")) == 3
    assert counts.get(("2", "message:b"), 1000.0, 300, lambda: count(5, "b")) == 5
    # The same bug, its query edited (a reload): a different question.
    assert counts.get(("1", "message:c"), 1000.0, 300, lambda: count(7, "c")) == 7
    assert counts.get(("1", "message:a"), 1200.0, 300, lambda: count(99, "again")) == 3
    assert made == ["a", "b", "c"]


def test_a_failed_count_is_not_kept() -> None:
    counts = _RecentCounts()
    assert counts.get("k", 0.0, 300, lambda: None) is None
    assert counts.get("k", 1.0, 300, lambda: 4) == 4

    def boom() -> int:
        raise RuntimeError("outage")

    with pytest.raises(RuntimeError):
        counts.get("other", 0.0, 300, boom)
    assert counts.get("other", 0.0, 300, lambda: 2) == 2  # nothing left pending


@pytest.mark.timeout(60)
def test_concurrent_reports_count_a_bug_once() -> None:
    counts = _RecentCounts()
    started = threading.Event()
    release = threading.Event()
    made = 0

    def slow() -> int:
        nonlocal made
        made += 1
        started.set()
        release.wait(30)
        return 11

    results: list[int | None] = []
    first = threading.Thread(target=lambda: results.append(counts.get("bug", 500.0, 300, slow)))
    first.start()
    assert started.wait(30)
    waiters = [threading.Thread(target=lambda: results.append(counts.get("bug", 510.0, 300, slow))) for _ in range(3)]
    for t in waiters:
        t.start()
    release.set()
    for t in [first, *waiters]:
        t.join(30)
    assert results == [11, 11, 11, 11]
    assert made == 1


def test_old_entries_are_dropped() -> None:
    counts = _RecentCounts()
    for i in range(200):
        counts.get(f"bug{i}", float(i * 1000), 300, lambda: 1)
    assert len(counts._done) <= 65
