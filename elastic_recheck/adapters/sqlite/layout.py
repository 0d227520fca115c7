"""The embedded store's layout: its tables (:data:`MIGRATIONS`) and how a document maps onto them.

The writer (:mod:`.writer`), the query compiler (:mod:`.compiler`) and
percolation (:mod:`.percolate`) share these definitions.

Layout (schema version 3, see :data:`MIGRATIONS`)
-------------------------------------------------
``docs``
    one row per document: ``id`` (rowid), ``doc_id`` (the document's own
    ``id`` when it has one), ``ts`` (``@timestamp`` as epoch ms), ``shape``,
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
``kw_shape`` / ``kw``
    ``(field, value, shape|doc)`` indexes of exact keyword values, for shape
    fields and per-line fields respectively. Values are strings: numbers as
    their text, booleans ``true``/``false``, lists one row per element, nested
    objects flattened to ``a.b``.
``fts``
    an FTS5 table with one column per text field (``message``, ``tags``)
    holding the field's tokens as produced by :func:`elastic_recheck.core.lucene.analysis.tokenize`
    (Lucene's StandardAnalyzer), joined by spaces. FTS5's ``ascii`` tokenizer
    with every ASCII punctuation character declared a token character splits
    that text back on spaces only, so an FTS5 phrase is a Lucene phrase. The
    values of a multi-valued field are separated by :data:`GAP` (a token the
    analyzer never produces) so exact phrases never span two values, and each
    present field starts with :data:`PRESENT` (for ``_exists_``).
``test_results`` / ``test_runs``
    per-build subunit results (``failed_tests``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

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


def loads_json(text: str) -> Any:
    """Parse stored JSON (orjson when installed)."""
    if _orjson is not None:
        return _orjson.loads(text)
    return json.loads(text)

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
    row = conn.execute("SELECT json FROM shapes WHERE id = ?", (shape,)).fetchone()
    return json.loads(row[0]) if row else {}


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
    conn: sqlite3.Connection, name: str, value: str, unpack: Callable[[bytes], tuple[str, str | None]] | None = None
) -> tuple[
    tuple[int, ...], tuple[int | None, ...], tuple[tuple[int, str], ...], dict[int, dict[str, Any]], tuple[str | None, ...]
]:
    """A build's documents, oldest first: ids, timestamps, ``(shape, body JSON)``, the shapes and stored tokens.

    ``unpack`` gives a compressed line's body and tokens (:meth:`.lines.StoredLines.unpacker`).
    """
    shape_ids = [
        r[0] for r in conn.execute("SELECT shape FROM kw_shape WHERE field = ? AND value = ?", (name, value))
    ]
    if not shape_ids:
        return (), (), (), {}, ()
    wanted = json.dumps(shape_ids)
    rows = conn.execute(
        "SELECT d.id, d.ts, d.shape, d.body, d.tokens FROM docs d WHERE d.shape IN (SELECT value FROM json_each(?)) "
        "ORDER BY d.ts IS NULL, d.ts, d.id",
        (wanted,),
    ).fetchall()
    shapes = {
        sid: loads_json(text)
        for sid, text in conn.execute("SELECT id, json FROM shapes WHERE id IN (SELECT value FROM json_each(?))", (wanted,))
    }
    if unpack is not None and any(isinstance(r[3], bytes) for r in rows):
        rows = [(r[0], r[1], r[2], *unpack(r[3])) if isinstance(r[3], bytes) else r for r in rows]
    return (
        tuple([r[0] for r in rows]),
        tuple([r[1] for r in rows]),
        tuple([(r[2], r[3]) for r in rows]),
        shapes,
        tuple([r[4] for r in rows]),
    )

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


MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Sequence[str]], None]] = {
    1: _migration_1,
    2: _migration_2,
    3: _migration_3,
}


def with_text_fields(step: Callable[[sqlite3.Connection, Sequence[str]], None], text_fields: Sequence[str]) -> Migration:
    return lambda conn: step(conn, text_fields)
