"""Gerrit adapter: the event stream over SSH, review comments over SSH or REST.

Three pieces, each owning its timeouts and translating failures into
:class:`~elastic_recheck.core.errors.GerritError`:

:class:`GerritEventStream`
    Runs ``gerrit stream-events`` in a background thread and hands out raw
    event dicts (parse them with :func:`elastic_recheck.core.events.parse_event`).
    Reconnects with capped exponential backoff, and after a reconnect asks
    ``gerrit query --comments`` for the comments posted while it was away and
    replays them as synthesized ``comment-added`` events.

:class:`GerritReviewer`
    Posts a review *message* (never a vote) with ``gerrit review`` over SSH or
    ``POST /a/changes/<id>/revisions/<rev>/review`` over REST, chosen by
    ``[gerrit] comment_via``.

:func:`replay_events`
    Reads recorded JSON lines (optionally gzipped) and yields events, or an
    :class:`~elastic_recheck.core.errors.EventParseError` per malformed line.

Why not ``gerritlib.gerrit.Gerrit.startWatching()``
---------------------------------------------------
The SSH connection itself comes from gerritlib (:class:`gerritlib.gerrit.GerritConnection`),
but reading the stream is done here, because gerritlib's ``GerritWatcher``
(v0.11):

* reads one line per ``poll()`` wake-up: when two events arrive in one SSH
  packet the second stays in paramiko's file buffer until a third event
  arrives (reproduced in ``tests/functional/test_gerrit.py``). On a quiet
  Gerrit that delays a report indefinitely, and it is lost on a disconnect;
* has no way to stop the thread, retries with a fixed delay (no backoff), and
  does not close the client when the server ends the stream cleanly;
* gives no hook to notice a gap and recover the events missed meanwhile.

Likewise ``Gerrit.review()`` wraps the message in double quotes without
escaping it (a ``"`` in the message ends the argument early) and
``Gerrit._ssh()`` has no timeout, so commands go through :func:`run_command`.

Known gaps: gerritlib accepts any SSH host key (paramiko ``WarningPolicy``
after loading ``~/.ssh/known_hosts``); put Gerrit's key in ``known_hosts``
to be warned about a mismatch. gerritlib logs each failed connection attempt
with a traceback (logger ``gerrit.GerritConnection``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import queue
import re
import shlex
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import paramiko
import requests
from gerritlib.gerrit import GerritConnection

from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import EventParseError, GerritError
from elastic_recheck.core.events import DEFAULT_CI_USERS, parse_line

LOG = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TIMEOUT",
    "SYNTHESIZED_KEY",
    "GerritEventStream",
    "GerritReviewer",
    "StreamStats",
    "backoff_delays",
    "events_from_query",
    "quote_command",
    "replay_events",
    "run_command",
    "strip_xssi",
]

#: Seconds before an SSH command or REST request gives up.
DEFAULT_TIMEOUT = 30.0
#: Key added to events synthesized from ``gerrit query`` after a reconnect.
SYNTHESIZED_KEY = "elastic_recheck_synthesized"
#: Gerrit prefixes JSON responses with this to defeat XSSI.
XSSI_PREFIX = ")]}'"
#: A stream line longer than this is dropped (Gerrit events are a few KiB).
MAX_LINE_BYTES = 16 * 1024 * 1024
#: How many recent comment keys are remembered to drop duplicates after a catch-up.
DEDUP_MEMORY = 5000
#: At most this many ``gerrit query`` pages are fetched by one catch-up.
MAX_CATCH_UP_PAGES = 20

_PATCH_SET_PREFIX = re.compile(r"^Patch Set (\d+)")
_DIGITS = re.compile(r"^[0-9]+$")
_SENTINEL: dict[str, Any] = {}


# -- small pure helpers ----------------------------------------------------------


def quote_command(argv: Sequence[str]) -> str:
    """Join ``argv`` into one SSH exec command line that Gerrit splits back into ``argv``.

    Gerrit's splitter (``CommandFactoryProvider.split``) treats single quotes
    like POSIX: everything inside is literal, newlines included. So
    :func:`shlex.quote` output round-trips byte-exact. Empty words are
    rejected: Gerrit would drop them and shift the following arguments.
    """
    if any(a == "" for a in argv):
        raise ValueError("Gerrit drops empty command-line words; refusing to send one")
    if any("\x00" in a for a in argv):
        raise ValueError("NUL byte in a command-line word")
    for a in argv:
        try:
            a.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"not valid Unicode text (lone surrogate): {a[:40]!r}") from None
    return " ".join(shlex.quote(a) for a in argv)


def strip_xssi(text: str) -> str:
    """Remove Gerrit's ``)]}'`` anti-XSSI first line from a REST response body."""
    if text.startswith(XSSI_PREFIX):
        return text[len(XSSI_PREFIX) :].lstrip("\r\n")
    return text


def backoff_delays(initial: float, maximum: float, factor: float = 2.0) -> Iterator[float]:
    """``initial, initial*factor, ...`` capped at ``maximum`` (endless)."""
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError("need 0 < initial <= maximum and factor >= 1")
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, maximum)


def _author_name(author: Any) -> str:
    if isinstance(author, Mapping):
        for key in ("username", "name"):
            value = author.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def _comment_key(event: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """Identity of a comment-added event: change, patch set, author, digest of the text."""
    if event.get("type") != "comment-added":
        return None
    change = event.get("change")
    patchset = event.get("patchSet")
    comment = event.get("comment")
    if not isinstance(change, Mapping) or not isinstance(patchset, Mapping) or not isinstance(comment, str):
        return None
    digest = hashlib.sha1(comment.encode("utf-8", "surrogatepass")).hexdigest()
    return (str(change.get("number")), str(patchset.get("number")), _author_name(event.get("author")), digest)


def events_from_query(
    records: Iterable[Mapping[str, Any]],
    since: float,
    ci_users: Sequence[str] | None = DEFAULT_CI_USERS,
) -> list[dict[str, Any]]:
    """Synthesize ``comment-added`` events from ``gerrit query --comments --patch-sets`` records.

    Only change messages written after ``since`` (epoch seconds) by one of
    ``ci_users`` (all authors if ``None``) are kept, oldest first. The patch
    set comes from the message's ``Patch Set N:`` prefix (else the change's
    latest patch set). Each event carries ``SYNTHESIZED_KEY: "gerrit-query"``.
    """
    wanted = None if ci_users is None else {u.casefold() for u in ci_users}
    out: list[tuple[float, int, dict[str, Any]]] = []
    for record in records:
        if not isinstance(record, Mapping) or record.get("type") == "stats":
            continue
        comments = record.get("comments")
        if not isinstance(comments, list) or "number" not in record:
            continue
        patch_sets = {
            str(ps.get("number")): ps for ps in record.get("patchSets") or [] if isinstance(ps, Mapping)
        }
        current = record.get("currentPatchSet")
        latest: Mapping[str, Any] | None = None
        if isinstance(current, Mapping):
            latest = current
        elif patch_sets:
            latest = patch_sets[max(patch_sets, key=lambda n: int(n) if n.isdigit() else -1)]
        change = {
            k: record[k]
            for k in ("project", "branch", "topic", "id", "number", "subject", "owner", "url", "status")
            if k in record
        }
        for comment in comments:
            if not isinstance(comment, Mapping):
                continue
            ts = comment.get("timestamp")
            message = comment.get("message")
            if isinstance(ts, bool) or not isinstance(ts, int | float) or not isinstance(message, str):
                continue
            if ts <= since:
                continue
            reviewer = comment.get("reviewer")
            if wanted is not None and _author_name(reviewer).casefold() not in wanted:
                continue
            m = _PATCH_SET_PREFIX.match(message)
            ps: Mapping[str, Any] | None = patch_sets.get(m.group(1)) if m else latest
            if ps is None:
                ps = {"number": m.group(1)} if m else None
            if ps is None:
                continue
            patch_set = {k: v for k, v in ps.items() if k not in ("approvals", "comments", "files")}
            event = {
                "type": "comment-added",
                "change": change,
                "patchSet": patch_set,
                "author": dict(reviewer) if isinstance(reviewer, Mapping) else {},
                "approvals": [],
                "comment": message,
                "eventCreatedOn": int(ts),
                SYNTHESIZED_KEY: "gerrit-query",
            }
            out.append((float(ts), len(out), event))
    out.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in out]


# -- SSH plumbing ------------------------------------------------------------------


def _connect(host: str, port: int, user: str, keyfile: str | None, keepalive: int) -> paramiko.SSHClient:
    """One connection attempt through gerritlib; failures become :class:`GerritError`."""
    conn = GerritConnection(user, host, port, keyfile, keep_alive=keepalive, connection_attempts=1, retry_delay=0)
    try:
        client: paramiko.SSHClient = conn.connect()
    except paramiko.AuthenticationException as exc:
        raise GerritError(f"SSH authentication to {user}@{host}:{port} failed: {exc}", retryable=False) from None
    except Exception as exc:  # noqa: BLE001 (OSError, SSHException, EOFError, unreadable key files...)
        raise GerritError(f"cannot connect to Gerrit SSH {host}:{port}: {exc or type(exc).__name__}") from None
    return client


class _ChannelOpenError(GerritError):
    """The command was not sent: the cached connection is unusable (safe to retry on a new one)."""


def run_command(
    client: paramiko.SSHClient, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT
) -> tuple[int, bytes, bytes]:
    """Run one Gerrit SSH command; return ``(exit status, stdout, stderr)``.

    The whole exchange is bounded by ``timeout``. Exit status ``-1`` means the
    connection ended without one.

    :raises GerritError: the connection is closed, the channel cannot be
        opened, or the command timed out (all retryable).
    """
    command = quote_command(argv)
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise _ChannelOpenError("SSH connection to Gerrit is closed")
    deadline = time.monotonic() + timeout
    try:
        channel = transport.open_session(timeout=timeout)
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise _ChannelOpenError(f"cannot open an SSH channel: {exc or type(exc).__name__}") from None
    out = bytearray()
    err = bytearray()
    try:
        channel.settimeout(min(0.5, timeout))
        channel.exec_command(command)
        while True:
            if time.monotonic() > deadline:
                raise GerritError(f"{' '.join(argv[:2])}: no answer within {timeout:g} s")
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
            try:
                chunk = channel.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            out += chunk
        remaining = max(0.0, deadline - time.monotonic())
        channel.status_event.wait(remaining)
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(65536)
        status = channel.recv_exit_status() if channel.exit_status_ready() else -1
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise GerritError(f"{' '.join(argv[:2])}: SSH error: {exc or type(exc).__name__}") from None
    finally:
        channel.close()
    return status, bytes(out), bytes(err)


# -- the event stream --------------------------------------------------------------


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
            str(cfg.get("gerrit", "host")),
            str(cfg.get("gerrit", "user")),
            int(cfg.get("gerrit", "port")),
            str(cfg.get("gerrit", "key")) or None,
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
                client = _connect(self.host, self.port, self.user, self.keyfile, self.keepalive)
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
            key = _comment_key(event)
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
            for record in _query_records(out):
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
        key = _comment_key(event)
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


# -- review comments ------------------------------------------------------------


class GerritReviewer:
    """Post review messages (never votes) on a patch set, over SSH or REST.

    ``via="ssh"`` runs ``gerrit review <change>,<patchset> --message <msg>``
    on a cached SSH connection (reopened when it died). ``via="rest"`` posts
    ``{"message": ...}`` to ``<url>/a/changes/<change>/revisions/<patchset>/review``
    with HTTP basic auth (``http_user``/``http_password``).

    Failures raise :class:`GerritError`; ``retryable`` is ``False`` for
    authentication failures and Gerrit refusing the review (no such change,
    not permitted), ``True`` for timeouts, connection errors and 5xx. A
    timeout is ambiguous (the comment may have been posted): the caller's
    idempotency key decides whether to retry.
    """

    def __init__(
        self,
        via: str = "ssh",
        *,
        host: str = "",
        port: int = 29418,
        user: str = "",
        keyfile: str | None = None,
        url: str = "",
        http_user: str = "",
        http_password: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        tag: str | None = None,
        keepalive: int = 0,
        session: requests.Session | None = None,
    ) -> None:
        """
        :param via: ``"ssh"`` or ``"rest"``.
        :param host: Gerrit SSH host (and the default web host for REST).
        :param port: Gerrit SSH port.
        :param user: Gerrit SSH user.
        :param keyfile: SSH private key file.
        :param url: Gerrit web URL for REST (default ``https://<host>``).
        :param http_user: REST user (default: ``user``).
        :param http_password: REST HTTP password.
        :param timeout: seconds per SSH command or HTTP request.
        :param tag: optional review tag, e.g. ``autogenerated:elastic-recheck``.
        :param keepalive: SSH keepalive interval in seconds (0 = off).
        :param session: a ``requests.Session`` to reuse for REST.
        """
        if via not in ("ssh", "rest"):
            raise ValueError(f"comment_via must be ssh or rest, not {via!r}")
        if via == "ssh" and not host:
            raise ValueError("SSH reviews need a Gerrit host")
        if via == "rest" and not (url or host):
            raise ValueError("REST reviews need a Gerrit url or host")
        self.via = via
        self.host = host
        self.port = int(port)
        self.user = user
        self.keyfile = keyfile or None
        self.url = (url or f"https://{host}").rstrip("/")
        self.http_user = http_user or user
        self.http_password = http_password
        self.timeout = timeout
        self.tag = tag
        self.keepalive = keepalive
        self._session = session
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self._account_id: int | None = None  # REST: our own account (GET /a/accounts/self), cached

    @classmethod
    def from_config(cls, cfg: Config, *, timeout: float = DEFAULT_TIMEOUT, tag: str | None = None) -> GerritReviewer:
        """Build from ``[gerrit] comment_via host port user key url http_user http_password``."""
        return cls(
            str(cfg.get("gerrit", "comment_via")),
            host=str(cfg.get("gerrit", "host")),
            port=int(cfg.get("gerrit", "port")),
            user=str(cfg.get("gerrit", "user")),
            keyfile=str(cfg.get("gerrit", "key")) or None,
            url=str(cfg.get("gerrit", "url")),
            http_user=str(cfg.get("gerrit", "http_user")),
            http_password=str(cfg.get("gerrit", "http_password")),
            timeout=timeout,
            tag=tag,
        )

    def review(self, change: str | int, patchset: str | int, message: str, *, project: str | None = None) -> dict[str, Any]:
        """Post ``message`` on ``change``,``patchset``; return Gerrit's ReviewResult (``{}`` over SSH).

        :param project: optional; disambiguates the change over SSH (``--project``).
        :raises ValueError: change/patch set not positive integers, or an empty message.
        :raises GerritError: Gerrit refused, timed out or could not be reached.
        """
        change_s, patchset_s = _positive(change, "change"), _positive(patchset, "patch set")
        if not message.strip():
            raise ValueError("refusing to post an empty review message")
        if "\x00" in message:
            raise ValueError("NUL byte in review message")
        try:
            message.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("review message is not valid Unicode text (lone surrogate)") from None
        if self.via == "rest":
            return self._review_rest(change_s, patchset_s, message)
        self._review_ssh(change_s, patchset_s, message, project)
        return {}

    def posted(self, change: str | int, patchset: str | int, message: str) -> bool | None:
        """Whether ``message`` is already on ``change``,``patchset`` as a comment of our account.

        Settles an ambiguous post (a timeout, or the process died after the
        command was sent: Gerrit may have stored the comment anyway) before
        the caller posts again. Over SSH it runs ``gerrit query --format=JSON
        --comments change:<change>``; over REST it reads
        ``GET /a/changes/<change>/messages`` and keeps the messages whose
        author is our account (``GET /a/accounts/self``). Either way the stored
        text minus Gerrit's ``Patch Set N:`` first line is compared with
        ``message``.

        :raises GerritError: Gerrit could not be asked (try again later).
        """
        change_s, patchset_s = _positive(change, "change"), _positive(patchset, "patch set")
        if self.via == "rest":
            return self._posted_rest(change_s, patchset_s, message)
        argv = ["gerrit", "query", "--format=JSON", "--comments", f"change:{change_s}"]
        status, out, err = self._run_ssh(argv)
        if status != 0:
            raise GerritError(f"gerrit query change:{change_s} exited {status}: {err.decode('utf-8', 'replace').strip()}")
        for record in _query_records(out):
            if str(record.get("number")) != change_s:
                continue
            for comment in record.get("comments") or []:
                if not isinstance(comment, Mapping) or _author_name(comment.get("reviewer")) != self.user:
                    continue
                if _same_comment(comment.get("message"), patchset_s, message):
                    return True
        return False

    def _posted_rest(self, change: str, patchset: str, message: str) -> bool:
        if self._account_id is None:
            me = self._get_json("/a/accounts/self")
            account = me.get("_account_id") if isinstance(me, Mapping) else None
            if not isinstance(account, int):
                raise GerritError("Gerrit REST /a/accounts/self did not say which account we are")
            self._account_id = account
        messages = self._get_json(f"/a/changes/{change}/messages")
        if not isinstance(messages, list):
            raise GerritError(f"Gerrit REST messages of change {change}: expected a list")
        for item in messages:
            if not isinstance(item, Mapping):
                continue
            author = item.get("author")
            if not isinstance(author, Mapping) or author.get("_account_id") != self._account_id:
                continue
            revision = item.get("_revision_number")
            if revision is not None and str(revision) != patchset:
                continue
            if _same_comment(item.get("message"), patchset, message):
                return True
        return False

    def _get_json(self, path: str) -> Any:
        endpoint = self.url + path
        session = self._session or requests.Session()
        self._session = session
        try:
            resp = session.get(endpoint, headers={"Accept": "application/json"},
                               auth=(self.http_user, self.http_password), timeout=self.timeout)
        except requests.Timeout:
            raise GerritError(f"GET {_redact(endpoint)}: no answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise GerritError(f"GET {_redact(endpoint)}: {type(exc).__name__}: {exc}") from None
        body = resp.content.decode("utf-8", "replace")
        if resp.status_code in (401, 403):
            raise GerritError(f"Gerrit REST refused {self.http_user!r} (HTTP {resp.status_code})", retryable=False)
        if resp.status_code >= 400:
            raise GerritError(f"GET {_redact(endpoint)}: HTTP {resp.status_code}: {body.strip()[:200]}",
                              retryable=resp.status_code == 429 or resp.status_code >= 500)
        try:
            return json.loads(strip_xssi(body))
        except ValueError:
            raise GerritError(f"GET {_redact(endpoint)} answered non-JSON: {body[:200]!r}") from None

    def query(self, query: str, options: Sequence[str] = ()) -> list[dict[str, Any]]:
        """``gerrit query --format=JSON [options] <query>`` over SSH: the change records (the stats row left out).

        ``options``: e.g. ``--comments``, ``--current-patch-set``, ``--commit-message``, ``--start=N``.

        :raises GerritError: the command failed or answered something else than JSON lines.
        """
        status, out, err = self._run_ssh(["gerrit", "query", "--format=JSON", *options, query])
        if status != 0:
            raise GerritError(f"gerrit query failed ({status}): {err.decode('utf-8', 'replace').strip()[:200]}")
        return [r for r in _query_records(out) if r.get("type") != "stats"]

    def _run_ssh(self, argv: list[str]) -> tuple[int, bytes, bytes]:
        """Run one command on the cached connection (reconnecting once if it died idle)."""
        with self._lock:
            try:
                try:
                    return run_command(self._ssh_client(), argv, self.timeout)
                except _ChannelOpenError:
                    # The cached connection died while idle and nothing was sent: reconnect once.
                    return run_command(self._ssh_client(fresh=True), argv, self.timeout)
            except GerritError:
                self._ssh_client_reset()
                raise

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- SSH ---------------------------------------------------------------

    def _ssh_client(self, fresh: bool = False) -> paramiko.SSHClient:
        if self._client is not None:
            transport = self._client.get_transport()
            if fresh or transport is None or not transport.is_active():
                self._client.close()
                self._client = None
        if self._client is None:
            self._client = _connect(self.host, self.port, self.user, self.keyfile, self.keepalive)
        return self._client

    def _review_ssh(self, change: str, patchset: str, message: str, project: str | None) -> None:
        argv = ["gerrit", "review", f"{change},{patchset}"]
        if project:
            argv += ["--project", project]
        if self.tag:
            argv += ["--tag", self.tag]
        argv += ["--message", message]
        status, _out, err = self._run_ssh(argv)
        if status == 0:
            LOG.info("posted review on %s,%s over SSH (%d chars)", change, patchset, len(message))
            return
        text = err.decode("utf-8", "replace").strip() or "(no message)"
        if status < 0:
            self._ssh_client_reset_locked()
            raise GerritError(f"gerrit review {change},{patchset}: connection lost before an answer ({text})")
        raise GerritError(f"gerrit review {change},{patchset} failed (exit {status}): {text}", retryable=False)

    def _ssh_client_reset(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _ssh_client_reset_locked(self) -> None:
        with self._lock:
            self._ssh_client_reset()

    # -- REST --------------------------------------------------------------

    def _review_rest(self, change: str, patchset: str, message: str) -> dict[str, Any]:
        endpoint = f"{self.url}/a/changes/{change}/revisions/{patchset}/review"
        payload: dict[str, Any] = {"message": message}
        if self.tag:
            payload["tag"] = self.tag
        session = self._session or requests.Session()
        self._session = session
        try:
            resp = session.post(
                endpoint,
                data=json.dumps(payload).encode("utf-8"),
                headers={"Content-Type": "application/json; charset=UTF-8", "Accept": "application/json"},
                auth=(self.http_user, self.http_password),
                timeout=self.timeout,
            )
        except requests.Timeout:
            raise GerritError(f"POST {_redact(endpoint)}: no answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise GerritError(f"POST {_redact(endpoint)}: {type(exc).__name__}: {exc}") from None
        body = resp.content.decode("utf-8", "replace")
        if resp.status_code in (401, 403):
            raise GerritError(f"Gerrit REST refused {self.http_user!r} (HTTP {resp.status_code})", retryable=False)
        if resp.status_code == 429 or resp.status_code >= 500:
            # Gerrit itself answering 429/500/503 did not store the review; a
            # proxy's 502/504 may have given up while Gerrit went on.
            raise GerritError(f"Gerrit REST HTTP {resp.status_code}: {body.strip()[:200]}",
                              rejected=resp.status_code not in (502, 504))
        if resp.status_code >= 400:
            raise GerritError(
                f"Gerrit REST refused the review on {change},{patchset} (HTTP {resp.status_code}): {body.strip()[:200]}",
                retryable=False,
            )
        try:
            result = json.loads(strip_xssi(body)) if body.strip() else {}
        except ValueError:
            raise GerritError(f"Gerrit REST answered HTTP {resp.status_code} with non-JSON: {body[:200]!r}") from None
        LOG.info("posted review on %s,%s over REST (%d chars)", change, patchset, len(message))
        return result if isinstance(result, dict) else {"result": result}


def _query_records(out: bytes) -> Iterator[dict[str, Any]]:
    """The JSON records of ``gerrit query --format=JSON`` output (blank lines skipped).

    :raises GerritError: a line is not a JSON object.
    """
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            yield parse_line(line)
        except EventParseError as exc:
            raise GerritError(f"gerrit query returned bad JSON: {exc}") from None


def _same_comment(stored: Any, patchset: str, message: str) -> bool:
    """Whether a stored Gerrit message is ``message`` posted on ``patchset``.

    Gerrit stores a review as ``Patch Set N: <votes>`` + blank line + text;
    the first line is dropped (and must name ``patchset``) before comparing.
    """
    if not isinstance(stored, str):
        return False
    text = stored
    first, _, rest = text.partition("\n")
    m = _PATCH_SET_PREFIX.match(first)
    if m is not None:
        if m.group(1) != patchset:
            return False
        text = rest
    return text.strip() == message.strip()


def _positive(value: str | int, what: str) -> str:
    text = str(value).strip()
    if isinstance(value, bool) or not _DIGITS.match(text) or int(text) <= 0:
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
    return str(int(text))


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password or parts.username:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


# -- recorded events ------------------------------------------------------------


def replay_events(path: str | Path) -> Iterator[dict[str, Any] | EventParseError]:
    """Events from a JSON-lines file (gzip detected by magic bytes), in order.

    Blank lines are skipped. A malformed line yields an
    :class:`EventParseError` naming ``path:line`` instead of raising, so a
    replay continues past it; a truncated gzip stream yields one final error.

    :raises OSError: the file cannot be opened.
    """
    p = Path(path)
    with p.open("rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    with gzip.open(p, "rb") if compressed else p.open("rb") as fh:
        lineno = 0
        while True:
            try:
                line = fh.readline()
            except (EOFError, OSError, gzip.BadGzipFile) as exc:
                yield EventParseError(f"{p}:{lineno + 1}: unreadable ({exc or type(exc).__name__})")
                return
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            try:
                event = parse_line(line)
            except EventParseError as exc:
                yield EventParseError(f"{p}:{lineno}: {exc}")
                continue
            yield event
