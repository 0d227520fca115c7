"""One SQLite file shared between threads: a connection per thread, one writer at a time.

The embedded store (:mod:`elastic_recheck.adapters.sqlite.store`) and the
failure-signature index open their file through :class:`Database`:
connections in WAL mode with the store's pragmas, ``BEGIN IMMEDIATE`` write
transactions serialized by a lock, and the store's migrations recorded in
the shared ledger (:mod:`elastic_recheck.storage.sqlite`, where opening,
transactions and migrations are implemented once for every SQLite file).
SQLite errors become one-line :class:`~elastic_recheck.core.errors.StoreError`
messages (:func:`translate`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from contextlib import contextmanager
from pathlib import Path

from elastic_recheck.core.errors import StoreError
from elastic_recheck.storage.sqlite import Migration, Schema, connect, migrate, transaction

LOG = logging.getLogger(__name__)

#: The store's ledger before the shared one: still written, so older releases read the version.
STORE_LEGACY_LEDGER = "schema_migrations"

#: The store's pragmas besides WAL and ``synchronous=NORMAL``. 8 MiB of page
#: cache per connection: reads are served by the memory-mapped file (or the
#: OS page cache when mmap is off); a bigger cache per thread made the bot's
#: heap grow (docs/reliability.md).
STORE_PRAGMAS = ("foreign_keys=OFF", "cache_size=-8192", "temp_store=MEMORY")


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
        mmap_size: int | None = 0,
        pragmas: Sequence[str] = STORE_PRAGMAS,
        on_connect: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.mmap_size = mmap_size
        self._pragmas = tuple(pragmas) + (() if mmap_size is None else (f"mmap_size={int(mmap_size)}",))
        self._on_connect = on_connect
        self._local = threading.local()
        #: every open connection, with the thread it belongs to
        self._conns: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self.write_lock = threading.RLock()
        self._closed = False

    def connect(self) -> sqlite3.Connection:
        """A new connection with the file's pragmas (autocommit: transactions are explicit)."""
        conn = connect(self.path, timeout=self.timeout, pragmas=self._pragmas)
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
                self._close_orphans()
                self._conns.append((weakref.ref(threading.current_thread()), conn))
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (with ``_conns_lock`` held).

        A process that runs each task in a thread of its own (the bot's
        attempts) would otherwise keep one connection, and its page cache,
        per task it ever ran: ~8 MB each.
        """
        kept = []
        for ref, conn in self._conns:
            thread = ref()
            if thread is not None and thread.is_alive():
                kept.append((ref, conn))
                continue
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._conns = kept

    def close(self) -> None:
        """Close every connection (idempotent)."""
        with self._conns_lock:
            for _, conn in self._conns:
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
                with transaction(conn):
                    yield conn
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from None

    def migrate(self, migrations: AbcMapping[int, Migration]) -> None:
        """Run the store's ``migrations`` (version -> step, 1..n) the ledger has not recorded yet.

        See :func:`elastic_recheck.storage.sqlite.migrate`: one transaction
        each; a store written before the shared ledger is adopted at the
        version its ``schema_migrations`` table records.

        :raises StoreError: the file records a migration newer than any of ``migrations``.
        :raises sqlite3.Error: a migration failed (it was rolled back).
        """
        steps = [migrations[v] for v in sorted(migrations)]
        assert sorted(migrations) == list(range(1, len(steps) + 1)), "migrations are numbered 1..n"
        with self.write_lock:
            migrate(self.conn, Schema("store", steps, legacy_ledger=STORE_LEGACY_LEDGER), self.path)
