"""The ``rechecks`` table: the recheck comments the bot saw, for the impact report.

What a recheck is, and how one is read from events and ``gerrit query``, is
:mod:`elastic_recheck.core.rechecks`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from elastic_recheck.core.errors import StoreError
from elastic_recheck.core.rechecks import Recheck
from elastic_recheck.storage.sqlite import Schema, execute_script, objects_exist, open_file, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rechecks (
    change TEXT NOT NULL,
    patchset TEXT NOT NULL,
    at REAL NOT NULL,
    author TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (change, patchset, at, author)
);
CREATE INDEX IF NOT EXISTS rechecks_at ON rechecks(at);
"""


def _migration_1(conn: sqlite3.Connection) -> None:
    """The table as releases before the shared ledger created it."""
    execute_script(conn, _SCHEMA)


#: The rechecks table's migrations (append only; see :mod:`elastic_recheck.storage.sqlite`).
SCHEMA = Schema("rechecks", [_migration_1], adopt=objects_exist("rechecks", "rechecks_at"))


class RecheckLog:
    """The ``rechecks`` table of a SQLite file (the bot's state file). Safe to share between threads."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no such file")
        self._conn = open_file(self.path, SCHEMA, "the recheck log", synchronous=None)

    def record(self, rechecks: Iterable[Recheck]) -> int:
        """Store rechecks (already known ones are ignored); returns how many were new."""
        rows = [(r.change, r.patchset, r.at.timestamp(), r.author, r.source) for r in rechecks]
        with self._lock:
            try:
                before = self._conn.total_changes
                with transaction(self._conn):
                    self._conn.executemany("INSERT OR IGNORE INTO rechecks VALUES (?, ?, ?, ?, ?)", rows)
                return self._conn.total_changes - before
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot record rechecks: {exc}") from None

    def between(self, start: datetime, end: datetime) -> list[Recheck]:
        """The rechecks with ``start <= at <= end``, oldest first."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT change, patchset, at, author, source FROM rechecks WHERE at >= ? AND at <= ? "
                    "ORDER BY at, change, patchset, author",
                    (start.timestamp(), end.timestamp()),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read rechecks: {exc}") from None
        return [Recheck(at=datetime.fromtimestamp(at, tz=UTC), change=c, patchset=p, author=a, source=s)
                for c, p, at, a, s in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
