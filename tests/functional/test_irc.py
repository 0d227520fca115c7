"""The IRC notifier against a real ngircd, observed by a second real client."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from elastic_recheck.adapters.irc.client import IrcNotifier, IrcSettings
from elastic_recheck.core.irc_lines import IRC_LINE_LIMIT
from tests.fixtures.ircd import IrcLine, IrcTestClient, NgircdServer

BOT = "RecheckBot"
ClientFactory = Callable[..., IrcTestClient]


@pytest.fixture
def notifier() -> Iterator[Callable[..., IrcNotifier]]:
    made: list[IrcNotifier] = []

    def make(server: NgircdServer, start: bool = True, **kw: Any) -> IrcNotifier:
        options: dict[str, Any] = {"nick": BOT, "channels": ("#qa",), "rate": 0, "reconnect_min": 0.2,
                                   "regain_interval": 0.3}
        options.update(kw)
        if server.tls:
            options.setdefault("use_ssl", True)
            options.setdefault("ssl_context", server.client_ssl_context())
        n = IrcNotifier(IrcSettings(server=server.host, port=server.port, **options))
        made.append(n)
        if start:
            n.start()
        return n

    try:
        yield make
    finally:
        for n in made:
            n.stop(timeout=5)


def from_bot(nick: str = BOT) -> Callable[[IrcLine], bool]:
    return lambda ln: ln.command == "PRIVMSG" and ln.source.startswith(nick)


def test_messages_arrive_exactly(ngircd: NgircdServer, irc_client: ClientFactory,
                                 notifier: Callable[..., IrcNotifier]) -> None:
    watcher = irc_client(ngircd, "watcher", "#qa", "#openstack-nova")
    bot = notifier(ngircd, channels=("#qa", "openstack-nova"))
    assert bot.wait_registered(10)
    sent = [
        ("#qa", ("openstack/nova change: https://review.opendev.org/c/openstack/nova/+/1 failed because of: "
                "tempest-full: https://bugs.launchpad.net/bugs/1253896 (Guests fail to boot)")),
        ("openstack-nova", "second message to the nova channel, with ünïcödé"),
        ("#qa", "third"),
    ]
    for channel, text in sent:
        bot.send(channel, text)
    got = watcher.wait_for(from_bot(), count=3)
    assert [(ln.target, ln.text) for ln in got] == [
        ("#qa", sent[0][1]), ("#openstack-nova", sent[1][1]), ("#qa", "third")
    ]
    assert {ln.source for ln in got} == {BOT}
    assert bot.wait_idle(5)
    assert bot.stats.sent_messages == 3


def test_long_multibyte_message_is_split_and_reassembles(ngircd: NgircdServer, irc_client: ClientFactory,
                                                         notifier: Callable[..., IrcNotifier]) -> None:
    watcher = irc_client(ngircd, "watcher", "#qa")
    bot = notifier(ngircd)
    assert bot.wait_registered(10)
    words = ["naïve", "日本語のテキスト", "🙂🙃", "Grüße", "ĉapelo", "x" * 7]
    text = " ".join(words[i % len(words)] for i in range(160))
    text += " " + "€" * 300 + " end"  # a 900-byte run without spaces must be cut, between characters
    assert len(text.encode()) > 3 * IRC_LINE_LIMIT
    bot.send("#qa", text)
    pieces = watcher.wait_for(lambda ln: ln.command == "PRIVMSG" and ln.text.endswith(" end"), what="last piece")
    pieces = watcher.privmsgs("#qa")
    assert rejoin(text, [p.text for p in pieces]) == text
    assert len(pieces) >= 4
    raw = [line for line in watcher.raw if " PRIVMSG #qa :" in line]
    assert len(raw) == len(pieces)
    for line in raw:
        # As relayed to us, with the server-added prefix and CRLF.
        assert len(line.encode("utf-8")) + 2 <= IRC_LINE_LIMIT
    # Most pieces use the room they have: splitting is not needlessly small.
    assert sum(len(line.encode()) for line in raw[:-1]) / (len(raw) - 1) > IRC_LINE_LIMIT * 0.6
    # Where the text had spaces, pieces break between words (words stay whole).
    for piece in pieces[:4]:
        assert piece.text.split(" ")[-1] in words and piece.text.split(" ")[0] in words


def rejoin(original: str, pieces: list[str]) -> str:
    """Glue pieces back: a split at a space dropped exactly that space."""
    out, pos = "", 0
    for piece in pieces:
        assert original.startswith(piece, pos), f"piece {piece[:20]!r}... not at {pos}"
        out += piece
        pos += len(piece)
        if original[pos:pos + 1] == " ":
            out += " "
            pos += 1
    return out


def test_identifies_with_nickserv_without_logging_the_password(
    ngircd: NgircdServer, irc_client: ClientFactory, notifier: Callable[..., IrcNotifier],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    nickserv = irc_client(ngircd, "NickServ")
    bot = notifier(ngircd, password="s3cret-pw")
    assert bot.wait_registered(10)
    got = nickserv.wait_for(lambda ln: ln.command == "PRIVMSG" and ln.target == "NickServ")
    assert got[0].source == BOT
    assert got[0].text == "identify s3cret-pw"
    bot.send("#qa", "after identify")
    watcher = irc_client(ngircd, "watcher", "#qa")
    bot.send("#qa", "seen by watcher")
    watcher.wait_for(lambda ln: ln.text == "seen by watcher")
    assert "irc.client" in {r.name for r in caplog.records}  # raw lines were logged...
    assert "s3cret-pw" not in caplog.text  # ...but never the password
    assert "identify ***" in caplog.text


def test_nick_in_use_is_recovered(ngircd: NgircdServer, irc_client: ClientFactory,
                                  notifier: Callable[..., IrcNotifier]) -> None:
    squatter = irc_client(ngircd, BOT, "#qa")
    watcher = irc_client(ngircd, "watcher", "#qa")
    bot = notifier(ngircd)
    assert bot.wait_registered(10)
    assert bot.nickname == BOT + "_"
    bot.send("#qa", "while using the fallback nick")
    got = watcher.wait_for(lambda ln: ln.text == "while using the fallback nick")
    assert got[0].source == BOT + "_"
    squatter.change_nick("somebody")
    watcher.wait_for(lambda ln: ln.command == "NICK" and ln.source == BOT + "_" and ln.text == BOT, timeout=10,
                     what="bot regains its nick")
    bot.send("#qa", "with the real nick")
    got = watcher.wait_for(lambda ln: ln.text == "with the real nick")
    assert got[0].source == BOT


@pytest.mark.timeout(180)
def test_reconnects_after_server_restart_and_flushes_queue(ngircd: NgircdServer, irc_client: ClientFactory,
                                                           notifier: Callable[..., IrcNotifier]) -> None:
    # First retry >= 0.8 s after a disconnect: a new watcher joins well before the bot is back.
    bot = notifier(ngircd, reconnect_min=1.0)
    watcher = irc_client(ngircd, "watcher", "#qa")
    assert bot.wait_registered(10)
    bot.send("#qa", "before restart")
    watcher.wait_for(lambda ln: ln.text == "before restart")

    ngircd.restart()
    watcher = irc_client(ngircd, "watcher2", "#qa")
    bot.send("#qa", "after restart")
    watcher.wait_for(lambda ln: ln.text == "after restart", timeout=15)
    assert bot.stats.connects == 2 and bot.stats.disconnects == 1

    ngircd.stop()
    bot.send("#qa", "queued while the server was down")  # must not block (the timeout guards it)
    time.sleep(0.3)
    ngircd.start()
    watcher = irc_client(ngircd, "watcher3", "#qa")
    watcher.wait_for(lambda ln: ln.text == "queued while the server was down", timeout=15)
    bot.send("#qa", "after reconnect")
    got = watcher.wait_for(from_bot(), count=2)
    assert [ln.text for ln in got] == ["queued while the server was down", "after reconnect"]
    assert bot.stats.connects >= 3


def test_burst_is_paced(ngircd: NgircdServer, irc_client: ClientFactory,
                        notifier: Callable[..., IrcNotifier]) -> None:
    watcher = irc_client(ngircd, "watcher", "#qa")
    rate, burst, count = 10.0, 2, 8
    bot = notifier(ngircd, rate=rate, burst=burst)
    assert bot.wait_registered(10)
    time.sleep(0.3)  # let the bucket refill after the JOIN
    sent_at = time.monotonic()
    for i in range(count):
        bot.send("#qa", f"paced {i}")
    got = watcher.wait_for(from_bot(), count=count)
    assert [ln.text for ln in got] == [f"paced {i}" for i in range(count)]
    # The server adds no delay (MaxPenaltyTime = 0); without pacing these
    # arrive within a millisecond. With it, count - burst lines wait 1/rate each,
    # so the last one cannot arrive before that much time after the first send.
    # (Measured from the send, not between arrivals: a loaded machine may hold
    # the watcher back and then hand it several lines at once, which only
    # ever makes this span longer.)
    assert got[-1].at - sent_at >= (count - burst) / rate * 0.95


def test_full_queue_drops_oldest(ngircd: NgircdServer, irc_client: ClientFactory,
                                 notifier: Callable[..., IrcNotifier], caplog: pytest.LogCaptureFixture) -> None:
    watcher = irc_client(ngircd, "watcher", "#qa")
    bot = notifier(ngircd, start=False, queue_size=3)
    for i in range(5):
        bot.send("#qa", f"msg {i}")
    assert bot.stats.dropped == 2
    assert "IRC queue full" in caplog.text
    bot.start()
    got = watcher.wait_for(from_bot(), count=3)
    assert [ln.text for ln in got] == ["msg 2", "msg 3", "msg 4"]


@pytest.mark.timeout(60)
def test_send_does_not_block_without_server(notifier: Callable[..., IrcNotifier], tmp_path: Any) -> None:
    from tests.fixtures.ircd import free_port

    class Down:
        host, port, tls = "127.0.0.1", free_port(), False  # nothing listens there

    bot = notifier(Down, queue_size=100)  # type: ignore[arg-type]
    for i in range(2000):  # returns at once (the timeout guards a blocking send)
        bot.send("#qa", f"message {i}")
    assert bot.pending == 100
    assert not bot.registered


def test_tls_and_quit_on_stop(ngircd_tls: NgircdServer, irc_client: ClientFactory,
                              notifier: Callable[..., IrcNotifier]) -> None:
    watcher = irc_client(ngircd_tls, "watcher", "#qa")
    bot = notifier(ngircd_tls)
    assert bot.wait_registered(10)
    bot.send("#qa", "over TLS")
    watcher.wait_for(lambda ln: ln.text == "over TLS")
    bot.stop(flush_timeout=2)
    watcher.wait_for(lambda ln: ln.command == "QUIT" and ln.source == BOT, what="bot QUIT")


def test_routed_events_reach_the_subscribed_channels(ngircd: NgircdServer, irc_client: ClientFactory,
                                                     notifier: Callable[..., IrcNotifier]) -> None:
    """The bot's path: recheckwatchbot.yaml -> route() -> send() -> the right channels."""
    from elastic_recheck.core.channels import BugRef, IrcEvent, parse_channel_config, route

    channels = parse_channel_config({"channels": {
        "openstack-nova": {"projects": ["nova"], "events": ["positive"]},
        "openstack-qa": {"projects": ["all"], "events": ["positive", "negative"]},
    }})
    nova = irc_client(ngircd, "nova-dev", "#openstack-nova")
    qa = irc_client(ngircd, "qa-dev", "#openstack-qa")
    bot = notifier(ngircd, channels=tuple(channels.names))
    url = "https://review.opendev.org/c/openstack/nova/+/812345"
    bug = BugRef("1253896", "https://bugs.launchpad.net/bugs/1253896", "SSH to guest fails", ("nova", "neutron"))
    events = [
        IrcEvent("positive", "openstack/nova", url, "gate", {"tempest-full": [bug]}),
        IrcEvent("negative", "openstack/nova", url, "gate", {"nova-grenade": []}),
        IrcEvent("negative", "openstack/nova", url, "check", {"nova-grenade": []}),  # not an IRC pipeline
    ]
    for event in events:
        for channel, message in route(channels, event):
            bot.send(channel, message)
    got = qa.wait_for(from_bot(), count=2)
    assert [ln.text for ln in got] == [
        (f"openstack/nova change: {url} failed because of: tempest-full: https://bugs.launchpad.net/bugs/1253896 "
        "(SSH to guest fails)"),
        f"openstack/nova change: {url} failed nova-grenade in the gate queue with an unrecognized error",
    ]
    nova_got = nova.wait_for(from_bot())
    assert nova_got[0].text == got[0].text
    # A sentinel sent last: once it arrives, anything routed before it has arrived too.
    bot.send("#openstack-qa", "sentinel")
    bot.send("#openstack-nova", "sentinel")
    qa.wait_for(lambda ln: ln.text == "sentinel")
    nova.wait_for(lambda ln: ln.text == "sentinel")
    assert len(nova.privmsgs()) == 2 and len(qa.privmsgs()) == 3


def test_reclaim_nick_off_never_ghosts_or_regains(ngircd: NgircdServer, irc_client: ClientFactory,
                                                  notifier: Callable[..., IrcNotifier]) -> None:
    """A short-lived poster sharing the bot's nick must not take it from the running bot."""
    nickserv = irc_client(ngircd, "NickServ")
    running_bot = irc_client(ngircd, BOT, "#qa")
    watcher = irc_client(ngircd, "watcher", "#qa")
    poster = notifier(ngircd, password="s3cret-pw", reclaim_nick=False)
    assert poster.wait_registered(10)
    assert poster.nickname == BOT + "_"
    poster.send("#qa", "from the poster")
    assert watcher.wait_for(lambda ln: ln.text == "from the poster")[0].source == BOT + "_"
    # It identified, but asked for no GHOST; with the nick free, it does not take it.
    assert nickserv.wait_for(lambda ln: ln.command == "PRIVMSG")[0].text == "identify s3cret-pw"
    running_bot.change_nick("bot-away")
    time.sleep(1.0)  # three regain intervals
    assert poster.nickname == BOT + "_"
    assert [ln.text for ln in nickserv.privmsgs()] == ["identify s3cret-pw"]
    assert not [ln for ln in watcher.lines if ln.command == "NICK" and ln.source == BOT + "_"]


def test_irc_works_with_socket_numbers_above_select_limit(ngircd: NgircdServer, irc_client: ClientFactory,
                                                          notifier: Callable[..., IrcNotifier]) -> None:
    """A bot process holding many files gets IRC sockets numbered >= 1024, which
    select() refuses ("filedescriptor out of range"); the reactor must still work."""
    import os
    import resource

    watcher = irc_client(ngircd, "watcher", "#qa")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1300
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"the open-files limit ({hard}) is below {want}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    filler: list[int] = []
    try:
        while not filler or filler[-1] < 1100:
            filler.append(os.open(os.devnull, os.O_RDONLY))
        bot = notifier(ngircd)
        assert bot.wait_registered(10)
        bot.send("#qa", "above the select limit")
        got = watcher.wait_for(from_bot(), count=1)
        assert [ln.text for ln in got] == ["above the select limit"]
        assert bot._conn is not None and bot._conn.socket.fileno() >= 1024
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
