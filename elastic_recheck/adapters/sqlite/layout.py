"""The embedded store's layout: its tables (:data:`MIGRATIONS`) and how a document maps onto them.

The writer (:mod:`.writer`), the query compiler (:mod:`.compiler`) and
percolation (:mod:`.percolate`) share these definitions.

Layout (schema version 5, see :data:`MIGRATIONS`)
-------------------------------------------------
``docs``
    one row per document: ``id`` (rowid), ``doc_id`` (the document's id when
    it has one: since schema 4 a derived id, see :func:`derived_prefix`, is
    the INTEGER line number it was derived from, any other id TEXT in the
    partial index ``docs_text_id``), ``ts`` (``@timestamp`` as epoch ms), ``shape``,
    ``body`` and ``tokens`` (the analyzed tokens of its single-valued text
    fields, for percolation; NULL in rows stored before schema 2). Since
    schema 3 both are one zstd frame in ``body`` (a BLOB; ``tokens`` NULL),
    compressed with the store's dictionary (table ``codec``, see :mod:`.lines`);
    lines stored before the store had one are TEXT. A document is split into its per-line fields (``body``: the
    text fields, ``@timestamp``, ``loglevel``, ``module``... see
    :data:`PER_LINE_FIELDS`) and everything else (its *shape*: the build's
    metadata, ``filename``, ``log_url``...), which is the same for every line
    of a file and stored once in ``shapes``. ``{**shape, **body}`` is the
    document as given (key order aside).
``shapes`` / ``builds``
    Since schema 5 a shape row keeps only its :data:`FILE_FIELDS` (``json``)
    and a reference to a ``builds`` row (``build``) holding the rest of the
    shape once for all the files of a build (with its ``build_uuid`` and
    ``build_status`` as columns, for aggregations). Both are found by content:
    a 64-bit ``hash`` of their JSON (:func:`text_hash`, indexed), then the JSON
    compared; a field that varies from file to file only makes more build rows.
``kw_shape`` / ``kw_build`` / ``kw``
    ``(field, value, shape|build|doc)`` indexes of exact keyword values, for
    the shapes' file fields, their build fields (:func:`shapes_with` picks by
    the field's name) and per-line fields respectively. Values are strings:
    numbers as their text, booleans ``true``/``false``, lists one row per
    element, nested objects flattened to ``a.b``.
``fts``
    an FTS5 table with one column per text field (``message``, ``tags``)
    holding the field's tokens as produced by :func:`elastic_recheck.core.lucene.analysis.tokenize`
    (Lucene's StandardAnalyzer), joined by spaces. FTS5's ``ascii`` tokenizer
    with every ASCII punctuation character declared a token character splits
    that text back on spaces only, so an FTS5 phrase is a Lucene phrase. The
    values of a multi-valued field are separated by :data:`GAP` (a token the
    analyzer never produces) so exact phrases never span two values, and each
    present field starts with :data:`PRESENT` (for ``_exists_``). Stores
    created since schema 5 keep no per-row column sizes (``columnsize=0``:
    nothing reads them) and are in incremental auto-vacuum mode.
``test_results`` / ``test_runs``
    per-build subunit results (``failed_tests``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, overload

from elastic_recheck.adapters.sqlite import lines
from elastic_recheck.core.documents import has_object
from elastic_recheck.core.lucene.build_index import indexable
from elastic_recheck.core.schema import voting_spellings
from elastic_recheck.core.search_types import Filters
from elastic_recheck.core.timestamps import from_epoch_ms, to_epoch_ms
from elastic_recheck.storage.sqlite import Migration

_orjson: Any
try:  # optional: 5x faster JSON for document bodies
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def dumps_json(obj: Any) -> str:
    """Compact JSON (orjson when installed) of a document body or a batch payload."""
    if _orjson is not None:
        try:
            return str(_orjson.dumps(obj).decode("utf-8"))
        except TypeError:  # e.g. integers beyond 64 bits
            pass
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def loads_json(text: str | bytes) -> Any:
    """Parse stored JSON (orjson when installed)."""
    if _orjson is not None:
        return _orjson.loads(text)
    return json.loads(text)

# ---------------------------------------------------------------------------
# Document ids (``docs.doc_id``)
#
# Almost every id is derived: :func:`elastic_recheck.core.documents.document_id`
# ``(build_uuid, filename, n)`` of the ``n``-th line of a file. Such an id is
# stored as the INTEGER ``n`` and read back from the line's shape (its
# ``build_uuid`` and ``filename``); any other id is TEXT (``doc_id`` has no
# type affinity: an explicit id ``"5"`` stays the text ``'5'``). NULL: no id
# (the document is ``r<rowid>``).

#: Length of a derived id (a SHA-1 in hex).
DERIVED_ID_LENGTH = 40
#: The documents of the partial index ``docs_text_id`` (SQL on ``docs``, as the index declares it:
#: a query uses the index only when its WHERE holds this very term).
TEXT_ID = "typeof(doc_id) = 'text'"


def derived_prefix(shape: AbcMapping[str, Any]) -> str | None:
    """What the derived ids of a shape's lines hash before their ``n`` (None: its lines have none).

    The same text :func:`elastic_recheck.core.documents.id_key` and
    :func:`~elastic_recheck.core.documents.document_id` hash: a build's
    ``build_uuid`` (a non-empty string), its ``filename`` (``""`` when missing).
    """
    uuid = shape.get("build_uuid")
    if not isinstance(uuid, str) or not uuid:
        return None
    return f"{uuid}\0{shape.get('filename', '')!s}\0"


#: SQL on a shape ``s`` joined with its build ``b`` (``builds b ON b.id = s.build``): a JSON object
#: of what :func:`derived_prefix` reads (the shape's file fields and its build's ``build_uuid``).
DERIVED_KEY_SQL = "json_patch(s.json, json_object('build_uuid', b.build_uuid))"


def derived_id(prefix: str, n: int) -> str:
    """The id of line ``n`` of the file whose :func:`derived_prefix` is ``prefix``."""
    return hashlib.sha1(f"{prefix}{n}".encode()).hexdigest()


def doc_id_text(rid: int, doc_id: object, shape: AbcMapping[str, Any]) -> str:
    """A stored document's id (``Hit.id``, ``_id``): its own, derived from its shape, or ``r<rowid>``."""
    if doc_id is None:
        return f"r{rid}"
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        prefix = derived_prefix(shape)
        if prefix is None:  # (never written so: the writer verified the id against this shape)
            raise sqlite3.DatabaseError(f"document {rid}: a line number without a build to derive its id from")
        return derived_id(prefix, doc_id)
    return str(doc_id)


class DocIds(Sequence[str]):
    """The ids (``Hit.id``) of rows read together, each computed when first asked for.

    A derived id costs a SHA-1: a classification reads thousands of lines and
    returns a few of them, so most ids are never computed.
    """

    __slots__ = ("_rids", "_doc_ids", "_shape_ids", "_shapes", "_done")

    def __init__(
        self,
        rids: Sequence[int],
        doc_ids: Sequence[object],
        shape_ids: Sequence[int],
        shapes: AbcMapping[int, AbcMapping[str, Any]],
    ) -> None:
        self._rids = rids
        self._doc_ids = doc_ids
        self._shape_ids = shape_ids
        self._shapes = shapes
        self._done: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._rids)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self._rids)
        done = self._done.get(i)
        if done is None:
            done = self._done[i] = doc_id_text(self._rids[i], self._doc_ids[i], self._shapes[self._shape_ids[i]])
        return done


class DerivedIds:
    """``er_derived_id(shape json, n)``: a derived id in SQL (prefixes of the shapes met are kept)."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._prefixes: dict[str, str | None] = {}

    def __call__(self, shape_json: str | None, n: int | None) -> str | None:
        if shape_json is None or n is None:
            return None
        prefix = self._prefixes.get(shape_json, "")
        if prefix == "":
            if len(self._prefixes) >= self.LIMIT:
                self._prefixes.clear()
            prefix = self._prefixes[shape_json] = derived_prefix(loads_json(shape_json))
        return None if prefix is None else derived_id(prefix, n)


#: Separates the values of a multi-valued text field (never an analyzer token:
#: the standard tokenizer emits no token made of punctuation only).
GAP = "|~|"
#: First token of every present text field (``_exists_:message``).
PRESENT = "^!^"
SENTINELS = frozenset({GAP, PRESENT})

#: Fields that vary from line to line: kept per document. Every other field
#: belongs to the document's shape (stored once per distinct combination).
PER_LINE_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "@timestamp",
        "@version",
        "received_at",
        "loglevel",
        "module",
        "pid",
        "severity",
        "syslog_program",
        "syslog_host",
        "error_pr",
        "request_id",
        "_er",
        "_id",
        "sort",
    }
)

def per_line(name: str, text_fields: AbstractSet[str]) -> bool:
    """Whether a (possibly flattened ``a.b``) field is stored per document, not in the shape.

    ``text_fields``: the store's; objects under them (``message.a``) are per-line keywords.
    """
    top = name.split(".", 1)[0]
    return name in PER_LINE_FIELDS or top in PER_LINE_FIELDS or ("." in name and top in text_fields)


#: Per-line fields not indexed in ``kw`` (queries on them scan ``body``):
#: ``id`` is the document's id (``_id``), not a searchable field.
UNINDEXED_PER_LINE: frozenset[str] = frozenset({"@timestamp", "id"})

#: Shape fields that name one log file of a build: kept with the shape. Every
#: other shape field goes to the shape's *build* row (``builds``), stored once
#: for all the files that share it. A build row is found by its content, so a
#: field that does vary from file to file only makes more build rows, never a
#: wrong answer.
FILE_FIELDS: frozenset[str] = frozenset({"filename", "log_url"})


def file_field(name: str) -> bool:
    """Whether a (possibly flattened ``a.b``) shape field's keyword rows are per shape (``kw_shape``),
    not per build (``kw_build``)."""
    return name.split(".", 1)[0] in FILE_FIELDS


def canonical_json(obj: Any) -> str:
    """The canonical JSON of a shape or of one of its parts (sorted keys: identical parts, identical text)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def text_hash(text: str) -> int:
    """A 64-bit hash of a shape's or a build's JSON (looked up by it, then compared in full)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def split_shape(shape: AbcMapping[str, Any]) -> tuple[str, str]:
    """The canonical JSON of a shape's build part and of its file part (:data:`FILE_FIELDS`)."""
    build = {k: v for k, v in shape.items() if k not in FILE_FIELDS}
    own = {k: v for k, v in shape.items() if k in FILE_FIELDS}
    return canonical_json(build), canonical_json(own)


def shapes_with(field: str, op: str) -> str:
    """SQL selecting (column ``shape``) the shapes whose keyword ``field`` has a value with
    ``value <op>`` (parameters: the field, then ``op``'s)."""
    if file_field(field):
        return f"SELECT shape FROM kw_shape WHERE field = ? AND value {op}"
    return f"SELECT s.id AS shape FROM kw_build k JOIN shapes s ON s.build = k.build WHERE k.field = ? AND k.value {op}"


def shape_keyword_table(field: str) -> str:
    """The keyword table of a shape field: ``kw_shape`` (per file) or ``kw_build``."""
    return "kw_shape" if file_field(field) else "kw_build"


#: Subunit statuses that mean "this test failed".
FAILED_STATUSES = frozenset({"fail", "uxsuccess"})

_FTS_TOKENCHARS = "".join(ch for ch in map(chr, range(33, 127)) if not ch.isalnum())


def fts_tokenize_option() -> str:
    inner = "ascii tokenchars '" + _FTS_TOKENCHARS.replace("'", "''") + "'"
    return "'" + inner.replace("'", "''") + "'"


def fts_string(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def fts_exact(token: str) -> bool:
    """Whether FTS5 reads ``token`` as exactly one token (so ``col : "token"`` finds just it).

    Its ``ascii`` tokenizer splits on ASCII whitespace and control characters
    and folds ASCII letters; an analyzed token holds neither, but a fuzzy,
    prefix or wildcard term keeps what the query escaped (``foo\\ bar~0``,
    ``foo\\ b*`` are one term to Lucene, which no token equals).
    """
    return not any(c <= " " or c == "\x7f" or "A" <= c <= "Z" for c in token)


# ---------------------------------------------------------------------------
# Values


def keyword_values(value: Any) -> list[str]:
    """The exact keyword terms a JSON value indexes as (lists flattened, nulls dropped)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, int):
        return [str(value)]
    if isinstance(value, float):
        from elastic_recheck.core.lucene.matcher import value_text  # Java's Double.toString, as Lucene indexes it

        return [value_text(value)]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if not isinstance(item, (list, dict)) or isinstance(item, list):
                out.extend(keyword_values(item))
        return out
    return []


def text_values(value: Any) -> list[str] | None:
    """The string values of a text field (None when the field has no value at all).

    Nested arrays are flattened (as Elasticsearch does); objects are left out:
    their leaves are the keyword fields ``<field>.<key>`` (:func:`nested_keywords`).
    """
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if item is None or isinstance(item, dict):
            continue
        if isinstance(item, list):
            out.extend(text_values(item) or ())
        elif isinstance(item, str):
            out.append(item)
        else:
            out.extend(keyword_values(item))
    return out if out else None


def nested_keywords(name: str, value: Any) -> list[tuple[str, str]]:
    """``(field, value)`` keyword pairs of the objects nested in a text field's value.

    ``{"message": {"a": "inner text"}}`` indexes the keyword field
    ``message.a`` (Elasticsearch and the matcher flatten objects to dotted
    names; a dotted name is a keyword unless the mapping says otherwise).
    """
    if not has_object(value):
        return []
    from elastic_recheck.core.lucene.matcher import flatten_document

    return [
        (flat, v)
        for flat, vals in flatten_document({name: value}).items()
        if flat != name
        for v in vals
        if indexable(v)
    ]


def ms_to_dt(ms: int | None) -> datetime | None:
    return from_epoch_ms(ms) if ms is not None else None


def dt_to_ms(dt: datetime) -> int:
    return to_epoch_ms(dt)


def shape_json(conn: sqlite3.Connection, shape: int) -> dict[str, Any]:
    """A stored shape's fields ({} when it is gone)."""
    row = conn.execute("SELECT b.json, s.json FROM shapes s JOIN builds b ON b.id = s.build WHERE s.id = ?", (shape,)).fetchone()
    return join_shape(row[0], row[1]) if row else {}


def join_shape(build: str, own: str) -> dict[str, Any]:
    """A shape's fields from the JSON of its build part and of its own part (keys in the order the
    whole shape's canonical JSON had)."""
    return dict(sorted({**loads_json(build), **loads_json(own)}.items()))


def assemble(conn: sqlite3.Connection, shape: int, body: str, shapes: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A stored document: its shape's fields, then its body's (``shapes``: a cache of shapes read)."""
    if shapes is not None:
        base = shapes.get(shape)
        if base is None:
            base = shapes[shape] = shape_json(conn, shape)
    else:
        base = shape_json(conn, shape)
    doc = dict(base)
    doc.update(loads_json(body))
    return doc


def build_rows(
    conn: sqlite3.Connection,
    name: str,
    value: str,
    unpack: Callable[[bytes], tuple[str | bytes, str | bytes | None]] | None = None,
) -> tuple[
    Sequence[str],
    tuple[int | None, ...],
    tuple[tuple[int, str | bytes], ...],
    dict[int, dict[str, Any]],
    tuple[str | bytes | None, ...],
]:
    """A build's documents, oldest first: ids (:class:`DocIds`: ``Hit.id``, as search gives them),
    timestamps, ``(shape, body JSON)``, the shapes and stored tokens.

    ``unpack`` gives a compressed line's body and tokens (:meth:`.lines.StoredLines.unpacker`;
    :meth:`~.lines.StoredLines.raw_unpacker`: as UTF-8 bytes, for :func:`loads_json`).
    """
    shape_ids = [r[0] for r in conn.execute(shapes_with(name, "= ?"), (name, value))]
    if not shape_ids:
        return (), (), (), {}, ()
    wanted = json.dumps(shape_ids)
    rows = conn.execute(
        "SELECT d.id, d.doc_id, d.ts, d.shape, d.body, d.tokens FROM docs d WHERE d.shape IN (SELECT value FROM json_each(?)) "
        "ORDER BY d.ts IS NULL, d.ts, d.id",
        (wanted,),
    ).fetchall()
    shapes = {
        sid: join_shape(build, own)
        for sid, build, own in conn.execute(
            "SELECT s.id, b.json, s.json FROM shapes s JOIN builds b ON b.id = s.build "
            "WHERE s.id IN (SELECT value FROM json_each(?))",
            (wanted,),
        )
    }
    if not rows:
        return (), (), (), shapes, ()
    rids, doc_ids, ts, sids, bodies, tokens = zip(*rows, strict=True)
    if unpack is not None and bytes in set(map(type, bodies)):
        bodies, tokens = zip(*[unpack(b) if type(b) is bytes else (b, t) for b, t in zip(bodies, tokens, strict=True)], strict=True)
    ids = DocIds(rids, doc_ids, sids, shapes)
    return ids, ts, tuple(zip(sids, bodies, strict=True)), shapes, tokens

def build_docs(
    conn: sqlite3.Connection, name: str, value: str, unpack: Callable[[bytes], tuple[str, str | None]] | None = None
) -> list[dict[str, Any]]:
    """A build's documents, oldest first."""
    _ids, _ts, rows, shapes, _tokens = build_rows(conn, name, value, unpack)
    docs = []
    for sid, body in rows:
        doc = dict(shapes[sid])
        doc.update(loads_json(body))
        docs.append(doc)
    return docs


def store_terms(filters: Filters) -> dict[str, tuple[str, ...]]:
    """``filters.as_terms()`` with the voting flag in every spelling the store may hold."""
    terms = filters.as_terms()
    if filters.voting is not None and "voting" in terms:
        # The store keeps each document as given, so its voting filter accepts every spelling.
        terms["voting"] = voting_spellings(filters.voting)
    return terms


# ---------------------------------------------------------------------------
# Migrations


def _migration_1(conn: sqlite3.Connection, text_fields: Sequence[str]) -> None:
    columns = ", ".join(f"c{i}" for i in range(len(text_fields)))
    script = (
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE shapes (
            id INTEGER PRIMARY KEY,
            json TEXT NOT NULL UNIQUE,
            build_uuid TEXT,
            build_status TEXT
        );
        CREATE INDEX shapes_build ON shapes (build_uuid);
        CREATE TABLE docs (
            id INTEGER PRIMARY KEY,
            doc_id TEXT UNIQUE,
            ts INTEGER,
            shape INTEGER NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX docs_shape ON docs (shape, ts);
        CREATE TABLE kw_shape (
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            shape INTEGER NOT NULL,
            PRIMARY KEY (field, value, shape)
        ) WITHOUT ROWID;
        CREATE INDEX kw_shape_by_shape ON kw_shape (shape, field);
        CREATE TABLE kw (
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            doc INTEGER NOT NULL,
            PRIMARY KEY (field, value, doc)
        ) WITHOUT ROWID;
        CREATE TABLE test_runs (build_uuid TEXT PRIMARY KEY, recorded_at TEXT NOT NULL);
        CREATE TABLE test_results (
            build_uuid TEXT NOT NULL,
            test_id TEXT NOT NULL,
            status TEXT NOT NULL,
            duration REAL,
            PRIMARY KEY (build_uuid, test_id)
        ) WITHOUT ROWID;
        """
    )
    # One statement at a time: executescript() would COMMIT the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"CREATE VIRTUAL TABLE fts USING fts5({columns}, content='', tokenize={fts_tokenize_option()}, detail=full)")
    conn.execute("CREATE VIRTUAL TABLE fts_vocab USING fts5vocab(fts, col)")
    conn.execute("INSERT INTO meta (key, value) VALUES ('text_fields', ?)", (json.dumps(list(text_fields)),))


def _migration_2(conn: sqlite3.Connection, text_fields: Sequence[str]) -> None:
    """``docs.tokens``: the analyzed tokens of the document's single-valued text fields.

    A JSON array aligned with the store's text fields: each entry is the
    field's FTS5 text (``PRESENT`` then the tokens, space-separated) or null.
    Percolation builds a line's postings from it instead of analyzing the
    text again. Documents stored before this migration have none (they are
    analyzed when indexed, as before).
    """
    conn.execute("ALTER TABLE docs ADD COLUMN tokens TEXT")


#: version -> migration. Append, never edit: a store records which ran.
def _migration_3(conn: sqlite3.Connection, text_fields: Sequence[str]) -> None:
    """Compressed lines (:mod:`.lines`): the ``codec`` table (the store's zstd dictionary), trained
    on the stored lines, which are compressed in place (the pages they free are reused by new
    lines, and given back by the next ``prune``). Too few lines to train on: they stay plain."""
    conn.execute("CREATE TABLE codec (id INTEGER PRIMARY KEY, dict BLOB NOT NULL)")
    lines.compact(conn, None)


def _derived_numbers(conn: sqlite3.Connection) -> Iterator[list[tuple[int, int]]]:
    """``(rowid, n)`` of the stored documents whose TEXT id is the derived id of line ``n`` of their file.

    Lines are grouped by file (the shapes of one ``build_uuid`` and
    ``filename``: a build loaded again with another ``build_status`` has
    two); each group's ids are matched against the derived ids of lines
    ``1..k`` (``k``: the ids not matched yet, and more while some still match).
    An id that is not found stays TEXT. One list per file (memory stays small).
    """
    files: dict[str, list[int]] = {}
    for sid, text in conn.execute("SELECT id, json FROM shapes WHERE build_uuid IS NOT NULL ORDER BY id"):
        prefix = derived_prefix(loads_json(text))
        if prefix is not None:
            files.setdefault(prefix, []).append(sid)
    for prefix, sids in files.items():
        out: list[tuple[int, int]] = []
        wanted = {
            doc_id: rid
            for rid, doc_id in conn.execute(
                "SELECT id, doc_id FROM docs WHERE shape IN (SELECT value FROM json_each(?)) "
                "AND typeof(doc_id) = 'text' AND length(doc_id) = ?",
                (json.dumps(sids), DERIVED_ID_LENGTH),
            )
        }
        n, limit = 0, len(wanted) + 64
        while wanted and n < limit:
            n += 1
            rid = wanted.pop(derived_id(prefix, n), None)
            if rid is not None:
                out.append((rid, n))
                limit = max(limit, n + len(wanted) + 64)  # gaps (lines deleted since): look further
        yield out


def _migration_4(conn: sqlite3.Connection, text_fields: Sequence[str]) -> None:
    """Compact document ids: a derived id (see :func:`derived_prefix`) is stored as its line number
    (INTEGER ``docs.doc_id``), read back from the line's shape; other ids stay TEXT. ``doc_id`` loses
    its TEXT affinity and its UNIQUE index (~90 bytes a line): the writer finds the documents a
    batch replaces through their build's shapes (derived ids) and the partial index
    ``docs_text_id`` (the others). ``docs`` is copied into its new definition (rowids kept); the
    pages the old copy held are reused, and given back by the next ``prune``."""
    conn.execute("CREATE TEMP TABLE er_derived (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    try:
        for numbers in _derived_numbers(conn):
            conn.executemany("INSERT INTO er_derived (id, n) VALUES (?, ?)", numbers)
        conn.execute(
            "CREATE TABLE docs_v4 (id INTEGER PRIMARY KEY, doc_id, ts INTEGER, shape INTEGER NOT NULL, "
            "body TEXT NOT NULL, tokens TEXT)"
        )
        conn.execute(
            "INSERT INTO docs_v4 (id, doc_id, ts, shape, body, tokens) "
            "SELECT d.id, IFNULL(m.n, d.doc_id), d.ts, d.shape, d.body, d.tokens "
            "FROM docs d LEFT JOIN temp.er_derived m ON m.id = d.id ORDER BY d.id"
        )
        # Emptied first (a DELETE without WHERE frees the pages as it goes): DROP TABLE alone kept
        # a copy of every page it freed in memory (its statement journal), ~240 MB at 1M lines.
        conn.execute("DELETE FROM docs")
        conn.execute("DROP TABLE docs")
        conn.execute("ALTER TABLE docs_v4 RENAME TO docs")
        _docs_indexes(conn)
    finally:
        conn.execute("DROP TABLE temp.er_derived")


def _docs_indexes(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE INDEX docs_shape ON docs (shape, ts)")
    conn.execute(f"CREATE INDEX docs_text_id ON docs (doc_id) WHERE {TEXT_ID}")


def _migration_5(conn: sqlite3.Connection, text_fields: Sequence[str]) -> None:
    """Build metadata once per build: a shape keeps its :data:`FILE_FIELDS` and a reference to a
    ``builds`` row holding the rest (found by content: a 64-bit hash, then the JSON compared);
    ``kw_build`` holds the build fields' keyword rows once per build, ``kw_shape`` keeps the
    file fields'. Shapes keep their ids (``docs`` is not touched). A store in incremental
    auto-vacuum mode (pruned before) gives the old tables' pages back.

    A store without documents also gets its FTS5 table again without per-row column sizes
    (``columnsize=0``: nothing reads them); a store with documents keeps its FTS5 table as it
    is (rebuilding it would analyze every line again).
    """
    for statement in (
        "CREATE TABLE builds (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, build_uuid TEXT, build_status TEXT, "
        "json TEXT NOT NULL)",
        "CREATE INDEX builds_hash ON builds (hash)",
        "CREATE INDEX builds_uuid ON builds (build_uuid)",
        "CREATE TABLE kw_build (field TEXT NOT NULL, value TEXT NOT NULL, build INTEGER NOT NULL, "
        "PRIMARY KEY (field, value, build)) WITHOUT ROWID",
        "CREATE INDEX kw_build_by_build ON kw_build (build, field)",
        "CREATE TABLE shapes_v5 (id INTEGER PRIMARY KEY, build INTEGER NOT NULL, hash INTEGER NOT NULL, json TEXT NOT NULL)",
    ):
        conn.execute(statement)
    builds: dict[str, int] = {}
    rows = []
    for sid, text in conn.execute("SELECT id, json FROM shapes ORDER BY id").fetchall():
        shape = json.loads(text)
        build, own = split_shape(shape)
        bid = builds.get(build)
        if bid is None:
            uuid, status = shape.get("build_uuid"), shape.get("build_status")
            bid = builds[build] = int(
                conn.execute(
                    "INSERT INTO builds (hash, build_uuid, build_status, json) VALUES (?, ?, ?, ?)",
                    (
                        text_hash(build),
                        uuid if isinstance(uuid, str) else None,
                        status if isinstance(status, str) else None,
                        build,
                    ),
                ).lastrowid
                or 0
            )
        rows.append((sid, bid, text_hash(canonical_json(shape)), own))
    conn.executemany("INSERT INTO shapes_v5 (id, build, hash, json) VALUES (?, ?, ?, ?)", rows)
    moved = json.dumps([f for (f,) in conn.execute("SELECT DISTINCT field FROM kw_shape") if not file_field(f)])
    conn.execute(
        "INSERT OR IGNORE INTO kw_build (field, value, build) SELECT k.field, k.value, s.build FROM kw_shape k "
        "JOIN shapes_v5 s ON s.id = k.shape WHERE k.field IN (SELECT value FROM json_each(?))",
        (moved,),
    )
    conn.execute("DELETE FROM kw_shape WHERE field IN (SELECT value FROM json_each(?))", (moved,))
    conn.execute("DELETE FROM shapes")  # (emptied first: see _migration_4)
    conn.execute("DROP TABLE shapes")
    conn.execute("ALTER TABLE shapes_v5 RENAME TO shapes")
    conn.execute("CREATE INDEX shapes_build ON shapes (build, hash)")
    if conn.execute("SELECT 1 FROM docs LIMIT 1").fetchone() is None:
        columns = ", ".join(f"c{i}" for i in range(len(text_fields)))
        conn.execute("DROP TABLE fts_vocab")
        conn.execute("DROP TABLE fts")
        conn.execute(
            f"CREATE VIRTUAL TABLE fts USING fts5({columns}, content='', tokenize={fts_tokenize_option()}, "
            "detail=full, columnsize=0)"
        )
        conn.execute("CREATE VIRTUAL TABLE fts_vocab USING fts5vocab(fts, col)")
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
        # (a store pruned before: the old tables' pages go back to the file system now; in a
        # transaction each step of the pragma frees one page)
        for _ in range(int(conn.execute("PRAGMA freelist_count").fetchone()[0])):
            conn.execute("PRAGMA incremental_vacuum")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Sequence[str]], None]] = {
    1: _migration_1,
    2: _migration_2,
    3: _migration_3,
    4: _migration_4,
    5: _migration_5,
}


def with_text_fields(step: Callable[[sqlite3.Connection, Sequence[str]], None], text_fields: Sequence[str]) -> Migration:
    return lambda conn: step(conn, text_fields)
