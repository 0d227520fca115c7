"""Announce resolved bugs that came back on IRC, once per new failed build.

``elastic-recheck stale --irc`` (a cron job, typically hourly) posts one
message per bug of :func:`elastic_recheck.report.stale_fingerprints.find_returning` to the
channels subscribed to ``negative`` events::

    Bug 1234567 (Widget explodes) was marked Fix Released on 2026-11-01 but its
    fingerprint hit 3 failed builds since: https://logs.example.org/.../

Pieces:

* :func:`format_returning` -- the message (pure);
* :class:`AnnouncementLedger` -- what was announced, in a small JSON file (by default
  ``returning-announced.json`` next to the embedded store). A bug is announced
  again only when a failed build hit that no earlier message counted (so the
  count has grown), or when its ``resolved_at`` changed (a new resolution);
  an exclusive lock on ``<file>.lock`` keeps two overlapping runs from both
  posting;
* :func:`post` -- connect with the ``[ircbot]`` settings, post, wait until
  every line is written, quit; raises :class:`IrcUnavailable` otherwise.

The ledger is updated only after the messages were flushed, so a run that
cannot reach IRC announces the same bugs on the next run (at least once,
never silently lost).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elastic_recheck.core.channels import clean_text
from elastic_recheck.core.errors import ElasticRecheckError, StoreError
from elastic_recheck.core.safe_text import safe_url
from elastic_recheck.core.timestamps import parse_iso
from elastic_recheck.report.stale_fingerprints import REMOVABLE_STATUSES, Returning

if TYPE_CHECKING:
    from elastic_recheck.core.config import Config

LOG = logging.getLogger(__name__)

LEDGER_NAME = "returning-announced.json"
LEDGER_VERSION = 1
#: Build uuids remembered per bug (newest first); enough for months of hits.
MAX_REMEMBERED_BUILDS = 500
#: A bug that stopped coming back is forgotten this long after its last message.
FORGET_AFTER = timedelta(days=30)


class IrcUnavailable(ElasticRecheckError):
    """IRC could not be reached, or the messages could not all be delivered."""


def default_ledger_path(store_path: Path) -> Path:
    """``returning-announced.json`` in the data directory (next to the embedded store)."""
    return store_path.parent / LEDGER_NAME


# ---------------------------------------------------------------------------
# The message
# ---------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def build_link(r: Returning) -> str:
    """The newest failed build's log URL (http(s) only), else its uuid."""
    newest = r.builds[0]
    return safe_url(newest.log_url) or f"build {newest.uuid}"


def format_returning(r: Returning, title: str | None, now: datetime) -> str:
    """One line for IRC (control characters replaced; the notifier splits long ones).

    * date known (``resolved_at``): ``Bug B (T) was marked Fix Released on
      D but its fingerprint hit N failed builds since: URL`` -- "was resolved
      on D" when the tracker gives no closed status;
    * date unknown (Fix Released in the tracker only): ``Bug B (T) is marked
      Fix Released (fix date unknown) but its fingerprint hit N failed builds
      in the last 10 days: URL``.
    """
    head = f"Bug {r.bug}" + (f" ({title})" if title else "")
    count = _plural(len(r.builds), "failed build")
    if r.date_known:
        done = f"was marked {r.status}" if r.status in REMOVABLE_STATUSES else "was resolved"
        text = f"{head} {done} on {r.since:%Y-%m-%d} but its fingerprint hit {count} since: {build_link(r)}"
    else:
        days = (now - r.since).total_seconds() / 86400
        status = r.status or "resolved"
        text = (
            f"{head} is marked {status} (fix date unknown) but its fingerprint hit {count} "
            f"in the last {days:g} days: {build_link(r)}"
        )
    # Titles come from the tracker or YAML escapes: a lone surrogate cannot be sent as UTF-8.
    return clean_text(text.encode("utf-8", "replace").decode("utf-8"))


# ---------------------------------------------------------------------------
# What was announced
# ---------------------------------------------------------------------------


@dataclass
class LedgerEntry:
    #: ``resolved_at`` when known (a new one starts over), else None.
    since: str | None
    #: Failed builds counted by the messages so far, newest first.
    builds: list[str] = field(default_factory=list)
    count: int = 0
    announced_at: str = ""
    channels: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "builds": self.builds,
            "count": self.count,
            "announced_at": self.announced_at,
            "channels": self.channels,
        }


def _episode(r: Returning) -> str | None:
    return r.since.isoformat() if r.date_known else None


@dataclass
class AnnouncementLedger:
    """bug -> what its last announcement said (see the module docstring)."""

    path: Path
    entries: dict[str, LedgerEntry] = field(default_factory=dict)

    def is_due(self, r: Returning) -> bool:
        """True when ``r`` was never announced, has a new ``resolved_at``, or a build no message counted."""
        entry = self.entries.get(r.bug)
        if entry is None or entry.since != _episode(r):
            return True
        known = set(entry.builds)
        return any(b.uuid not in known for b in r.builds)

    def due(self, returning: Sequence[Returning]) -> list[Returning]:
        return [r for r in returning if self.is_due(r)]

    def record(self, announced: Sequence[Returning], channels: Sequence[str], at: datetime) -> None:
        """Remember ``announced`` as posted to ``channels`` at ``at``."""
        for r in announced:
            old = self.entries.get(r.bug)
            keep = old.builds if old is not None and old.since == _episode(r) else []
            uuids = list(dict.fromkeys([b.uuid for b in r.builds] + keep))[:MAX_REMEMBERED_BUILDS]
            self.entries[r.bug] = LedgerEntry(
                since=_episode(r),
                builds=uuids,
                count=len(r.builds),
                announced_at=at.isoformat(),
                channels=list(channels),
            )

    def forget_old(self, returning: Sequence[Returning], now: datetime) -> list[str]:
        """Drop bugs not coming back now whose last message is older than :data:`FORGET_AFTER`.

        Safe: a forgotten bug is announced again only for builds newer than
        the ones it was announced for (older ones are out of its window).
        """
        current = {r.bug for r in returning}
        gone = []
        for bug, entry in list(self.entries.items()):
            at = parse_iso(entry.announced_at)
            if at is None:
                continue
            if bug not in current and now - at > FORGET_AFTER:
                del self.entries[bug]
                gone.append(bug)
        return gone

    # -- file

    @classmethod
    def load(cls, path: Path) -> AnnouncementLedger:
        """Read the ledger (empty when the file does not exist).

        :raises StoreError: unreadable or not a ledger (never reset silently:
            that would repeat every announcement).
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the announcement ledger: {exc.strerror}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, Mapping) or data.get("version") != LEDGER_VERSION:
                raise ValueError(f"expected version {LEDGER_VERSION}")
            entries = {}
            for bug, e in dict(data.get("bugs") or {}).items():
                entries[str(bug)] = LedgerEntry(
                    since=e.get("since"),
                    builds=[str(u) for u in e.get("builds") or []],
                    count=int(e.get("count") or 0),
                    announced_at=str(e.get("announced_at") or ""),
                    channels=[str(c) for c in e.get("channels") or []],
                )
        except (ValueError, TypeError, AttributeError) as exc:
            raise StoreError(
                f"{path}: not an announcement ledger ({exc}); move it away to start over "
                "(every returning bug is then announced again)"
            ) from None
        return cls(path, entries)

    def save(self) -> None:
        """Write the ledger atomically (temporary file, then rename).

        :raises StoreError: when it cannot be written.
        """
        doc = {"version": LEDGER_VERSION, "bugs": {b: e.as_json() for b, e in sorted(self.entries.items())}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(doc, f, indent=1)
                    f.write("\n")
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot write the announcement ledger: {exc.strerror}") from None


@contextlib.contextmanager
def locked_ledger(path: Path) -> Iterator[AnnouncementLedger]:
    """The ledger, with an exclusive lock on ``<path>.lock`` for the duration.

    :raises StoreError: when another run holds the lock, or the file is unusable.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"{lock_path}: cannot open the lock file: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{lock_path}: another 'stale --irc' run is announcing") from None
        yield AnnouncementLedger.load(path)
    finally:
        os.close(fd)  # releases the lock


# ---------------------------------------------------------------------------
# Posting
# ---------------------------------------------------------------------------


def post(
    config: Config,
    channels: Sequence[str],
    messages: Sequence[str],
    *,
    timeout: float = 30.0,
    **overrides: Any,
) -> None:
    """Post every message to every channel with the ``[ircbot]`` settings, flush, quit.

    The connection never GHOSTs or regains the configured nick
    (``reclaim_nick=False``): a running bot keeps it and this run uses
    ``nick_``.

    :param timeout: seconds to connect and register; flushing gets this plus
        twice the time the pacing needs for the lines.
    :raises IrcUnavailable: IRC is off, unreachable, or not every message
        reached the socket.
    """
    from elastic_recheck.adapters.irc.client import IrcNotifier
    from elastic_recheck.core.irc_lines import line_budget, split_message

    options: dict[str, Any] = {"reclaim_nick": False, **overrides}
    notifier = IrcNotifier.from_config(config, channels, **options)
    if notifier is None:
        raise IrcUnavailable("IRC is off: [ircbot] server is empty")
    s = notifier.settings
    where = f"{s.server}:{s.port}"
    lines = sum(
        len(split_message(clean_text(m).strip(), line_budget(s.nick + "_", ch))) for m in messages for ch in channels
    )
    flush = timeout + (2.0 * lines / s.rate if s.rate > 0 else 0.0) + s.join_wait
    notifier.start()
    try:
        if not notifier.wait_registered(timeout):
            raise IrcUnavailable(f"cannot reach the IRC server {where} (not registered within {timeout:g} s)")
        for message in messages:
            for channel in channels:
                notifier.send(channel, message)
        if not notifier.wait_idle(flush):
            raise IrcUnavailable(
                f"IRC {where}: {notifier.pending} line(s) not sent within {math.ceil(flush)} s (connection lost?)"
            )
        if notifier.stats.dropped:
            raise IrcUnavailable(
                f"IRC {where}: {notifier.stats.dropped} message(s) dropped (cannot join a channel? see the log)"
            )
    finally:
        notifier.stop(timeout=10.0)


def announce(
    config: Config,
    returning: Sequence[Returning],
    titles: Mapping[str, str | None],
    channels: Sequence[str],
    ledger: AnnouncementLedger,
    now: datetime,
    *,
    timeout: float = 30.0,
    **overrides: Any,
) -> list[Returning]:
    """Post the returning bugs that are due, then record them in ``ledger`` (saved).

    :returns: the bugs announced (empty: nothing new, IRC not contacted).
    :raises IrcUnavailable: nothing is recorded; the next run tries again.
    :raises StoreError: the ledger cannot be written (the messages went out).
    """
    due = ledger.due(returning)
    forgotten = ledger.forget_old(returning, now)
    if forgotten:
        LOG.info("forgetting bugs that stopped coming back: %s", ", ".join(forgotten))
    if due:
        messages = [format_returning(r, titles.get(r.bug), now) for r in due]
        post(config, channels, messages, timeout=timeout, **overrides)
        ledger.record(due, channels, now)
    if due or forgotten:
        ledger.save()
    return due


__all__ = [
    "IrcUnavailable",
    "AnnouncementLedger",
    "LedgerEntry",
    "announce",
    "build_link",
    "default_ledger_path",
    "format_returning",
    "locked_ledger",
    "post",
]
