"""The embedded store: CI log documents in one SQLite file, searched like Lucene.

No server: the bot, the CLI and the report builders open the file directly.
:class:`EmbeddedStore` implements :class:`elastic_recheck.ports.search.SearchBackend`
with results that are exactly what Lucene (and
:class:`elastic_recheck.core.lucene.matcher.MemoryIndex`) return for the same
analyzed query. Its parts, in this package:

* :mod:`.database`: the file's connections, write transactions and migrations ledger;
* :mod:`.layout`: the tables (migrations) and how documents map onto them;
* :mod:`.prepare` and :mod:`.writer`: documents in (split, analyzed, one
  SQLite call per batch, a background writer thread), deletions;
* :mod:`.compiler`: a query AST to SQL and FTS5;
* :mod:`.percolate`: many queries against one build, in memory (``msearch``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from elastic_recheck.adapters.sqlite.compiler import QueryCompiler, register_functions
from elastic_recheck.adapters.sqlite.database import Database, translate
from elastic_recheck.adapters.sqlite.layout import (
    FAILED_STATUSES,
    MIGRATIONS,
    assemble,
    build_docs,
    doc_id_text,
    dt_to_ms,
    file_field,
    join_shape,
    keyword_values,
    loads_json,
    ms_to_dt,
    shapes_with,
    with_text_fields,
)
from elastic_recheck.adapters.sqlite.lines import StoredLines
from elastic_recheck.adapters.sqlite.percolate import Percolator, common_build
from elastic_recheck.adapters.sqlite.prepare import DocumentPreparer, PreparedDoc
from elastic_recheck.adapters.sqlite.writer import StoreWriter
from elastic_recheck.core.errors import BackendError, QuerySyntaxError, StoreError
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.schema import BUILD_FIELDS, DEFAULT_MAPPING, Mapping, build_log_url
from elastic_recheck.core.search_types import Bucket, BuildSummary, Hit, QuerySpec, SearchResult, TermCount
from elastic_recheck.core.timestamps import to_epoch_ms
from elastic_recheck.ports.loading import IngestStats, TestResult

LOG = logging.getLogger(__name__)


#: Bytes of the store file each connection memory-maps (SQLite ``mmap_size``).
#: Mapped reads make a cold classification ~20 % faster (45 vs 58 ms on the
#: 1M-line benchmark), but every mapped page touched counts in the process's
#: RSS, once per connection; the long-running bot opens the store with 0
#: (docs/performance.md, docs/reliability.md).
DEFAULT_MMAP_SIZE = 256 * 1024 * 1024
#: ``mmap_size`` of a whole-store scan (the report commands: every fingerprint over the whole
#: window): all of the file. SQLite caps it at its build's ``SQLITE_MAX_MMAP_SIZE`` (2 GiB in
#: Debian's and Python's builds). Past the map, pages are read with a system call each: at 10M
#: lines (a 2.6 GB store) the report's queries cost ~9 % more CPU with 256 MiB mapped.
SCAN_MMAP_SIZE = 1 << 40
#: Decoded build and shape parts :meth:`EmbeddedStore._summary_fields` keeps, by default and for a
#: whole-store scan (a report asks ``builds()`` about the same builds once per fingerprint: at 10M
#: lines 50,000 builds and 163,000 shapes; with fewer kept than it cycles through, every one is
#: decoded again for every fingerprint). ~1.8 KB per build, ~0.5 KB per shape.
SUMMARY_CACHE_SIZE = 65536
SCAN_SUMMARY_CACHE_SIZE = 1 << 20


#: Joins a subquery ``m`` with a ``shape`` column to its shape ``s`` and build ``b`` (aggregations
#: reduce the matching lines to their distinct shapes first: a few per build).
_BUILD_OF_M = "JOIN shapes s ON s.id = m.shape JOIN builds b ON b.id = s.build"


def _summary_of(src: AbcMapping[str, Any]) -> dict[str, Any]:
    """A :class:`BuildSummary`'s fields from a shape's fields (or a part of them)."""
    fields = {k: src[k] for k in BUILD_FIELDS if k in src}
    if "log_url" in fields:
        # The shape holds one file's URL; the build's logs are its directory.
        fields["log_url"] = build_log_url(fields["log_url"], src.get("filename"))
    return fields


class EmbeddedStore:
    """CI log documents in one SQLite file; implements :class:`SearchBackend`.

    Safe to share between threads: each thread gets its own connection, and
    writes are serialized by a lock (SQLite's WAL mode lets readers proceed
    while one writer commits).

    :param path: the database file (created with its directory when missing).
    :param mapping: which fields are analyzed text (fixed when the store is created).
    :param es_mode: parse queries like Elasticsearch's ``query_string`` (else plain Lucene).
    :param mmap_size: bytes of the file each connection memory-maps (0: none; None: the
        default of the access pattern, :data:`DEFAULT_MMAP_SIZE` or :data:`SCAN_MMAP_SIZE`).
    :param scan: the caller reads the whole window (the report commands): all of the file
        mapped and every build's decoded fields kept (:data:`SCAN_SUMMARY_CACHE_SIZE`).
    :param summary_cache_size: decoded build (and shape) parts kept for :meth:`builds`
        (None: the default of the access pattern).
    :raises StoreError: the file cannot be opened, is read-only, corrupt, or
        was created by a newer version or with other text fields.
    """

    def __init__(
        self,
        path: str | Path,
        mapping: Mapping = DEFAULT_MAPPING,
        es_mode: bool = True,
        timeout: float = 30.0,
        tokenize: Callable[[str], list[str]] | None = None,
        mmap_size: int | None = None,
        scan: bool = False,
        summary_cache_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        if mmap_size is None:
            mmap_size = SCAN_MMAP_SIZE if scan else DEFAULT_MMAP_SIZE
        if summary_cache_size is None:
            summary_cache_size = SCAN_SUMMARY_CACHE_SIZE if scan else SUMMARY_CACHE_SIZE
        self.mmap_size = max(0, int(mmap_size))
        self.mapping = mapping
        self.es_mode = es_mode
        self.timeout = timeout
        self._tokenize_fn = tokenize
        self._predicates: dict[int, Callable[[str], bool]] = {}
        self._db = Database(self.path, timeout=timeout, mmap_size=self.mmap_size, on_connect=self._register_functions)
        self._write_lock = self._db.write_lock
        self._parse_cache: dict[str, qa.Query | QuerySyntaxError] = {}
        self._summary_cache: dict[str, dict[str, Any]] = {}  # a build's part -> its fields
        self._summary_own_cache: dict[str, dict[str, Any]] = {}  # a shape's own part -> its fields
        self.summary_cache_size = summary_cache_size
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the store's directory: {exc}") from None
        try:
            self._migrate()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None
        self._compiler = QueryCompiler(self.mapping, self._text_fields, self._predicates)
        #: percolation's state: the indexes of the builds searched last
        #: compressed lines: the store's codec (see lines.py)
        self._lines = StoredLines(self.path, self._conn, timeout)
        self.percolator = Percolator(
            self.mapping, self._text_fields, self._tokenize, self._run, self._lines.raw_unpacker
        )
        self._writer = StoreWriter(
            self._db, self.mapping, self._text_fields, self._tokenize, self.percolator.invalidate, self._lines
        )

    # -- connections ------------------------------------------------------
    def _register_functions(self, conn: sqlite3.Connection) -> None:
        # (er_body looks the codec up when called: connections open before it is loaded)
        register_functions(conn, self._predicates, lambda body: self._lines.text(body))

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._db.conn

    def close(self) -> None:
        """Close every connection (idempotent)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        wanted = sorted(self.mapping.text_fields)
        conn = self._conn
        if conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None:
            # A new file: pages freed later (FTS5 merges, deleted lines) go back to the file system
            # without rewriting it (the mode of an empty file changes by a VACUUM of nothing).
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("VACUUM")
        self._db.migrate({version: with_text_fields(step, wanted) for version, step in MIGRATIONS.items()})
        row = conn.execute("SELECT value FROM meta WHERE key = 'text_fields'").fetchone()
        stored = json.loads(row[0]) if row else wanted
        if sorted(stored) != wanted:
            raise StoreError(
                f"{self.path}: created with text fields {stored}, but the mapping says {wanted}; "
                "re-ingest into a new store to change the mapping"
            )
        self._text_fields: list[str] = list(stored)

    def integrity_check(self) -> list[str]:
        """Problems found by SQLite's and FTS5's integrity checks (empty: healthy)."""
        conn = self._conn
        try:
            problems = [r for (r,) in conn.execute("PRAGMA integrity_check") if r != "ok"]
            conn.execute("INSERT INTO fts (fts) VALUES ('integrity-check')")
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        return problems

    # -- writing -----------------------------------------------------------
    def _tokenize(self) -> Callable[[str], list[str]]:
        if self._tokenize_fn is None:
            from elastic_recheck.core.lucene.analysis import tokenize

            self._tokenize_fn = tokenize
        return self._tokenize_fn

    def add_documents(
        self,
        docs: Iterable[AbcMapping[str, Any]],
        batch_size: int = 5000,
        id_of: Callable[[AbcMapping[str, Any]], str | None] | None = None,
    ) -> IngestStats:
        """Store documents (one transaction per ``batch_size``); returns what was stored.

        See :meth:`.writer.StoreWriter.add_documents`.

        :raises StoreError: the disk is full or read-only, or the file is corrupt.
        """
        return self._writer.add_documents(docs, batch_size, id_of)

    def preparer(self) -> DocumentPreparer:
        """A :class:`DocumentPreparer` for this store's text fields (picklable: for worker processes)."""
        return self._writer.preparer()

    def add_prepared(self, batch: Sequence[PreparedDoc], stats: IngestStats | None = None) -> int:
        """Store documents prepared by :meth:`preparer` (one transaction); returns how many."""
        return self._writer.add_prepared(batch, stats)

    def delete_build(self, build_uuid: str, filenames: Iterable[str] | None = None) -> int:
        """Remove a build's documents (only those of ``filenames`` when given); returns how many.

        Used before re-ingesting a build's log files, so that ingesting twice
        does not store every line twice.
        """
        return self._writer.delete_build(build_uuid, filenames)

    def record_test_results(self, build_uuid: str, results: Iterable[TestResult | tuple[str, str]]) -> int:
        """Store a build's test results (replacing earlier ones for the same tests)."""
        return self._writer.record_test_results(build_uuid, results)

    # -- retention (elastic_recheck.adapters.sqlite.retention drives these) -------------------
    def builds_older_than(self, cutoff: datetime) -> list[tuple[str, int, datetime]]:
        """``(build_uuid, lines, newest line's time)`` of the builds whose newest line is before ``cutoff``, oldest first."""

        def run(conn: sqlite3.Connection) -> list[tuple[str, int, datetime]]:
            rows = conn.execute(
                "SELECT b.build_uuid, COUNT(*), MAX(d.ts) FROM builds b JOIN shapes s ON s.build = b.id "
                "JOIN docs d ON d.shape = s.id WHERE b.build_uuid IS NOT NULL GROUP BY b.build_uuid "
                "HAVING MAX(d.ts) < ? ORDER BY MAX(d.ts), b.build_uuid",
                (to_epoch_ms(cutoff),),
            ).fetchall()
            return [(uuid, int(n), ms_to_dt(ts) or cutoff) for uuid, n, ts in rows]

        return self._run(run)  # type: ignore[no-any-return]

    def loose_documents_older_than(self, cutoff: datetime) -> int:
        """Documents of no build (no ``build_uuid``) older than ``cutoff``."""

        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM builds b JOIN shapes s ON s.build = b.id JOIN docs d ON d.shape = s.id "
                "WHERE b.build_uuid IS NULL AND d.ts < ?",
                (to_epoch_ms(cutoff),),
            ).fetchone()
            return int(row[0])

        return self._run(run)  # type: ignore[no-any-return]

    def delete_old_builds(self, uuids: Sequence[str], cutoff: datetime) -> tuple[int, int]:
        """Delete those of ``uuids`` whose newest line is still before ``cutoff``, whole: their
        documents, shapes and test results (one transaction). Returns ``(builds, lines)`` deleted.
        """
        return self._writer.delete_old_builds(uuids, cutoff)

    def delete_loose_documents(self, cutoff: datetime) -> int:
        """Delete the documents of no build older than ``cutoff``; returns how many."""
        return self._writer.delete_loose_documents(cutoff)

    def file_size(self) -> int:
        """Bytes on disk: the database file and its write-ahead log."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def reclaim_space(self) -> str:
        """Give the pages of deleted rows back to the file system; returns how (``incremental`` or ``vacuum``).

        Merges the FTS5 index first (deleted lines leave tombstones in it
        until their segments are merged), a bounded amount of work per
        transaction (``merge`` with a negative page count, ~0.6 s per step on
        the 1M-line store) until there is none left, so writers of other
        processes wait a step at most, not a whole ``optimize``. A store in
        incremental auto-vacuum mode then frees its unused pages in place;
        any other is converted to it by one ``VACUUM`` (which rewrites the
        file: it needs free disk space about twice the store's size, once),
        so later prunes are incremental. Then the write-ahead log is emptied.
        """
        try:
            for _ in range(100_000):
                with self._write_lock:
                    before = self._conn.total_changes
                    self._conn.execute("INSERT INTO fts (fts, rank) VALUES ('merge', -2000)")
                    if self._conn.total_changes - before < 2:  # no work was left
                        break
            with self._write_lock:
                self._conn.execute("PRAGMA optimize")
                mode = int(self._conn.execute("PRAGMA auto_vacuum").fetchone()[0])
                if mode == 2:
                    how = "incremental"
                    # (executescript: run to the end; execute() would free one page)
                    self._conn.executescript("PRAGMA incremental_vacuum;")
                else:
                    how = "vacuum"
                    # A connection of its own: VACUUM's copy goes to a temporary
                    # file, not memory (this store's connections use temp_store=MEMORY).
                    conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
                    try:
                        conn.execute("PRAGMA temp_store=FILE")
                        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                        conn.execute("VACUUM")
                    finally:
                        conn.close()
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None
        return how

    def optimize(self) -> None:
        """Merge FTS5 segments and refresh the planner's statistics (after big ingests); a store in
        incremental auto-vacuum mode (every store created since schema 5) gives its free pages back."""
        with self._write_lock:
            try:
                self._conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
                self._conn.execute("PRAGMA optimize")
                if int(self._conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
                    # the pages of the merged segments back to the file system
                    # (executescript: run to the end; execute() would free one page)
                    self._conn.executescript("PRAGMA incremental_vacuum;")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from None

    # -- reading helpers ---------------------------------------------------
    def _parse(self, text: str) -> qa.Query:
        cached = self._parse_cache.get(text)
        if cached is None:
            from elastic_recheck.core.lucene import parser as lucene

            try:
                cached = lucene.parse(text, mapping=self.mapping, es_mode=self.es_mode)
            except QuerySyntaxError as exc:
                cached = exc
            if len(self._parse_cache) > 20_000:
                self._parse_cache.clear()
            self._parse_cache[text] = cached
        if isinstance(cached, QuerySyntaxError):
            raise cached
        return cached

    def spec_query(self, spec: QuerySpec) -> qa.Query:
        """The AND of a spec's query texts (MatchAll when there are none)."""
        return qa.and_(*(self._parse(t) for t in spec.queries))

    def _matching(
        self, conn: sqlite3.Connection, spec: QuerySpec, columns: str, query: qa.Query | None = None
    ) -> tuple[str, list[Any]] | None:
        """``SELECT <columns> FROM <matching docs d>`` (None when nothing can match).

        ``query`` (an analyzed AST) replaces ``spec.queries`` when given.
        """
        query = query if query is not None else self.spec_query(spec)
        return self._compiler.matching(conn, query, spec.filters, spec.window, columns)

    def _run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        conn = self._conn
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            low = str(exc).lower()
            retry = "locked" in low or "busy" in low
            raise BackendError(f"embedded store: {exc}", retryable=retry) from None
        except sqlite3.DatabaseError as exc:
            raise BackendError(f"embedded store: {exc}", retryable=False) from None

    # -- SearchBackend -----------------------------------------------------
    def search(
        self, spec: QuerySpec, size: int = 100, newest_first: bool = False, *, query: qa.Query | None = None
    ) -> SearchResult:
        """Matching documents (oldest first, or newest first), at most ``size``, and the total.

        ``query``: an already analyzed AST used instead of ``spec.queries``
        (every method below accepts it too).
        """

        def run(conn: sqlite3.Connection) -> SearchResult:
            matched = self._matching(conn, spec, "d.id, d.doc_id, d.ts, d.shape, er_body(d.body)", query)
            if matched is None:
                return SearchResult(hits=[], total=0, label=spec.label)
            sql, params = matched
            total = conn.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()[0]
            hits: list[Hit] = []
            if size > 0 and total:
                order = "ts IS NULL, ts DESC, id DESC" if newest_first else "ts IS NULL, ts, id"
                shapes: dict[int, dict[str, Any]] = {}
                for rid, doc_id, ts, shape, body in conn.execute(
                    f"SELECT * FROM ({sql}) ORDER BY {order} LIMIT ?", [*params, size]
                ):
                    source = assemble(conn, shape, body, shapes)
                    hits.append(Hit(id=doc_id_text(rid, doc_id, shapes[shape]), source=source, timestamp=ms_to_dt(ts)))
            return SearchResult(hits=hits, total=total, label=spec.label)

        try:
            return self._run(run)  # type: ignore[no-any-return]
        except QuerySyntaxError as exc:
            raise BackendError(f"query syntax error: {exc}", retryable=False) from exc

    def msearch(
        self, specs: Sequence[QuerySpec], size: int = 1, *, queries: Sequence[qa.Query] | None = None
    ) -> list[SearchResult]:
        """Many searches; per-query syntax errors come back as results with ``error`` set.

        When every spec restricts the same build (``build_uuid`` or
        ``build_short_uuid``), the build's documents are loaded once and every
        query is evaluated in memory. So is a single spec asking for many of
        one build's documents (a failure signature's error lines): loading a
        build costs a few milliseconds, expanding a regexp over the whole
        term dictionary much more.
        """
        if queries is not None and len(queries) != len(specs):
            raise ValueError("msearch: one query per spec")
        key = common_build(specs)
        if key is not None and (len(specs) > 1 or size > 1):
            resolved: list[qa.Query | QuerySyntaxError] = []
            for n, spec in enumerate(specs):
                try:
                    resolved.append(queries[n] if queries is not None else self.spec_query(spec))
                except QuerySyntaxError as exc:
                    resolved.append(exc)
            try:
                return self.percolator.percolate(key, specs, resolved, size)
            except ImportError:  # the in-memory matcher is missing: fall back to SQL
                LOG.debug("percolation unavailable, searching one by one", exc_info=True)
        out: list[SearchResult] = []
        for i, spec in enumerate(specs):
            try:
                out.append(self.search(spec, size=size, query=queries[i] if queries is not None else None))
            except BackendError as exc:
                if isinstance(exc.__cause__, QuerySyntaxError):
                    out.append(SearchResult(hits=[], total=0, label=spec.label, error=str(exc.__cause__)))
                else:
                    raise
        return out

    def count_builds(self, spec: QuerySpec, *, query: qa.Query | None = None) -> int:
        def run(conn: sqlite3.Connection) -> int:
            matched = self._matching(conn, spec, "d.shape", query)
            if matched is None:
                return 0
            sql, params = matched
            row = conn.execute(
                f"SELECT COUNT(DISTINCT b.build_uuid) FROM (SELECT DISTINCT shape FROM ({sql})) m {_BUILD_OF_M}", params
            ).fetchone()
            return int(row[0])

        return self._checked(run)  # type: ignore[no-any-return]

    def _checked(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        try:
            return self._run(fn)
        except QuerySyntaxError as exc:
            raise BackendError(f"query syntax error: {exc}", retryable=False) from exc

    def build_histogram(self, spec: QuerySpec, interval: timedelta, *, query: qa.Query | None = None) -> list[Bucket]:
        ms = int(interval.total_seconds() * 1000)
        if ms <= 0:
            raise ValueError("interval must be positive")

        def run(conn: sqlite3.Connection) -> list[Bucket]:
            matched = self._matching(conn, spec, "d.ts, d.shape", query)
            if matched is None:
                return []
            sql, params = matched
            rows = conn.execute(
                "SELECT m.bucket, b.build_status, COUNT(DISTINCT b.build_uuid) "
                f"FROM (SELECT DISTINCT (ts - ((ts % ?) + ?) % ?) AS bucket, shape FROM ({sql}) WHERE ts IS NOT NULL) m "
                f"{_BUILD_OF_M} WHERE b.build_uuid IS NOT NULL GROUP BY m.bucket, b.build_status ORDER BY m.bucket",
                [ms, ms, ms, *params],
            ).fetchall()
            buckets: dict[int, dict[str, int]] = {}
            for bucket, status, count in rows:
                counts = buckets.setdefault(int(bucket), {})
                if status is not None:
                    counts[status] = int(count)
            return [Bucket(start=ms_to_dt(b) or datetime(1970, 1, 1, tzinfo=UTC), counts=c) for b, c in sorted(buckets.items())]

        return self._checked(run)  # type: ignore[no-any-return]

    def terms(self, spec: QuerySpec, field: str, size: int = 10, *, query: qa.Query | None = None) -> list[TermCount]:
        if self.mapping.is_text(field):
            raise BackendError(f"terms: {field} is a text field (aggregate on a keyword field)", retryable=False)

        def run(conn: sqlite3.Connection) -> list[TermCount]:
            if self._compiler.per_line(field):
                matched = self._matching(conn, spec, "d.id, d.shape, er_body(d.body)", query)
            else:
                matched = self._matching(conn, spec, "d.id, d.shape", query)
            if matched is None:
                return []
            sql, params = matched
            if not self._compiler.per_line(field):
                keywords = (
                    "JOIN kw_shape k ON k.shape = m.shape AND k.field = ?"
                    if file_field(field)
                    else "JOIN kw_build k ON k.build = s.build AND k.field = ?"
                )
                rows = conn.execute(
                    f"SELECT k.value, COUNT(DISTINCT b.build_uuid), COUNT(*) FROM ({sql}) m {_BUILD_OF_M} {keywords} "
                    "GROUP BY k.value ORDER BY 2 DESC, 3 DESC, k.value LIMIT ?",
                    [*params, field, size],
                ).fetchall()
                return [TermCount(value=v, builds=int(b), docs=int(d)) for v, b, d in rows]
            builds: dict[str, set[str]] = {}
            docs: dict[str, int] = {}
            uuids: dict[int, str | None] = {}
            for _rid, shape, body in conn.execute(sql, params):
                if shape not in uuids:
                    r = conn.execute(
                        "SELECT b.build_uuid FROM shapes s JOIN builds b ON b.id = s.build WHERE s.id = ?", (shape,)
                    ).fetchone()
                    uuids[shape] = r[0] if r else None
                values = set(keyword_values(json.loads(body).get(field)))
                for v in values:
                    docs[v] = docs.get(v, 0) + 1
                    u = uuids[shape]
                    if u is not None:
                        builds.setdefault(v, set()).add(u)
            ranked = sorted(docs, key=lambda v: (-len(builds.get(v, ())), -docs[v], v))[:size]
            return [TermCount(value=v, builds=len(builds.get(v, ())), docs=docs[v]) for v in ranked]

        return self._checked(run)  # type: ignore[no-any-return]

    def builds(
        self, spec: QuerySpec | None = None, limit: int | None = None, *, query: qa.Query | None = None
    ) -> list[BuildSummary]:
        """Distinct builds among matching documents (all documents without ``spec``), newest first."""
        spec = spec or QuerySpec()

        def run(conn: sqlite3.Connection) -> list[BuildSummary]:
            matched = self._matching(conn, spec, "d.ts, d.shape", query)
            if matched is None:
                return []
            sql, params = matched
            lim = "" if limit is None else " LIMIT ?"
            rows = conn.execute(
                "SELECT b.build_uuid, MIN(m.first), MAX(m.last), SUM(m.n), MIN(m.shape) "
                f"FROM (SELECT shape, MIN(ts) AS first, MAX(ts) AS last, COUNT(*) AS n FROM ({sql}) GROUP BY shape) m "
                f"{_BUILD_OF_M} WHERE b.build_uuid IS NOT NULL "
                f"GROUP BY b.build_uuid ORDER BY MAX(m.last) IS NULL, MAX(m.last) DESC, b.build_uuid{lim}",
                [*params, limit] if limit is not None else params,
            ).fetchall()
            # The shapes of every row in one query (not one per row), decoded through _summary_fields.
            parts = {
                sid: (build_json, own_json)
                for sid, build_json, own_json in conn.execute(
                    "SELECT s.id, b.json, s.json FROM shapes s JOIN builds b ON b.id = s.build "
                    "WHERE s.id IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted({r[4] for r in rows})),),
                )
            }
            summary_fields = self._summary_fields
            out = []
            for uuid, first, last, count, shape in rows:
                out.append(
                    BuildSummary(
                        uuid=uuid,
                        fields=summary_fields(parts.get(shape)),
                        first_seen=ms_to_dt(first),
                        last_seen=ms_to_dt(last),
                        docs=int(count),
                    )
                )
            return out

        return self._checked(run)  # type: ignore[no-any-return]

    def _summary_fields(self, parts: tuple[str, str] | None) -> dict[str, Any]:
        """A :class:`BuildSummary`'s fields from a shape's stored JSON (its build's part and its own;
        None: the shape is gone), a fresh dict each time. Each part is decoded once (kept by its
        text: never stale) when the build's part holds no file field (``log_url``, ``filename``),
        as the store writes them; otherwise :meth:`_summary_fields_of` decides, from both."""
        if parts is None:
            return {}
        build_json, own_json = parts
        build = self._summary_cache.get(build_json)
        if build is None:
            decoded = loads_json(build_json)
            if "log_url" in decoded or "filename" in decoded:
                return self._summary_fields_of(build_json, own_json)
            build = self._keep(self._summary_cache, build_json, _summary_of(decoded))
        own = self._summary_own_cache.get(own_json)
        if own is None:
            own = self._keep(self._summary_own_cache, own_json, _summary_of(loads_json(own_json)))
        if not own:
            return dict(build)
        # the shape's own part wins, as in join_shape; in BUILD_FIELDS order
        return {k: own[k] if k in own else build[k] for k in BUILD_FIELDS if k in own or k in build}

    @staticmethod
    def _summary_fields_of(build_json: str, own_json: str) -> dict[str, Any]:
        """The fields from the whole shape (both parts joined): what the parts decoded apart give."""
        return _summary_of(join_shape(build_json, own_json))

    def _keep(self, cache: dict[str, dict[str, Any]], key: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` kept in ``cache`` (emptied first when it holds :attr:`summary_cache_size`)."""
        if len(cache) >= self.summary_cache_size:
            cache.clear()
        cache[key] = fields
        return fields

    def latest_timestamp(self, until: datetime | None = None) -> datetime | None:
        def run(conn: sqlite3.Connection) -> datetime | None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'max_ts'").fetchone()
            newest = int(row[0]) if row else None
            if until is not None and newest is not None and newest >= dt_to_ms(until):
                # a document dated in the future (9999-12-31): the newest one before ``until`` (a scan; rare)
                row = conn.execute("SELECT MAX(ts) FROM docs WHERE ts < ?", (dt_to_ms(until),)).fetchone()
                newest = int(row[0]) if row and row[0] is not None else None
            return ms_to_dt(newest) if newest is not None else None

        return self._run(run)  # type: ignore[no-any-return]

    def indexed_files(self, build_uuid: str) -> set[str]:
        def run(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(
                f"SELECT DISTINCT f.value FROM ({shapes_with('build_uuid', '= ?')}) b "
                "JOIN kw_shape f ON f.shape = b.shape AND f.field = 'filename' "
                "WHERE EXISTS (SELECT 1 FROM docs d WHERE d.shape = b.shape)",
                ("build_uuid", build_uuid),
            ).fetchall()
            return {r[0] for r in rows}

        return self._run(run)  # type: ignore[no-any-return]

    def failed_tests(self, build_uuid: str) -> set[str] | None:
        def run(conn: sqlite3.Connection) -> set[str] | None:
            if conn.execute("SELECT 1 FROM test_runs WHERE build_uuid = ?", (build_uuid,)).fetchone() is None:
                return None
            rows = conn.execute(
                f"SELECT test_id FROM test_results WHERE build_uuid = ? AND status IN ({','.join('?' * len(FAILED_STATUSES))})",
                (build_uuid, *sorted(FAILED_STATUSES)),
            ).fetchall()
            return {r[0] for r in rows}

        return self._run(run)  # type: ignore[no-any-return]

    def test_results(self, build_uuid: str) -> list[TestResult]:
        """Every recorded test result of a build."""
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT test_id, status, duration FROM test_results WHERE build_uuid = ? ORDER BY test_id", (build_uuid,)
            ).fetchall()
        )
        return [TestResult(test_id=t, status=s, duration=d) for t, s, d in rows]

    def ping(self) -> bool:
        try:
            self._conn.execute("SELECT 1").fetchone()
        except (sqlite3.Error, StoreError):
            return False
        return True

    # -- extras --------------------------------------------------------------
    def count_documents(self) -> int:
        return int(self._run(lambda conn: conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]))

    def get_build_docs(self, build_uuid: str) -> list[dict[str, Any]]:
        """Every document of one build, oldest first."""
        return self._run(lambda conn: build_docs(conn, "build_uuid", build_uuid, self._lines.unpacker()))  # type: ignore[no-any-return]


if TYPE_CHECKING:
    from elastic_recheck.ports.loading import DocumentStore
    from elastic_recheck.ports.search import SearchBackend

    # mypy checks the adapter against its ports.
    _search: type[SearchBackend] = EmbeddedStore
    _loading: type[DocumentStore] = EmbeddedStore
