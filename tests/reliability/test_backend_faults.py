"""The bot against a search cluster that is down, slow, failing or partial.

In-process :class:`~elastic_recheck.bot.service.Bot` with the real Elasticsearch
adapter (real ``elasticsearch`` client, real sockets) talking to the fake
cluster of ``tests/fixtures/es_server.py`` driven by :class:`LogCluster`.
Each test checks the three promises: events are retried while the backend is
unhealthy, the outcome is delivered once (a timeout notice when the deadline
passes, else the comment), and nothing crashes (the same bot keeps serving
later events).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.bot.notify import IrcReporter
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.channels import parse_channel_config
from tests.reliability.helpers import (
    FPS,
    REPO,
    BotProcess,
    IndexedBuild,
    Job,
    LogCluster,
    RecordingReviewer,
    actions,
    bot_config,
    failure_event,
    recording_sender,
    wait_for,
)

A = "a" * 32
B = "b" * 32


@pytest.fixture
def cluster() -> Iterator[LogCluster]:
    with LogCluster() as c:
        c.index(IndexedBuild(A, hits={FPS[0].query: "libvirt.libvirtError: End of file while reading data: Input/output error"}))
        c.index(IndexedBuild(B, hits={FPS[1].query: "E: Failed to fetch https://mirror/x Connection timed out"}))
        yield c


class Harness:
    def __init__(self, tmp: Path, cluster: LogCluster, deadline: float, client_timeout: float = 2.0) -> None:
        self.backend = ElasticBackend(ClusterSettings(url=cluster.url, timeout=client_timeout, retries=0, backoff=0.01))
        self.reviewer = RecordingReviewer()
        self.irc: list[tuple[str, str]] = []
        channels = parse_channel_config({"channels": {"openstack-qa": {"projects": ["all"], "events": ["positive", "negative"]}}})
        self.actions_path = tmp / "actions.jsonl"
        self.out = self.actions_path.open("w")
        self.state = BotState(tmp / "state.db")
        settings = BotSettings(deadline_s=deadline, first_poll_s=0.05, workers=2, count_recent=True)
        self.bot = Bot(
            self.backend, FPS, self.state, settings, reviewer=self.reviewer,
            notifier=IrcReporter(channels, recording_sender(self.irc)), actions_out=self.out,
        )
        self.bot.start()

    def close(self) -> None:
        self.bot.stop()
        self.out.close()
        self.state.close()
        self.backend.close()

    def attempts(self, key: str) -> int:
        row = self.state._conn.execute("SELECT attempts FROM bot_events WHERE key = ?", (key,)).fetchone()
        return int(row[0])


@pytest.fixture
def harness_factory(tmp_path: Path, cluster: LogCluster) -> Iterator[Any]:
    made: list[Harness] = []

    def make(deadline: float, **kw: Any) -> Harness:
        h = Harness(tmp_path, cluster, deadline, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def _no_internal_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r.getMessage() for r in caplog.records if "unexpected error" in r.getMessage()]
    assert bad == [], bad


def test_outage_longer_than_the_deadline_gives_one_timeout_notice_then_recovers(
    cluster: LogCluster, harness_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="elastic_recheck")
    h = harness_factory(deadline=1.5)
    cluster.outage = True
    key = h.bot.submit(failure_event(1001, 1, [Job("tempest-full", A)]))
    assert key is not None
    assert h.bot.wait_idle(20)
    # Retried while down (every readiness check got a 503), then gave up at the deadline.
    assert h.attempts(key) >= 3
    assert sum(1 for _, status in cluster.answered if status == 503) >= 3
    assert h.state.status(key) == "timeout"
    lines = actions(h.actions_path)
    assert len(lines) == 1 and "backend unavailable" in lines[0]["timeout"]
    assert "503" in lines[0]["timeout"]
    assert h.reviewer.reviews == []  # no half-informed comment
    assert len(h.irc) == 1 and "#openstack-qa" == h.irc[0][0]  # the timeout notice
    assert h.bot.stats["timeouts"] == 1

    # The backend comes back: the same bot process serves the next event normally.
    cluster.outage = False
    key2 = h.bot.submit(failure_event(1002, 1, [Job("tempest-full", A)]))
    assert key2 is not None and h.bot.wait_idle(20)
    assert h.state.status(key2) == "done"
    assert len(h.reviewer.reviews) == 1 and "1893618" in h.reviewer.reviews[0][2]
    # The timed-out event is not re-reported when Gerrit sends it again.
    assert h.bot.submit(failure_event(1001, 1, [Job("tempest-full", A)])) is None
    _no_internal_errors(caplog)


def test_outage_shorter_than_the_deadline_is_invisible(cluster: LogCluster, harness_factory: Any) -> None:
    h = harness_factory(deadline=30.0)
    cluster.outage = True
    key = h.bot.submit(failure_event(1003, 2, [Job("tempest-full", A), Job("grenade", B)]))
    assert key is not None
    assert wait_for(lambda: h.attempts(key) >= 2, 10)
    assert h.reviewer.reviews == []
    cluster.outage = False
    assert h.bot.wait_idle(30)
    assert h.state.status(key) == "done"
    assert len(h.reviewer.reviews) == 1
    message = h.reviewer.reviews[0][2]
    assert "1893618" in message and "1927411" in message
    assert len(actions(h.actions_path)) == 1


def test_slow_backend_times_out_client_side_and_is_retried(cluster: LogCluster, harness_factory: Any) -> None:
    h = harness_factory(deadline=30.0, client_timeout=0.3)
    cluster.cluster.delay = 1.0  # every answer comes after the client gave up
    key = h.bot.submit(failure_event(1004, 1, [Job("tempest-full", A)]))
    assert key is not None
    assert wait_for(lambda: h.attempts(key) >= 2, 15)
    assert h.state.status(key) == "pending"
    cluster.cluster.delay = 0.0
    assert h.bot.wait_idle(30)
    assert h.state.status(key) == "done" and len(h.reviewer.reviews) == 1


def test_a_few_5xx_answers_are_absorbed(cluster: LogCluster, harness_factory: Any) -> None:
    h = harness_factory(deadline=30.0)
    cluster.fail_next = 4  # readiness, msearch and count requests all hit some of these
    key = h.bot.submit(failure_event(1005, 1, [Job("tempest-full", A)]))
    assert key is not None and h.bot.wait_idle(30)
    assert h.state.status(key) == "done"
    assert len(h.reviewer.reviews) == 1 and "1893618" in h.reviewer.reviews[0][2]
    assert sum(1 for _, s in cluster.answered if s == 503) == 4


def test_partial_readiness_answer_waits_for_the_logs(
    cluster: LogCluster, harness_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The shard holding the build's documents failed during the readiness
    check: the cluster answers 200 with ``_shards.failed`` and no file names.
    The bot waits (and times out) rather than classifying."""
    caplog.set_level(logging.WARNING, logger="elastic_recheck")
    h = harness_factory(deadline=1.0)
    cluster.partial = {"_search"}
    key = h.bot.submit(failure_event(1006, 1, [Job("tempest-full", A)]))
    assert key is not None and h.bot.wait_idle(20)
    assert h.reviewer.reviews == []
    assert h.state.status(key) == "timeout"
    assert "partial answer" in caplog.text


def test_partial_classification_answer_is_not_reported_as_unrecognized(
    cluster: LogCluster, harness_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The build's console log is indexed, but the shard holding the matching
    line fails during the multi-search: no hit comes back, flagged partial.
    Telling the developer "no known bug" from that answer would be wrong; the
    bot must retry until the answer is complete."""
    caplog.set_level(logging.WARNING, logger="elastic_recheck")
    h = harness_factory(deadline=30.0)
    cluster.partial = {"_msearch"}
    key = h.bot.submit(failure_event(1007, 1, [Job("tempest-full", A)]))
    assert key is not None
    assert wait_for(lambda: h.attempts(key) >= 2, 10), "a partial multi-search answer was not retried"
    assert h.reviewer.reviews == []
    cluster.partial = set()
    assert h.bot.wait_idle(30)
    assert len(h.reviewer.reviews) == 1 and "1893618" in h.reviewer.reviews[0][2]


def test_bot_process_on_a_cluster_outage_past_the_deadline(
    tmp_path: Path, cluster: LogCluster, gerrit_server: Any, gerrit_ssh_keys: Any
) -> None:
    """``elastic-recheck bot`` with ``[data_source] backend = elasticsearch``:
    the cluster answers 503 for longer than the readiness timeout. The event
    is retried, then a timeout notice is written; the process survives and
    comments on the next event once the cluster is back."""
    from elastic_recheck.core.fingerprint_loading import load_fingerprints

    fps = {fp.bug: fp for fp in load_fingerprints(REPO / "queries").fingerprints}
    line = "tempest.lib.exceptions.SSHTimeout: Connection to the 172.24.5.10 via SSH timed out."
    for uuid in (A, B):
        cluster.index(IndexedBuild(uuid, hits={fps["1945311"].query: line}))
    cfg = bot_config(
        tmp_path, gerrit_server, gerrit_ssh_keys,
        f"readiness_timeout = 2\n[data_source]\nbackend = elasticsearch\nes_url = {cluster.url}\ntimeout = 2\nretries = 0\n",
    )
    out = tmp_path / "actions.jsonl"
    cluster.outage = True
    bot = BotProcess(cfg, tmp_path / "unused.db", tmp_path / "state.db", tmp_path / "bot.log",
                     extra=("--no-irc", "--actions-out", str(out)))
    try:
        assert gerrit_server.wait_for_streams(1, 30), bot.output()
        gerrit_server.emit(failure_event(1101, 1, [Job("tempest-full", A)]))
        assert wait_for(lambda: len(actions(out)) == 1, 30), bot.output()
        assert "backend unavailable" in actions(out)[0]["timeout"]
        assert gerrit_server.reviews == []
        retried = sum(1 for _, status in cluster.answered if status == 503)
        assert retried >= 3
        cluster.outage = False
        gerrit_server.emit(failure_event(1102, 1, [Job("tempest-full", B)]))
        assert wait_for(lambda: len(gerrit_server.reviews) == 1, 30), bot.output()
        assert bot.proc.poll() is None
    finally:
        rc = bot.stop()
    assert rc == 0, bot.output()
    assert "https://bugs.launchpad.net/bugs/1945311" in (gerrit_server.reviews[0].message or "")
    assert "Traceback" not in bot.output()
    assert "timeouts: 1" in bot.output()
