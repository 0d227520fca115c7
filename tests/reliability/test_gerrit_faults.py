"""The bot against a Gerrit whose SSH connection drops, refuses, or answers late.

In-process bot fed by the real :class:`~elastic_recheck.adapters.gerrit.stream.GerritEventStream`
(gerritlib/paramiko over a real SSH connection) and commenting with the real
:class:`~elastic_recheck.adapters.gerrit.reviewer.GerritReviewer`, both against the asyncssh
Gerrit fake; logs live in the fake cluster (:class:`LogCluster`). Events that
Gerrit stores while the stream is down are put in the fake's ``gerrit query``
answers, as Gerrit would return them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.adapters.gerrit.reviewer import GerritReviewer
from elastic_recheck.adapters.gerrit.stream import GerritEventStream
from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.errors import GerritError
from elastic_recheck.core.fingerprints import Fingerprint
from tests.fixtures.gerrit_server import FakeGerritRest, FakeGerritServer, gerrit_config_for
from tests.reliability.helpers import IndexedBuild, Job, LogCluster, failure_event, gerrit_store, wait_for

FP = Fingerprint(bug="1945311", query='message:"SSHTimeout" AND message:"via SSH timed out"')
LINE = "tempest.lib.exceptions.SSHTimeout: Connection to the 172.24.5.10 via SSH timed out."


def _uuid(n: int) -> str:
    return f"{n:032x}"


class LiveBot:
    """Stream -> bot -> reviewer, in threads, like ``elastic-recheck bot``."""

    def __init__(
        self, tmp: Path, server: FakeGerritServer, cluster: LogCluster, review_timeout: float = 10.0, confirm_after: float = 60.0,
        deadline: float = 60.0, refused_grace: float = 3600.0, rest: FakeGerritRest | None = None,
    ) -> None:
        cfg = gerrit_config_for(server, rest)
        self.stream = GerritEventStream.from_config(cfg, backoff_initial=0.2, backoff_max=1.0, catch_up_margin=5.0)
        self.reviewer = GerritReviewer.from_config(cfg, timeout=review_timeout)
        self.backend = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
        self.state = BotState(tmp / "state.db")
        self.bot = Bot(self.backend, [FP], self.state, BotSettings(deadline_s=deadline, first_poll_s=0.05, workers=2, confirm_after_s=confirm_after,
                                                                  refused_grace_s=refused_grace),
                       reviewer=self.reviewer)
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            event = self.stream.get(timeout=0.2)
            if event is not None:
                self.bot.submit(event)

    def start(self) -> LiveBot:
        self.bot.start()
        self.stream.start()
        self._pump.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.stream.stop()
        self._pump.join(5)
        self.bot.stop()
        self.reviewer.close()
        self.state.close()
        self.backend.close()


@pytest.fixture
def cluster() -> Iterator[LogCluster]:
    with LogCluster() as c:
        for n in range(1, 10):
            c.index(IndexedBuild(_uuid(n), hits={FP.query: LINE}))
        yield c


@pytest.fixture
def live(tmp_path: Path, gerrit_server: FakeGerritServer, cluster: LogCluster) -> Iterator[Any]:
    made: list[LiveBot] = []

    def make(**kw: Any) -> LiveBot:
        bot = LiveBot(tmp_path, gerrit_server, cluster, **kw).start()
        made.append(bot)
        return bot

    yield make
    for b in made:
        b.stop()


def _reviews_per_change(server: FakeGerritServer) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in server.reviews:
        out[r.change] = out.get(r.change, 0) + 1
    return out


def test_dropped_and_refused_ssh_recovers_the_gap_with_gerrit_query(
    gerrit_server: FakeGerritServer, live: Any
) -> None:
    stored: list[dict[str, Any]] = []
    gerrit_server.query_results = gerrit_store(gerrit_server, stored)
    bot = live()
    assert gerrit_server.wait_for_streams(1, 15)

    first = failure_event(2001, 1, [Job("tempest-full", _uuid(1))])
    stored.append(first)
    gerrit_server.emit(first)
    assert wait_for(lambda: len(gerrit_server.reviews) == 1, 20)

    # Gerrit goes away: the connection drops and new ones are refused for a while.
    gerrit_server.refuse_connections(True)
    gerrit_server.drop_connections()
    assert wait_for(lambda: not bot.stream.connected, 10)
    gap = [failure_event(2002 + i, 1, [Job("tempest-full", _uuid(2 + i))]) for i in range(3)]
    stored.extend(gap)  # reported by Zuul while we could not listen
    assert wait_for(lambda: bot.stream.stats.connect_failures >= 3, 15)
    gerrit_server.refuse_connections(False)

    assert wait_for(lambda: len(gerrit_server.reviews) == 4, 30), _reviews_per_change(gerrit_server)
    assert bot.stream.stats.caught_up >= 3
    # Backoff grew and stayed capped.
    backoffs = bot.stream.stats.backoffs
    assert backoffs[:3] == [0.2, 0.4, 0.8] and max(backoffs) <= 1.0
    # Live again: a new event after the gap is handled too, and a re-sent one is not re-commented.
    assert gerrit_server.wait_for_streams(1, 15)
    later = failure_event(2005, 1, [Job("tempest-full", _uuid(5))])
    stored.append(later)
    gerrit_server.emit(later)
    gerrit_server.emit(first)
    assert wait_for(lambda: len(gerrit_server.reviews) == 5, 20)
    time.sleep(0.5)
    assert _reviews_per_change(gerrit_server) == {str(c): 1 for c in range(2001, 2006)}
    assert all(r.labels == [] for r in gerrit_server.reviews)  # never a vote


def test_review_refused_for_a_while_is_retried_and_posted_once(gerrit_server: FakeGerritServer, live: Any) -> None:
    bot = live()
    assert gerrit_server.wait_for_streams(1, 15)
    gerrit_server.review_error = (1, "fatal: internal server error\n")
    key = bot.bot.submit(failure_event(2101, 3, [Job("tempest-full", _uuid(6))]))
    assert key is not None
    assert wait_for(lambda: bot.state.get(key) is not None and (bot.state.get(key) or _NO).attempts >= 2, 20)
    assert gerrit_server.reviews == []
    gerrit_server.review_error = None
    assert wait_for(lambda: bot.state.status(key) == "done", 90)
    assert len(gerrit_server.reviews) == 1


def test_review_refused_for_good_is_given_up_after_the_grace_and_the_bot_goes_on(
    gerrit_server: FakeGerritServer, live: Any
) -> None:
    """A change deleted or a permission missing: Gerrit refuses every time. The
    bot retries until ``refused_grace_s`` past the deadline, then marks the
    event failed (nothing posted, not retried forever) and keeps working."""
    bot = live(deadline=0.5, refused_grace=1.5)
    assert gerrit_server.wait_for_streams(1, 15)
    gerrit_server.review_error = (1, "fatal: change 2151 not found\n")
    key = bot.bot.submit(failure_event(2151, 1, [Job("tempest-full", _uuid(8))]))
    assert key is not None
    assert wait_for(lambda: bot.state.status(key) == "failed", 30)
    assert gerrit_server.reviews == []
    assert bot.bot.stats.get("failed") == 1
    refused = [c for c in gerrit_server.commands if c.startswith("gerrit review")]
    assert len(refused) >= 2, "refusals inside the grace period are retried"
    gerrit_server.review_error = None
    other = bot.bot.submit(failure_event(2152, 1, [Job("tempest-full", _uuid(9))]))
    assert other is not None
    assert wait_for(lambda: bot.state.status(other) == "done", 30)
    assert [r.change for r in gerrit_server.reviews] == ["2152"]


def test_review_answered_after_the_client_timeout_is_not_posted_twice(gerrit_server: FakeGerritServer, live: Any) -> None:
    """``gerrit review`` takes longer than the reviewer's timeout: Gerrit stores
    the comment, the bot sees a timeout. It asks Gerrit (``gerrit query
    --comments``) before posting again, and finds it."""
    gerrit_server.query_results = gerrit_store(gerrit_server, [])
    bot = live(review_timeout=0.5, confirm_after=2.5)
    assert gerrit_server.wait_for_streams(1, 15)
    gerrit_server.review_delay = 1.5
    key = bot.bot.submit(failure_event(2201, 1, [Job("tempest-full", _uuid(7))]))
    assert key is not None
    assert wait_for(lambda: len(gerrit_server.reviews) >= 1, 20)
    gerrit_server.review_delay = 0.0
    assert wait_for(lambda: bot.state.status(key) == "done", 20)
    time.sleep(1.0)
    assert len(gerrit_server.reviews) == 1, "the same comment was posted twice"
    assert any("--comments" in c and "change:2201" in c for c in gerrit_server.commands)


def test_rest_review_answered_after_the_client_timeout_is_not_posted_twice(
    gerrit_server: FakeGerritServer, gerrit_rest: FakeGerritRest, live: Any
) -> None:
    """The same ambiguity over REST: the POST times out but Gerrit stores the
    comment; the bot reads the change's messages back before posting again."""
    bot = live(review_timeout=0.5, confirm_after=2.5, rest=gerrit_rest)
    assert bot.reviewer.via == "rest"
    assert gerrit_server.wait_for_streams(1, 15)
    gerrit_rest.delay = 1.5
    key = bot.bot.submit(failure_event(2251, 2, [Job("tempest-full", _uuid(7))]))
    assert key is not None
    assert wait_for(lambda: len(gerrit_rest.reviews) >= 1, 20)
    gerrit_rest.delay = 0.0
    assert wait_for(lambda: bot.state.status(key) == "done", 20)
    time.sleep(1.0)
    assert len(gerrit_rest.reviews) == 1, "the same comment was posted twice"
    assert ("GET", "/a/changes/2251/messages") in gerrit_rest.requests
    assert bot.state.sending(key, "gerrit") is None


def test_rest_error_answer_is_reposted_without_asking(
    gerrit_server: FakeGerritServer, gerrit_rest: FakeGerritRest, live: Any
) -> None:
    """Gerrit answering HTTP 500 stored nothing: the next attempt posts at once
    (no ``confirm_after`` wait, no read-back), exactly one comment."""
    bot = live(confirm_after=3600, rest=gerrit_rest)
    assert gerrit_server.wait_for_streams(1, 15)
    gerrit_rest.fail_status = 500
    key = bot.bot.submit(failure_event(2261, 1, [Job("tempest-full", _uuid(6))]))
    assert key is not None
    assert wait_for(lambda: any(m == "POST" for m, _ in gerrit_rest.requests), 20)
    gerrit_rest.fail_status = None
    assert wait_for(lambda: bot.state.status(key) == "done", 30)
    assert len(gerrit_rest.reviews) == 1
    assert not any(m == "GET" for m, _ in gerrit_rest.requests)


def test_review_that_never_reached_gerrit_is_posted_after_checking(gerrit_server: FakeGerritServer, live: Any) -> None:
    """Gerrit refuses connections when the comment is due: the attempt fails
    (the bot cannot tell whether it was sent). Once Gerrit is back the bot
    asks, does not find it, and posts it once."""
    gerrit_server.query_results = gerrit_store(gerrit_server, [])
    bot = live(confirm_after=0.5)
    assert gerrit_server.wait_for_streams(1, 15)
    gerrit_server.refuse_connections(True)
    gerrit_server.drop_connections()
    key = bot.bot.submit(failure_event(2301, 4, [Job("tempest-full", _uuid(8))]))
    assert key is not None
    assert wait_for(lambda: (bot.state.get(key) or _NO).attempts >= 3, 20)
    assert bot.state.sending(key, "gerrit") is not None
    gerrit_server.refuse_connections(False)
    assert wait_for(lambda: bot.state.status(key) == "done", 30)
    time.sleep(0.5)
    assert [(r.change, r.patchset) for r in gerrit_server.reviews] == [("2301", "4")]
    assert any("--comments" in c and "change:2301" in c for c in gerrit_server.commands)  # it asked first
    assert bot.state.sending(key, "gerrit") is None


class _No:
    attempts = 0


_NO = _No()


def test_posted_matches_our_account_patch_set_and_text_only(gerrit_server: FakeGerritServer) -> None:
    message = 'I noticed Zuul failed:\n\n- job: "quoted" $(rm -rf) `x`\n'
    gerrit_server.query_results = [{
        "number": 2401, "project": "openstack/nova",
        "comments": [
            {"timestamp": 1, "reviewer": {"username": "someone-else"}, "message": "Patch Set 1:\n\n" + message},
            {"timestamp": 2, "reviewer": {"username": gerrit_server.user}, "message": "Patch Set 2:\n\n" + message},
            {"timestamp": 3, "reviewer": {"username": gerrit_server.user}, "message": "Patch Set 1:\n\nsomething else"},
        ],
    }]
    with GerritReviewer.from_config(gerrit_config_for(gerrit_server), timeout=10) as reviewer:
        assert reviewer.posted(2401, 2, message) is True
        assert reviewer.posted(2401, 1, message) is False  # only someone else's copy on patch set 1
        assert reviewer.posted(2401, 3, message) is False
        gerrit_server.query_error = (1, "fatal: not permitted\n")
        with pytest.raises(GerritError):
            reviewer.posted(2401, 2, message)
    query = [c for c in gerrit_server.commands if c.startswith("gerrit query")][0]
    assert "change:2401" in query and "--comments" in query
