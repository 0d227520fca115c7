"""The embedded store's writer: documents in, one transaction per batch; deletions.

Documents are prepared (split, analyzed: :class:`~.prepare.DocumentPreparer`)
and encoded as JSON arrays (:class:`BatchEncoder`) in the calling thread; one
``INSERT`` into a TEMP table then stores a whole batch through a TEMP
trigger (:func:`_batch_sql`): shapes, documents, FTS5 rows and keyword rows
in one SQLite call, which runs without the GIL. A multi-batch ingest hands
batches to a background thread (:class:`_BatchWriter`), so that SQLite
writes one batch while Python prepares the next.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elastic_recheck.adapters.sqlite.database import Database, translate
from elastic_recheck.adapters.sqlite.layout import (
    DERIVED_ID_LENGTH,
    DERIVED_KEY_SQL,
    GAP,
    TEXT_ID,
    derived_id,
    derived_prefix,
    dumps_json,
    file_field,
    keyword_values,
    loads_json,
    shapes_with,
    split_shape,
    text_hash,
    text_values,
)
from elastic_recheck.adapters.sqlite.lines import OFFSET_WIDTH, LineCodec, StoredLines, payload
from elastic_recheck.adapters.sqlite.prepare import SHAPE_CACHE, DocumentPreparer, PreparedDoc, fts_text
from elastic_recheck.core.documents import flatten_fields
from elastic_recheck.core.lucene.build_index import indexable
from elastic_recheck.core.schema import Mapping
from elastic_recheck.core.timestamps import to_epoch_ms
from elastic_recheck.ports.loading import IngestStats, TestResult


@dataclass
class EncodedBatch:
    """Prepared documents ready for one transaction: JSON arrays that one SQL statement stores.

    Made by :class:`BatchEncoder` in the thread that prepares documents; the
    writing thread hands them to SQLite in one call (see :func:`_batch_sql`),
    so that SQLite and FTS5 run without the GIL from the first row to the last.
    """

    #: documents given (all counted as stored: an id repeated in a batch is stored once, the last time)
    size: int
    #: the documents to store, when written row by row (a document whose id repeats later in the batch is left out)
    kept: list[PreparedDoc]
    #: ids of kept documents that have one (stored documents with these ids are replaced)
    doc_ids: list[str]
    #: what each kept document's ``docs.doc_id`` holds: its line number (a derived id, see
    #: :func:`~.layout.derived_prefix`), its id (TEXT) or None
    stored_ids: list[int | str | None]
    #: derived prefix -> ``(build_uuid, line numbers, ids of 40 characters stored as TEXT)`` of the kept
    #: documents of each file (the stored lines they replace are looked up through the build's shapes)
    files: dict[str, tuple[str, list[int], list[str]]]
    #: ``(field, value)`` of the builds the batch touches (their cached indexes become stale)
    touched: set[tuple[str, str]]
    #: the batch's distinct shapes (canonical JSON), in order of first use
    shape_keys: list[str]
    #: ``[[hash, own json, build position], ...]`` for each of them (see :data:`~.layout.FILE_FIELDS`)
    shapes_json: str
    #: ``[[shape position, field, value], ...]``: their file fields' keyword values
    shape_kw_json: str
    #: ``[[hash, build_uuid, build_status, build json], ...]``: the distinct build parts of those shapes
    builds_json: str
    #: ``[[build position, field, value], ...]``: their keyword values
    build_kw_json: str
    #: ``[[doc_id (stored_ids), ts, shape position, body, tokens], ...]`` (``tokens``: an array, see :func:`~elastic_recheck.adapters.sqlite.layout._migration_2`),
    #: (body and tokens null for lines compressed from ``payloads``)
    docs_json: str
    #: ``[[text of field 1, text of field 2...], ...]``
    fts_json: str
    #: ``[[document position, field, value], ...]`` (None: no per-line keyword)
    kw_json: str | None
    max_ts: int | None
    #: SQLite's JSON functions (3.40) cut a string at an escaped NUL: such a batch is written row by row
    row_by_row: bool = False
    #: the lines' frame contents (:func:`~.lines.payload`), compressed by the writing thread with ``codec``
    #: (:meth:`~.lines.LineCodec.pack_batch`: zstd runs there without the GIL); None: plain lines
    payloads: list[bytes] | None = None
    codec: LineCodec | None = None


#: A NUL character as JSON escapes it.
_JSON_NUL = "\\u0000"

_GAP_MARK = " " + GAP


def _stored_tokens(fts: Sequence[str | None]) -> str | None:
    """``docs.tokens`` of a document (see :func:`~elastic_recheck.adapters.sqlite.layout._migration_2`) from its FTS5 texts.

    Only single-valued fields (no GAP) are kept: lists repeat from line to
    line (``tags``) and are analyzed once per build anyway.
    """
    kept = [t if t is not None and _GAP_MARK not in t else None for t in fts]
    return dumps_json(kept) if any(kept) else None


@dataclass
class _ShapeInfo:
    uuid: str | None
    status: str | None
    #: the file fields' keyword values (``kw_shape``)
    keywords: list[tuple[str, str]]
    builds: list[tuple[str, str]]
    #: the shape's hash, and the JSON of its own (file) fields and of its build's
    hash: int
    own: str
    build: str
    build_hash: int
    #: the build fields' keyword values (``kw_build``)
    build_keywords: list[tuple[str, str]]
    #: see :func:`~.layout.derived_prefix`
    prefix: str | None


def shape_info(key: str, is_text: Callable[[str], bool]) -> _ShapeInfo:
    """How a shape (its canonical JSON) is stored: its build part and its own part, their keyword rows."""
    shape = json.loads(key)
    uuid = shape.get("build_uuid")
    status = shape.get("build_status")
    keywords = [
        (name, value)
        for name, raw in flatten_fields(shape)
        if not is_text(name)
        for value in keyword_values(raw)
        if indexable(value)
    ]
    build, own = split_shape(shape)
    return _ShapeInfo(
        uuid=uuid if isinstance(uuid, str) else None,
        status=status if isinstance(status, str) else None,
        keywords=[kv for kv in keywords if file_field(kv[0])],
        builds=[(name, v) for name in ("build_uuid", "build_short_uuid") for v in keyword_values(shape.get(name))],
        hash=text_hash(key),
        own=own,
        build=build,
        build_hash=text_hash(build),
        build_keywords=[kv for kv in keywords if not file_field(kv[0])],
        prefix=derived_prefix(shape),
    )


#: Files whose last line number :class:`BatchEncoder` remembers (documents come file by file).
NUMBERED_FILES = 65536


class BatchEncoder:
    """Turns batches of :data:`PreparedDoc` into :class:`EncodedBatch` (pure; remembers shapes it has seen,
    and the last line number it verified in each file)."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self._shapes: dict[str, _ShapeInfo] = {}
        self._numbers: dict[str, int] = {}

    def shape(self, key: str) -> _ShapeInfo:
        info = self._shapes.get(key)
        if info is None:
            info = shape_info(key, self.mapping.is_text)
            if len(self._shapes) > SHAPE_CACHE:
                self._shapes.clear()
            self._shapes[key] = info
        return info

    def line_number(self, doc_id: str, prefix: str | None) -> int | None:
        """The ``n`` whose derived id (:func:`~.layout.derived_id`) is ``doc_id``, or None (stored as TEXT).

        Never trusted: the id is computed again. Derived ids come in file
        order (:class:`~elastic_recheck.core.documents.StableIds`): the next
        line of the file is tried, then its first (the file loaded again),
        then the few after the next (lines left out).
        """
        if prefix is None or len(doc_id) != DERIVED_ID_LENGTH:
            return None
        numbers = self._numbers
        last = numbers.get(prefix, 0)
        n = last + 1
        if derived_id(prefix, n) != doc_id:
            for n in (1, last + 2, last + 3, last + 4, last + 5):
                if n != last + 1 and derived_id(prefix, n) == doc_id:
                    break
            else:
                return None
        if len(numbers) >= NUMBERED_FILES and prefix not in numbers:
            numbers.clear()
        numbers[prefix] = n
        return n

    def encode(self, batch: Sequence[PreparedDoc], codec: LineCodec | None = None) -> EncodedBatch:
        """The batch's payloads; with a ``codec``, its lines compressed (see :mod:`.lines`)."""
        last: dict[str, int] = {}
        with_id = 0
        for i, prep in enumerate(batch):
            if prep[0] is not None:
                last[prep[0]] = i
                with_id += 1
        kept = list(batch) if len(last) == with_id else [p for i, p in enumerate(batch) if p[0] is None or last[p[0]] == i]
        slots: dict[str, int] = {}
        doc_rows: list[tuple[Any, ...]] = []
        kw_rows: list[tuple[int, str, str]] = []
        stored_ids: list[int | str | None] = []
        files: dict[str, tuple[str, list[int], list[str]]] = {}
        max_ts: int | None = None
        gap = _GAP_MARK
        for j, (doc_id, skey, ts, body, fts, kw) in enumerate(kept):
            slot = slots.get(skey)
            if slot is None:
                slot = slots[skey] = len(slots)
            stored: int | str | None = doc_id
            if doc_id is not None:
                info = self.shape(skey)
                prefix = info.prefix
                n = self.line_number(doc_id, prefix)
                if prefix is not None and info.uuid is not None and (n is not None or len(doc_id) == DERIVED_ID_LENGTH):
                    file = files.get(prefix)
                    if file is None:
                        file = files[prefix] = (info.uuid, [], [])
                    if n is not None:
                        file[1].append(n)
                        stored = n
                    else:
                        file[2].append(doc_id)
            stored_ids.append(stored)
            # docs.tokens (see _migration_2): the single-valued fields' FTS texts, stored as a JSON array
            tokens = tuple([t if t is not None and gap not in t else None for t in fts])
            doc_rows.append((stored, ts, slot, body, tokens if any(tokens) else None))
            if kw:
                kw_rows.extend([(j, name, value) for name, value in kw])
            if ts is not None and (max_ts is None or ts > max_ts):
                max_ts = ts
        shape_rows = []
        shape_kw: list[tuple[int, str, str]] = []
        build_slots: dict[str, int] = {}
        build_rows: list[tuple[int, str | None, str | None, str]] = []
        build_kw: list[tuple[int, str, str]] = []
        touched: set[tuple[str, str]] = set()
        for key, slot in slots.items():
            info = self.shape(key)
            bslot = build_slots.get(info.build)
            if bslot is None:
                bslot = build_slots[info.build] = len(build_rows)
                build_rows.append((info.build_hash, info.uuid, info.status, info.build))
                build_kw.extend([(bslot, name, value) for name, value in info.build_keywords])
            shape_rows.append((info.hash, info.own, bslot))
            shape_kw.extend([(slot, name, value) for name, value in info.keywords])
            touched.update(info.builds)
        payloads = None
        if codec is not None:
            payloads = [payload(body, dumps_json(tokens) if tokens is not None else None) for _, _, _, body, tokens in doc_rows]
            doc_rows = [(r[0], r[1], r[2], None, None) for r in doc_rows]
        enc = EncodedBatch(
            payloads=payloads,
            codec=codec if payloads is not None else None,
            size=len(batch),
            kept=kept,
            doc_ids=list(last),
            stored_ids=stored_ids,
            files=files,
            touched=touched,
            shape_keys=list(slots),
            shapes_json=dumps_json(shape_rows),
            shape_kw_json=dumps_json(shape_kw),
            builds_json=dumps_json(build_rows),
            build_kw_json=dumps_json(build_kw),
            docs_json=dumps_json(doc_rows),
            fts_json=dumps_json([p[4] for p in kept]),
            kw_json=dumps_json(kw_rows) if kw_rows else None,
            max_ts=max_ts,
        )
        # (a body's own escaped NUL also shows here: a rare false alarm, written row by row too)
        texts = (enc.shapes_json, enc.shape_kw_json, enc.builds_json, enc.build_kw_json, enc.docs_json, enc.fts_json, enc.kw_json or "")
        enc.row_by_row = any(_JSON_NUL in text for text in texts)
        if not enc.row_by_row:
            enc.kept = []  # the payloads hold everything: free the prepared tuples early
        return enc


def _frame_start(position: str) -> str:
    """SQL: where frame ``position`` starts in ``er_batch.blob`` (``offs``: fixed-width decimal, see :meth:`~.lines.LineCodec.pack_batch`)."""
    width = OFFSET_WIDTH
    return f"CAST(substr(NEW.offs, ({position}) * {width} + 1, {width}) AS INTEGER)"


def _batch_sql(fts_columns: Sequence[str]) -> list[str]:
    """Per-connection TEMP objects: inserting one ``er_batch`` row stores a whole :class:`EncodedBatch`.

    A TEMP trigger may write the store's tables; the batch row itself is
    deleted at the end, so ``er_batch`` stays empty. A new shape or build
    gets an id above every stored one (``prune`` deletes a shape with its
    keyword rows, a build with its last shape), so those inserted by this
    batch are the ones with ids from ``first_shape`` (``first_build``) on:
    only they get keyword rows. Both are found by their hash, then their JSON.
    """
    first = "(SELECT first_id FROM er_batch WHERE id = NEW.id)"
    texts = ", ".join(f"value ->> {i}" for i in range(len(fts_columns)))
    return [
        "CREATE TEMP TABLE IF NOT EXISTS er_batch (id INTEGER PRIMARY KEY, first_id INTEGER, first_shape INTEGER, "
        "first_build INTEGER, shapes TEXT, shape_kw TEXT, builds TEXT, build_kw TEXT, docs TEXT, fts TEXT, kw TEXT, "
        "max_ts INTEGER, blob BLOB, offs BLOB)",
        "CREATE TEMP TABLE IF NOT EXISTS er_slots (slot INTEGER PRIMARY KEY, shape INTEGER NOT NULL)",
        "CREATE TEMP TABLE IF NOT EXISTS er_build_slots (slot INTEGER PRIMARY KEY, build INTEGER NOT NULL)",
        f"""CREATE TEMP TRIGGER IF NOT EXISTS er_batch_insert AFTER INSERT ON er_batch BEGIN
            UPDATE er_batch SET first_id = (SELECT IFNULL(MAX(id), 0) + 1 FROM docs),
                first_shape = (SELECT IFNULL(MAX(id), 0) + 1 FROM shapes),
                first_build = (SELECT IFNULL(MAX(id), 0) + 1 FROM builds) WHERE id = NEW.id;
            INSERT INTO builds (hash, build_uuid, build_status, json)
                SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3 FROM json_each(NEW.builds) j
                WHERE NOT EXISTS (SELECT 1 FROM builds b WHERE b.hash = j.value ->> 0 AND b.json = j.value ->> 3);
            DELETE FROM er_build_slots;
            INSERT INTO er_build_slots (slot, build)
                SELECT j.key, (SELECT b.id FROM builds b WHERE b.hash = j.value ->> 0 AND b.json = j.value ->> 3)
                FROM json_each(NEW.builds) j;
            INSERT OR IGNORE INTO kw_build (field, value, build)
                SELECT k.value ->> 1, k.value ->> 2, s.build FROM json_each(NEW.build_kw) k
                CROSS JOIN er_build_slots s ON s.slot = k.value ->> 0
                WHERE s.build >= (SELECT first_build FROM er_batch WHERE id = NEW.id);
            INSERT INTO shapes (hash, build, json)
                SELECT j.value ->> 0, b.build, j.value ->> 1 FROM json_each(NEW.shapes) j
                CROSS JOIN er_build_slots b ON b.slot = j.value ->> 2
                WHERE NOT EXISTS (
                    SELECT 1 FROM shapes s WHERE s.build = b.build AND s.hash = j.value ->> 0 AND s.json = j.value ->> 1
                );
            DELETE FROM er_slots;
            INSERT INTO er_slots (slot, shape)
                SELECT j.key, (SELECT s.id FROM shapes s WHERE s.build = b.build AND s.hash = j.value ->> 0
                    AND s.json = j.value ->> 1)
                FROM json_each(NEW.shapes) j CROSS JOIN er_build_slots b ON b.slot = j.value ->> 2;
            INSERT OR IGNORE INTO kw_shape (field, value, shape)
                SELECT k.value ->> 1, k.value ->> 2, s.shape FROM json_each(NEW.shape_kw) k
                CROSS JOIN er_slots s ON s.slot = k.value ->> 0
                WHERE s.shape >= (SELECT first_shape FROM er_batch WHERE id = NEW.id);
            INSERT INTO docs (id, doc_id, ts, shape, body, tokens)
                SELECT {first} + key, value ->> 0, value ->> 1, (SELECT shape FROM er_slots WHERE slot = value ->> 2),
                IFNULL(value ->> 3, substr(NEW.blob, {_frame_start("key")}, {_frame_start("key + 1")} - {_frame_start("key")})),
                value ->> 4 FROM json_each(NEW.docs);
            INSERT INTO fts (rowid, {", ".join(fts_columns)}) SELECT {first} + key, {texts} FROM json_each(NEW.fts);
            INSERT OR IGNORE INTO kw (field, value, doc)
                SELECT value ->> 1, value ->> 2, {first} + (value ->> 0) FROM json_each(NEW.kw);
            INSERT INTO meta (key, value) SELECT 'max_ts', NEW.max_ts WHERE NEW.max_ts IS NOT NULL
                ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER));
            DELETE FROM er_batch WHERE id = NEW.id;
        END""",
    ]


class _BatchWriter:
    """Writes encoded batches in a background thread, in order, one transaction each.

    It borrows the calling thread's connection (which that thread leaves alone
    until :meth:`finish` or :meth:`abort` returns). At most one batch waits
    while another is written, so memory stays bounded; a write error is raised
    in the calling thread at its next :meth:`put` or at :meth:`finish`.
    """

    #: Pages the WAL may grow to before a checkpoint copies it into the
    #: database (SQLite's default is 1,000; 256 MiB): bulk loads copy the same
    #: index pages into the database less often (a million lines: 1.67 GB
    #: written instead of 1.83 at 16,384 pages, and 3.1 at 1,000).
    WAL_AUTOCHECKPOINT = 65536
    #: Page cache of the writing connection during a bulk load (64 MiB; other
    #: connections keep the store's small default).
    BULK_CACHE_SIZE = -65536

    def __init__(self, store: StoreWriter, conn: sqlite3.Connection, stats: IngestStats) -> None:
        self.store = store
        self.conn = conn
        self.stats = stats
        self.queue: queue.Queue[EncodedBatch | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.stop = threading.Event()
        try:
            self.checkpoint = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            conn.execute(f"PRAGMA wal_autocheckpoint={max(self.checkpoint, self.WAL_AUTOCHECKPOINT)}")
            self.cache_size = int(conn.execute("PRAGMA cache_size").fetchone()[0])
            conn.execute(f"PRAGMA cache_size={self.BULK_CACHE_SIZE}")  # index pages stay hot while loading
        except sqlite3.Error as exc:
            raise translate(exc, store.path) from None
        self.thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                batch = self.queue.get()
                if batch is None or self.stop.is_set():
                    return
                self.store._add_prepared(self.conn, batch, self.stats)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self.error = exc
            while self.queue.get() is not None:  # keep draining: the caller never blocks
                pass

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, batch: EncodedBatch) -> None:
        self._raise()
        self.queue.put(batch)

    def _join(self) -> None:
        self.thread.join()
        try:
            self.conn.execute(f"PRAGMA wal_autocheckpoint={self.checkpoint}")
            self.conn.execute(f"PRAGMA cache_size={self.cache_size}")
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the big WAL into the database now
        except sqlite3.Error:
            pass

    def finish(self) -> None:
        self.queue.put(None)
        self._join()
        self._raise()

    def abort(self) -> None:
        """Stop after the batch being written (committed batches stay)."""
        self.stop.set()
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.queue.put(None)
        self._join()


def _in_chunks(conn: sqlite3.Connection, sql: str, values: Sequence[Any], *params: Any) -> list[Any]:
    """Rows of ``sql`` (its ``IN ({marks})`` holding up to 500 of ``values`` at a time), all chunks."""
    rows: list[Any] = []
    for i in range(0, len(values), 500):
        chunk = list(values[i : i + 500])
        rows.extend(conn.execute(sql.format(marks=",".join("?" * len(chunk))), [*chunk, *params]).fetchall())
    return rows


def _replaced(conn: sqlite3.Connection, enc: EncodedBatch) -> list[int]:
    """Rowids of the stored documents that documents of ``enc`` replace (the same id).

    A TEXT id is found in the partial index ``docs_text_id`` (every id of the
    batch is looked for there, once the store holds any); a derived one
    (INTEGER, see :func:`~.layout.derived_prefix`) among the lines of the
    same file (the shapes of its ``build_uuid`` with the same ``filename``),
    by line number, or by computing their ids for an id of 40 characters
    that the batch stores as TEXT. (Placeholders, not JSON, carry strings:
    see :attr:`EncodedBatch.row_by_row`.)
    """
    found: set[int] = set()
    if enc.doc_ids and conn.execute(f"SELECT EXISTS (SELECT 1 FROM docs WHERE {TEXT_ID})").fetchone()[0]:
        sql = f"SELECT id FROM docs WHERE {TEXT_ID} AND doc_id IN ({{marks}})"
        found.update(r[0] for r in _in_chunks(conn, sql, enc.doc_ids))
    if enc.files:
        uuids = sorted({uuid for uuid, _, _ in enc.files.values()})
        shapes: dict[str, list[int]] = {}
        sql = f"SELECT s.id, {DERIVED_KEY_SQL} FROM shapes s JOIN builds b ON b.id = s.build WHERE b.build_uuid IN " + "({marks})"
        for sid, text in _in_chunks(conn, sql, uuids):
            prefix = derived_prefix(loads_json(text))
            if prefix is not None and prefix in enc.files:
                shapes.setdefault(prefix, []).append(sid)
        for prefix, sids in shapes.items():
            _, numbers, texts = enc.files[prefix]
            in_file = "SELECT id, doc_id FROM docs WHERE shape IN (SELECT value FROM json_each(?)) AND "
            if numbers:
                sql = in_file + "doc_id IN (SELECT value FROM json_each(?))"
                found.update(r[0] for r in conn.execute(sql, (json.dumps(sids), json.dumps(numbers))))
            if texts:
                wanted = set(texts)
                sql = in_file + "typeof(doc_id) = 'integer'"
                found.update(rid for rid, n in conn.execute(sql, (json.dumps(sids),)) if derived_id(prefix, n) in wanted)
    return sorted(found)


class StoreWriter:
    """Writes into one store's tables: documents, test results, deletions.

    :param db: the store's file.
    :param mapping: the store's mapping.
    :param text_fields: the store's text fields (FTS5 columns ``c0``, ``c1``... in this order).
    :param tokenize: gives the analyzer (loaded on first use).
    :param touched: called after each write with the ``(field, value)`` of the builds it changed.
    :param lines: the store's compressed lines (its codec; plain lines compacted once there is one).
    """

    def __init__(
        self,
        db: Database,
        mapping: Mapping,
        text_fields: Sequence[str],
        tokenize: Callable[[], Callable[[str], list[str]]],
        touched: Callable[[set[tuple[str, str]]], None],
        lines: StoredLines,
    ) -> None:
        self._db = db
        self._lines = lines
        self.path = db.path
        self.mapping = mapping
        self._text_fields = list(text_fields)
        self._fts_columns = {name: f"c{i}" for i, name in enumerate(self._text_fields)}
        self._tokenize = tokenize
        self._invalidate = touched
        self._encoder = BatchEncoder(mapping)

    def _shape_id(self, conn: sqlite3.Connection, key: str) -> int:
        """The id of a shape given its canonical JSON (inserted, with its build and keyword rows, when new).

        Looked up every time (no id cache): ``prune`` in another process may
        have deleted a shape this one saw.
        """
        info = shape_info(key, self.mapping.is_text)
        row = conn.execute("SELECT id FROM builds WHERE hash = ? AND json = ?", (info.build_hash, info.build)).fetchone()
        if row is not None:
            bid = int(row[0])
        else:
            cur = conn.execute(
                "INSERT INTO builds (hash, build_uuid, build_status, json) VALUES (?, ?, ?, ?)",
                (info.build_hash, info.uuid, info.status, info.build),
            )
            bid = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT OR IGNORE INTO kw_build (field, value, build) VALUES (?, ?, ?)",
                [(name, value, bid) for name, value in info.build_keywords],
            )
        row = conn.execute(
            "SELECT id FROM shapes WHERE build = ? AND hash = ? AND json = ?", (bid, info.hash, info.own)
        ).fetchone()
        if row is not None:
            return int(row[0])
        cur = conn.execute("INSERT INTO shapes (hash, build, json) VALUES (?, ?, ?)", (info.hash, bid, info.own))
        sid = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT OR IGNORE INTO kw_shape (field, value, shape) VALUES (?, ?, ?)",
            [(name, value, sid) for name, value in info.keywords],
        )
        return sid

    def add_documents(
        self,
        docs: Iterable[AbcMapping[str, Any]],
        batch_size: int = 5000,
        id_of: Callable[[AbcMapping[str, Any]], str | None] | None = None,
    ) -> IngestStats:
        """Store documents (one transaction per ``batch_size``); returns what was stored.

        A document whose ``id`` is already stored replaces it (like indexing the
        same ``_id`` in Elasticsearch). ``id_of(doc)``, called on each document
        in order, gives an id kept out of its body, as Elasticsearch keeps
        ``_id`` out of ``_source`` (None: the document's own ``id``, if any).
        Objects that are not JSON objects are counted as bad, never fatal.

        When there is more than one batch, a background thread writes each
        batch while this one prepares the next (SQLite and FTS5 run without
        Python's GIL: a second core does the writing). Batches are written in
        order, one transaction each, exactly as without the thread.

        :raises StoreError: the disk is full or read-only, or the file is corrupt.
        """
        stats = IngestStats()
        started = time.perf_counter()
        preparer = DocumentPreparer(self._text_fields, self._tokenize())
        batch: list[PreparedDoc] = []
        writer: _BatchWriter | None = None
        n = 0
        try:
            for doc in docs:
                n += 1
                if not isinstance(doc, AbcMapping):
                    stats.add_bad_line(n, f"not a JSON object: {type(doc).__name__}")
                    continue
                prepared = preparer.prepare(doc)
                doc_id = id_of(doc) if id_of is not None else None
                batch.append(prepared if doc_id is None else (doc_id, *prepared[1:]))
                if len(batch) >= batch_size:
                    if writer is None:
                        writer = _BatchWriter(self, self._db.conn, stats)
                    writer.put(self._encoder.encode(batch, self._lines.codec))
                    batch = []
            if writer is not None:
                if batch:
                    writer.put(self._encoder.encode(batch, self._lines.codec))
                writer.finish()
            elif batch:
                self.add_prepared(batch, stats)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        stats.seconds = time.perf_counter() - started
        return stats

    def preparer(self) -> DocumentPreparer:
        """A :class:`DocumentPreparer` for this store's text fields (picklable: for worker processes)."""
        return DocumentPreparer(self._text_fields, None)

    def add_prepared(self, batch: Sequence[PreparedDoc], stats: IngestStats | None = None) -> int:
        """Store documents prepared by :meth:`preparer` (one transaction); returns how many."""
        return self._add_prepared(self._db.conn, batch, stats)

    def _add_prepared(
        self, conn: sqlite3.Connection, batch: Sequence[PreparedDoc] | EncodedBatch, stats: IngestStats | None
    ) -> int:
        with self._db.write_transaction(conn):
            touched = self._write_rows(conn, batch)
        count = batch.size if isinstance(batch, EncodedBatch) else len(batch)
        if stats is not None:
            stats.docs += count
        self._invalidate(touched)
        return count

    def _write_rows(self, conn: sqlite3.Connection, batch: Sequence[PreparedDoc] | EncodedBatch) -> set[tuple[str, str]]:
        enc = batch if isinstance(batch, EncodedBatch) else self._encoder.encode(batch, self._lines.codec)
        codec = self._lines.codec  # (row by row: the lines are compressed here)
        self._lines.before_write(conn, plain=enc.payloads is None and (not enc.row_by_row or codec is None))
        touched = self._insert_rows(conn, enc, codec)
        self._lines.after_write(conn, enc.size)
        return touched

    def _insert_rows(self, conn: sqlite3.Connection, enc: EncodedBatch, codec: LineCodec | None) -> set[tuple[str, str]]:
        # Replacements: documents whose id is already stored.
        existing = _replaced(conn, enc)
        if existing:
            self._delete_rows(conn, existing)
        if not enc.row_by_row:
            blob, offs = enc.codec.pack_batch(enc.payloads) if enc.codec is not None and enc.payloads is not None else (None, None)
            params = (
                enc.shapes_json, enc.shape_kw_json, enc.builds_json, enc.build_kw_json,
                enc.docs_json, enc.fts_json, enc.kw_json, enc.max_ts, blob, offs,
            )  # fmt: skip
            sql = (
                "INSERT INTO er_batch (shapes, shape_kw, builds, build_kw, docs, fts, kw, max_ts, blob, offs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
            try:
                conn.execute(sql, params)
            except sqlite3.OperationalError as exc:
                if "er_batch" not in str(exc):
                    raise
                for statement in _batch_sql(list(self._fts_columns.values())):
                    conn.execute(statement)
                conn.execute(sql, params)
            return enc.touched
        row = conn.execute("SELECT MAX(id) FROM docs").fetchone()
        first_id = (row[0] or 0) + 1
        sids = [self._shape_id(conn, key) for key in enc.shape_keys]
        sid_of = dict(zip(enc.shape_keys, sids, strict=True))
        doc_rows: list[tuple[int, int | str | None, int | None, int, str | bytes, str | None]] = []
        fts_rows: list[tuple[Any, ...]] = []
        kw_rows: list[tuple[str, str, int]] = []
        compress = codec.compressor().compress if codec is not None else None
        for rid, (doc_id, (_, skey, ts, body, fts, kw)) in enumerate(zip(enc.stored_ids, enc.kept, strict=True), first_id):
            tokens = _stored_tokens(fts)
            if compress is not None:
                doc_rows.append((rid, doc_id, ts, sid_of[skey], compress(payload(body, tokens)), None))
            else:
                doc_rows.append((rid, doc_id, ts, sid_of[skey], body, tokens))
            fts_rows.append((rid, *fts))
            kw_rows.extend((name, value, rid) for name, value in kw)
        conn.executemany("INSERT INTO docs (id, doc_id, ts, shape, body, tokens) VALUES (?, ?, ?, ?, ?, ?)", doc_rows)
        columns = ", ".join(["rowid", *self._fts_columns.values()])
        placeholders = ", ".join("?" * (len(self._text_fields) + 1))
        conn.executemany(f"INSERT INTO fts ({columns}) VALUES ({placeholders})", fts_rows)
        if kw_rows:
            conn.executemany("INSERT OR IGNORE INTO kw (field, value, doc) VALUES (?, ?, ?)", kw_rows)
        if enc.max_ts is not None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('max_ts', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (str(enc.max_ts),),
            )
        return enc.touched

    def _delete_rows(self, conn: sqlite3.Connection, ids: list[int]) -> None:
        """Remove documents (the FTS5 table is contentless: deleting needs the indexed tokens again).

        ``kw`` has no index by document: its rows are deleted in one scan for
        all ``ids`` (one per 500 documents made pruning a day of a 1M-line
        store take half a minute).
        """
        tokenize = self._tokenize()
        conn.execute("DELETE FROM kw WHERE doc IN (SELECT value FROM json_each(?)) AND field IS NOT NULL", (json.dumps(ids),))
        columns = ", ".join(["fts", "rowid", *self._fts_columns.values()])
        placeholders = ", ".join("?" * (len(self._text_fields) + 2))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT id, er_body(body) FROM docs WHERE id IN ({marks})", chunk).fetchall()
            deletes = []
            for rid, body in rows:
                src = json.loads(body)
                row: list[Any] = ["delete", rid]
                for name in self._text_fields:
                    values = text_values(src.get(name))
                    row.append(fts_text(values, tokenize) if values is not None else None)
                deletes.append(row)
            conn.executemany(f"INSERT INTO fts ({columns}) VALUES ({placeholders})", deletes)
            conn.execute(f"DELETE FROM docs WHERE id IN ({marks})", chunk)

    def delete_build(self, build_uuid: str, filenames: Iterable[str] | None = None) -> int:
        """Remove a build's documents (only those of ``filenames`` when given); returns how many.

        Used before re-ingesting a build's log files, so that ingesting twice
        does not store every line twice.
        """
        with self._db.write_transaction() as conn:
            sql = f"SELECT id FROM shapes WHERE id IN ({shapes_with('build_uuid', '= ?')})"
            params: list[Any] = ["build_uuid", build_uuid]
            if filenames is not None:
                names = sorted(set(filenames))
                sql += f" AND id IN ({shapes_with('filename', 'IN (SELECT value FROM json_each(?))')})"
                params.extend(["filename", json.dumps(names)])
            shapes = [r[0] for r in conn.execute(sql, params)]
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM docs WHERE shape IN (SELECT value FROM json_each(?))", (json.dumps(shapes),)
                )
            ]
            if ids:
                self._delete_rows(conn, ids)
        self._invalidate({("build_uuid", build_uuid), ("build_short_uuid", build_uuid[:7])})
        return len(ids)

    def record_test_results(self, build_uuid: str, results: Iterable[TestResult | tuple[str, str]]) -> int:
        """Store a build's test results (replacing earlier ones for the same tests)."""
        rows = []
        for r in results:
            if isinstance(r, TestResult):
                rows.append((build_uuid, r.test_id, r.status, r.duration))
            else:
                rows.append((build_uuid, str(r[0]), str(r[1]), None))
        with self._db.write_transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO test_results (build_uuid, test_id, status, duration) VALUES (?, ?, ?, ?)",
                rows,
            )
            conn.execute(
                "INSERT OR REPLACE INTO test_runs (build_uuid, recorded_at) VALUES (?, ?)",
                (build_uuid, datetime.now(UTC).isoformat()),
            )
        return len(rows)

    def delete_old_builds(self, uuids: Sequence[str], cutoff: datetime) -> tuple[int, int]:
        """Delete those of ``uuids`` whose newest line is still before ``cutoff``, whole: their
        documents, shapes and test results (one transaction). Returns ``(builds, lines)`` deleted.

        The age is checked again inside the transaction: a line ingested since
        the caller listed the builds keeps its build.
        """
        cut = to_epoch_ms(cutoff)
        with self._db.write_transaction() as conn:
            old = [
                r[0]
                for r in conn.execute(
                    "SELECT b.build_uuid FROM builds b JOIN shapes s ON s.build = b.id JOIN docs d ON d.shape = s.id "
                    "WHERE b.build_uuid IN (SELECT value FROM json_each(?)) GROUP BY b.build_uuid HAVING MAX(d.ts) < ?",
                    (json.dumps(list(uuids)), cut),
                )
            ]
            builds = json.dumps(old)
            build_ids = json.dumps(
                [r[0] for r in conn.execute("SELECT id FROM builds WHERE build_uuid IN (SELECT value FROM json_each(?))", (builds,))]
            )
            shapes = json.dumps(
                [r[0] for r in conn.execute("SELECT id FROM shapes WHERE build IN (SELECT value FROM json_each(?))", (build_ids,))]
            )
            ids = [r[0] for r in conn.execute("SELECT id FROM docs WHERE shape IN (SELECT value FROM json_each(?))", (shapes,))]
            if ids:
                self._delete_rows(conn, ids)
            conn.execute("DELETE FROM kw_shape WHERE shape IN (SELECT value FROM json_each(?))", (shapes,))
            conn.execute("DELETE FROM shapes WHERE id IN (SELECT value FROM json_each(?))", (shapes,))
            conn.execute("DELETE FROM kw_build WHERE build IN (SELECT value FROM json_each(?))", (build_ids,))
            conn.execute("DELETE FROM builds WHERE id IN (SELECT value FROM json_each(?))", (build_ids,))
            conn.execute("DELETE FROM test_results WHERE build_uuid IN (SELECT value FROM json_each(?))", (builds,))
            conn.execute("DELETE FROM test_runs WHERE build_uuid IN (SELECT value FROM json_each(?))", (builds,))
        self._invalidate({k for u in old for k in (("build_uuid", u), ("build_short_uuid", u[:7]))})
        return len(old), len(ids)

    def delete_loose_documents(self, cutoff: datetime) -> int:
        """Delete the documents of no build older than ``cutoff``; returns how many."""
        with self._db.write_transaction() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT d.id FROM builds b JOIN shapes s ON s.build = b.id JOIN docs d ON d.shape = s.id "
                    "WHERE b.build_uuid IS NULL AND d.ts < ?",
                    (to_epoch_ms(cutoff),),
                )
            ]
            if ids:
                self._delete_rows(conn, ids)
        return len(ids)
