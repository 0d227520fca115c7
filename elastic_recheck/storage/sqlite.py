"""The one SQLite helper: opening a file, write transactions, and the migrations ledger.

Every SQLite file elastic-recheck writes goes through here: the embedded
store, the bot state, the rechecks table, the failure-signature index (all
in the store's file with the embedded backend), the collector's ledger and
the bug cache.

* :func:`connect`: an autocommit connection (transactions are explicit)
  shared between threads, in WAL mode, with a busy timeout and the
  component's pragmas; :func:`open_file` also creates the directory and
  migrates the component's tables, with one-line errors;
* :func:`transaction`: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back when
  anything raises (:func:`locked_transaction`: under a lock, with one-line
  errors);
* :func:`migrate`: brings one component's tables up to date. Each component
  declares a :class:`Schema`: its name and an ordered list of migrations.
  The ``schema_ledger`` table records which versions of which component a
  file holds, so several components share one file.

Migrations
----------
A migration is a function of the connection that runs inside the
transaction that records it in the ledger: it either happens entirely or
not at all (a process killed halfway leaves the file at the previous
version, and the next open runs it again). So a migration must not commit:
use :func:`execute_script`, never ``executescript()`` (which commits first).

**Adding one** is one function appended to the component's list (the store's
``MIGRATIONS`` maps numbers to functions: the next number)::

    def _migration_3(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE docs ADD COLUMN compressed BLOB")

    MIGRATIONS = [_migration_1, _migration_2, _migration_3]

Append, never edit or reorder: a file records which ran. Version *n* is
``migrations[n - 1]``. An older release opening a file a newer one migrated
refuses it ("created by a newer elastic-recheck ... upgrade").

**Files written before the ledger** are *adopted*: when the ledger has no
row for a component, :attr:`Schema.adopt` says which version the file
already holds (e.g. "today's tables exist: version 1"), and that is
recorded without running anything, so no table is rebuilt or rewritten.
A component that kept a ledger of its own (the store's
``schema_migrations``) names it as :attr:`Schema.legacy_ledger`: it is read
to adopt the file, and kept up to date so older releases still read it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elastic_recheck.core.errors import StoreError

LOG = logging.getLogger(__name__)

#: The table recording which migrations of which component a file holds.
LEDGER = "schema_ledger"
_LEDGER_SQL = (
    f"CREATE TABLE IF NOT EXISTS {LEDGER} (component TEXT NOT NULL, version INTEGER NOT NULL, "
    "applied_at TEXT NOT NULL, adopted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (component, version))"
)

#: One numbered schema step, run inside the transaction that records it.
Migration = Callable[[sqlite3.Connection], None]


def _no_tables(conn: sqlite3.Connection) -> int:
    return 0


@dataclass(frozen=True)
class Schema:
    """A component's tables in a file, as an ordered list of migrations (version n = ``migrations[n-1]``)."""

    #: The component's name in the ledger (``store``, ``bot_state``...).
    component: str
    migrations: Sequence[Migration]
    #: The version a file written before the ledger holds (0: none of the
    #: component's tables). Runs inside a transaction; must only read.
    adopt: Callable[[sqlite3.Connection], int] = _no_tables
    #: A ``(version INTEGER PRIMARY KEY, applied_at TEXT)`` table the
    #: component kept before the shared ledger: read to adopt the file, and
    #: still written, so older releases see the version.
    legacy_ledger: str | None = None

    @property
    def version(self) -> int:
        """The version this code writes (the number of migrations)."""
        return len(self.migrations)


def connect(
    path: Path | str, *, timeout: float = 30.0, synchronous: str | None = "NORMAL", pragmas: Sequence[str] = ()
) -> sqlite3.Connection:
    """An autocommit connection to ``path`` in WAL mode, usable from any thread (callers serialize).

    :param timeout: seconds to wait for another connection's lock (SQLite's busy timeout).
    :param synchronous: ``PRAGMA synchronous`` (None: SQLite's default, FULL).
    :param pragmas: more ``PRAGMA`` settings, e.g. ``"cache_size=-8192"``.
    :raises sqlite3.Error: the file cannot be opened.
    """
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        if synchronous is not None:
            conn.execute(f"PRAGMA synchronous={synchronous}")
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on ``conn``; rolled back when anything raises.

    SQLite errors propagate as they are (callers turn them into their own
    :class:`StoreError` message); callers sharing ``conn`` between threads
    hold their lock around it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def locked_transaction(
    conn: sqlite3.Connection, lock: AbstractContextManager[Any], path: Path | str
) -> Iterator[sqlite3.Connection]:
    """:func:`transaction` on a connection the threads of a process share under ``lock``.

    :raises StoreError: ``<path>: <SQLite's message>`` when SQLite fails (the transaction was rolled back).
    """
    with lock:
        try:
            with transaction(conn):
                yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {exc}") from None


def execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run the statements of ``script`` one at a time, inside the current transaction.

    (``executescript()`` would commit the transaction first.)
    """
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \t\r\n;"):
                conn.execute(statement)
            statement = ""
    if statement.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement: {statement.strip()[:80]!r}")


def objects_exist(*names: str) -> Callable[[sqlite3.Connection], int]:
    """An :attr:`Schema.adopt` for a component whose tables were created without a ledger:
    version 1 when every one of ``names`` (tables, indexes) exists, else 0 (its first
    migration then creates what is missing)."""

    def adopt(conn: sqlite3.Connection) -> int:
        return 1 if _existing(conn, names) == set(names) else 0

    return adopt


def _existing(conn: sqlite3.Connection, names: Sequence[str]) -> set[str]:
    marks = ",".join("?" * len(names))
    return {n for (n,) in conn.execute(f"SELECT name FROM sqlite_master WHERE name IN ({marks})", tuple(names))}


def _recorded(conn: sqlite3.Connection, schema: Schema) -> int | None:
    """The component's version in the ledger (None: the ledger has no row for it)."""
    if not _existing(conn, [LEDGER]):
        return None
    (version,) = conn.execute(f"SELECT max(version) FROM {LEDGER} WHERE component = ?", (schema.component,)).fetchone()
    return None if version is None else int(version)


def _legacy(conn: sqlite3.Connection, schema: Schema) -> int:
    """The newest version in the component's legacy ledger (0 when it has none)."""
    if schema.legacy_ledger is None or not _existing(conn, [schema.legacy_ledger]):
        return 0
    (version,) = conn.execute(f"SELECT max(version) FROM {schema.legacy_ledger}").fetchone()
    return int(version or 0)


def _adopted_version(conn: sqlite3.Connection, schema: Schema) -> int:
    return max(_legacy(conn, schema), schema.adopt(conn))


def _record(conn: sqlite3.Connection, schema: Schema, version: int, adopted: bool) -> None:
    now = datetime.now(UTC).isoformat()
    conn.execute(
        f"INSERT OR IGNORE INTO {LEDGER} (component, version, applied_at, adopted) VALUES (?, ?, ?, ?)",
        (schema.component, version, now, int(adopted)),
    )
    if schema.legacy_ledger is not None:
        conn.execute(f"INSERT OR IGNORE INTO {schema.legacy_ledger} (version, applied_at) VALUES (?, ?)", (version, now))


def _refuse_newer(path: Path | str, schema: Schema, found: int) -> None:
    if found > schema.version:
        what = "schema" if schema.component == "store" else f"{schema.component} schema"
        raise StoreError(f"{path}: created by a newer elastic-recheck ({what} {found} > {schema.version}); upgrade")


def _is_read_only(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text


def migrate(conn: sqlite3.Connection, schema: Schema, path: Path | str) -> int:
    """Bring ``schema``'s tables in the file of ``conn`` up to date; returns the version the file now holds.

    Nothing is written when the ledger already records the latest version.
    A file written before the ledger is first adopted (see the module
    docstring); then each missing migration runs in its own transaction,
    together with its ledger row. Several processes may open one file at
    once: each step re-reads the ledger under the write lock.

    ``conn`` must not be used by another thread meanwhile. A read-only file
    that needs nothing but its adoption recorded is used as it is.

    :param path: the file, for messages.
    :raises StoreError: the file was written by a newer elastic-recheck.
    :raises sqlite3.Error: a migration failed (it was rolled back).
    """
    current = _recorded(conn, schema)
    if current is not None:
        _refuse_newer(path, schema, max(current, _legacy(conn, schema)))
        if current == schema.version:
            return current
    else:
        try:
            with transaction(conn):
                conn.execute(_LEDGER_SQL)
                if schema.legacy_ledger is not None:
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {schema.legacy_ledger} "
                        "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
                    )
                current = _recorded(conn, schema)
                if current is None:  # nobody adopted the file meanwhile
                    current = _adopted_version(conn, schema)
                    _refuse_newer(path, schema, current)
                    for version in range(1, current + 1):
                        _record(conn, schema, version, adopted=True)
                    if current:
                        LOG.info("%s: adopted the %s tables as version %d", path, schema.component, current)
        except sqlite3.OperationalError as exc:
            if not _is_read_only(exc):
                raise
            found = _adopted_version(conn, schema)
            if found < schema.version:
                raise
            _refuse_newer(path, schema, found)
            LOG.debug("%s: read-only; %s tables used as version %d without recording it", path, schema.component, found)
            return found
    for version in range(current + 1, schema.version + 1):
        with transaction(conn):
            done = _recorded(conn, schema) or 0
            _refuse_newer(path, schema, done)
            if done >= version:  # another process ran it meanwhile
                continue
            schema.migrations[version - 1](conn)
            _record(conn, schema, version, adopted=False)
        LOG.info("%s: applied %s migration %d", path, schema.component, version)
    return schema.version


def open_file(
    path: Path, schema: Schema, what: str, *, timeout: float = 30.0, synchronous: str | None = "NORMAL"
) -> sqlite3.Connection:
    """A :func:`connect`-ion to ``path`` (its directory created) with ``schema``'s tables up to date.

    :param what: the component, for messages ("the bug cache").
    :raises StoreError: ``<path>: cannot open <what>: <reason>``, or the file is from a newer release.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path, timeout=timeout, synchronous=synchronous)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open {what}: {exc}") from None
    try:
        migrate(conn, schema, path)
    except (sqlite3.Error, StoreError) as exc:
        conn.close()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"{path}: cannot open {what}: {exc}") from None
    return conn


def versions(conn: sqlite3.Connection) -> dict[str, int]:
    """component -> the newest version the ledger records (empty for a file without a ledger)."""
    if not _existing(conn, [LEDGER]):
        return {}
    return {str(c): int(v) for c, v in conn.execute(f"SELECT component, max(version) FROM {LEDGER} GROUP BY component")}
