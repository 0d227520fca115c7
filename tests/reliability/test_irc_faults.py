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

from elastic_recheck.bot import Bot, BotSettings
from elastic_recheck.channels import parse_channel_config
from elastic_recheck.irc import IrcNotifier, IrcSettings
from elastic_recheck.notify import IrcReporter
from elastic_recheck.search.elastic import ClusterSettings, ElasticBackend
from elastic_recheck.state import BotState
from tests.fixtures.ircd import IrcTestClient, NgircdServer
from tests.reliability.helpers import FPS, IndexedBuild, Job, LogCluster, RecordingReviewer, failure_event, wait_for

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


def test_irc_server_down_and_restarted(setup: Any, ngircd: NgircdServer, irc_client: Callable[..., IrcTestClient]) -> None:
    bot, reviewer, notifier = setup
    watcher = irc_client(ngircd, "watcher", CHANNEL)
    assert notifier.wait_registered(15)
    time.sleep(0.5)  # the bot's JOIN
    bot.submit(failure_event(4001, 1, [Job("tempest-full", f"{1:032x}")]))
    assert wait_for(lambda: _announced(watcher, 4001) == 1, 15)

    ngircd.stop()
    t0 = time.monotonic()
    for change, n in ((4002, 2), (4003, 3)):
        bot.submit(failure_event(change, 1, [Job("tempest-full", f"{n:032x}")]))
    assert bot.wait_idle(15)
    assert time.monotonic() - t0 < 5  # Gerrit comments did not wait for IRC
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
