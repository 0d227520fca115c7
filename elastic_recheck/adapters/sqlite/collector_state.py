"""The collector's ledger: which builds were fetched, by whom, with what outcome.

:class:`CollectorState` keeps a ``collected_builds`` table in a SQLite file
(the embedded store's file by default), so a restart continues and nothing is
fetched twice: the bot's on-demand fetch and ``collect --follow`` share it.
A worker *claims* a build (status ``fetching``, with its owner and time)
before fetching it, in a ``BEGIN IMMEDIATE`` transaction, so several
threads and processes can share one file; a claim whose owner died or that
is older than :data:`STALE_CLAIM_SECONDS` is taken over.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elastic_recheck.core.timestamps import parse_timestamp
from elastic_recheck.core.zuul_build import ZuulBuild
from elastic_recheck.storage.sqlite import Schema, execute_script, locked_transaction, objects_exist, open_file

LOG = logging.getLogger(__name__)

#: A claim older than this is taken over (its owner died or hung).
STALE_CLAIM_SECONDS = 30 * 60.0
#: A build that failed with a retryable error is tried this many times.
MAX_ATTEMPTS = 3

# Statuses of the collected_builds table.
COLLECTED = "collected"
MISSING = "missing"  # the log server has no logs for the build (404)
NO_LOGS = "no_logs"  # Zuul gave no log_url (e.g. NODE_FAILURE)
REFUSED = "refused"  # the log host is not allowed
FAILED = "failed"  # a retryable error; tried again up to MAX_ATTEMPTS
FETCHING = "fetching"

FINAL_STATUSES: frozenset[str] = frozenset({COLLECTED, MISSING, NO_LOGS, REFUSED})


_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS collected_builds (
    uuid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    job_name TEXT,
    result TEXT,
    pipeline TEXT,
    project TEXT,
    change INTEGER,
    patchset TEXT,
    start_time TEXT,
    end_time TEXT,
    log_url TEXT,
    target TEXT,
    files INTEGER NOT NULL DEFAULT 0,
    skipped_files INTEGER NOT NULL DEFAULT 0,
    documents INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    owner TEXT,
    claimed_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS collected_builds_status ON collected_builds(status);
CREATE INDEX IF NOT EXISTS collected_builds_start ON collected_builds(start_time);
"""


def _migration_1(conn: sqlite3.Connection) -> None:
    """The table as releases before the shared ledger created it."""
    execute_script(conn, _STATE_SCHEMA)


#: The collector state's migrations (append only; see :mod:`elastic_recheck.storage.sqlite`).
SCHEMA = Schema(
    "collector_state",
    [_migration_1],
    adopt=objects_exist("collected_builds", "collected_builds_status", "collected_builds_start"),
)


@dataclass(frozen=True)
class StateRow:
    uuid: str
    status: str
    job_name: str | None
    attempts: int
    files: int
    documents: int
    bytes: int
    error: str | None
    owner: str | None
    claimed_at: float | None
    updated_at: float
    target: str | None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CollectorState:
    """The ``collected_builds`` table: which builds were fetched, by whom, with what outcome.

    Safe to share between threads; several processes may use the same file
    (claims are taken in ``BEGIN IMMEDIATE`` transactions).
    """

    def __init__(self, path: Path | str, stale_after: float = STALE_CLAIM_SECONDS, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.path = Path(path)
        self.stale_after = stale_after
        self.max_attempts = max_attempts
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.RLock()
        self._conn = open_file(self.path, SCHEMA, "the collector state")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return locked_transaction(self._conn, self._lock, self.path)

    _COLUMNS = "uuid, status, job_name, attempts, files, documents, bytes, error, owner, claimed_at, updated_at, target"

    def get(self, uuid: str) -> StateRow | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {self._COLUMNS} FROM collected_builds WHERE uuid = ?", (uuid,)).fetchone()
        return StateRow(*row) if row else None

    def rows(self, status: str | None = None) -> list[StateRow]:
        sql = f"SELECT {self._COLUMNS} FROM collected_builds"
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        with self._lock:
            return [StateRow(*r) for r in self._conn.execute(sql + " ORDER BY updated_at", params)]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._conn.execute("SELECT status, COUNT(*) FROM collected_builds GROUP BY status").fetchall())

    def durations(self) -> dict[str, float]:
        """uuid -> seconds from Zuul's ``start_time`` to ``end_time``, of every build that has both."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT uuid, start_time, end_time FROM collected_builds WHERE start_time IS NOT NULL AND end_time IS NOT NULL"
            ).fetchall()
        out = {}
        for uuid, start, end in rows:
            began, ended = parse_timestamp(start), parse_timestamp(end)  # written by claim() with isoformat()
            if began is None or ended is None:
                continue
            seconds = (ended - began).total_seconds()
            if seconds >= 0:
                out[str(uuid)] = seconds
        return out

    def _claim_is_live(self, owner: str | None, claimed_at: float | None, now: float) -> bool:
        if claimed_at is None or now - claimed_at > self.stale_after:
            return False
        if not owner:
            return False
        host, _, pid = owner.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            return _pid_alive(int(pid))
        return True

    def is_done(self, uuid: str) -> bool:
        """True when the build needs no (more) fetching: final, given up, or being fetched right now."""
        row = self.get(uuid)
        if row is None:
            return False
        if row.status in FINAL_STATUSES:
            return True
        if row.status == FAILED:
            return row.attempts >= self.max_attempts
        if row.status == FETCHING:
            return self._claim_is_live(row.owner, row.claimed_at, time.time())
        return False

    def claim(self, build: ZuulBuild, target: str) -> bool:
        """Take the build for fetching; False if it is done or somebody else holds it."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT status, attempts, owner, claimed_at FROM collected_builds WHERE uuid = ?", (build.uuid,)
            ).fetchone()
            if row is not None:
                status, attempts, owner, claimed_at = row
                if status in FINAL_STATUSES:
                    return False
                if status == FAILED and attempts >= self.max_attempts:
                    return False
                if status == FETCHING and self._claim_is_live(owner, claimed_at, now):
                    return False
                if status == FETCHING:
                    LOG.warning("build %s: taking over a stale claim of %s", build.short_uuid, owner)
            conn.execute(
                """INSERT INTO collected_builds
                       (uuid, status, job_name, result, pipeline, project, change, patchset,
                        start_time, end_time, log_url, target, owner, claimed_at, updated_at)
                   VALUES (?, 'fetching', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(uuid) DO UPDATE SET
                       status = 'fetching', target = excluded.target, owner = excluded.owner,
                       claimed_at = excluded.claimed_at, updated_at = excluded.updated_at""",
                (
                    build.uuid,
                    build.job_name,
                    build.result,
                    build.pipeline,
                    build.project,
                    build.change,
                    build.patchset,
                    build.start_time.isoformat() if build.start_time else None,
                    build.end_time.isoformat() if build.end_time else None,
                    build.log_url,
                    target,
                    self.owner,
                    now,
                    now,
                ),
            )
            return True

    def finish(
        self,
        uuid: str,
        status: str,
        *,
        files: int = 0,
        skipped_files: int = 0,
        documents: int = 0,
        nbytes: int = 0,
        error: str | None = None,
    ) -> None:
        """Record the outcome of a claimed build (``failed`` counts an attempt)."""
        with self._tx() as conn:
            conn.execute(
                """UPDATE collected_builds SET status = ?, files = ?, skipped_files = ?, documents = ?,
                       bytes = ?, error = ?, attempts = attempts + 1, owner = NULL, claimed_at = NULL,
                       updated_at = ?
                   WHERE uuid = ?""",
                (status, files, skipped_files, documents, nbytes, error, time.time(), uuid),
            )
