"""The failure-signature index: a ``failure_signatures`` table in a SQLite file.

The embedded store's own file, or with a cluster backend a local
``signatures.db`` (see :func:`index_path`). What a signature is and how the
evidence is gathered is :mod:`elastic_recheck.core.signatures`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elastic_recheck.adapters.sqlite.database import Database
from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import StoreError
from elastic_recheck.core.search_types import BuildSummary
from elastic_recheck.core.signatures import FailureSignature, Peer, SignatureService
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.storage.sqlite import Schema, execute_script, objects_exist, open_file

LOG = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS failure_signatures (
    build_uuid TEXT PRIMARY KEY,
    sig_key TEXT NOT NULL,
    lines TEXT NOT NULL,
    tests TEXT NOT NULL,
    build_change TEXT,
    build_patchset TEXT,
    build_name TEXT,
    project TEXT,
    build_queue TEXT,
    log_url TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS failure_signatures_key_ts ON failure_signatures(sig_key, ts);
CREATE INDEX IF NOT EXISTS failure_signatures_ts ON failure_signatures(ts);
CREATE TABLE IF NOT EXISTS failure_signatures_meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
"""


def _migration_1(conn: sqlite3.Connection) -> None:
    """The tables as releases before the shared ledger created them."""
    execute_script(conn, _SCHEMA)


#: The signature index's migrations (append only; see :mod:`elastic_recheck.storage.sqlite`).
SCHEMA = Schema(
    "signatures",
    [_migration_1],
    adopt=objects_exist(
        "failure_signatures", "failure_signatures_key_ts", "failure_signatures_ts", "failure_signatures_meta"
    ),
)


def _ts(value: datetime | None) -> float:
    return (value or datetime.now(UTC)).timestamp()


class SignatureIndex:
    """Signatures of failed builds in a SQLite file (thread-safe; one connection per thread)."""

    def __init__(self, path: Path | str, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        # Derived data: a crash may lose the last signatures (they are
        # recomputed), so no fsync per write (synchronous=NORMAL); WAL as the
        # store's own file, none of the store's other pragmas.
        self._db = Database(self.path, timeout=timeout, mmap_size=None, pragmas=())
        open_file(self.path, SCHEMA, "the signature index", timeout=timeout).close()

    def _conn(self) -> sqlite3.Connection:
        return self._db.conn

    def close(self) -> None:
        self._db.close()

    def known(self, uuids: Sequence[str]) -> set[str]:
        """Which of ``uuids`` already have a signature."""
        if not uuids:
            return set()
        try:
            rows = self._conn().execute(
                "SELECT build_uuid FROM failure_signatures WHERE build_uuid IN (SELECT value FROM json_each(?))",
                (json.dumps(list(uuids)),),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        return {r[0] for r in rows}

    def get(self, uuid: str) -> FailureSignature | None:
        try:
            row = self._conn().execute(
                "SELECT lines, tests FROM failure_signatures WHERE build_uuid = ?", (uuid,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        if row is None:
            return None
        return FailureSignature(tuple(json.loads(row[0])), tuple(json.loads(row[1])))

    def put_many(self, items: Iterable[tuple[BuildSummary, FailureSignature]]) -> None:
        rows = [
            (
                info.uuid,
                sig.key,
                json.dumps(list(sig.lines)),
                json.dumps(list(sig.tests)),
                info.change or "",
                info.patchset or "",
                info.job_name or "",
                info.project or "",
                info.queue or "",
                info.log_url or "",
                _ts(info.last_seen or info.first_seen),
            )
            for info, sig in items
        ]
        if not rows:
            return
        try:
            self._conn().executemany(
                "INSERT OR REPLACE INTO failure_signatures (build_uuid, sig_key, lines, tests, build_change, "
                "build_patchset, build_name, project, build_queue, log_url, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot record signatures: {exc}") from None

    def covered(self) -> tuple[float, float] | None:
        """The time span (epoch seconds) whose failed builds a backfill already signed."""
        try:
            rows = dict(self._conn().execute("SELECT key, value FROM failure_signatures_meta").fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        if "backfill_lo" not in rows or "backfill_hi" not in rows:
            return None
        return float(rows["backfill_lo"]), float(rows["backfill_hi"])

    def set_covered(self, lo: float, hi: float) -> None:
        try:
            self._conn().executemany(
                "INSERT OR REPLACE INTO failure_signatures_meta (key, value) VALUES (?, ?)",
                (("backfill_lo", lo), ("backfill_hi", hi)),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    def forget_before(self, cutoff: datetime) -> int:
        """Drop the signatures of builds older than ``cutoff`` (``prune``); how many went.

        The backfill's covered span starts at the cutoff at the earliest
        afterwards, so a later window before it is signed again, not trusted.
        """
        limit = cutoff.timestamp()
        try:
            with self._conn() as conn:
                gone = conn.execute("DELETE FROM failure_signatures WHERE ts < ?", (limit,)).rowcount
                conn.execute(
                    "UPDATE failure_signatures_meta SET value = ? WHERE key = 'backfill_lo' AND value < ?",
                    (limit, limit),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot drop old signatures: {exc}") from None
        return int(gone)

    def peers(self, key: str, start: datetime, end: datetime) -> list[Peer]:
        """Builds with signature ``key`` in ``[start, end]``, newest first (one indexed lookup)."""
        if not key:
            return []
        try:
            rows = self._conn().execute(
                "SELECT build_uuid, build_change, build_patchset, build_name, project, build_queue, log_url, ts "
                "FROM failure_signatures WHERE sig_key = ? AND ts >= ? AND ts <= ? ORDER BY ts DESC, build_uuid",
                (key, start.timestamp(), end.timestamp()),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        return [
            Peer(r[0], r[1] or "", r[2] or "", r[3] or "", r[4] or "", r[5] or "", r[6] or "", datetime.fromtimestamp(r[7], UTC))
            for r in rows
        ]

    def clusters(self, start: datetime, end: datetime, uuids: Sequence[str] | None = None) -> dict[str, list[str]]:
        """``key -> build uuids`` of the signatures in the window (restricted to ``uuids`` when given)."""
        try:
            rows = self._conn().execute(
                "SELECT sig_key, build_uuid FROM failure_signatures WHERE ts >= ? AND ts <= ? AND sig_key != '' "
                "ORDER BY ts DESC",
                (start.timestamp(), end.timestamp()),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        wanted = set(uuids) if uuids is not None else None
        out: dict[str, list[str]] = {}
        for key, uuid in rows:
            if wanted is None or uuid in wanted:
                out.setdefault(key, []).append(uuid)
        return out


def index_path(store_path: Path, cluster: bool, configured: str = "") -> Path:
    """Where signatures live: ``configured``, else the embedded store's file, else ``signatures.db`` beside it."""
    if configured:
        return Path(configured).expanduser()
    return store_path.with_name("signatures.db") if cluster else store_path



def service_from_config(
    config: Config,
    backend: SearchBackend,
    store_path: Path,
    cluster: bool,
    test_results: Any = None,
    path: Path | None = None,
) -> SignatureService | None:
    """The configured :class:`SignatureService` (None, with a warning, when its index cannot be opened).

    ``path`` overrides where the index lives (a dry run's scratch directory).
    """
    if path is None:
        path = index_path(store_path, cluster, config.data_source.signature_index)
    try:
        index = SignatureIndex(path)
    except StoreError as exc:
        LOG.warning("failure signatures off: %s", exc)
        return None
    return SignatureService(
        backend,
        index,
        test_results=test_results,
        hours=config.recheckwatch.recurring_hours,
        min_changes=config.recheckwatch.recurring_changes,
    )


if TYPE_CHECKING:
    from elastic_recheck.core.signatures import SignatureStore

    _port: type[SignatureStore] = SignatureIndex  # mypy checks the adapter against its port
