"""Gerrit's event stream: ``gerrit stream-events`` over SSH, with reconnect and catch-up.

:class:`GerritEventStream` runs ``gerrit stream-events`` in a background
thread and hands out raw event dicts (parse them with
:func:`elastic_recheck.core.events.parse_event`). It reconnects with capped
exponential backoff, and after a reconnect asks ``gerrit query --comments``
for the comments posted while it was away and replays them as synthesized
``comment-added`` events (:func:`elastic_recheck.core.gerrit_query.events_from_query`).

Why not ``gerritlib.gerrit.Gerrit.startWatching()``
---------------------------------------------------
The SSH connection itself comes from gerritlib (see :mod:`.ssh`), but
reading the stream is done here, because gerritlib's ``GerritWatcher``
(v0.11):

* reads one line per ``poll()`` wake-up: when two events arrive in one SSH
  packet the second stays in paramiko's file buffer until a third event
  arrives (reproduced in ``tests/functional/test_gerrit.py``). On a quiet
  Gerrit that delays a report indefinitely, and it is lost on a disconnect;
* has no way to stop the thread, retries with a fixed delay (no backoff), and
  does not close the client when the server ends the stream cleanly;
* gives no hook to notice a gap and recover the events missed meanwhile.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import paramiko

from elastic_recheck.adapters.gerrit.ssh import connect, run_command
from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import EventParseError, GerritError
from elastic_recheck.core.events import DEFAULT_CI_USERS, parse_line
from elastic_recheck.core.gerrit_query import comment_key, events_from_query, query_records

LOG = logging.getLogger(__name__)

__all__ = ["GerritEventStream", "StreamStats", "backoff_delays"]

#: A stream line longer than this is dropped (Gerrit events are a few KiB).
MAX_LINE_BYTES = 16 * 1024 * 1024
#: How many recent comment keys are remembered to drop duplicates after a catch-up.
DEDUP_MEMORY = 5000
#: At most this many ``gerrit query`` pages are fetched by one catch-up.
MAX_CATCH_UP_PAGES = 20

_SENTINEL: dict[str, Any] = {}


def backoff_delays(initial: float, maximum: float, factor: float = 2.0) -> Iterator[float]:
    """``initial, initial*factor, ...`` capped at ``maximum`` (endless)."""
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError("need 0 < initial <= maximum and factor >= 1")
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, maximum)


@dataclass
class StreamStats:
    """Counters of one :class:`GerritEventStream` (read them, don't write them)."""

    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    events: int = 0
    malformed: int = 0
    duplicates: int = 0
    caught_up: int = 0
    catch_up_failures: int = 0
    #: ``(start, end)`` epoch seconds of every period the stream was down.
    gaps: list[tuple[float, float]] = field(default_factory=list)
    #: Every backoff delay slept, in order.
    backoffs: list[float] = field(default_factory=list)


class GerritEventStream:
    """``gerrit stream-events`` in a background thread, with reconnect and catch-up.

    Usage::

        stream = GerritEventStream.from_config(cfg)
        stream.start()
        for event in stream:          # blocks; ends after stop()
            report = parse_event(event, cfg.ci_usernames)

    or ``stream.get(timeout=1.0)`` (``None`` on timeout). The reader thread
    only decodes JSON and enqueues; it never blocks on the consumer (the queue
    is unbounded), so a slow consumer cannot make Gerrit drop the stream.

    Reconnect: after a failed connection attempt or a dropped stream, the
    thread sleeps ``backoff_initial``, then twice as long each time, capped at
    ``backoff_max``. The delay resets once a session has delivered data or
    stayed up ``stable_after`` seconds.

    Catch-up: on reconnect (and on the first connection if ``since`` is
    given), the gap is logged and, with ``catch_up=True``, ``gerrit query
    --format=JSON --comments --patch-sets '(status:open OR status:merged)
    -age:<gap>s'`` is run; comments by ``ci_users`` newer than the gap start
    (minus ``catch_up_margin`` seconds for clock skew) are enqueued as
    synthesized ``comment-added`` events (marked with :data:`SYNTHESIZED_KEY`),
    before the new live events. Comments already delivered live are not
    repeated, and live events already synthesized are dropped. Abandoned
    changes are not queried; gaps longer than ``max_catch_up`` are clamped
    (logged). The bot's own idempotency (per change, patch set, build) is the
    final guard.
    """

    def __init__(
        self,
        host: str,
        user: str,
        port: int = 29418,
        keyfile: str | None = None,
        *,
        ci_users: Sequence[str] | None = DEFAULT_CI_USERS,
        catch_up: bool = True,
        since: float | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        stable_after: float = 60.0,
        keepalive: int = 60,
        poll_interval: float = 0.5,
        query_timeout: float = 60.0,
        catch_up_margin: float = 60.0,
        max_catch_up: float = 2 * 86400.0,
        idle_timeout: float | None = None,
    ) -> None:
        """
        :param host: Gerrit SSH host.
        :param user: Gerrit SSH user.
        :param port: Gerrit SSH port.
        :param keyfile: private key file (``None``: paramiko's defaults and agent).
        :param ci_users: authors whose missed comments are recovered (``None``: all).
        :param catch_up: recover missed comments with ``gerrit query`` after a gap.
        :param since: epoch seconds of the last event already processed (e.g.
            persisted by the bot); the first connection catches up from there.
        :param backoff_initial: first reconnect delay (seconds).
        :param backoff_max: reconnect delay cap (seconds).
        :param stable_after: a session that lasted this long resets the backoff.
        :param keepalive: SSH keepalive interval (seconds, 0 = off); detects dead peers.
        :param poll_interval: how often the reader checks for :meth:`stop`.
        :param query_timeout: seconds for each catch-up ``gerrit query``.
        :param catch_up_margin: seconds subtracted from the gap start (clock skew).
        :param max_catch_up: longest gap recovered (seconds).
        :param idle_timeout: reconnect when nothing arrived for this long (``None``: never).
            Only for busy servers (OpenDev emits events every few seconds): it
            catches half-open TCP connections long before TCP itself gives up.
        """
        backoff_delays(backoff_initial, backoff_max)  # validates
        self.host = host
        self.user = user
        self.port = int(port)
        self.keyfile = keyfile or None
        self.ci_users = tuple(ci_users) if ci_users is not None else None
        self.catch_up = catch_up
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.keepalive = keepalive
        self.poll_interval = poll_interval
        self.query_timeout = query_timeout
        self.catch_up_margin = catch_up_margin
        self.max_catch_up = max_catch_up
        self.idle_timeout = idle_timeout
        self.stats = StreamStats()
        self._resume_from: float | None = since
        self._last_event_time: float | None = since
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        #: Set when Gerrit refused the very first connection (authentication): the stream stopped.
        self.fatal: GerritError | None = None
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._live_keys: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self._synth_keys: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self._last_data: float | None = None

    @classmethod
    def from_config(cls, cfg: Config, **kwargs: Any) -> GerritEventStream:
        """Build from ``[gerrit] host port user key`` and ``[recheckwatch] ci_username``."""
        kwargs.setdefault("ci_users", cfg.ci_usernames)
        return cls(
            cfg.gerrit.host,
            cfg.gerrit.user,
            cfg.gerrit.port,
            cfg.gerrit.key or None,
            **kwargs,
        )

    # -- public API --------------------------------------------------------

    def start(self) -> Self:
        """Start the reader thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"gerrit-stream-{self.host}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the reader thread; iterators and :meth:`get` callers wake up."""
        self._stop.set()
        self._queue.put(_SENTINEL)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        """``True`` while ``stream-events`` is running on a live connection."""
        return self._connected.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def last_event_time(self) -> float | None:
        """Epoch seconds of the newest event seen (``eventCreatedOn``), for persisting as ``since``."""
        return self._last_event_time

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until connected (``True``) or ``timeout`` (``False``)."""
        return self._connected.wait(timeout)

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, or ``None`` after ``timeout`` seconds or once stopped."""
        try:
            event = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if event is _SENTINEL:
            self._queue.put(_SENTINEL)  # wake other consumers too
            return None
        return event

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while not self._stop.is_set() or not self._queue.empty():
            event = self.get(timeout=self.poll_interval)
            if event is not None:
                yield event
            elif self._stop.is_set():
                return

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reader thread -----------------------------------------------------

    def _run(self) -> None:
        delays = backoff_delays(self.backoff_initial, self.backoff_max)
        down_since: float | None = None
        while not self._stop.is_set():
            session_start = time.time()
            try:
                client = connect(self.host, self.port, self.user, self.keyfile, self.keepalive)
            except GerritError as exc:
                self.stats.connect_failures += 1
                if not exc.retryable and self.stats.connects == 0:
                    # Refused before ever connecting (wrong user or key): retrying cannot help.
                    self.fatal = exc
                    self._stop.set()
                    self._queue.put(_SENTINEL)
                    break
                down_since = down_since or session_start
                LOG.warning("Gerrit stream-events: %s", exc)
                self._sleep(next(delays))
                continue
            got_data = False
            try:
                got_data = self._session(client, down_since)
            except Exception:  # the reader must survive anything and reconnect
                LOG.exception("Gerrit stream-events session failed")
            finally:
                was_connected = self._connected.is_set()
                self._connected.clear()
                client.close()
            if was_connected:
                self.stats.disconnects += 1
                down_since = self._gap_start(session_start)
                down_since_str = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(down_since))
                if not self._stop.is_set():
                    LOG.warning("Gerrit stream-events disconnected; events after %s UTC may be missed", down_since_str)
            else:
                down_since = down_since or session_start
            if self._stop.is_set():
                break
            if got_data or time.time() - session_start >= self.stable_after:
                delays = backoff_delays(self.backoff_initial, self.backoff_max)
            self._sleep(next(delays))
        self._connected.clear()

    def _sleep(self, delay: float) -> None:
        self.stats.backoffs.append(delay)
        self._stop.wait(delay)

    def _gap_start(self, session_start: float) -> float:
        """When events may have started to be missed: the last data received, else the session start."""
        last = self._last_data
        return last if last is not None and last >= session_start else session_start

    def _session(self, client: paramiko.SSHClient, down_since: float | None) -> bool:
        transport = client.get_transport()
        if transport is None:
            raise GerritError("no SSH transport")
        channel = transport.open_session(timeout=self.query_timeout)
        channel.exec_command("gerrit stream-events")
        self._connected.set()
        self.stats.connects += 1
        LOG.info("Gerrit stream-events connected to %s:%s", self.host, self.port)
        now = time.time()
        gap_from = down_since if down_since is not None else self._resume_from
        self._resume_from = None
        if gap_from is not None:
            self._recover(client, gap_from, now)
        return self._consume(channel)

    def _recover(self, client: paramiko.SSHClient, gap_from: float, now: float) -> None:
        try:
            self._recover_gap(client, gap_from, now)
        finally:
            # Recorded last, so whoever watches the stats sees the gap only once it has been dealt with
            # (and logged).
            self.stats.gaps.append((gap_from, now))

    def _recover_gap(self, client: paramiko.SSHClient, gap_from: float, now: float) -> None:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(gap_from))
        if not self.catch_up:
            LOG.warning("Gerrit stream-events was down from %s UTC for %.0f s; missed events are not recovered "
                        "(catch_up is off)", start, now - gap_from)
            return
        since = gap_from - self.catch_up_margin
        if now - since > self.max_catch_up:
            LOG.warning("Gerrit stream-events gap since %s UTC exceeds %.0f s; older events are lost",
                        start, self.max_catch_up)
            since = now - self.max_catch_up
        try:
            events = self._query_missed(client, since, now)
        except GerritError as exc:
            LOG.warning("Gerrit stream-events was down from %s UTC for %.0f s; catch-up query failed (%s): "
                        "missed events are lost", start, now - gap_from, exc)
            self.stats.catch_up_failures += 1
            return
        recovered = 0
        for event in events:
            key = comment_key(event)
            if key is not None and key in self._live_keys:
                continue
            if key is not None:
                self._remember(self._synth_keys, key)
            self._deliver(event)
            recovered += 1
        self.stats.caught_up += recovered
        LOG.warning("Gerrit stream-events was down from %s UTC for %.0f s; recovered %d missed CI comment(s) "
                    "with gerrit query", start, now - gap_from, recovered)

    def _query_missed(self, client: paramiko.SSHClient, since: float, now: float) -> list[dict[str, Any]]:
        age = max(1, math.ceil(now - since))
        query = f"(status:open OR status:merged) -age:{age}s"
        records: list[dict[str, Any]] = []
        start = 0
        for _page in range(MAX_CATCH_UP_PAGES):
            argv = ["gerrit", "query", "--format=JSON", "--comments", "--patch-sets", "--start", str(start), query]
            status, out, err = run_command(client, argv, self.query_timeout)
            if status != 0:
                raise GerritError(f"gerrit query exited {status}: {err.decode('utf-8', 'replace').strip()}")
            more = False
            rows = 0
            for record in query_records(out):
                if record.get("type") == "stats":
                    more = bool(record.get("moreChanges"))
                    continue
                records.append(record)
                rows += 1
            if not more or rows == 0:
                break
            start += rows
        else:
            LOG.warning("catch-up stopped after %d pages of gerrit query results", MAX_CATCH_UP_PAGES)
        return events_from_query(records, since, self.ci_users)

    def _consume(self, channel: paramiko.Channel) -> bool:
        """Read the stream line by line until EOF or stop; ``True`` if any data arrived."""
        channel.settimeout(self.poll_interval)
        buf = b""
        got_data = False
        last_recv = time.monotonic()
        while not self._stop.is_set():
            try:
                chunk = channel.recv(65536)
            except TimeoutError:
                if self.idle_timeout is not None and time.monotonic() - last_recv > self.idle_timeout:
                    LOG.warning("Gerrit stream-events silent for %.0f s; assuming a dead connection", self.idle_timeout)
                    break
                continue
            last_recv = time.monotonic()
            if not chunk:
                break
            got_data = True
            self._last_data = time.time()
            buf += chunk
            # Every complete line in this read is handled now (gerritlib handles one per wake-up).
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._handle_line(line)
            if len(buf) > MAX_LINE_BYTES:
                LOG.error("dropping a %d-byte stream-events line without newline", len(buf))
                self.stats.malformed += 1
                buf = b""
        if buf.strip() and not self._stop.is_set():
            self._handle_line(buf)  # the server closed mid-line; it will most likely be malformed
        if channel.exit_status_ready():
            status = channel.recv_exit_status()
            err = channel.recv_stderr(65536) if channel.recv_stderr_ready() else b""
            if status != 0:
                LOG.warning("gerrit stream-events exited %s: %s", status, err.decode("utf-8", "replace").strip())
        return got_data

    def _handle_line(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            event = parse_line(raw)
        except EventParseError as exc:
            self.stats.malformed += 1
            LOG.warning("discarding malformed stream-events line (%s): %.200r", exc, raw)
            return
        key = comment_key(event)
        if key is not None:
            if key in self._synth_keys:
                self.stats.duplicates += 1
                LOG.info("dropping live event already recovered by catch-up: %s,%s by %s", *key[:3])
                return
            self._remember(self._live_keys, key)
        self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        created = event.get("eventCreatedOn")
        if (
            isinstance(created, int | float)
            and not isinstance(created, bool)
            and (self._last_event_time is None or created > self._last_event_time)
        ):
            self._last_event_time = float(created)
        self.stats.events += 1
        self._queue.put(event)

    @staticmethod
    def _remember(store: OrderedDict[tuple[str, str, str, str], None], key: tuple[str, str, str, str]) -> None:
        store[key] = None
        store.move_to_end(key)
        while len(store) > DEDUP_MEMORY:
            store.popitem(last=False)
