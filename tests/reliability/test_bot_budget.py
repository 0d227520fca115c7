"""A stuck evaluation cannot stop the bot: per-attempt budget, hostile fingerprints, SIGTERM.

Issue 20: a backtracking regex fingerprint held a bot worker for more than
15 minutes and the bot then ignored SIGTERM. Here

* in process, a backend that never answers for one build: that event is
  given up after ``attempt_budget_s`` (marked failed, never commented, even
  when the backend answers later), the next event is commented, and
  ``stop()`` returns;
* as a subprocess on the sample's embedded store, with the issue's hostile
  fingerprints (catastrophic regexps and wildcards, a file the YAML reader
  refuses) next to the real ones: the bot comments on two reports and exits
  0 on SIGTERM.

Outcomes are asserted, never durations; timeouts only guard against hangs.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.search_types import QuerySpec, SearchResult
from elastic_recheck.ingest.jsonl import ingest_jsonl
from tests.reliability import helpers as h

pytestmark = pytest.mark.timeout(180)

A = "a" * 32
B = "b" * 32


class StuckFor:
    """The backend, except that any multi-search about ``uuid`` blocks until released."""

    def __init__(self, inner: Any, uuid: str) -> None:
        self.inner = inner
        self.uuid = uuid
        self.release = threading.Event()
        self.stuck = threading.Event()

    def msearch(self, specs: Sequence[QuerySpec], size: int = 1) -> list[SearchResult]:
        if any(s.filters.build_uuid == self.uuid for s in specs):
            self.stuck.set()
            self.release.wait()
        return list(self.inner.msearch(specs, size=size))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_attempt_over_budget_is_given_up_and_the_next_event_is_served(tmp_path: Path) -> None:
    with h.LogCluster() as cluster:
        cluster.index(h.IndexedBuild(A, hits={h.FPS[0].query: "libvirt.libvirtError: End of file while reading data"}))
        cluster.index(h.IndexedBuild(B, hits={h.FPS[1].query: "E: Failed to fetch https://mirror/x Connection timed out"}))
        inner = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
        backend = StuckFor(inner, A)
        reviewer = h.RecordingReviewer()
        state = BotState(tmp_path / "state.db")
        settings = BotSettings(deadline_s=60, first_poll_s=0.05, workers=1, attempt_budget_s=1.0, count_recent=False)
        bot = Bot(backend, h.FPS, state, settings, reviewer=reviewer)
        bot.start()
        try:
            stuck_key = bot.submit(h.failure_event(2001, 1, [h.Job("tempest-full", A)]))
            assert backend.stuck.wait(30)
            next_key = bot.submit(h.failure_event(2002, 1, [h.Job("tempest-full", B)]))
            assert stuck_key and next_key
            # one worker: the second event is only served because the first was given up
            assert h.wait_for(lambda: len(reviewer.reviews) == 1, 60)
            assert reviewer.reviews[0][0] == "2002"
            assert state.status(stuck_key) == "failed"
            assert bot.stats["over_budget"] == 1
            backend.release.set()  # the abandoned attempt finishes now: it must not comment
            assert h.wait_for(lambda: not any(t.name.startswith("er-attempt-") for t in threading.enumerate()), 30)
            assert [r[0] for r in reviewer.reviews] == ["2002"]
            assert state.status(stuck_key) == "failed"
        finally:
            backend.release.set()
            bot.stop()
            state.close()
            inner.close()


def test_stop_does_not_wait_for_a_stuck_attempt(tmp_path: Path) -> None:
    with h.LogCluster() as cluster:
        cluster.index(h.IndexedBuild(A, hits={h.FPS[0].query: "libvirt.libvirtError: End of file while reading data"}))
        inner = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
        backend = StuckFor(inner, A)
        state = BotState(tmp_path / "state.db")
        bot = Bot(backend, h.FPS, state, BotSettings(deadline_s=60, first_poll_s=0.05, workers=1, attempt_budget_s=3600), reviewer=h.RecordingReviewer())
        bot.start()
        key = bot.submit(h.failure_event(2003, 1, [h.Job("tempest-full", A)]))
        assert backend.stuck.wait(30)
        stopper = threading.Thread(target=bot.stop)
        stopper.start()
        stopper.join(60)
        stopped = not stopper.is_alive()
        backend.release.set()
        state_status = state.status(key) if key else None
        state.close()
        inner.close()
        assert stopped, "stop() waited for the stuck attempt"
        assert state_status == "pending"  # resumes at the next start


HOSTILE = {
    "9000001.yaml": "query: 'message:/([a-f0-9]+)+z/'\n",
    "9000002.yaml": "query: 'message:/.*.*.*.*.*.*.*.*.*.*.*.*x/'\n",
    "9000003.yaml": "query: 'message:*a*a*a*a*a*b'\n",
    "9000004.yaml": "query: 'message:/(a|b)*a(a|b){14}/'\n",  # refused as Lucene refuses it
    "9000005.yaml": "query: 'message:x'\nnotes: 2024-13-45\n",  # the YAML reader refuses the value
    "9000006.yaml": "query: 'message:x'\nsuppress-graph: [" + ",".join(["*a"] * 3) + "]\na: &a [x]\n",
}


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("budget-store") / "store.db"
    store = EmbeddedStore(path)
    ingest_jsonl(store, h.REPO / "sample" / "logs.jsonl.gz")
    # terms that made the backtracking engines explode, in the same store
    store.add_documents([
        {"message": "0a1b2c3d4e5f" * 12 + "!", "build_uuid": "f" * 32, "build_name": "hostile", "filename": "x.txt"},
        {"message": "a" * 120 + " " + "y" * 200, "build_uuid": "f" * 32, "build_name": "hostile", "filename": "x.txt"},
    ])
    store.close()
    return path


def test_bot_with_hostile_fingerprints_serves_events_and_stops_on_sigterm(
    tmp_path: Path, sample_store: Path, gerrit_server: Any, gerrit_ssh_keys: Any
) -> None:
    from tests.reliability.test_bot_crash import BUG, _builds_with_bug, _event

    queries = tmp_path / "queries"
    shutil.copytree(h.REPO / "queries", queries)
    for name, text in HOSTILE.items():
        (queries / name).write_text(text)
    store = tmp_path / "store.db"
    shutil.copy(sample_store, store)
    cfg = h.bot_config(tmp_path, gerrit_server, gerrit_ssh_keys, "readiness_timeout = 60\nattempt_budget = 60\n")
    bot = h.BotProcess(cfg, store, tmp_path / "state.db", tmp_path / "bot.log", extra=("--no-irc", "--queries", str(queries)))
    try:
        assert gerrit_server.wait_for_streams(1, 60), bot.output()
        for n, build in enumerate(_builds_with_bug(BUG, 2)):
            gerrit_server.emit(_event(build, created=time.time() + n))
        assert h.wait_for(lambda: len(gerrit_server.reviews) == 2, 120), bot.output()
        assert bot.proc.poll() is None
    finally:
        rc = bot.stop()
    out = bot.output()
    assert rc == 0, out
    assert all(f"bugs/{BUG}" in (r.message or "") for r in gerrit_server.reviews)
    assert "9000004.yaml" in out and "would result in more than 10000 states" in out
    assert "9000005.yaml:2:" in out and "9000006.yaml" in out
    assert "Traceback" not in out
