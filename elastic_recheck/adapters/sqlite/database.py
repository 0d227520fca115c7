"""One SQLite file: a connection per thread, one writer at a time, and a migrations ledger.

The embedded store (:mod:`elastic_recheck.adapters.sqlite.store`) opens its
file through :class:`Database`: connections in WAL mode with the store's
pragmas, ``BEGIN IMMEDIATE`` write transactions serialized by a lock, and
the ``schema_migrations`` ledger that records which numbered migration ran
(each in its own transaction). SQLite errors become one-line
:class:`~elastic_recheck.core.errors.StoreError` messages (:func:`translate`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from collections.abc import Mapping as AbcMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from elastic_recheck.core.errors import StoreError

LOG = logging.getLogger(__name__)

#: A numbered schema step, run inside the ledger's transaction.
Migration = Callable[[sqlite3.Connection], None]


def _has_sqlite_header(path: Path) -> bool:
    """Whether ``path`` starts like an SQLite database (a damaged store does; a README does not)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return True  # cannot tell: say "corrupt", as before


def translate(exc: sqlite3.Error, path: Path) -> StoreError:
    """The one-line :class:`StoreError` for an SQLite error on the file ``path``."""
    text = str(exc)
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        return StoreError(f"{path}: the store is read-only ({text})")
    if "full" in low:
        return StoreError(f"{path}: disk full ({text})")
    if "not a database" in low and not _has_sqlite_header(path):
        return StoreError(
            f"{path}: not an elastic-recheck store (not an SQLite file, nor a corrupt one): check --store, "
            "[data_source] store or $ELASTIC_RECHECK_STORE"
        )
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return StoreError(f"{path}: the store file is corrupt ({text}); move it away and re-ingest")
    if "unable to open" in low:
        return StoreError(f"{path}: cannot open the store ({text})")
    if "locked" in low or "busy" in low:
        return StoreError(f"{path}: the store is locked by another process ({text})")
    return StoreError(f"{path}: {text}")


class Database:
    """An SQLite file shared between threads: each thread gets its own connection.

    Writes are serialized by :attr:`write_lock` (SQLite's WAL mode lets
    readers proceed while one writer commits).

    :param path: the database file.
    :param timeout: seconds a connection waits for another process's lock.
    :param mmap_size: bytes of the file each connection memory-maps (0: none).
    :param on_connect: called with every new connection (e.g. to register SQL functions).
    """

    def __init__(
        self,
        path: Path,
        *,
        timeout: float = 30.0,
        mmap_size: int = 0,
        on_connect: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.mmap_size = mmap_size
        self._on_connect = on_connect
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self.write_lock = threading.RLock()
        self._closed = False

    def connect(self) -> sqlite3.Connection:
        """A new connection with the store's pragmas (autocommit: transactions are explicit)."""
        conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        # 8 MiB per connection: reads are served by the memory-mapped file (or
        # the OS page cache when mmap is off); a bigger cache per thread made
        # the bot's heap grow (docs/reliability.md).
        conn.execute("PRAGMA cache_size=-8192")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(f"PRAGMA mmap_size={int(self.mmap_size)}")
        if self._on_connect is not None:
            self._on_connect(conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self.connect()
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from None
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection (idempotent)."""
        with self._conns_lock:
            for conn in self._conns:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._conns.clear()
        self._closed = True

    @contextmanager
    def write_transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error;
        SQLite errors become :class:`StoreError`.

        :param conn: the connection to write on (default: this thread's).
        """
        with self.write_lock:
            if conn is None:
                conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from None

    def migrate(self, migrations: AbcMapping[int, Migration]) -> None:
        """Run the ``migrations`` the ledger has not recorded yet, in order, one transaction each.

        :raises StoreError: the file records a migration newer than any of ``migrations``.
        :raises sqlite3.Error: a migration failed (it was rolled back).
        """
        latest = max(migrations)
        conn = self.conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        newer = [v for v in done if v > latest]
        if newer:
            raise StoreError(f"{self.path}: created by a newer elastic-recheck (schema {max(newer)} > {latest}); upgrade")
        for version in sorted(migrations):
            if version in done:
                continue
            with self.write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    migrations[version](conn)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                        (version, datetime.now(UTC).isoformat()),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            LOG.info("%s: applied store migration %d", self.path, version)
