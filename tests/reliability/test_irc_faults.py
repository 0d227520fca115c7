"""The bot while its IRC server (a real ngircd) goes down and restarts.

Gerrit comments must not wait for IRC, IRC notices of events processed while
the server was down are delivered after the reconnect, and each event is
announced once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.adapters.irc.client import IrcNotifier, IrcSettings
from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.bot.notify import IrcReporter
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.channels import parse_channel_config
from tests.fixtures.ircd import IrcTestClient, NgircdServer
from tests.reliability.helpers import (
    FPS,
    IndexedBuild,
    Job,
    LogCluster,
    RecordingReviewer,
    failure_event,
    recording_sender,
    wait_for,
)

CHANNEL = "#openstack-qa"


@pytest.fixture
def setup(tmp_path: Path, ngircd: NgircdServer) -> Iterator[Any]:
    with LogCluster() as cluster:
        for n in range(1, 6):
            cluster.index(IndexedBuild(f"{n:032x}", hits={FPS[0].query: "libvirtError: End of file while reading data"}))
        notifier = IrcNotifier(IrcSettings(server=ngircd.host, port=ngircd.port, nick="er-bot", channels=(CHANNEL,),
                                           reconnect_min=0.3, reconnect_max=1.0, rate=50.0, burst=20))
        notifier.start()
        channels = parse_channel_config({"channels": {CHANNEL: {"projects": ["all"], "events": ["positive", "negative"]}}})
        backend = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
        state = BotState(tmp_path / "state.db")
        reviewer = RecordingReviewer()
        bot = Bot(backend, FPS, state, BotSettings(deadline_s=30, first_poll_s=0.05, workers=2, count_recent=False),
                  reviewer=reviewer, notifier=IrcReporter(channels, notifier.send))
        bot.start()
        try:
            yield bot, reviewer, notifier
        finally:
            bot.stop()
            notifier.stop()
            state.close()
            backend.close()


def _announced(watcher: IrcTestClient, change: int) -> int:
    return sum(1 for ln in watcher.privmsgs(CHANNEL) if f"/+/{change}" in ln.text)


@pytest.mark.timeout(180)
def test_irc_server_down_and_restarted(setup: Any, ngircd: NgircdServer, irc_client: Callable[..., IrcTestClient]) -> None:
    bot, reviewer, notifier = setup
    watcher = irc_client(ngircd, "watcher", CHANNEL)
    assert notifier.wait_registered(15)
    time.sleep(0.5)  # the bot's JOIN
    bot.submit(failure_event(4001, 1, [Job("tempest-full", f"{1:032x}")]))
    assert wait_for(lambda: _announced(watcher, 4001) == 1, 15)

    ngircd.stop()
    for change, n in ((4002, 2), (4003, 3)):
        bot.submit(failure_event(change, 1, [Job("tempest-full", f"{n:032x}")]))
    assert bot.wait_idle(15)  # Gerrit comments did not wait for IRC (the server is still down)
    assert sorted(r[0] for r in reviewer.reviews) == ["4001", "4002", "4003"]

    ngircd.start()
    watcher = irc_client(ngircd, "watcher2", CHANNEL)
    assert wait_for(lambda: _announced(watcher, 4002) == 1 and _announced(watcher, 4003) == 1, 20)

    ngircd.restart(down_for=0.5)
    watcher = irc_client(ngircd, "watcher3", CHANNEL)
    bot.submit(failure_event(4004, 1, [Job("tempest-full", f"{4:032x}")]))
    assert wait_for(lambda: _announced(watcher, 4004) == 1, 20)
    time.sleep(0.5)
    assert [_announced(watcher, c) for c in (4002, 4003, 4004)] == [0, 0, 1]  # nothing replayed twice
    assert notifier.stats.dropped == 0
    assert notifier.stats.connects >= 3
    assert bot.state.irc_pending() == []  # every journaled notice was sent


def test_notices_queued_when_the_process_stops_are_sent_after_the_restart(
    tmp_path: Path, ngircd: NgircdServer, irc_client: Callable[..., IrcTestClient]
) -> None:
    """IRC is down while events are processed; the process goes away with the
    notices still queued in memory. They are journaled in the state file, so
    the next process sends each of them once."""
    channels = parse_channel_config({"channels": {CHANNEL: {"projects": ["all"], "events": ["positive", "negative"]}}})
    settings = dict(server=ngircd.host, port=ngircd.port, nick="er-bot", channels=(CHANNEL,),
                    reconnect_min=0.3, reconnect_max=1.0, rate=50.0, burst=20)
    with LogCluster() as cluster:
        for n in range(1, 4):
            cluster.index(IndexedBuild(f"{n:032x}", hits={FPS[0].query: "libvirtError: End of file while reading data"}))
        backend = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
        ngircd.stop()
        state = BotState(tmp_path / "state.db")
        first = IrcNotifier(IrcSettings(**settings))  # type: ignore[arg-type]
        first.start()
        bot = Bot(backend, FPS, state, BotSettings(deadline_s=30, first_poll_s=0.05, workers=2, count_recent=False),
                  reviewer=RecordingReviewer(), notifier=IrcReporter(channels, first.send))
        bot.start()
        for change, n in ((4101, 1), (4102, 2), (4103, 3)):
            bot.submit(failure_event(change, 1, [Job("tempest-full", f"{n:032x}")]))
        assert bot.wait_idle(15)
        assert first.pending == 3
        bot.stop()
        first.stop()  # no flush: the in-memory queue is gone, as after kill -9
        state.close()
        assert len(BotState(tmp_path / "state.db").irc_pending()) == 3

        ngircd.start()
        watcher = irc_client(ngircd, "watcher", CHANNEL)
        state = BotState(tmp_path / "state.db")
        second = IrcNotifier(IrcSettings(**settings))  # type: ignore[arg-type]
        second.start()
        bot = Bot(backend, FPS, state, BotSettings(deadline_s=30, first_poll_s=0.05, workers=2, count_recent=False),
                  reviewer=RecordingReviewer(), notifier=IrcReporter(channels, second.send))
        try:
            bot.start()
            assert wait_for(lambda: all(_announced(watcher, c) == 1 for c in (4101, 4102, 4103)), 20)
            assert wait_for(lambda: state.irc_pending() == [], 5)
            # the events themselves were done: nothing was classified or announced again
            bot.submit(failure_event(4101, 1, [Job("tempest-full", f"{1:032x}")]))
            assert bot.wait_idle(10)
            time.sleep(0.5)
            assert [_announced(watcher, c) for c in (4101, 4102, 4103)] == [1, 1, 1]
        finally:
            bot.stop()
            second.stop()
            state.close()
            backend.close()


def test_journaled_notices_too_old_are_dropped(tmp_path: Path) -> None:
    state = BotState(tmp_path / "state.db")
    state.claim_irc("old", [("#qa", "stale news")], now=time.time() - 7 * 3600)
    state.claim_irc("new", [("#qa", "fresh news")], now=time.time() - 60)
    sent: list[tuple[str, str]] = []
    channels = parse_channel_config({"channels": {CHANNEL: {"projects": ["all"], "events": ["negative"]}}})
    with LogCluster() as cluster:
        backend = ElasticBackend(ClusterSettings(url=cluster.url, timeout=5, retries=0, backoff=0.01))
        bot = Bot(backend, FPS, state, BotSettings(), notifier=IrcReporter(channels, recording_sender(sent)))
        assert bot.resume_irc() == 1
        backend.close()
    assert sent == [("#qa", "fresh news")]
    assert state.irc_pending() == []  # the fresh one was sent, the stale one given up
    state.close()
