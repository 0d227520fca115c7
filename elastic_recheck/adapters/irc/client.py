"""IRC notifier: posts the bot's messages to IRC without ever blocking the bot.

Usage (the bot)::

    channels = channel_config_from_config(config)          # elastic_recheck.core.channels
    notifier = IrcNotifier.from_config(config, channels.names)   # None when [ircbot] server is empty
    notifier.start()
    for channel, message in route(channels, event):
        notifier.send(channel, message)                    # returns at once, thread-safe
    ...
    notifier.stop()

The connection lives in its own thread, driven by the ``irc`` library's
reactor. :meth:`IrcNotifier.send` only appends to a bounded in-memory queue
(the oldest message is dropped, with a warning, when it is full), so an IRC
outage never blocks or slows the caller; queued messages are sent after the
(re)connection. ``send(..., done=callback)`` calls back once a message was
written (the bot's journal forgets it then; see :mod:`elastic_recheck.adapters.sqlite.bot_state`).

What the thread does:

* connects (TLS optional, connect timeout), sends ``PASS <server_password>``
  first when the server needs one (``[ircbot] server_password``, as the
  original bot did), registers, identifies with
  NickServ (``PRIVMSG NickServ :identify <pass>``) when a password is set;
* if the nick is in use, registers as ``nick_`` (``nick__``, ...), asks
  NickServ to GHOST the old session when it has a password, and tries to
  regain the nick every ``regain_interval`` seconds (neither with
  ``reclaim_nick=False``: it then keeps the fallback nick);
* joins the configured channels (and any channel :meth:`send` is called for);
* splits long messages into lines that fit the 512-byte protocol limit as
  relayed by the server (``:nick!user@host PRIVMSG #chan :`` + text + CRLF),
  at spaces when possible and never inside a UTF-8 character;
* paces every line it sends through a token bucket (``rate`` lines/s, bursts
  of ``burst``) so the server's flood protection never kicks the bot;
* detects dead connections (no data for ``ping_timeout`` s; it PINGs after
  ``ping_interval`` s of silence) and reconnects with exponential backoff
  (``reconnect_min`` doubling to ``reconnect_max``, with jitter).

The NickServ and server passwords are never logged: this module never logs
them and a logging filter masks them in the ``irc.client`` debug log of raw lines.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import irc.client
from jaraco.stream import buffer as jaraco_buffer

from elastic_recheck.core.channels import channel_name, clean_text
from elastic_recheck.core.irc_lines import TokenBucket, line_budget, split_message
from elastic_recheck.core.log_filters import RedactSecrets

if TYPE_CHECKING:
    from elastic_recheck.core.config import Config
    from elastic_recheck.ports.chat import Sender

LOG = logging.getLogger(__name__)

#: Called once a queued message was written to the server or given up.
Done = Callable[[], None] | None


def _call(done: Done) -> None:
    if done is None:
        return
    try:
        done()
    except Exception:  # a journal failing (disk full) must not stop IRC
        LOG.exception("IRC: recording a sent message failed")


#: Replies that mean "this channel cannot be joined/used"; messages for it are
#: dropped (with a warning) instead of waiting forever.
JOIN_FAILURES = ("bannedfromchan", "inviteonlychan", "channelisfull", "badchannelkey", "nosuchchannel",
                 "toomanychannels", "needreggednick")
#: Seconds a registered connection must last before a disconnect resets the backoff.
STABLE_AFTER = 60.0
NICK_TAKEN = ("nicknameinuse", "unavailresource", "nickcollision")


@dataclass(frozen=True)
class IrcSettings:
    """Connection and pacing settings (see the module docstring)."""

    server: str
    port: int = 6667
    nick: str = "RecheckWatchBot"
    password: str = field(default="", repr=False)
    #: Sent as ``PASS`` before registering (servers that need a password).
    server_password: str = field(default="", repr=False)
    use_ssl: bool = False
    channels: tuple[str, ...] = ()
    #: TLS context (default: system CAs, hostname verified).
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    rate: float = 1.0
    burst: int = 4
    queue_size: int = 1000
    connect_timeout: float = 15.0
    send_timeout: float = 30.0
    reconnect_min: float = 2.0
    reconnect_max: float = 300.0
    register_timeout: float = 60.0
    regain_interval: float = 60.0
    ping_interval: float = 90.0
    ping_timeout: float = 240.0
    join_wait: float = 10.0
    realname: str = "elastic-recheck bot"
    #: GHOST the nick's other session and regain the nick when it is in use.
    #: Off for short-lived posters (``stale --irc``) that share the bot's
    #: ``[ircbot]`` settings: they must never kick the running bot off its nick.
    reclaim_nick: bool = True

    @classmethod
    def from_config(cls, config: Config, channels: Iterable[str] = (), **overrides: Any) -> IrcSettings | None:
        """``[ircbot] server port nick pass server_password ssl``; None when ``server`` is empty (IRC off)."""
        server = config.ircbot.server.strip()
        if not server:
            return None
        return cls(
            server=server,
            port=config.ircbot.port,
            nick=config.ircbot.nick,
            password=config.ircbot.password,
            server_password=config.ircbot.server_password,
            use_ssl=config.ircbot.ssl,
            channels=tuple(channel_name(c) for c in channels),
            **overrides,
        )


class _LenientLineBuffer(jaraco_buffer.DecodingLineBuffer):  # type: ignore[misc]
    """Other people's messages may not be UTF-8: replace, don't crash."""

    errors = "replace"


@dataclass
class IrcStats:
    sent_lines: int = 0
    sent_messages: int = 0
    dropped: int = 0
    connects: int = 0
    disconnects: int = 0


def readable_now(sock: Any) -> bool:
    """Whether ``sock`` has data (or EOF) to read, without waiting; ``poll()``,
    as ``select()`` refuses descriptors from 1024 up."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


class PollReactor(irc.client.Reactor):  # type: ignore[misc]  # the irc library is untyped
    """The irc library's reactor, waiting with ``poll()`` instead of ``select()``.

    ``select()`` refuses file descriptors from 1024 up (FD_SETSIZE): a bot
    process holding many files and sockets (store connections, HTTP pools)
    would get a new IRC socket numbered above that and lose IRC for good,
    one "filedescriptor out of range" error per reconnect. ``poll()`` has no
    such limit.
    """

    def process_once(self, timeout: float = 0) -> None:
        sockets = self.sockets
        if sockets:
            poller = select.poll()
            by_fd: dict[int, Any] = {}
            for sock in sockets:
                fd = sock.fileno()
                if fd >= 0:
                    by_fd[fd] = sock
                    poller.register(fd, select.POLLIN | select.POLLPRI)
            ready = poller.poll(timeout * 1000)
            self.process_data([by_fd[fd] for fd, _ in ready if fd in by_fd])
        else:
            time.sleep(timeout)
        self.process_timeout()


class IrcNotifier:
    """Thread-safe, non-blocking IRC poster. See the module docstring."""

    def __init__(self, settings: IrcSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.stats = IrcStats()
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[str, str, Done]] = collections.deque()
        self._wanted: list[str] = []  # channels to join, in order
        for c in settings.channels:
            self._want(channel_name(c))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # the irc library logs every raw line (PASS and NickServ identify included) at DEBUG
        self._redact = RedactSecrets([p for p in (settings.password, settings.server_password) if p])
        self._bucket = TokenBucket(settings.rate, settings.burst, clock)
        # Reactor-thread state (only touched by the reactor thread).
        self._reactor: irc.client.Reactor | None = None
        self._conn: irc.client.ServerConnection | None = None
        self._registered = False
        self._registered_at = 0.0
        self._connected_at = 0.0
        self._nick_tries = 0
        self._joined: set[str] = set()
        self._join_sent: dict[str, float] = {}
        self._join_failed: set[str] = set()
        self._user_host: str | None = None
        self._control: collections.deque[tuple[str, str]] = collections.deque()  # (raw line, log text)
        # (channel, piece, done): ``done`` rides on a message's last piece
        self._outbox: collections.deque[tuple[str, str, Done]] = collections.deque()
        self._last_rx = 0.0
        self._last_ping = 0.0
        self._last_regain = 0.0
        self._backoff = settings.reconnect_min
        self._next_connect = 0.0
        self._drop_warned_at = 0
        self._idle = threading.Event()
        self._idle.set()
        self._state = threading.Condition()

    @classmethod
    def from_config(cls, config: Config, channels: Iterable[str] = (), **overrides: Any) -> IrcNotifier | None:
        """A notifier for ``[ircbot]``, or None when IRC is off (no server)."""
        settings = IrcSettings.from_config(config, channels, **overrides)
        return cls(settings) if settings else None

    # --- public API (any thread) -----------------------------------------

    def start(self) -> None:
        """Start the connection thread (idempotent)."""
        if self._thread is not None:
            return
        logging.getLogger("irc.client").addFilter(self._redact)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="irc-notifier", daemon=True)
        self._thread.start()

    def send(self, channel: str, message: str, done: Done = None) -> None:
        """Queue ``message`` for ``channel``; never blocks, never raises on IRC trouble.

        ``done`` is called (from the IRC thread) once the message's last line
        was written to the server, or when the message is given up (queue
        full, channel cannot be joined): the caller's journal may forget it.
        """
        text = clean_text(message).strip()
        if not text:
            _call(done)
            return
        name = channel_name(channel)
        with self._lock:
            self._want(name)
            if len(self._queue) >= self.settings.queue_size:
                dropped_channel, _, dropped_done = self._queue.popleft()
                _call(dropped_done)
                self.stats.dropped += 1
                if self.stats.dropped - self._drop_warned_at >= 100 or self._drop_warned_at == 0:
                    self._drop_warned_at = self.stats.dropped
                    LOG.warning(
                        "IRC queue full (%d messages): dropped the oldest message (for %s); %d dropped so far",
                        self.settings.queue_size, dropped_channel, self.stats.dropped,
                    )
            self._queue.append((name, text, done))
            self._idle.clear()

    def stop(self, flush_timeout: float = 0.0, timeout: float = 10.0) -> None:
        """Stop the thread (after up to ``flush_timeout`` s of flushing the queue) and QUIT."""
        if flush_timeout > 0:
            self.wait_idle(flush_timeout)
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                LOG.warning("IRC thread did not stop within %.1f s", timeout)
        logging.getLogger("irc.client").removeFilter(self._redact)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued message has been written to the socket."""
        return self._idle.wait(timeout)

    def wait_registered(self, timeout: float) -> bool:
        """Wait until the bot is connected and registered (for tests and start-up logs)."""
        deadline = time.monotonic() + timeout
        with self._state:
            while not self._registered:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._state.wait(remaining)
            return True

    @property
    def registered(self) -> bool:
        return self._registered

    @property
    def nickname(self) -> str | None:
        conn = self._conn
        return conn.get_nickname() if conn is not None and self._registered else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._outbox)

    # --- reactor thread ----------------------------------------------------

    def _want(self, name: str) -> None:
        if name.lower() not in {c.lower() for c in self._wanted}:
            self._wanted.append(name)

    def _set_registered(self, value: bool) -> None:
        with self._state:
            self._registered = value
            self._state.notify_all()

    def _run(self) -> None:
        reactor = PollReactor()
        self._reactor = reactor
        for event in ("welcome", "join", "nick", "disconnect", "kick", "error", "all_raw_messages",
                      "cannotsendtochan", "erroneusnickname", *NICK_TAKEN, *JOIN_FAILURES):
            reactor.add_global_handler(event, self._on_event, -10)
        try:
            while not self._stop.is_set():
                try:
                    self._step(reactor)
                except Exception:  # keep the thread alive whatever happens
                    LOG.exception("IRC notifier error")
                    self._drop_connection("internal error")
                    time.sleep(0.5)
        finally:
            conn = self._conn
            if conn is not None and conn.is_connected():
                with contextlib.suppress(Exception):
                    conn.disconnect("elastic-recheck stopping")
            self._set_registered(False)

    def _step(self, reactor: irc.client.Reactor) -> None:
        now = self._clock()
        conn = self._conn
        if conn is None or not conn.is_connected():
            if now >= self._next_connect:
                self._connect(reactor)
            else:
                time.sleep(min(0.1, self._next_connect - now))
            return
        reactor.process_once(timeout=0.05)
        if self._conn is None or not self._conn.is_connected():
            return
        self._housekeeping(now)
        if self._registered:
            self._pump()

    def _connect_socket(self, address: tuple[str, int]) -> socket.socket:
        s = self.settings
        sock = socket.create_connection(address, timeout=s.connect_timeout)
        try:
            if s.use_ssl:
                ctx = s.ssl_context or ssl.create_default_context()
                sock = ctx.wrap_socket(sock, server_hostname=address[0])
            # select() tells us when to read; the timeout bounds a stuck write.
            sock.settimeout(s.send_timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def _connect(self, reactor: irc.client.Reactor) -> None:
        s = self.settings
        if self._conn is None:
            self._conn = reactor.server()
            self._conn.buffer_class = _LenientLineBuffer
        self._reset_connection_state()
        LOG.info("connecting to IRC %s:%d%s as %s", s.server, s.port, " (TLS)" if s.use_ssl else "", s.nick)
        try:
            self._conn.connect(s.server, s.port, s.nick, password=s.server_password or None,
                               username=s.nick.lower()[:10] or "bot",
                               ircname=s.realname, connect_factory=self._connect_socket)
        except irc.client.ServerConnectionError as exc:
            self._schedule_reconnect(f"cannot connect: {exc}")
            return
        self.stats.connects += 1
        now = self._clock()
        self._connected_at = now
        self._last_rx = now

    def _reset_connection_state(self) -> None:
        self._set_registered(False)
        self._nick_tries = 0
        self._joined.clear()
        self._join_sent.clear()
        self._join_failed.clear()
        self._control.clear()
        self._user_host = None

    def _schedule_reconnect(self, reason: str) -> None:
        delay = self._backoff * random.uniform(0.8, 1.2)
        self._next_connect = self._clock() + delay
        LOG.warning("IRC %s:%d: %s; reconnecting in %.1f s", self.settings.server, self.settings.port, reason, delay)
        self._backoff = min(self.settings.reconnect_max, self._backoff * 2)

    def _drop_connection(self, reason: str) -> None:
        conn = self._conn
        if conn is not None and conn.is_connected():
            with contextlib.suppress(Exception):
                conn.disconnect(reason)  # fires the "disconnect" event
        else:
            self._set_registered(False)

    def _housekeeping(self, now: float) -> None:
        s = self.settings
        conn = self._conn
        assert conn is not None
        if not self._registered:
            if now - self._connected_at > s.register_timeout:
                self._drop_connection("registration timed out")
            return
        silent = now - self._last_rx
        if silent > s.ping_timeout:
            LOG.warning("IRC server silent for %.0f s", silent)
            self._drop_connection("ping timeout")
            return
        if silent > s.ping_interval and now - self._last_ping > s.ping_interval:
            self._last_ping = now
            conn.ping(conn.get_server_name() or s.server)
        if s.reclaim_nick and conn.get_nickname() != s.nick and now - self._last_regain >= s.regain_interval:
            self._last_regain = now
            LOG.info("trying to regain nick %s", s.nick)
            self._control.append((f"NICK {s.nick}", f"NICK {s.nick}"))
        with self._lock:
            wanted = list(self._wanted)
        for channel in wanted:
            key = channel.lower()
            if key in self._joined or key in self._join_failed:
                continue
            sent = self._join_sent.get(key)
            if sent is None or now - sent > max(60.0, s.join_wait * 6):
                self._join_sent[key] = now
                self._control.append((f"JOIN {channel}", f"JOIN {channel}"))

    def _still_connected(self) -> bool:
        """Read what the server sent (an ERROR, EOF) before writing a line.

        A line written to a socket the server has already closed is lost
        without an error; reading first catches a server that went away
        since the last poll.
        """
        conn = self._conn
        for _ in range(10):  # bounded: a chatty server cannot starve sending
            if conn is None or not conn.is_connected() or conn.socket is None:
                return False
            if not readable_now(conn.socket):
                break
            conn.process_data()
        return bool(conn is not None and conn.is_connected())

    def _pump(self) -> None:
        """Send control lines, then message pieces, as far as the token bucket allows."""
        conn = self._conn
        assert conn is not None
        while self._control and self._still_connected() and self._bucket.try_take():
            raw, shown = self._control.popleft()
            LOG.debug("IRC -> %s", shown)
            conn.send_raw(raw)
            if not conn.is_connected():
                return
        if self._control:
            return
        while True:
            if not self._outbox and not self._next_message():
                break
            if not self._still_connected() or not self._bucket.try_take():
                return
            channel, piece, done = self._outbox.popleft()
            conn.privmsg(channel, piece)
            if not conn.is_connected():
                # The write failed: keep the piece for the next connection.
                self._outbox.appendleft((channel, piece, done))
                return
            self.stats.sent_lines += 1
            _call(done)
        with self._lock:
            if not self._queue and not self._outbox:
                self._idle.set()

    def _next_message(self) -> bool:
        """Move the next sendable message into the outbox (split in lines)."""
        now = self._clock()
        conn = self._conn
        assert conn is not None
        with self._lock:
            if not self._queue:
                return False
            channel, text, done = self._queue[0]
            key = channel.lower()
            if key in self._join_failed:
                self._queue.popleft()
                _call(done)
                self.stats.dropped += 1
                LOG.warning("dropping IRC message for %s: cannot join it", channel)
                return True
            if key not in self._joined:
                sent = self._join_sent.get(key)
                if sent is None or now - sent < self.settings.join_wait:
                    return False  # wait for the JOIN (keeps the order of messages)
                # Joined or not, try to send (channels without +n accept it).
            self._queue.popleft()
        budget = line_budget(conn.get_nickname(), channel, self._user_host)
        pieces = split_message(text, budget)
        if not pieces:
            _call(done)
        for i, piece in enumerate(pieces):
            self._outbox.append((channel, piece, done if i == len(pieces) - 1 else None))
        self.stats.sent_messages += 1
        LOG.info("IRC %s: %s", channel, text)
        return True

    # --- events --------------------------------------------------------------

    def _on_event(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        kind = event.type
        if kind == "all_raw_messages":
            self._last_rx = self._clock()
            return
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(conn, event)
        elif kind in NICK_TAKEN:
            self._on_nick_taken(conn, event)
        elif kind in JOIN_FAILURES:
            channel = event.arguments[0] if event.arguments else "?"
            reason = event.arguments[-1] if event.arguments else kind
            LOG.warning("cannot join %s: %s", channel, reason)
            self._join_failed.add(channel.lower())

    def _on_welcome(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        s = self.settings
        nick = conn.get_nickname()
        LOG.info("registered on IRC %s as %s", conn.get_server_name(), nick)
        self._registered_at = self._clock()
        if s.password:
            LOG.info("identifying with NickServ")
            self._control.append((f"PRIVMSG NickServ :identify {s.password}", "PRIVMSG NickServ :identify ***"))
            if nick != s.nick and s.reclaim_nick:
                self._control.append((f"PRIVMSG NickServ :GHOST {s.nick} {s.password}",
                                      f"PRIVMSG NickServ :GHOST {s.nick} ***"))
        # Regain the nick after one interval (time for a ghost to go).
        self._last_regain = self._clock()
        self._set_registered(True)
        self._housekeeping(self._clock())  # queue the JOINs right away

    def _on_nick_taken(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        if self._registered:
            LOG.info("nick %s still in use", self.settings.nick)
            return
        self._nick_tries += 1
        nick = self.settings.nick + "_" * self._nick_tries
        if self._nick_tries > 5:
            nick = f"{self.settings.nick[:20]}{random.randint(100, 999)}"
        LOG.warning("nick in use; registering as %s and regaining %s later", nick, self.settings.nick)
        conn.nick(nick)

    def _on_erroneusnickname(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        LOG.error("IRC server rejects the nick %r: %s", self.settings.nick, event.arguments[-1:] or "")
        if not self._registered:
            self._on_nick_taken(conn, event)

    def _on_nick(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        new = event.target
        if event.source.nick == new:
            return
        if new == conn.get_nickname() and new == self.settings.nick:
            LOG.info("regained nick %s", new)
            if self.settings.password:
                self._control.append((f"PRIVMSG NickServ :identify {self.settings.password}",
                                      "PRIVMSG NickServ :identify ***"))

    def _on_join(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        if event.source.nick != conn.get_nickname():
            return
        channel = event.target
        self._joined.add(channel.lower())
        self._user_host = f"{event.source.user}@{event.source.host}"
        LOG.info("joined %s", channel)

    def _on_kick(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        if event.arguments and event.arguments[0] == conn.get_nickname():
            LOG.warning("kicked from %s by %s: %s", event.target, event.source.nick, event.arguments[1:])
            self._joined.discard(event.target.lower())
            self._join_sent[event.target.lower()] = self._clock()  # rejoin after the usual wait

    def _on_cannotsendtochan(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        LOG.warning("cannot send to %s: %s", event.arguments[0] if event.arguments else "?",
                    event.arguments[-1] if event.arguments else "")

    def _on_error(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        # ERROR is the server closing the link: stop writing to it now (lines
        # written after it are lost) instead of waiting for the EOF.
        LOG.warning("IRC server closes the link: %s", event.target or event.arguments)
        self._drop_connection("server closed the link")

    def _on_disconnect(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        self.stats.disconnects += 1
        was_registered = self._registered
        self._set_registered(False)
        if self._stop.is_set():
            LOG.info("disconnected from IRC")
            return
        # A connection that worked for a while resets the backoff; a server
        # that accepts and drops us at once keeps backing off.
        if was_registered and self._clock() - self._registered_at > STABLE_AFTER:
            self._backoff = self.settings.reconnect_min
        self._schedule_reconnect(f"disconnected ({event.arguments[0] if event.arguments else ''})")


if TYPE_CHECKING:

    def _port(notifier: IrcNotifier) -> Sender:
        """mypy checks the adapter against the port."""
        return notifier.send
