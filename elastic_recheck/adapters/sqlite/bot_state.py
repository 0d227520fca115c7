"""The bot's durable state: pending events and what was already reported.

Tables live in a SQLite file (by default the embedded store's file, so one
file holds everything on a single machine; with a cluster backend it is a
small local file). Every accepted event is written here *before* it is
processed and marked done *after* it was reported, so a restart (even after
``kill -9``) resumes where it stopped. Reports are idempotent per key
(change, patchset, set of build uuids): :meth:`BotState.claim_report` is the
only way to post, and a key is posted at most once per channel.

A claim made with ``sending=<message>`` also leaves a *sending* mark
(``bot_sending``) until :meth:`BotState.confirm_report` says the channel
acknowledged the post. A mark left behind means "maybe posted" (the process
died, or the post timed out after it was sent): the bot asks Gerrit before
posting again, so the comment is neither lost nor duplicated.

IRC notices are claimed together with a journal of their messages
(:meth:`BotState.claim_irc`, table ``irc_outbox``); the IRC thread removes a
message once it was written (:meth:`BotState.irc_sent`) and a restart
re-queues what is left (:meth:`BotState.irc_pending`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elastic_recheck.storage.sqlite import Schema, execute_script, locked_transaction, objects_exist, open_file

#: The ``schema_version`` value of ``bot_meta`` (what releases before the
#: shared ledger wrote; the ledger's ``bot_state`` version is the one read).
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bot_events (
    key TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    received_at REAL NOT NULL,
    deadline REAL NOT NULL,
    next_check REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    result TEXT,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS bot_events_status ON bot_events(status, next_check);
CREATE TABLE IF NOT EXISTS bot_reports (
    key TEXT NOT NULL,
    channel TEXT NOT NULL,
    posted_at REAL NOT NULL,
    PRIMARY KEY (key, channel)
);
CREATE TABLE IF NOT EXISTS irc_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    channel TEXT NOT NULL,
    message TEXT NOT NULL,
    queued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bot_sending (
    key TEXT NOT NULL,
    channel TEXT NOT NULL,
    since REAL NOT NULL,
    owner TEXT NOT NULL,
    message TEXT,
    PRIMARY KEY (key, channel)
);
"""


def _migration_1(conn: sqlite3.Connection) -> None:
    """The tables as releases before the shared ledger created them (missing ones only)."""
    execute_script(conn, _SCHEMA)
    conn.execute("INSERT OR IGNORE INTO bot_meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


#: The bot state's migrations (append only; see :mod:`elastic_recheck.storage.sqlite`).
SCHEMA = Schema(
    "bot_state",
    [_migration_1],
    adopt=objects_exist("bot_meta", "bot_events", "bot_events_status", "bot_reports", "irc_outbox", "bot_sending"),
)


#: Identifies this process in ``bot_sending`` marks (a mark of another owner
#: was left by a process that is gone).
OWNER = f"{os.getpid()}@{time.time():.6f}"


@dataclass(frozen=True)
class Sending:
    """An unacknowledged post: when it was attempted, by which process, with what text."""

    since: float
    owner: str
    message: str | None

    @property
    def mine(self) -> bool:
        return self.owner == OWNER


@dataclass(frozen=True)
class PendingEvent:
    key: str
    event: dict[str, Any]
    received_at: float
    deadline: float
    next_check: float
    attempts: int


class BotState:
    """Durable pending queue + report ledger. Safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = open_file(self.path, SCHEMA, "bot state")

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return locked_transaction(self._conn, self._lock, self.path)

    def accept(self, key: str, event: dict[str, Any], deadline_s: float, now: float | None = None) -> bool:
        """Persist a new event; False if this key was already accepted (a duplicate)."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO bot_events(key, event, received_at, deadline, next_check) VALUES (?,?,?,?,?)",
                (key, json.dumps(event), now, now + deadline_s, now),
            )
            return cur.rowcount == 1

    def pending(self) -> list[PendingEvent]:
        """Events not yet done, oldest first (what a restart resumes)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, event, received_at, deadline, next_check, attempts FROM bot_events "
                "WHERE status = 'pending' ORDER BY received_at"
            ).fetchall()
        return [PendingEvent(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def get(self, key: str) -> PendingEvent | None:
        """One pending event (None when unknown or already done)."""
        with self._lock:
            r = self._conn.execute(
                "SELECT key, event, received_at, deadline, next_check, attempts FROM bot_events "
                "WHERE key = ? AND status = 'pending'",
                (key,),
            ).fetchone()
        return PendingEvent(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) if r else None

    def reschedule(self, key: str, next_check: float, error: str | None = None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE bot_events SET next_check = ?, attempts = attempts + 1, last_error = ? WHERE key = ?",
                (next_check, error, key),
            )

    def finish(self, key: str, status: str, result: dict[str, Any] | None = None) -> None:
        """Mark an event done (``done``, ``timeout``, ``failed``...)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE bot_events SET status = ?, result = ?, done_at = ? WHERE key = ?",
                (status, json.dumps(result) if result is not None else None, time.time(), key),
            )

    def status(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT status FROM bot_events WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def claim_report(self, key: str, channel: str, sending: str | None = None, now: float | None = None) -> bool:
        """Record that ``key`` is reported on ``channel``; False if it already was.

        Call it right *before* sending: a crash between the claim and the send
        loses that one message rather than duplicating it. Use
        :meth:`release_report` when the send fails so a retry may post.
        With ``sending`` (the message), a *sending* mark is written in the same
        transaction; clear it with :meth:`confirm_report` once the channel
        acknowledged, and check :meth:`sending` when the claim fails.
        """
        now = time.time() if now is None else now
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO bot_reports(key, channel, posted_at) VALUES (?,?,?)",
                (key, channel, now),
            )
            claimed = cur.rowcount == 1
            if claimed and sending is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO bot_sending(key, channel, since, owner, message) VALUES (?,?,?,?,?)",
                    (key, channel, now, OWNER, sending),
                )
            return claimed

    def mark_sending(self, key: str, channel: str, message: str | None, now: float | None = None) -> None:
        """(Re)write the *sending* mark of an already claimed report before posting again."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bot_sending(key, channel, since, owner, message) VALUES (?,?,?,?,?)",
                (key, channel, time.time() if now is None else now, OWNER, message),
            )

    def sending(self, key: str, channel: str) -> Sending | None:
        """The unacknowledged post of ``key`` on ``channel``, if any."""
        with self._lock:
            row = self._conn.execute(
                "SELECT since, owner, message FROM bot_sending WHERE key = ? AND channel = ?", (key, channel)
            ).fetchone()
        return Sending(row[0], row[1], row[2]) if row else None

    def claim_irc(self, key: str, messages: Sequence[tuple[str, str]], now: float | None = None) -> list[int] | None:
        """Claim ``key``'s IRC report and journal its ``(channel, message)``s, in one transaction.

        Returns the journal ids (in order), or None when the report was
        already claimed. A journaled message stays until :meth:`irc_sent`, so
        messages still queued when the process dies are sent after a restart
        (:meth:`irc_pending`): IRC notices are at least once, not at most once.
        """
        now = time.time() if now is None else now
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO bot_reports(key, channel, posted_at) VALUES (?,?,?)", (key, "irc", now)
            )
            if cur.rowcount != 1:
                return None
            ids: list[int] = []
            for channel, message in messages:
                row = conn.execute(
                    "INSERT INTO irc_outbox(key, channel, message, queued_at) VALUES (?,?,?,?)",
                    (key, channel, message, now),
                )
                ids.append(int(row.lastrowid or 0))
            return ids

    def irc_sent(self, message_id: int) -> None:
        """A journaled IRC message was written to the server (or given up): forget it."""
        with self._tx() as conn:
            conn.execute("DELETE FROM irc_outbox WHERE id = ?", (message_id,))

    def irc_pending(self) -> list[tuple[int, str, str, float]]:
        """Journaled IRC messages not sent yet, oldest first: ``(id, channel, message, queued_at)``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, channel, message, queued_at FROM irc_outbox ORDER BY id"
            ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def confirm_report(self, key: str, channel: str) -> None:
        """The post of ``key`` on ``channel`` is settled (acknowledged, or found on the channel)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM bot_sending WHERE key = ? AND channel = ?", (key, channel))

    def release_report(self, key: str, channel: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM bot_reports WHERE key = ? AND channel = ?", (key, channel))
            conn.execute("DELETE FROM bot_sending WHERE key = ? AND channel = ?", (key, channel))

    def reported(self, key: str, channel: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM bot_reports WHERE key = ? AND channel = ?", (key, channel)
            ).fetchone()
        return row is not None

    def get_meta(self, key: str) -> str | None:
        """A value of the ``bot_meta`` table (e.g. the event stream's resume position)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM bot_meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO bot_meta(key, value) VALUES (?, ?)", (key, value))

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT status, COUNT(*) FROM bot_events GROUP BY status").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
