"""The embedded store: CI log documents in one SQLite file, searched like Lucene.

No server: the bot, the CLI and the report builders open the file directly.
It implements :class:`elastic_recheck.ports.search.SearchBackend` with results that
are exactly what Lucene (and :class:`elastic_recheck.core.lucene.matcher.MemoryIndex`)
return for the same analyzed query.

Layout (schema version 2, see :data:`MIGRATIONS`)
-------------------------------------------------
``docs``
    one row per document: ``id`` (rowid), ``doc_id`` (the document's own
    ``id`` when it has one), ``ts`` (``@timestamp`` as epoch ms), ``shape``,
    ``body`` and ``tokens`` (the analyzed tokens of its single-valued text
    fields, for percolation; NULL in rows stored before schema 2). A document is split into its per-line fields (``body``: the
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

Writing
-------
Documents are prepared (split, analyzed: :class:`DocumentPreparer`) and
encoded as JSON arrays (:class:`BatchEncoder`) in the calling thread; one
``INSERT`` into a TEMP table then stores a whole batch through a TEMP
trigger (:func:`_batch_sql`): shapes, documents, FTS5 rows and keyword rows
in one SQLite call, which runs without the GIL. A multi-batch ingest hands
batches to a background thread, so that SQLite writes one batch while
Python prepares the next.

Queries
-------
The analyzed AST (:mod:`elastic_recheck.core.lucene.ast`) is compiled to SQL:
text-field subtrees become one FTS5 MATCH expression where FTS5 can say it
exactly (terms, exact phrases, prefixes, boolean combinations); keyword
leaves become index lookups; multi-term leaves on text (wildcard, regexp,
fuzzy, range) are expanded against the FTS5 vocabulary; sloppy phrases are
found by FTS5 (all their terms) and verified by the in-memory matcher.
Structured filters and the time window are SQL parameters.

When every search of an ``msearch`` is restricted to the same build (the
classifier's case), that build's documents are loaded once into a
:class:`~elastic_recheck.core.lucene.matcher.MemoryIndex` and every query is evaluated in
memory ("percolation"): a thousand fingerprints cost milliseconds. The index
is built from the stored parts (:func:`index_build`: each shape's fields once,
text postings only for the tokens the queries look up) and kept for the
next few ``msearch`` calls.
"""

from __future__ import annotations

import itertools
import json
import logging
import operator
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, TypeVar

from elastic_recheck.adapters.sqlite.database import Database, translate
from elastic_recheck.core.errors import BackendError, QuerySyntaxError, StoreError
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.matcher import ID_FIELD, document_id, edit_distance_at_most, wildcard_predicate
from elastic_recheck.core.lucene.regexp import compile_regexp
from elastic_recheck.core.schema import BUILD_FIELDS, DEFAULT_MAPPING, Mapping, build_log_url
from elastic_recheck.core.timestamps import timestamp_ms, to_epoch_ms
from elastic_recheck.ports.loading import IngestStats, TestResult
from elastic_recheck.ports.search import (
    Bucket,
    BuildSummary,
    Filters,
    Hit,
    QuerySpec,
    SearchResult,
    TermCount,
    TimeWindow,
)
from elastic_recheck.storage.sqlite import Migration

_orjson: Any
try:  # optional: 5x faster JSON for document bodies
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

LOG = logging.getLogger(__name__)

def _dumps_body(obj: dict[str, Any]) -> str:
    if _orjson is not None:
        try:
            return str(_orjson.dumps(obj).decode("utf-8"))
        except TypeError:  # e.g. integers beyond 64 bits
            pass
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str) -> Any:
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

#: Lucene refuses terms longer than this (UTF-8 bytes); ES skips such keyword values.
MAX_KEYWORD_BYTES = 32766


def _indexable(value: str) -> bool:
    return len(value) * 3 <= MAX_KEYWORD_BYTES or len(value.encode("utf-8")) <= MAX_KEYWORD_BYTES


def _per_line(name: str, text_fields: AbstractSet[str]) -> bool:
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

#: Terms per FTS5 OR expression when a multi-term query is expanded.
EXPANSION_CHUNK = 200

_FTS_TOKENCHARS = "".join(ch for ch in map(chr, range(33, 127)) if not ch.isalnum())

#: Builds kept in memory for percolation (the bot classifies a build once; a
#: cached index also costs memory and garbage-collector time).
PERCOLATION_CACHE = 2

#: Distinct shapes (and tags lists) remembered while ingesting. Documents
#: arrive file by file, so a few hundred cover every run of identical shapes;
#: more only costs memory (a million lines hold ~30,000 shapes).
SHAPE_CACHE = 512


def _fts_tokenize_option() -> str:
    inner = "ascii tokenchars '" + _FTS_TOKENCHARS.replace("'", "''") + "'"
    return "'" + inner.replace("'", "''") + "'"


def _fts_string(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _fts_exact(token: str) -> bool:
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


def flatten_fields(doc: AbcMapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(field, value)`` pairs with nested objects flattened to dotted names."""
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten_fields(value, name + ".")
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            plain = [v for v in value if not isinstance(v, dict)]
            if plain:
                yield name, plain
            for v in value:
                if isinstance(v, dict):
                    yield from flatten_fields(v, name + ".")
        else:
            yield name, value


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


def _has_object(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and any(_has_object(v) for v in value)


def nested_keywords(name: str, value: Any) -> list[tuple[str, str]]:
    """``(field, value)`` keyword pairs of the objects nested in a text field's value.

    ``{"message": {"a": "inner text"}}`` indexes the keyword field
    ``message.a`` (Elasticsearch and the matcher flatten objects to dotted
    names; a dotted name is a keyword unless the mapping says otherwise).
    """
    if not _has_object(value):
        return []
    from elastic_recheck.core.lucene.matcher import flatten_document

    return [
        (flat, v)
        for flat, vals in flatten_document({name: value}).items()
        if flat != name
        for v in vals
        if _indexable(v)
    ]


def _ms_to_dt(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _dt_to_ms(dt: datetime) -> int:
    return to_epoch_ms(dt)


# ---------------------------------------------------------------------------
# Leaf predicates (for expansions over vocabularies and keyword values)


def leaf_predicate(q: qa.Query) -> Callable[[str], bool]:
    """Whether one indexed term (token or keyword value) matches a multi-term leaf.

    Uses the in-memory matcher's own predicate when it provides one, so both
    engines agree by construction.
    """
    if isinstance(q, qa.Prefix):
        prefix = q.prefix
        return lambda t: t.startswith(prefix)
    if isinstance(q, qa.Wildcard):
        wild: Callable[[str], bool] = wildcard_predicate(q.pattern)
        return wild
    if isinstance(q, qa.Regexp):  # Lucene's RegExp syntax (``@``, ``~``, ``&``, ``<n-m>``...), not Python's
        matches: Callable[[str], bool] = compile_regexp(q.pattern)
        return matches
    if isinstance(q, qa.Fuzzy):
        value, edits, plen = q.value, q.max_edits, q.prefix_length
        head = value[:plen]
        return lambda t: t.startswith(head) and edit_distance_at_most(value, t, edits) is not None
    if isinstance(q, qa.Range):
        lo, hi, il, iu = q.lower, q.upper, q.include_lower, q.include_upper

        def in_range(t: str) -> bool:
            tb = t.encode("utf-8")
            if lo is not None:
                lb = lo.encode("utf-8")
                if tb < lb or (tb == lb and not il):
                    return False
            if hi is not None:
                hb = hi.encode("utf-8")
                if tb > hb or (tb == hb and not iu):
                    return False
            return True

        return in_range
    raise TypeError(f"not a multi-term query: {q!r}")


def fuzzy_terms(q: qa.Fuzzy, vocabulary: Iterable[str]) -> list[str]:
    """The terms a Lucene ``FuzzyQuery`` expands to over ``vocabulary``.

    Lucene keeps the best 50 terms within the edit distance, ranked by
    similarity ``1 - edits / min(len(term), len(value))`` then term order
    (``TopTermsBlendedFreqScoringRewrite``); ES does that per shard, the store
    over its whole vocabulary.
    """
    from elastic_recheck.core.lucene.matcher import FUZZY_MAX_EXPANSIONS, edit_distance_at_most

    value, k = q.value, q.max_edits
    pre = value[: q.prefix_length]
    scored: list[tuple[float, str]] = []
    for term in vocabulary:
        if not term.startswith(pre):
            continue
        ed = edit_distance_at_most(value, term, k)
        if ed is None:
            continue
        shortest = min(len(term), len(value))
        boost = 1.0 if ed == 0 else (1.0 - ed / shortest if shortest else float("-inf"))
        scored.append((boost, term))
    if len(scored) > FUZZY_MAX_EXPANSIONS:
        scored.sort(key=lambda bt: (-bt[0], bt[1]))
        del scored[FUZZY_MAX_EXPANSIONS:]
    return [t for _, t in scored]


def _literal_prefix(q: qa.Query) -> str:
    """A prefix every matching term must start with ("" if unknown)."""
    if isinstance(q, qa.Prefix):
        return q.prefix
    if isinstance(q, qa.Fuzzy):
        return q.value[: q.prefix_length]
    if isinstance(q, qa.Wildcard):
        out = []
        for c in q.pattern:
            if c in "*?\\":
                break
            out.append(c)
        return "".join(out)
    return ""


def _prefix_upper(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            chars[-1] = chr(last + 1)
            return "".join(chars)
        chars.pop()
    return None


_T = TypeVar("_T")

#: Entries an identity cache holds before it is emptied (bounded memory).
IDENTITY_CACHE_SIZE = 100_000


def _by_identity(cache: dict[int, tuple[Any, _T]], q: qa.Query, compute: Callable[[], _T]) -> _T:
    """``compute()`` for the query node ``q``, cached by object identity (the node is kept
    alongside, so a recycled ``id`` never answers for another node)."""
    cached = cache.get(id(q))
    if cached is not None and cached[0] is q:
        return cached[1]
    value = compute()
    if len(cache) > IDENTITY_CACHE_SIZE:
        cache.clear()
    cache[id(q)] = (q, value)
    return value


def _prefix_range(column: str, prefix: str) -> tuple[str, list[Any]]:
    """SQL (``" AND ..."``) and parameters restricting ``column`` to values starting with ``prefix``
    as an index range scan; nothing for an empty prefix."""
    if not prefix:
        return "", []
    upper = _prefix_upper(prefix)
    if upper is None:
        return f" AND {column} >= ?", [prefix]
    return f" AND {column} >= ? AND {column} < ?", [prefix, upper]


def required_terms(q: qa.Query, mapping: Mapping) -> frozenset[tuple[str, str]]:
    """``(field, term)`` pairs every matching document must contain (conservative: may be empty).

    Text terms are tokens, keyword terms exact values. Used to rule out most
    fingerprints for a build without evaluating them.
    """
    if isinstance(q, qa.Term):
        return frozenset({(q.field, q.value)})
    if isinstance(q, qa.Phrase):
        if mapping.is_text(q.field):
            return frozenset((q.field, t) for t in q.terms)
        return frozenset()
    if isinstance(q, qa.Bool):
        if q.must:
            out: set[tuple[str, str]] = set()
            for c in q.must:
                out |= required_terms(c, mapping)
            return frozenset(out)
        if q.should:
            sets = [required_terms(c, mapping) for c in q.should]
            common = set(sets[0])
            for other in sets[1:]:
                common &= other
            return frozenset(common)
    return frozenset()


# ---------------------------------------------------------------------------
# Query plans


@dataclass
class _Plan:
    """``(fts is None or rowid in FTS(fts)) AND all(sql)``."""

    fts: str | None = None
    sql: list[tuple[str, list[Any]]] = field(default_factory=list)

    @property
    def pure_fts(self) -> bool:
        return self.fts is not None and not self.sql

    def as_sql(self) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        if self.fts is not None:
            parts.append("d.id IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
            params.append(self.fts)
        for expr, p in self.sql:
            parts.append(expr)
            params.extend(p)
        if not parts:
            return "1", []
        if len(parts) == 1:
            return parts[0], params
        return "(" + " AND ".join(parts) + ")", params


_NONE = _Plan(sql=[("0", [])])
#: A document's id in SQL on ``d``: its own ``id``, else ``r<rowid>`` (as :class:`Hit` ids).
_ID_SQL = "COALESCE(d.doc_id, 'r' || d.id)"


@dataclass
class _Scope:
    """Restrictions every match must satisfy (filters and window), as SQL on ``d``."""

    sql: list[tuple[str, list[Any]]]
    id_range: tuple[int, int] | None = None
    empty: bool = False

    def where(self) -> tuple[str, list[Any]]:
        if self.empty:
            return "0", []
        parts = [e for e, _ in self.sql]
        params = [p for _, ps in self.sql for p in ps]
        return (" AND ".join(parts) if parts else "1"), params


class _Compiler:
    """Compiles a query AST to a :class:`_Plan` for one connection."""

    def __init__(self, store: EmbeddedStore, conn: sqlite3.Connection, scope: _Scope) -> None:
        self.store = store
        self.conn = conn
        self.scope = scope

    # -- leaves ---------------------------------------------------------
    def column(self, field_name: str) -> str:
        return self.store._fts_columns[field_name]

    def keyword_lookup(self, field_name: str, op: str, params: list[Any]) -> tuple[str, list[Any]]:
        """SQL on ``d`` for docs whose keyword ``field`` has a value with ``value <op>``."""
        if field_name in UNINDEXED_PER_LINE:
            return f"er_body_kw(d.body, ?, '{op}', ?)", [field_name, json.dumps(params)]
        if self.store._per_line(field_name):
            return (f"d.id IN (SELECT doc FROM kw WHERE field = ? AND value {op})", [field_name, *params])
        return (f"d.shape IN (SELECT shape FROM kw_shape WHERE field = ? AND value {op})", [field_name, *params])

    def keyword_predicate(self, field_name: str, pred: Callable[[str], bool], prefix: str = "") -> _Plan:
        """Docs with a keyword value accepted by ``pred`` (Python predicate over distinct values)."""
        table, col = ("kw", "doc") if self.store._per_line(field_name) else ("kw_shape", "shape")
        if field_name in UNINDEXED_PER_LINE:
            key = self.store._register_predicate(pred)
            return _Plan(sql=[("er_body_pred(d.body, ?, ?)", [field_name, key])])
        values = [v for v in self._distinct_values(table, field_name, prefix) if pred(v)]
        if not values:
            return _NONE
        target = "d.id" if col == "doc" else "d.shape"
        return _Plan(
            sql=[
                (
                    f"{target} IN (SELECT {col} FROM {table} WHERE field = ? AND value IN (SELECT value FROM json_each(?)))",
                    [field_name, json.dumps(values)],
                )
            ]
        )

    def keyword_vocabulary(self, field_name: str, prefix: str = "") -> list[str]:
        """Distinct values of a keyword field (starting with ``prefix``)."""
        if field_name in UNINDEXED_PER_LINE:
            values: set[str] = set()
            for (body,) in self.conn.execute("SELECT body FROM docs"):
                values.update(keyword_values(_loads(body).get(field_name)))
            return sorted(v for v in values if v.startswith(prefix))
        return self._distinct_values("kw" if self.store._per_line(field_name) else "kw_shape", field_name, prefix)

    def _distinct_values(self, table: str, field_name: str, prefix: str = "") -> list[str]:
        """Distinct values of ``field_name`` in a keyword table, optionally by prefix (index range scan)."""
        where, params = _prefix_range("value", prefix)
        sql = f"SELECT DISTINCT value FROM {table} WHERE field = ?" + where
        return [v for (v,) in self.conn.execute(sql, [field_name, *params])]

    def text_terms(self, field_name: str, terms: list[str]) -> _Plan:
        """Docs whose text field holds any of ``terms``."""
        if not terms:
            return _NONE
        col = self.column(field_name)
        chunks = [terms[i : i + EXPANSION_CHUNK] for i in range(0, len(terms), EXPANSION_CHUNK)]
        exprs = [f"{col} : (" + " OR ".join(_fts_string(t) for t in chunk) + ")" for chunk in chunks]
        if len(exprs) == 1:
            return _Plan(fts=exprs[0])
        union = " UNION ".join("SELECT rowid FROM fts WHERE fts MATCH ?" for _ in exprs)
        return _Plan(sql=[(f"d.id IN ({union})", list(exprs))])

    def vocabulary(self, field_name: str, prefix: str = "", q: qa.Range | None = None) -> list[str]:
        col = self.column(field_name)
        where, prefix_params = _prefix_range("term", prefix)
        sql = "SELECT term FROM fts_vocab WHERE col = ?" + where
        params: list[Any] = [col, *prefix_params]
        if q is not None:
            if q.lower is not None:
                sql += " AND term >= ?"
                params.append(q.lower)
            if q.upper is not None:
                sql += " AND term <= ?"
                params.append(q.upper)
        return [t for (t,) in self.conn.execute(sql, params) if t not in SENTINELS]

    def verified(self, candidates: _Plan, leaf: qa.Query) -> _Plan:
        """Docs among ``candidates`` (within the scope) that the in-memory matcher accepts."""
        from elastic_recheck.core.lucene.matcher import MemoryIndex

        where, params = candidates.as_sql()
        swhere, sparams = self.scope.where()
        rows = self.conn.execute(
            f"SELECT d.id, d.shape, d.body FROM docs d WHERE {where} AND {swhere}", [*params, *sparams]
        ).fetchall()
        if not rows:
            return _NONE
        docs = [self.store._assemble(conn=self.conn, shape=shape, body=body) for _, shape, body in rows]
        hits = MemoryIndex(docs, mapping=self.store.mapping).search(leaf)
        ids = [rows[i][0] for i in hits]
        if not ids:
            return _NONE
        return _Plan(sql=[("d.id IN (SELECT value FROM json_each(?))", [json.dumps(ids)])])

    def leaf(self, q: qa.Query) -> _Plan:
        mapping = self.store.mapping
        if isinstance(q, qa.MatchAll):
            return _Plan()
        if isinstance(q, qa.MatchNone):
            return _NONE
        if isinstance(q, qa.Exists):
            if q.field == "_id":
                return _Plan()
            if "*" in q.field or "?" in q.field:  # _exists_:build_* (a pattern over field names)
                match = leaf_predicate(qa.Wildcard(q.field, q.field))
                names = {f for (f,) in self.conn.execute("SELECT DISTINCT field FROM kw_shape")}
                names |= {f for (f,) in self.conn.execute("SELECT DISTINCT field FROM kw")}
                names |= set(self.store._text_fields) | UNINDEXED_PER_LINE
                wanted = tuple(qa.Exists(n) for n in sorted(names) if match(n))
                return self.compile(qa.Bool(should=wanted)) if wanted else _NONE
            if mapping.is_text(q.field):
                return _Plan(fts=f"{self.column(q.field)} : {_fts_string(PRESENT)}")
            if q.field in UNINDEXED_PER_LINE:
                return _Plan(sql=[("er_body_has(d.body, ?)", [q.field])])
            table, col, target = (
                ("kw", "doc", "d.id") if self.store._per_line(q.field) else ("kw_shape", "shape", "d.shape")
            )
            return _Plan(sql=[(f"{target} IN (SELECT {col} FROM {table} WHERE field = ?)", [q.field])])
        name = q.field  # type: ignore[attr-defined]
        text = mapping.is_text(name)
        if name == ID_FIELD and not isinstance(q, (qa.Term, qa.Phrase)):
            return self.id_leaf(q)
        if isinstance(q, qa.Term):
            if text:
                if q.value in SENTINELS or not _fts_exact(q.value):
                    return _NONE  # no analyzed token holds a separator or an upper-case letter
                return _Plan(fts=f"{self.column(name)} : {_fts_string(q.value)}")
            if name == ID_FIELD:
                return _Plan(sql=[("(d.doc_id = ? OR (d.doc_id IS NULL AND 'r' || d.id = ?))", [q.value, q.value])])
            expr, params = self.keyword_lookup(name, "= ?", [q.value])
            return _Plan(sql=[(expr, params)])
        if isinstance(q, qa.Phrase):
            if not text:
                # A phrase on a keyword field is one exact value (the keyword analyzer).
                return self.leaf(qa.Term(name, " ".join(q.terms)))
            if not q.terms:
                return _NONE
            if any(t in SENTINELS for t in q.terms):
                return _NONE
            col = self.column(name)
            consecutive = all(p - q.positions[0] == i for i, p in enumerate(q.positions)) if q.positions else True
            if q.slop == 0 and consecutive and len(set(q.positions or range(len(q.terms)))) == len(q.terms):
                return _Plan(fts=f"{col} : " + _fts_string(" ".join(q.terms)))
            candidates = _Plan(fts=" AND ".join(f"{col} : {_fts_string(t)}" for t in dict.fromkeys(q.terms)))
            return self.verified(candidates, q)
        if isinstance(q, qa.Prefix):
            if text:
                if q.prefix and _fts_exact(q.prefix) and not any(s.startswith(q.prefix) for s in SENTINELS):
                    return _Plan(fts=f"{self.column(name)} : {_fts_string(q.prefix)} *")
                return self.text_terms(name, self.vocabulary(name, prefix=q.prefix))
            upper = _prefix_upper(q.prefix)
            if upper is None:
                expr, params = self.keyword_lookup(name, ">= ?", [q.prefix])
            else:
                expr, params = self.keyword_lookup(name, ">= ? AND value < ?", [q.prefix, upper])
            return _Plan(sql=[(expr, params)])
        if isinstance(q, qa.Range) and not text:
            conds: list[str] = []
            params = []
            if q.lower is not None:
                conds.append(">= ?" if q.include_lower else "> ?")
                params.append(q.lower)
            if q.upper is not None:
                conds.append("<= ?" if q.include_upper else "< ?")
                params.append(q.upper)
            if not conds:
                return self.leaf(qa.Exists(name))
            op = conds[0] + "".join(" AND value " + c for c in conds[1:])
            expr, params = self.keyword_lookup(name, op, params)
            return _Plan(sql=[(expr, params)])
        if isinstance(q, qa.Fuzzy):
            prefix = _literal_prefix(q)
            if text:
                return self.text_terms(name, fuzzy_terms(q, self.vocabulary(name, prefix=prefix)))
            keep = set(fuzzy_terms(q, self.keyword_vocabulary(name, prefix)))
            return self.keyword_predicate(name, keep.__contains__, prefix)
        if isinstance(q, (qa.Wildcard, qa.Regexp, qa.Range)):
            pred = leaf_predicate(q)
            prefix = _literal_prefix(q)
            if text:
                vocab = self.vocabulary(name, prefix=prefix, q=q if isinstance(q, qa.Range) else None)
                return self.text_terms(name, [t for t in vocab if pred(t)])
            return self.keyword_predicate(name, pred, prefix)
        raise BackendError(f"unsupported query node {type(q).__name__}", retryable=False)

    def id_leaf(self, q: qa.Query) -> _Plan:
        """A prefix, wildcard, regexp, fuzzy or range query on ``_id``: over the documents' ids."""
        if isinstance(q, qa.Fuzzy):
            ids = [v for (v,) in self.conn.execute(f"SELECT {_ID_SQL} FROM docs d")]
            keep = set(fuzzy_terms(q, ids))
            pred: Callable[[str], bool] = keep.__contains__
        else:
            pred = leaf_predicate(q)
        key = self.store._register_predicate(pred)
        return _Plan(sql=[(f"er_value_pred({_ID_SQL}, ?)", [key])])

    # -- boolean --------------------------------------------------------
    def compile(self, q: qa.Query) -> _Plan:
        if not isinstance(q, qa.Bool):
            return self.leaf(q)
        if q.must:
            plans = [self.compile(c) for c in q.must]
            if any(p is _NONE or p.sql == [("0", [])] for p in plans):
                return _NONE
            fts_parts = [p.fts for p in plans if p.fts is not None]
            plan = _Plan(
                fts=" AND ".join(f"({f})" for f in fts_parts) if fts_parts else None,
                sql=[s for p in plans for s in p.sql],
            )
        elif q.should:
            plans = [self.compile(c) for c in q.should]
            plans = [p for p in plans if not (p.sql == [("0", [])] and p.fts is None)]
            if not plans:
                return _NONE
            if any(p.fts is None and not p.sql for p in plans):
                plan = _Plan()  # one clause matches everything
            elif all(p.pure_fts for p in plans):
                plan = _Plan(fts=" OR ".join(f"({p.fts})" for p in plans))
            else:
                exprs = [p.as_sql() for p in plans]
                plan = _Plan(sql=[("(" + " OR ".join(e for e, _ in exprs) + ")", [x for _, ps in exprs for x in ps])])
        else:
            return _NONE
        for clause in q.must_not:
            neg = self.compile(clause)
            if neg.sql == [("0", [])] and neg.fts is None:
                continue
            if neg.fts is None and not neg.sql:
                return _NONE
            if plan.fts is not None and neg.pure_fts:
                plan = _Plan(fts=f"({plan.fts}) NOT ({neg.fts})", sql=plan.sql)
            else:
                expr, params = neg.as_sql()
                plan = _Plan(fts=plan.fts, sql=[*plan.sql, (f"NOT {expr}", params)])
        return plan


# ---------------------------------------------------------------------------
# Preparing documents (pure: may run in worker processes)


def fts_text(values: Sequence[str], tokenize: Callable[[str], list[str]]) -> str:
    """The FTS5 column text of one text field: PRESENT, then the values' tokens separated by GAP."""
    parts = [PRESENT]
    for i, value in enumerate(values):
        if i:
            parts.append(GAP)
        parts.extend(tokenize(value))
    return " ".join(parts)


#: One document split and analyzed, ready for :meth:`EmbeddedStore.add_prepared`:
#: ``(doc_id, shape_key, ts, body, fts, kw)`` where ``shape_key`` is the
#: canonical JSON of the shape fields, ``body`` the JSON of the per-line
#: fields, ``fts`` the FTS5 text per text field and ``kw`` the per-line
#: keyword ``(field, value)`` pairs. A plain tuple: it crosses process
#: boundaries cheaply.
PreparedDoc = tuple[str | None, str, int | None, str, tuple[str | None, ...], tuple[tuple[str, str], ...]]


def shape_key(shape: AbcMapping[str, Any]) -> str:
    """The canonical JSON of a document's shape fields (identical shapes, identical keys)."""
    return json.dumps(shape, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _tuple_getter(keys: Sequence[str]) -> Callable[[AbcMapping[str, Any]], tuple[Any, ...]]:
    """``doc -> tuple(doc[k] for k in keys)`` (KeyError when one is missing), in C where possible."""
    if not keys:
        return lambda doc: ()
    if len(keys) == 1:
        only = keys[0]
        return lambda doc: (doc[only],)
    return operator.itemgetter(*keys)


@dataclass(frozen=True, eq=False)
class _KeyPlan:
    """How documents with one set of keys split into body and shape (hashed by identity)."""

    size: int
    body_names: tuple[str, ...]
    body_values: Callable[[AbcMapping[str, Any]], tuple[Any, ...]]
    shape_names: tuple[str, ...]
    shape_values: Callable[[AbcMapping[str, Any]], tuple[Any, ...]]
    #: body fields indexed in ``kw``
    kw_names: tuple[str, ...]


class DocumentPreparer:
    """Splits documents into shape and per-line parts and analyzes their text fields.

    The CPU-heavy half of storing a document, kept free of I/O so that big
    ingests can run it in worker processes (it pickles without its tokenizer).
    """

    def __init__(self, text_fields: Sequence[str], tokenize: Callable[[str], list[str]] | None) -> None:
        self.text_fields = tuple(text_fields)
        self._tokenize = tokenize
        self._body_keys = PER_LINE_FIELDS | frozenset(self.text_fields)
        self._text_set = frozenset(self.text_fields)
        self._skip_kw = UNINDEXED_PER_LINE | frozenset(self.text_fields)
        self._list_cache: dict[tuple[Any, ...], str] = {}
        self._shape_keys: dict[tuple[Any, ...], str] = {}
        self._plans: dict[tuple[str, ...], _KeyPlan] = {}
        self._last_plan: _KeyPlan | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"text_fields": self.text_fields}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["text_fields"], None)  # type: ignore[misc]

    @property
    def tokenize(self) -> Callable[[str], list[str]]:
        if self._tokenize is None:
            from elastic_recheck.core.lucene.analysis import tokenize

            self._tokenize = tokenize
        return self._tokenize

    def _plan(self, doc: AbcMapping[str, Any]) -> _KeyPlan:
        """How to split documents with the keys of ``doc``."""
        names = tuple(doc)
        plan = self._plans.get(names)
        if plan is None:
            body_keys = self._body_keys
            # ``message.a`` (written dotted or nested) is stored with the line, like ``message``
            body = tuple(k for k in names if k in body_keys or k.split(".", 1)[0] in self._text_set)
            shape = tuple(k for k in names if k not in body)
            plan = _KeyPlan(
                size=len(names),
                body_names=body,
                body_values=_tuple_getter(body),
                shape_names=shape,
                shape_values=_tuple_getter(shape),
                kw_names=tuple(k for k in body if k not in self._skip_kw),
            )
            if len(self._plans) > 1000:
                self._plans.clear()
            self._plans[names] = plan
        self._last_plan = plan
        return plan

    def prepare(self, doc: AbcMapping[str, Any]) -> PreparedDoc:
        # Documents of a file share their keys: the last plan usually fits (same
        # number of keys, all found: the same set of keys).
        plan = self._last_plan
        if plan is None or len(doc) != plan.size:
            plan = self._plan(doc)
        try:
            body_values = plan.body_values(doc)
            shape_values = plan.shape_values(doc)
        except KeyError:
            plan = self._plan(doc)
            body_values = plan.body_values(doc)
            shape_values = plan.shape_values(doc)
        body = dict(zip(plan.body_names, body_values, strict=True))
        doc_id = document_id(body.get("id"))
        ts = timestamp_ms(body.get("@timestamp"))
        fts: list[str | None] = []
        tokenize = self.tokenize
        for name in self.text_fields:
            value = body.get(name)
            if isinstance(value, str):
                fts.append(PRESENT + " " + " ".join(tokenize(value)))
            elif isinstance(value, list) and len(value) <= 8:
                # Lists (tags) repeat from line to line: analyze each distinct one once.
                try:
                    key: tuple[Any, ...] | None = (name, *value)
                    cached = self._list_cache.get(key)  # type: ignore[arg-type]
                except TypeError:
                    key, cached = None, None
                if cached is None:
                    values_ = text_values(value)
                    cached = fts_text(values_, tokenize) if values_ is not None else ""
                    if key is not None:
                        if len(self._list_cache) > SHAPE_CACHE:
                            self._list_cache.clear()
                        self._list_cache[key] = cached
                fts.append(cached or None)
            else:
                values_ = text_values(value)
                fts.append(fts_text(values_, tokenize) if values_ is not None else None)
        kw: list[tuple[str, str]] = []
        for name in self.text_fields:
            value = body.get(name)
            if isinstance(value, (dict, list)):
                kw.extend(nested_keywords(name, value))
        for key_name in plan.kw_names:
            value = body[key_name]
            if isinstance(value, str):
                if len(value) < 10_000 or _indexable(value):
                    kw.append((key_name, value))
                continue
            for name, raw in flatten_fields({key_name: value}):
                kw.extend((name, v) for v in keyword_values(raw) if _indexable(v))
        try:
            # Types too: True == 1 == 1.0, but they are different JSON.
            cache_key: tuple[Any, ...] | None = (plan, shape_values, tuple(map(type, shape_values)))
            skey = self._shape_keys.get(cache_key)  # type: ignore[arg-type]
        except TypeError:  # list or object values: not hashable
            cache_key, skey = None, None
        if skey is None:
            skey = shape_key(dict(zip(plan.shape_names, shape_values, strict=True)))
            if cache_key is not None:
                if len(self._shape_keys) > SHAPE_CACHE:
                    self._shape_keys.clear()
                self._shape_keys[cache_key] = skey
        # Tuples of strings only: the garbage collector stops tracking them (a
        # batch of prepared documents does not make its full collections slow).
        return (doc_id, skey, ts, _dumps_body(body), tuple(fts), tuple(kw))


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
    #: ``(field, value)`` of the builds the batch touches (their cached indexes become stale)
    touched: set[tuple[str, str]]
    #: the batch's distinct shapes (canonical JSON), in order of first use
    shape_keys: list[str]
    #: ``[[shape json, build_uuid, build_status], ...]`` for each of them
    shapes_json: str
    #: ``[[shape position, field, value], ...]``: their keyword values
    shape_kw_json: str
    #: ``[[doc_id, ts, shape position, body, tokens], ...]`` (``tokens``: an array, see :func:`_migration_2`)
    docs_json: str
    #: ``[[text of field 1, text of field 2...], ...]``
    fts_json: str
    #: ``[[document position, field, value], ...]`` (None: no per-line keyword)
    kw_json: str | None
    max_ts: int | None
    #: SQLite's JSON functions (3.40) cut a string at an escaped NUL: such a batch is written row by row
    row_by_row: bool = False


#: A NUL character as JSON escapes it.
_JSON_NUL = "\\u0000"

_GAP_MARK = " " + GAP
_PRESENT_SP = PRESENT + " "


def _stored_tokens(fts: Sequence[str | None]) -> str | None:
    """``docs.tokens`` of a document (see :func:`_migration_2`) from its FTS5 texts.

    Only single-valued fields (no GAP) are kept: lists repeat from line to
    line (``tags``) and are analyzed once per build anyway.
    """
    kept = [t if t is not None and _GAP_MARK not in t else None for t in fts]
    return _dumps_payload(kept) if any(kept) else None


def _dumps_payload(obj: Any) -> str:
    if _orjson is not None:
        try:
            return str(_orjson.dumps(obj).decode("utf-8"))
        except TypeError:  # e.g. integers beyond 64 bits
            pass
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@dataclass
class _ShapeInfo:
    uuid: str | None
    status: str | None
    keywords: list[tuple[str, str]]
    builds: list[tuple[str, str]]


class BatchEncoder:
    """Turns batches of :data:`PreparedDoc` into :class:`EncodedBatch` (pure; remembers shapes it has seen)."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self._shapes: dict[str, _ShapeInfo] = {}

    def shape(self, key: str) -> _ShapeInfo:
        info = self._shapes.get(key)
        if info is None:
            shape = json.loads(key)
            uuid = shape.get("build_uuid")
            status = shape.get("build_status")
            info = _ShapeInfo(
                uuid=uuid if isinstance(uuid, str) else None,
                status=status if isinstance(status, str) else None,
                keywords=[
                    (name, value)
                    for name, raw in flatten_fields(shape)
                    if not self.mapping.is_text(name)
                    for value in keyword_values(raw)
                    if _indexable(value)
                ],
                builds=[(name, v) for name in ("build_uuid", "build_short_uuid") for v in keyword_values(shape.get(name))],
            )
            if len(self._shapes) > SHAPE_CACHE:
                self._shapes.clear()
            self._shapes[key] = info
        return info

    def encode(self, batch: Sequence[PreparedDoc]) -> EncodedBatch:
        last: dict[str, int] = {}
        with_id = 0
        for i, prep in enumerate(batch):
            if prep[0] is not None:
                last[prep[0]] = i
                with_id += 1
        kept = list(batch) if len(last) == with_id else [p for i, p in enumerate(batch) if p[0] is None or last[p[0]] == i]
        slots: dict[str, int] = {}
        doc_rows: list[tuple[str | None, int | None, int, str, tuple[str | None, ...] | None]] = []
        kw_rows: list[tuple[int, str, str]] = []
        max_ts: int | None = None
        gap = _GAP_MARK
        for j, (doc_id, skey, ts, body, fts, kw) in enumerate(kept):
            slot = slots.get(skey)
            if slot is None:
                slot = slots[skey] = len(slots)
            # docs.tokens (see _migration_2): the single-valued fields' FTS texts, stored as a JSON array
            tokens = tuple([t if t is not None and gap not in t else None for t in fts])
            doc_rows.append((doc_id, ts, slot, body, tokens if any(tokens) else None))
            if kw:
                kw_rows.extend([(j, name, value) for name, value in kw])
            if ts is not None and (max_ts is None or ts > max_ts):
                max_ts = ts
        shape_rows = []
        shape_kw: list[tuple[int, str, str]] = []
        touched: set[tuple[str, str]] = set()
        for key, slot in slots.items():
            info = self.shape(key)
            shape_rows.append((key, info.uuid, info.status))
            shape_kw.extend([(slot, name, value) for name, value in info.keywords])
            touched.update(info.builds)
        enc = EncodedBatch(
            size=len(batch),
            kept=kept,
            doc_ids=list(last),
            touched=touched,
            shape_keys=list(slots),
            shapes_json=_dumps_payload(shape_rows),
            shape_kw_json=_dumps_payload(shape_kw),
            docs_json=_dumps_payload(doc_rows),
            fts_json=_dumps_payload([p[4] for p in kept]),
            kw_json=_dumps_payload(kw_rows) if kw_rows else None,
            max_ts=max_ts,
        )
        # (a body's own escaped NUL also shows here: a rare false alarm, written row by row too)
        texts = (enc.shapes_json, enc.shape_kw_json, enc.docs_json, enc.fts_json, enc.kw_json or "")
        enc.row_by_row = any(_JSON_NUL in text for text in texts)
        if not enc.row_by_row:
            enc.kept = []  # the payloads hold everything: free the prepared tuples early
        return enc


def _batch_sql(fts_columns: Sequence[str]) -> list[str]:
    """Per-connection TEMP objects: inserting one ``er_batch`` row stores a whole :class:`EncodedBatch`.

    A TEMP trigger may write the store's tables; the batch row itself is
    deleted at the end, so ``er_batch`` stays empty. A new shape gets an id
    above every stored one (``prune`` deletes a shape with its keyword rows),
    so those inserted by this batch are the ones with ids from
    ``first_shape`` on: only they get keyword rows.
    """
    first = "(SELECT first_id FROM er_batch WHERE id = NEW.id)"
    texts = ", ".join(f"value ->> {i}" for i in range(len(fts_columns)))
    return [
        "CREATE TEMP TABLE IF NOT EXISTS er_batch (id INTEGER PRIMARY KEY, first_id INTEGER, first_shape INTEGER, "
        "shapes TEXT, shape_kw TEXT, docs TEXT, fts TEXT, kw TEXT, max_ts INTEGER)",
        "CREATE TEMP TABLE IF NOT EXISTS er_slots (slot INTEGER PRIMARY KEY, shape INTEGER NOT NULL)",
        f"""CREATE TEMP TRIGGER IF NOT EXISTS er_batch_insert AFTER INSERT ON er_batch BEGIN
            UPDATE er_batch SET first_id = (SELECT IFNULL(MAX(id), 0) + 1 FROM docs),
                first_shape = (SELECT IFNULL(MAX(id), 0) + 1 FROM shapes) WHERE id = NEW.id;
            INSERT OR IGNORE INTO shapes (json, build_uuid, build_status)
                SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(NEW.shapes);
            DELETE FROM er_slots;
            INSERT INTO er_slots (slot, shape)
                SELECT key, (SELECT id FROM shapes WHERE json = value ->> 0) FROM json_each(NEW.shapes);
            INSERT OR IGNORE INTO kw_shape (field, value, shape)
                SELECT k.value ->> 1, k.value ->> 2, s.shape FROM json_each(NEW.shape_kw) k
                CROSS JOIN er_slots s ON s.slot = k.value ->> 0
                WHERE s.shape >= (SELECT first_shape FROM er_batch WHERE id = NEW.id);
            INSERT INTO docs (id, doc_id, ts, shape, body, tokens)
                SELECT {first} + key, value ->> 0, value ->> 1, (SELECT shape FROM er_slots WHERE slot = value ->> 2),
                value ->> 3, value ->> 4 FROM json_each(NEW.docs);
            INSERT INTO fts (rowid, {", ".join(fts_columns)}) SELECT {first} + key, {texts} FROM json_each(NEW.fts);
            INSERT OR IGNORE INTO kw (field, value, doc)
                SELECT value ->> 1, value ->> 2, {first} + (value ->> 0) FROM json_each(NEW.kw);
            INSERT INTO meta (key, value) SELECT 'max_ts', NEW.max_ts WHERE NEW.max_ts IS NOT NULL
                ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER));
            DELETE FROM er_batch WHERE id = NEW.id;
        END""",
    ]


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
    conn.execute(f"CREATE VIRTUAL TABLE fts USING fts5({columns}, content='', tokenize={_fts_tokenize_option()}, detail=full)")
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
MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Sequence[str]], None]] = {1: _migration_1, 2: _migration_2}


def _with_text_fields(step: Callable[[sqlite3.Connection, Sequence[str]], None], text_fields: Sequence[str]) -> Migration:
    return lambda conn: step(conn, text_fields)


# ---------------------------------------------------------------------------
# The store


def index_build(
    shapes: AbcMapping[int, AbcMapping[str, Any]],
    rows: Sequence[tuple[int, AbcMapping[str, Any]]],
    mapping: Mapping,
    tokenize: Callable[[str], list[str]],
    wanted: AbcMapping[str, frozenset[str] | None] | None = None,
    keyword_fields: AbstractSet[str] | None = None,
    *,
    stored: Sequence[str | None] | None = None,
    text_fields: Sequence[str] = (),
    present_fields: AbstractSet[str] | None = None,
    doc_ids: Sequence[str | None] | None = None,
) -> Any:
    """A :class:`~elastic_recheck.core.lucene.matcher.MemoryIndex` of stored documents, built from their parts.

    ``rows`` holds one ``(shape id, body)`` per document, in index order;
    document ``d`` is ``{**shapes[shape], **body}``. The result equals
    ``MemoryIndex([...those documents...], mapping)`` (same postings, values
    and field presence), but each shape's fields (the build's metadata, the
    file's name, URL...: most of a document) are indexed once for all its
    lines instead of once per line, and repeated lists (``tags``) are
    analyzed once. Returns None when a field name comes from both a shape
    and a body (nested objects flattened to the same dotted name): the
    caller then indexes the assembled documents.

    ``wanted`` (text field -> tokens, None for all) restricts the postings
    of text fields to the tokens some query will look up: the index then
    answers exactly like the full one for queries whose text terms and
    phrases use only those tokens (multi-term queries on a text field
    need all of its tokens; field presence is always complete). A text
    field missing from ``wanted`` gets no postings. Most of a build's
    tokens (ids, numbers, timestamps) are in no fingerprint. Likewise
    ``keyword_fields`` (None: all) names the keyword fields whose values are
    indexed (``@timestamp``, ``log_url``... are in no fingerprint), and
    ``present_fields`` (None: all) those whose presence (``_exists_``) is
    recorded. Sets of all of a build's lines, one per field, are what a
    full index holds most of: leaving them out also spares the garbage
    collector walking through them while the index is cached.

    ``stored`` holds each document's stored tokens (see :func:`_migration_2`,
    columns in the order of ``text_fields``): a string field's tokens are
    read from there instead of analyzing its text again. ``doc_ids`` are the
    documents' ids (``_id``; default: their ``id`` values).
    """
    from elastic_recheck.core.lucene.matcher import MemoryIndex, flatten_document, value_text

    index = MemoryIndex((), mapping=mapping)
    index.ids = list(doc_ids) if doc_ids is not None else [document_id(body.get("id")) for _, body in rows]
    postings: dict[str, dict[str, set[int]]] = index.postings
    values: dict[str, dict[str, set[int]]] = index.values
    present: dict[str, set[int]] = index.present
    gap = mapping.position_increment_gap
    is_text = mapping.is_text
    analyzed: dict[tuple[str, ...], list[tuple[str, int]]] = {}

    def analyze(vals: Sequence[str]) -> list[tuple[str, int]]:
        """Lucene positions of a multi-valued text field (``analysis.analyze_values``)."""
        key = tuple(vals)
        got = analyzed.get(key)
        if got is None:
            got = []
            position = -1
            for i, value in enumerate(vals):
                if i:
                    position += gap
                for tok in tokenize(value):
                    position += 1
                    got.append((tok, position))
            if len(analyzed) < 10_000:
                analyzed[key] = got
        return got

    def want(name: str) -> frozenset[str] | None:
        return None if wanted is None else wanted.get(name, frozenset())

    def add_text(name: str, pairs: Sequence[tuple[str, int]], docs: Sequence[int]) -> None:
        field_post = postings.setdefault(name, {})
        keep = want(name)
        for tok, pos in pairs:
            if keep is not None and tok not in keep:
                continue
            new = [(d << 32) | pos for d in docs]
            keys = field_post.get(tok)
            if keys is None:
                field_post[tok] = set(new)
            else:
                keys.update(new)

    def presence(name: str) -> bool:
        return present_fields is None or name in present_fields

    def add_keywords(name: str, vals: Sequence[str], docs: Sequence[int]) -> None:
        field_vals = values.setdefault(name, {})
        indexed = keyword_fields is None or name in keyword_fields
        kept = False
        for v in vals:
            if not _indexable(v):
                LOG.warning("keyword value too long for Lucene, not indexed: field %s", name)
                continue
            kept = True
            if indexed:
                got = field_vals.get(v)
                if got is None:
                    field_vals[v] = set(docs)
                else:
                    got.update(docs)
        if kept and presence(name):
            present.setdefault(name, set()).update(docs)

    def add_field(name: str, vals: list[str], docs: Sequence[int]) -> None:
        if is_text(name):
            if want(name) != frozenset():
                add_text(name, analyze(vals), docs)
            else:
                postings.setdefault(name, {})
            if presence(name):
                present.setdefault(name, set()).update(docs)
        else:
            add_keywords(name, vals, docs)

    by_shape: dict[int, list[int]] = {}
    for d, (sid, _) in enumerate(rows):
        docs_of = by_shape.get(sid)
        if docs_of is None:
            by_shape[sid] = [d]
        else:
            docs_of.append(d)
    shape_names: dict[int, frozenset[str]] = {}
    for sid, docs_of in by_shape.items():
        flat = flatten_document(shapes[sid])
        shape_names[sid] = frozenset(flat)
        for name, vals in flat.items():
            add_field(name, vals, docs_of)

    # Per-line fields. Strings take the fast path (a message is tokenized, a
    # keyword value added); lists of strings (tags) repeat from line to line,
    # so their documents are grouped and each distinct list indexed once.
    # A body field can only be named like a shape field when the shape's name
    # comes from flattening an object, i.e. holds a dot.
    text_slots: dict[str, tuple[dict[str, set[int]], set[int] | None, frozenset[str] | None, int]] = {}
    # keyword field -> its values' documents (indexed), the lines that have one (presence
    # only), or an empty tuple (neither is wanted)
    kw_slots: dict[str, dict[str, set[int]] | list[int] | tuple[()]] = {}
    kw_present: set[str] = set()
    groups: dict[tuple[str, ...], list[int]] = {}
    column = {name: i for i, name in enumerate(text_fields)}
    for d, (sid, body) in enumerate(rows):
        names = shape_names[sid]
        analyzed_line: list[str | None] | None = None
        for name, value in body.items():
            if name == ID_FIELD:
                continue  # a metadata field: the document's own id answers it
            if type(value) is str:
                if "." in name and name in names:
                    return None
                slot = text_slots.get(name)
                kw = kw_slots.get(name) if slot is None else None
                if slot is None and kw is None:  # the first line with this field
                    if is_text(name):
                        slot = text_slots[name] = (
                            postings.setdefault(name, {}),
                            present.setdefault(name, set()) if presence(name) else None,
                            want(name),
                            column.get(name, -1) if stored is not None else -1,
                        )
                    else:
                        indexed = values.setdefault(name, {})
                        if presence(name):
                            kw_present.add(name)
                        if keyword_fields is None or name in keyword_fields:
                            kw = kw_slots[name] = indexed
                        else:  # no query looks its values up: at most whether lines have one
                            kw = kw_slots[name] = [] if name in kw_present else ()
                if slot is not None:
                    field_post, docs_with, keep, col = slot
                    if docs_with is not None:
                        docs_with.add(d)
                    if keep is not None and not keep:
                        continue
                    toks: list[str] | None = None
                    if col >= 0 and stored is not None:  # the tokens stored with the line: no analysis
                        if analyzed_line is None:
                            line_tokens = stored[d]
                            analyzed_line = _loads(line_tokens) if line_tokens is not None else []
                        text = analyzed_line[col] if col < len(analyzed_line) else None
                        if isinstance(text, str) and text.startswith(_PRESENT_SP):
                            toks = text[len(_PRESENT_SP) :].split(" ") if len(text) > len(_PRESENT_SP) else []
                    if toks is None:
                        toks = tokenize(value)
                    if keep is None:
                        for tok, key in zip(toks, itertools.count(d << 32)):
                            keys = field_post.get(tok)
                            if keys is None:
                                field_post[tok] = {key}
                            else:
                                keys.add(key)
                    else:
                        hits = keep.intersection(toks)
                        if hits:
                            base = d << 32
                            for pos, tok in enumerate(toks):
                                if tok in hits:
                                    keys = field_post.get(tok)
                                    if keys is None:
                                        field_post[tok] = {base | pos}
                                    else:
                                        keys.add(base | pos)
                    continue
                if len(value) * 3 > MAX_KEYWORD_BYTES and not _indexable(value):
                    LOG.warning("keyword value too long for Lucene, not indexed: field %s", name)
                elif isinstance(kw, list):
                    kw.append(d)
                elif isinstance(kw, dict):
                    got = kw.get(value)
                    if got is None:
                        kw[value] = {d}
                    else:
                        got.add(d)
            elif value is None:
                continue
            elif type(value) is list:
                if not value:
                    continue
                try:
                    key_: tuple[str, ...] | None = (name, *value)
                    docs_of = groups.get(key_)  # type: ignore[arg-type]
                except TypeError:  # unhashable items: not strings
                    key_, docs_of = None, None
                # (a list equal to one already grouped holds strings only)
                if docs_of is not None or (key_ is not None and all(type(v) is str for v in value)):
                    if "." in name and name in names:
                        return None
                    if docs_of is None:
                        groups[key_] = [d]  # type: ignore[index]
                    else:
                        docs_of.append(d)
                    continue
                if _flat_names_collide(body, names):
                    return None
                for fname, vals in flatten_document({name: value}).items():
                    add_field(fname, vals, (d,))
            elif isinstance(value, dict):  # nested: flatten as MemoryIndex does
                if _flat_names_collide(body, names):
                    return None
                for fname, vals in flatten_document({name: value}).items():
                    add_field(fname, vals, (d,))
            else:
                if name in names:
                    return None
                add_field(name, [value_text(value)], (d,))
    for (name, *vals_), docs_of in groups.items():
        add_field(name, vals_, docs_of)
    for name, kw in kw_slots.items():  # documents with a value (the fast path kept them all)
        if kw and name in kw_present:
            present.setdefault(name, set()).update(*kw.values() if isinstance(kw, dict) else (kw,))
    index.size = len(rows)
    index.all_docs = frozenset(range(len(rows)))
    return index


def _flat_names_collide(body: AbcMapping[str, Any], names: frozenset[str]) -> bool:
    """Whether two of a body's fields, or a body field and a shape field, flatten to the same name."""
    from elastic_recheck.core.lucene.matcher import flatten_document

    seen = set(names)
    for key, value in body.items():
        flat = flatten_document({key: value})
        if not seen.isdisjoint(flat):
            return True
        seen.update(flat)
    return False


@dataclass
class _BuildCache:
    """One build's documents, indexed in memory for percolation."""

    # (tuples of numbers and strings: the garbage collector stops walking through them)
    ids: Sequence[int]
    ts: Sequence[int | None]
    #: per document: ``(shape id, per-line fields as JSON)`` (kept as text: a few thousand
    #: dicts would be more for the garbage collector to walk through, and most are never returned)
    rows: Sequence[tuple[int, str]]
    shapes: dict[int, dict[str, Any]]
    index: Any
    #: text field -> the tokens the index holds postings for (None: all; see :func:`index_build`)
    wanted: dict[str, frozenset[str] | None] | None
    #: keyword fields whose values are indexed (None: all)
    keyword_fields: frozenset[str] | None = None
    #: fields whose presence is recorded (None: all)
    present_fields: frozenset[str] | None = None
    #: per document: its stored tokens (see :func:`_migration_2`)
    stored: Sequence[str | None] = ()
    #: leaf query -> matching doc indexes (fingerprints share clauses: tags, filters)
    memo: dict[qa.Query, frozenset[int]] = field(default_factory=dict)
    _docs: dict[int, dict[str, Any]] = field(default_factory=dict)
    _terms: dict[str, AbcMapping[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def doc(self, i: int) -> dict[str, Any]:
        """Document ``i`` as stored (assembled on first use: most are never returned)."""
        got = self._docs.get(i)
        if got is None:
            sid, body = self.rows[i]
            got = dict(self.shapes[sid])
            got.update(_loads(body))
            self._docs[i] = got
        return got

    def terms(self, name: str) -> AbcMapping[str, Any]:
        """A field's indexed terms -> their postings (text) or documents (keyword); never empty sets.

        Looking a term up here is cheaper than ``MemoryIndex.docs_with`` (no
        set of documents is made): enough to rule a fingerprint out, or to
        rank clauses (occurrences of a term instead of its documents).
        """
        got = self._terms.get(name)
        if got is None:
            index = self.index
            got = index.postings.get(name, {}) if index.mapping.is_text(name) else index.keyword_terms(name)
            self._terms[name] = got
        return got

    def covers(self, needs: _Needs) -> bool:
        """Whether the index answers every query with these needs exactly."""
        if self.keyword_fields is not None and not needs.keywords <= self.keyword_fields:
            return False
        if self.present_fields is not None and (needs.exists is None or not needs.exists <= self.present_fields):
            return False
        if self.wanted is None:
            return True
        for name in needs.full:
            if self.wanted.get(name, frozenset()) is not None:
                return False
        for name, tokens in needs.tokens.items():
            have = self.wanted.get(name, frozenset())
            if have is not None and not tokens <= have:
                return False
        return True


@dataclass
class _Needs:
    """What queries look up in a build's text postings: tokens per field, and fields scanned whole."""

    tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    full: frozenset[str] = frozenset()
    #: keyword fields whose values are looked up
    keywords: frozenset[str] = frozenset()
    #: fields whose presence is looked up (``_exists_``); None: every field's (a pattern like ``build_*``)
    exists: frozenset[str] | None = frozenset()


def query_needs(q: qa.Query, mapping: Mapping) -> _Needs:
    """The text tokens (per field) a query's evaluation looks up, and the text fields it scans whole.

    Terms and phrases look up their tokens; prefix, wildcard, regexp, fuzzy
    and range queries (and any other node on a text field) scan the field's
    whole vocabulary; ``_exists_`` needs the field's presence (every field's
    for a pattern); any query on a keyword field looks its values up.
    """
    tokens: dict[str, set[str]] = {}
    full: set[str] = set()
    keywords: set[str] = set()
    exists: set[str] | None = set()
    stack = [q]
    while stack:
        node = stack.pop()
        if isinstance(node, qa.Bool):
            stack.extend(node.must)
            stack.extend(node.should)
            stack.extend(node.must_not)
        elif isinstance(node, (qa.MatchAll, qa.MatchNone)):
            continue
        elif isinstance(node, qa.Exists):
            if exists is not None:
                if "*" in node.field or "?" in node.field:
                    exists = None
                else:
                    exists.add(node.field)
        elif isinstance(node, qa.Term) and mapping.is_text(node.field):
            tokens.setdefault(node.field, set()).add(node.value)
        elif isinstance(node, qa.Phrase) and mapping.is_text(node.field):
            tokens.setdefault(node.field, set()).update(node.terms)
        else:
            name = getattr(node, "field", None)
            if isinstance(name, str):
                (full if mapping.is_text(name) else keywords).add(name)
    return _Needs(
        tokens={k: frozenset(v) for k, v in tokens.items()},
        full=frozenset(full),
        keywords=frozenset(keywords),
        exists=None if exists is None else frozenset(exists),
    )


def _widen(wanted: AbcMapping[str, frozenset[str] | None], needs: _Needs) -> dict[str, frozenset[str] | None]:
    """``wanted`` (see :func:`index_build`) grown to cover ``needs`` too."""
    out = dict(wanted)
    for name, tokens in needs.tokens.items():
        have = out.get(name, frozenset())
        if have is not None:
            out[name] = have | tokens
    for name in needs.full:
        out[name] = None
    return out


class _BatchWriter:
    """Writes encoded batches in a background thread, in order, one transaction each.

    It borrows the calling thread's connection (which that thread leaves alone
    until :meth:`finish` or :meth:`abort` returns). At most one batch waits
    while another is written, so memory stays bounded; a write error is raised
    in the calling thread at its next :meth:`put` or at :meth:`finish`.
    """

    #: Pages the WAL may grow to before a checkpoint copies it into the
    #: database (SQLite's default is 1,000): bulk loads rewrite the same index
    #: pages less often (a million lines: 2.4 GB written instead of 3.1).
    WAL_AUTOCHECKPOINT = 16384
    #: Page cache of the writing connection during a bulk load (64 MiB; other
    #: connections keep the store's small default).
    BULK_CACHE_SIZE = -65536

    def __init__(self, store: EmbeddedStore, conn: sqlite3.Connection, stats: IngestStats) -> None:
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


#: How documents spell a voting flag: OpenDev's indexer writes ``1``/``0``,
#: Zuul's API and other pipelines ``true``/``false``. The embedded store keeps
#: each document as given, so its voting filter accepts every spelling.
_VOTING_SPELLINGS = {"1": ("1", "true", "True", "TRUE"), "0": ("0", "false", "False", "FALSE")}


def _store_terms(filters: Filters) -> dict[str, tuple[str, ...]]:
    """``filters.as_terms()`` with the voting flag in every spelling the store may hold."""
    terms = filters.as_terms()
    if filters.voting is not None and "voting" in terms:
        terms["voting"] = tuple(v for t in terms["voting"] for v in _VOTING_SPELLINGS.get(t, (t,)))
    return terms


#: Bytes of the store file each connection memory-maps (SQLite ``mmap_size``).
#: Mapped reads make a cold classification ~20 % faster (45 vs 58 ms on the
#: 1M-line benchmark), but every mapped page touched counts in the process's
#: RSS, once per connection; the long-running bot opens the store with 0
#: (docs/performance.md, docs/reliability.md).
DEFAULT_MMAP_SIZE = 256 * 1024 * 1024


class EmbeddedStore:
    """CI log documents in one SQLite file; implements :class:`SearchBackend`.

    Safe to share between threads: each thread gets its own connection, and
    writes are serialized by a lock (SQLite's WAL mode lets readers proceed
    while one writer commits).

    :param path: the database file (created with its directory when missing).
    :param mapping: which fields are analyzed text (fixed when the store is created).
    :param es_mode: parse queries like Elasticsearch's ``query_string`` (else plain Lucene).
    :param mmap_size: bytes of the file each connection memory-maps (0: none).
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
        mmap_size: int = DEFAULT_MMAP_SIZE,
    ) -> None:
        self.path = Path(path)
        self.mmap_size = max(0, int(mmap_size))
        self.mapping = mapping
        self.es_mode = es_mode
        self.timeout = timeout
        self._tokenize_fn = tokenize
        self._db = Database(self.path, timeout=timeout, mmap_size=self.mmap_size, on_connect=self._register_functions)
        self._write_lock = self._db.write_lock
        self._build_cache: OrderedDict[tuple[str, str], _BuildCache] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_generation = 0  # bumped by every write that touches a build
        self._parse_cache: dict[str, qa.Query | QuerySyntaxError] = {}
        self._required: dict[int, tuple[qa.Query, frozenset[tuple[str, str]]]] = {}
        self._needs: dict[int, tuple[qa.Query, _Needs]] = {}
        self._predicates: dict[int, Callable[[str], bool]] = {}
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the store's directory: {exc}") from None
        try:
            self._migrate()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None
        self._fts_columns = {name: f"c{i}" for i, name in enumerate(self._text_fields)}
        self._text_field_set = frozenset(self._text_fields)
        self._encoder = BatchEncoder(self.mapping)

    # -- connections ------------------------------------------------------
    def _register_functions(self, conn: sqlite3.Connection) -> None:
        conn.create_function("er_body_kw", 4, self._sql_body_kw, deterministic=True)
        conn.create_function("er_body_has", 2, self._sql_body_has, deterministic=True)
        conn.create_function("er_body_pred", 3, self._sql_body_pred, deterministic=True)
        conn.create_function("er_value_pred", 2, self._sql_value_pred, deterministic=True)

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
        self._db.migrate({version: _with_text_fields(step, wanted) for version, step in MIGRATIONS.items()})
        conn = self._conn
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

    # -- SQL functions over body -------------------------------------------
    @staticmethod
    def _sql_body_kw(body: str, name: str, op: str, params_json: str) -> int:
        try:
            values = keyword_values(json.loads(body).get(name))
        except (ValueError, AttributeError):
            return 0
        params = json.loads(params_json)
        for v in values:
            if op == "= ?" and v == params[0]:
                return 1
            if op != "= ?" and _compare_op(op, v, params):
                return 1
        return 0

    @staticmethod
    def _sql_body_has(body: str, name: str) -> int:
        try:
            return 1 if keyword_values(json.loads(body).get(name)) else 0
        except (ValueError, AttributeError):
            return 0

    def _sql_body_pred(self, body: str, name: str, key: int) -> int:
        pred = self._predicates.get(key)
        if pred is None:
            return 0
        try:
            return 1 if any(pred(v) for v in keyword_values(json.loads(body).get(name))) else 0
        except (ValueError, AttributeError):
            return 0

    def _sql_value_pred(self, value: str | None, key: int) -> int:
        pred = self._predicates.get(key)
        return 1 if pred is not None and value is not None and pred(value) else 0

    def _per_line(self, name: str) -> bool:
        """Whether field ``name`` is stored with each line (``kw``), not in the shape (``kw_shape``)."""
        return _per_line(name, self._text_field_set)

    def _register_predicate(self, pred: Callable[[str], bool]) -> int:
        key = id(pred)
        self._predicates[key] = pred
        return key

    # -- writing -----------------------------------------------------------
    def _tokenize(self) -> Callable[[str], list[str]]:
        if self._tokenize_fn is None:
            from elastic_recheck.core.lucene.analysis import tokenize

            self._tokenize_fn = tokenize
        return self._tokenize_fn

    def _shape_id(self, conn: sqlite3.Connection, key: str) -> int:
        """The id of a shape given its canonical JSON (inserted, with its keyword index, when new).

        Looked up every time (no id cache): ``prune`` in another process may
        have deleted a shape this one saw.
        """
        shape = json.loads(key)
        row = conn.execute("SELECT id FROM shapes WHERE json = ?", (key,)).fetchone()
        if row is not None:
            sid = int(row[0])
        else:
            uuid = shape.get("build_uuid")
            status = shape.get("build_status")
            cur = conn.execute(
                "INSERT INTO shapes (json, build_uuid, build_status) VALUES (?, ?, ?)",
                (
                    key,
                    uuid if isinstance(uuid, str) else None,
                    status if isinstance(status, str) else None,
                ),
            )
            sid = int(cur.lastrowid or 0)
            rows = [
                (name, value, sid)
                for name, raw in flatten_fields(shape)
                if not self.mapping.is_text(name)
                for value in keyword_values(raw)
                if _indexable(value)
            ]
            conn.executemany("INSERT OR IGNORE INTO kw_shape (field, value, shape) VALUES (?, ?, ?)", rows)
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
                        writer = _BatchWriter(self, self._conn, stats)
                    writer.put(self._encoder.encode(batch))
                    batch = []
            if writer is not None:
                if batch:
                    writer.put(self._encoder.encode(batch))
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
        return self._add_prepared(self._conn, batch, stats)

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
        enc = batch if isinstance(batch, EncodedBatch) else self._encoder.encode(batch)
        # Replacements: documents whose id is already stored.
        if enc.doc_ids:
            if enc.row_by_row:
                existing = []
                keys = enc.doc_ids
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    existing.extend(
                        conn.execute(f"SELECT id FROM docs WHERE doc_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                    )
            else:
                existing = conn.execute(
                    "SELECT d.id FROM json_each(?) j CROSS JOIN docs d ON d.doc_id = j.value", (_dumps_payload(enc.doc_ids),)
                ).fetchall()
            if existing:
                self._delete_rows(conn, [r[0] for r in existing])
        if not enc.row_by_row:
            params = (enc.shapes_json, enc.shape_kw_json, enc.docs_json, enc.fts_json, enc.kw_json, enc.max_ts)
            sql = "INSERT INTO er_batch (shapes, shape_kw, docs, fts, kw, max_ts) VALUES (?, ?, ?, ?, ?, ?)"
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
        doc_rows: list[tuple[int, str | None, int | None, int, str, str | None]] = []
        fts_rows: list[tuple[Any, ...]] = []
        kw_rows: list[tuple[str, str, int]] = []
        for rid, (doc_id, skey, ts, body, fts, kw) in enumerate(enc.kept, first_id):
            doc_rows.append((rid, doc_id, ts, sid_of[skey], body, _stored_tokens(fts)))
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
            rows = conn.execute(f"SELECT id, body FROM docs WHERE id IN ({marks})", chunk).fetchall()
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
            sql = "SELECT shape FROM kw_shape WHERE field = 'build_uuid' AND value = ?"
            params: list[Any] = [build_uuid]
            if filenames is not None:
                names = sorted(set(filenames))
                sql += (
                    " AND shape IN (SELECT shape FROM kw_shape WHERE field = 'filename' "
                    "AND value IN (SELECT value FROM json_each(?)))"
                )
                params.append(json.dumps(names))
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

    # -- retention (elastic_recheck.adapters.sqlite.retention drives these) -------------------
    def builds_older_than(self, cutoff: datetime) -> list[tuple[str, int, datetime]]:
        """``(build_uuid, lines, newest line's time)`` of the builds whose newest line is before ``cutoff``, oldest first."""

        def run(conn: sqlite3.Connection) -> list[tuple[str, int, datetime]]:
            rows = conn.execute(
                "SELECT s.build_uuid, COUNT(*), MAX(d.ts) FROM shapes s JOIN docs d ON d.shape = s.id "
                "WHERE s.build_uuid IS NOT NULL GROUP BY s.build_uuid HAVING MAX(d.ts) < ? ORDER BY MAX(d.ts), s.build_uuid",
                (to_epoch_ms(cutoff),),
            ).fetchall()
            return [(uuid, int(n), _ms_to_dt(ts) or cutoff) for uuid, n, ts in rows]

        return self._run(run)  # type: ignore[no-any-return]

    def loose_documents_older_than(self, cutoff: datetime) -> int:
        """Documents of no build (no ``build_uuid``) older than ``cutoff``."""

        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM shapes s JOIN docs d ON d.shape = s.id WHERE s.build_uuid IS NULL AND d.ts < ?",
                (to_epoch_ms(cutoff),),
            ).fetchone()
            return int(row[0])

        return self._run(run)  # type: ignore[no-any-return]

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
                    "SELECT s.build_uuid FROM shapes s JOIN docs d ON d.shape = s.id "
                    "WHERE s.build_uuid IN (SELECT value FROM json_each(?)) GROUP BY s.build_uuid HAVING MAX(d.ts) < ?",
                    (json.dumps(list(uuids)), cut),
                )
            ]
            builds = json.dumps(old)
            shapes = json.dumps(
                [r[0] for r in conn.execute("SELECT id FROM shapes WHERE build_uuid IN (SELECT value FROM json_each(?))", (builds,))]
            )
            ids = [r[0] for r in conn.execute("SELECT id FROM docs WHERE shape IN (SELECT value FROM json_each(?))", (shapes,))]
            if ids:
                self._delete_rows(conn, ids)
            conn.execute("DELETE FROM kw_shape WHERE shape IN (SELECT value FROM json_each(?))", (shapes,))
            conn.execute("DELETE FROM shapes WHERE id IN (SELECT value FROM json_each(?))", (shapes,))
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
                    "SELECT d.id FROM shapes s JOIN docs d ON d.shape = s.id WHERE s.build_uuid IS NULL AND d.ts < ?",
                    (to_epoch_ms(cutoff),),
                )
            ]
            if ids:
                self._delete_rows(conn, ids)
        return len(ids)

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
        """Merge FTS5 segments and refresh the planner's statistics (after big ingests)."""
        with self._write_lock:
            try:
                self._conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
                self._conn.execute("PRAGMA optimize")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from None

    # -- reading helpers ---------------------------------------------------
    def _shape_json(self, conn: sqlite3.Connection, shape: int) -> dict[str, Any]:
        row = conn.execute("SELECT json FROM shapes WHERE id = ?", (shape,)).fetchone()
        return json.loads(row[0]) if row else {}

    def _assemble(self, conn: sqlite3.Connection, shape: int, body: str, shapes: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
        if shapes is not None:
            base = shapes.get(shape)
            if base is None:
                base = shapes[shape] = self._shape_json(conn, shape)
        else:
            base = self._shape_json(conn, shape)
        doc = dict(base)
        doc.update(_loads(body))
        return doc

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

    def _scope(self, conn: sqlite3.Connection, filters: Filters, window: TimeWindow) -> _Scope:
        sql: list[tuple[str, list[Any]]] = []
        lo_id: int | None = None
        hi_id: int | None = None
        for name, values in _store_terms(filters).items():
            if not values:
                return _Scope([], empty=True)
            marks = ",".join("?" * len(values))
            if name in UNINDEXED_PER_LINE:
                ors = ["er_body_kw(d.body, ?, '= ?', ?)" for _ in values]
                params: list[Any] = []
                for v in values:
                    params.extend([name, json.dumps([v])])
                sql.append(("(" + " OR ".join(ors) + ")", params))
            elif self._per_line(name):
                sql.append((f"d.id IN (SELECT doc FROM kw WHERE field = ? AND value IN ({marks}))", [name, *values]))
            else:
                shapes = [
                    s for (s,) in conn.execute(
                        f"SELECT shape FROM kw_shape WHERE field = ? AND value IN ({marks})", [name, *values]
                    )
                ]
                if not shapes:
                    return _Scope([], empty=True)
                sql.append(("d.shape IN (SELECT value FROM json_each(?))", [json.dumps(shapes)]))
                if name in ("build_uuid", "build_short_uuid"):
                    row = conn.execute(
                        "SELECT MIN(id), MAX(id) FROM docs WHERE shape IN (SELECT value FROM json_each(?))",
                        (json.dumps(shapes),),
                    ).fetchone()
                    if row[0] is None:
                        return _Scope([], empty=True)
                    lo_id = row[0] if lo_id is None else max(lo_id, row[0])
                    hi_id = row[1] if hi_id is None else min(hi_id, row[1])
        if window.start is not None:
            sql.append(("d.ts >= ?", [_dt_to_ms(window.start)]))
        if window.end is not None:
            sql.append(("d.ts < ?", [_dt_to_ms(window.end)]))
        if lo_id is not None and hi_id is not None:
            if lo_id > hi_id:
                return _Scope([], empty=True)
            sql.append(("d.id BETWEEN ? AND ?", [lo_id, hi_id]))
            return _Scope(sql, id_range=(lo_id, hi_id))
        return _Scope(sql)

    def _matching(
        self, conn: sqlite3.Connection, spec: QuerySpec, columns: str, query: qa.Query | None = None
    ) -> tuple[str, list[Any]] | None:
        """``SELECT <columns> FROM <matching docs d>`` (None when nothing can match).

        ``query`` (an analyzed AST) replaces ``spec.queries`` when given.
        """
        query = query if query is not None else self.spec_query(spec)
        scope = self._scope(conn, spec.filters, spec.window)
        if scope.empty:
            return None
        plan = _Compiler(self, conn, scope).compile(query)
        if plan.sql == [("0", [])] and plan.fts is None:
            return None
        swhere, sparams = scope.where()
        where_parts = [swhere]
        params: list[Any] = []
        for expr, p in plan.sql:
            where_parts.append(expr)
            params.extend(p)
        if plan.fts is not None:
            fts_where = "fts MATCH ?"
            fts_params: list[Any] = [plan.fts]
            if scope.id_range is not None:
                fts_where += " AND fts.rowid BETWEEN ? AND ?"
                fts_params.extend(scope.id_range)
            sql = (
                f"SELECT {columns} FROM fts CROSS JOIN docs d ON d.id = fts.rowid "
                f"WHERE {fts_where} AND {' AND '.join(where_parts)}"
            )
            return sql, [*fts_params, *sparams, *params]
        return f"SELECT {columns} FROM docs d WHERE {' AND '.join(where_parts)}", [*sparams, *params]

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
            matched = self._matching(conn, spec, "d.id, d.doc_id, d.ts, d.shape, d.body", query)
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
                    hits.append(
                        Hit(
                            id=doc_id if doc_id is not None else f"r{rid}",
                            source=self._assemble(conn, shape, body, shapes),
                            timestamp=_ms_to_dt(ts),
                        )
                    )
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
        key = _common_build(specs)
        if key is not None and (len(specs) > 1 or size > 1):
            try:
                return self._percolate(key, specs, size, queries)
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

    def _build_rows(
        self, conn: sqlite3.Connection, name: str, value: str
    ) -> tuple[
        tuple[int, ...], tuple[int | None, ...], tuple[tuple[int, str], ...], dict[int, dict[str, Any]], tuple[str | None, ...]
    ]:
        """A build's documents, oldest first: ids, timestamps, ``(shape, body JSON)``, the shapes and stored tokens."""
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
            sid: _loads(text)
            for sid, text in conn.execute("SELECT id, json FROM shapes WHERE id IN (SELECT value FROM json_each(?))", (wanted,))
        }
        return (
            tuple([r[0] for r in rows]),
            tuple([r[1] for r in rows]),
            tuple([(r[2], r[3]) for r in rows]),
            shapes,
            tuple([r[4] for r in rows]),
        )

    def _build_docs(self, conn: sqlite3.Connection, name: str, value: str) -> list[dict[str, Any]]:
        """A build's documents, oldest first."""
        _ids, _ts, rows, shapes, _tokens = self._build_rows(conn, name, value)
        docs = []
        for sid, body in rows:
            doc = dict(shapes[sid])
            doc.update(_loads(body))
            docs.append(doc)
        return docs

    def _build_cache_entry(self, key: tuple[str, str], needs: _Needs | None = None) -> _BuildCache:
        """The build's in-memory index, holding at least the postings ``needs`` says (None: all)."""
        from elastic_recheck.core.lucene.matcher import MemoryIndex

        with self._cache_lock:
            generation = self._cache_generation
            old = self._build_cache.get(key)
            complete = (
                old is not None and old.wanted is None and old.keyword_fields is None and old.present_fields is None
            )
            if old is not None and (complete or (needs is not None and old.covers(needs))):
                self._build_cache.move_to_end(key)
                return old
        if old is None:
            ids, ts, rows, shapes, stored = self._run(lambda conn: self._build_rows(conn, key[0], key[1]))
            memo: dict[qa.Query, frozenset[int]] = {}
            wanted = None if needs is None else _widen({}, needs)
            keyword_fields = None if needs is None else needs.keywords
            present_fields = None if needs is None else needs.exists
        else:  # more needed: index the loaded lines again (results found so far stay valid)
            ids, ts, rows, shapes, memo, stored = old.ids, old.ts, old.rows, old.shapes, old.memo, old.stored
            wanted = None if needs is None or old.wanted is None else _widen(old.wanted, needs)
            keyword_fields = (
                None if needs is None or old.keyword_fields is None else old.keyword_fields | needs.keywords
            )
            present_fields = (
                None
                if needs is None or needs.exists is None or old.present_fields is None
                else old.present_fields | needs.exists
            )
        loads = _loads
        bodies = [(sid, loads(body)) for sid, body in rows]
        doc_ids = [document_id(body.get("id")) or f"r{rid}" for rid, (_, body) in zip(ids, bodies, strict=True)]
        index = index_build(
            shapes,
            bodies,
            self.mapping,
            self._tokenize(),
            wanted,
            keyword_fields,
            stored=stored,
            text_fields=self._text_fields,
            present_fields=present_fields,
            doc_ids=doc_ids,
        )
        entry = _BuildCache(
            ids=ids,
            ts=ts,
            rows=rows,
            shapes=shapes,
            index=index,
            wanted=wanted,
            keyword_fields=keyword_fields,
            present_fields=present_fields,
            memo=memo,
            stored=stored,
        )
        if index is None:  # field names shared by shape and body: index the assembled documents
            entry.index = MemoryIndex([entry.doc(i) for i in range(len(rows))], mapping=self.mapping, ids=doc_ids)
            entry.wanted = entry.keyword_fields = entry.present_fields = None
        with self._cache_lock:
            # Lines written while these were read may be missing: use the entry, do not keep it.
            if self._cache_generation == generation:
                self._build_cache[key] = entry
                while len(self._build_cache) > PERCOLATION_CACHE:
                    self._build_cache.popitem(last=False)
        return entry

    def _invalidate(self, touched: set[tuple[str, str]]) -> None:
        if not touched:
            return
        with self._cache_lock:
            self._cache_generation += 1
            if any(k in self._build_cache for k in touched):
                for k in touched:
                    self._build_cache.pop(k, None)

    def _percolate(
        self, key: tuple[str, str], specs: Sequence[QuerySpec], size: int, queries: Sequence[qa.Query] | None = None
    ) -> list[SearchResult]:
        # The queries first: what they look up decides which postings the build's index needs.
        resolved: list[qa.Query | QuerySyntaxError] = []
        for n, spec in enumerate(specs):
            try:
                resolved.append(queries[n] if queries is not None else self.spec_query(spec))
            except QuerySyntaxError as exc:
                resolved.append(exc)
        # The filters (usually one object shared by every spec) restrict the
        # build's documents once: a fingerprint's matches are its own matches
        # among them (``and_`` is an intersection).
        filter_queries: list[qa.Query | None] = []
        last_filters: Filters | None = None
        last_query: qa.Query | None = None
        for spec in specs:
            if spec.filters is not last_filters and spec.filters != last_filters:
                last_query = self._filter_query(spec.filters, key[0])
            last_filters = spec.filters
            filter_queries.append(last_query)
        tokens: dict[str, set[str]] = {}
        full: set[str] = set()
        keywords: set[str] = set()
        exists: set[str] | None = set()
        for q in {id(x): x for x in (*resolved, *filter_queries) if isinstance(x, qa.Query)}.values():
            one = self._needs_of(q)
            for name, toks in one.tokens.items():
                tokens.setdefault(name, set()).update(toks)
            full.update(one.full)
            keywords.update(one.keywords)
            if exists is not None:
                exists = None if one.exists is None else exists | one.exists
        needs = _Needs(
            tokens={k: frozenset(v) for k, v in tokens.items()},
            full=frozenset(full),
            keywords=frozenset(keywords),
            exists=None if exists is None else frozenset(exists),
        )
        entry = self._build_cache_entry(key, needs)

        out: list[SearchResult] = []
        terms = entry.terms
        allowed_for: dict[int, frozenset[int]] = {}
        window_key: tuple[int | None, int | None] | None = None
        in_window: frozenset[int] | None = None
        for spec, query, filter_query in zip(specs, resolved, filter_queries, strict=True):
            if isinstance(query, QuerySyntaxError):
                out.append(SearchResult(hits=[], total=0, label=spec.label, error=str(query)))
                continue
            allowed: frozenset[int] | None = None
            if filter_query is not None:
                allowed = allowed_for.get(id(filter_query))
                if allowed is None:
                    allowed = allowed_for[id(filter_query)] = self._evaluate(entry, filter_query)
            start = _dt_to_ms(spec.window.start) if spec.window.start is not None else None
            end = _dt_to_ms(spec.window.end) if spec.window.end is not None else None
            if (start, end) != window_key:
                window_key = (start, end)
                in_window = None
                if start is not None or end is not None:
                    in_window = frozenset(
                        i
                        for i, t in enumerate(entry.ts)
                        if t is not None and (start is None or t >= start) and (end is None or t < end)
                    )
            got: frozenset[int]
            if not entry.rows or (allowed is not None and not allowed) or (in_window is not None and not in_window):
                got = frozenset()
            elif not all(t in terms(f) for f, t in self._required_of(query)):
                got = frozenset()  # a token every match needs is nowhere in this build
            else:
                got = self._evaluate(entry, query)
                if allowed is not None:
                    got = got & allowed
                if in_window is not None:
                    got = got & in_window
            found = sorted(got)
            hits = []
            for i in found[: max(size, 0)]:
                doc = entry.doc(i)
                hits.append(Hit(id=entry.index.ids[i], source=doc, timestamp=_ms_to_dt(entry.ts[i])))
            out.append(SearchResult(hits=hits, total=len(found), label=spec.label))
        return out

    def _filter_query(self, filters: Filters, skip: str) -> qa.Query | None:
        """The AND of ``filters`` (other than the build's own field) as a query; None: no restriction."""
        clauses: list[qa.Query] = []
        for name, values in _store_terms(filters).items():
            if name == skip:
                continue
            terms = tuple(qa.Term(name, v) for v in values)
            clauses.append(terms[0] if len(terms) == 1 else qa.Bool(should=terms))
        return qa.and_(*clauses) if clauses else None

    def _needs_of(self, q: qa.Query) -> _Needs:
        """:func:`query_needs`, cached by identity."""
        return _by_identity(self._needs, q, lambda: query_needs(q, self.mapping))

    def _required_of(self, q: qa.Query) -> frozenset[tuple[str, str]]:
        """:func:`required_terms` of a query node, cached by identity (queries repeat as the same objects)."""
        return _by_identity(self._required, q, lambda: required_terms(q, self.mapping))

    def _evaluate(self, entry: _BuildCache, q: qa.Query) -> frozenset[int]:
        """Lucene's boolean algebra over the build's MemoryIndex, with leaf results memoized.

        Same semantics as ``MemoryIndex.evaluate`` (must: all, cheapest first;
        should: any when there is no must; must_not: none); a clause shared by
        many fingerprints (``tags:"screen-n-cpu.txt"``, ``voting:1``) is
        evaluated once per build.
        """
        if isinstance(q, qa.Bool):
            result: frozenset[int] | None
            if q.must:
                result = None
                must = q.must if len(q.must) == 1 else sorted(q.must, key=lambda c: self._cost(entry, c))
                for clause in must:
                    docs = self._evaluate(entry, clause)
                    result = docs if result is None else result & docs
                    if not result:
                        return frozenset()
            elif q.should:
                acc: set[int] = set()
                for clause in q.should:
                    acc |= self._evaluate(entry, clause)
                result = frozenset(acc)
            else:
                return frozenset()
            for clause in q.must_not:
                if not result:
                    break
                result = result - self._evaluate(entry, clause)
            return result if result is not None else frozenset()
        got = entry.memo.get(q)
        if got is None:
            got = entry.index.evaluate(q)
            if len(entry.memo) > 100_000:
                entry.memo.clear()
            entry.memo[q] = got
        return got

    def _cost(self, entry: _BuildCache, q: qa.Query) -> int:
        """Documents a clause can match at most (known results first, rare terms first)."""
        if not isinstance(q, qa.Bool):
            got = entry.memo.get(q)
            if got is not None:
                return len(got)
        required = self._required_of(q)
        if not required:
            return len(entry.rows) + 1
        terms = entry.terms
        return min(len(terms(f).get(t, ())) for f, t in required)

    def count_builds(self, spec: QuerySpec, *, query: qa.Query | None = None) -> int:
        def run(conn: sqlite3.Connection) -> int:
            matched = self._matching(conn, spec, "d.shape", query)
            if matched is None:
                return 0
            sql, params = matched
            row = conn.execute(
                f"SELECT COUNT(DISTINCT s.build_uuid) FROM ({sql}) m JOIN shapes s ON s.id = m.shape", params
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
                f"SELECT (m.ts - ((m.ts % ?) + ?) % ?) AS bucket, s.build_status, COUNT(DISTINCT s.build_uuid) "
                f"FROM ({sql}) m JOIN shapes s ON s.id = m.shape "
                "WHERE m.ts IS NOT NULL AND s.build_uuid IS NOT NULL GROUP BY bucket, s.build_status ORDER BY bucket",
                [ms, ms, ms, *params],
            ).fetchall()
            buckets: dict[int, dict[str, int]] = {}
            for bucket, status, count in rows:
                counts = buckets.setdefault(int(bucket), {})
                if status is not None:
                    counts[status] = int(count)
            return [Bucket(start=_ms_to_dt(b) or datetime(1970, 1, 1, tzinfo=UTC), counts=c) for b, c in sorted(buckets.items())]

        return self._checked(run)  # type: ignore[no-any-return]

    def terms(self, spec: QuerySpec, field: str, size: int = 10, *, query: qa.Query | None = None) -> list[TermCount]:
        if self.mapping.is_text(field):
            raise BackendError(f"terms: {field} is a text field (aggregate on a keyword field)", retryable=False)

        def run(conn: sqlite3.Connection) -> list[TermCount]:
            if self._per_line(field):
                matched = self._matching(conn, spec, "d.id, d.shape, d.body", query)
            else:
                matched = self._matching(conn, spec, "d.id, d.shape", query)
            if matched is None:
                return []
            sql, params = matched
            if not self._per_line(field):
                rows = conn.execute(
                    f"SELECT k.value, COUNT(DISTINCT s.build_uuid), COUNT(*) FROM ({sql}) m "
                    "JOIN shapes s ON s.id = m.shape JOIN kw_shape k ON k.shape = m.shape AND k.field = ? "
                    "GROUP BY k.value ORDER BY 2 DESC, 3 DESC, k.value LIMIT ?",
                    [*params, field, size],
                ).fetchall()
                return [TermCount(value=v, builds=int(b), docs=int(d)) for v, b, d in rows]
            builds: dict[str, set[str]] = {}
            docs: dict[str, int] = {}
            uuids: dict[int, str | None] = {}
            for _rid, shape, body in conn.execute(sql, params):
                if shape not in uuids:
                    r = conn.execute("SELECT build_uuid FROM shapes WHERE id = ?", (shape,)).fetchone()
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
                f"SELECT s.build_uuid, MIN(m.ts), MAX(m.ts), COUNT(*), MIN(m.shape) FROM ({sql}) m "
                "JOIN shapes s ON s.id = m.shape WHERE s.build_uuid IS NOT NULL "
                f"GROUP BY s.build_uuid ORDER BY MAX(m.ts) IS NULL, MAX(m.ts) DESC, s.build_uuid{lim}",
                [*params, limit] if limit is not None else params,
            ).fetchall()
            out = []
            for uuid, first, last, count, shape in rows:
                src = self._shape_json(conn, shape)
                fields = {k: src[k] for k in BUILD_FIELDS if k in src}
                if "log_url" in fields:
                    # The shape holds one file's URL; the build's logs are its directory.
                    fields["log_url"] = build_log_url(fields["log_url"], src.get("filename"))
                out.append(
                    BuildSummary(uuid=uuid, fields=fields, first_seen=_ms_to_dt(first), last_seen=_ms_to_dt(last), docs=int(count))
                )
            return out

        return self._checked(run)  # type: ignore[no-any-return]

    def latest_timestamp(self, until: datetime | None = None) -> datetime | None:
        def run(conn: sqlite3.Connection) -> datetime | None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'max_ts'").fetchone()
            newest = int(row[0]) if row else None
            if until is not None and newest is not None and newest >= _dt_to_ms(until):
                # a document dated in the future (9999-12-31): the newest one before ``until`` (a scan; rare)
                row = conn.execute("SELECT MAX(ts) FROM docs WHERE ts < ?", (_dt_to_ms(until),)).fetchone()
                newest = int(row[0]) if row and row[0] is not None else None
            return _ms_to_dt(newest) if newest is not None else None

        return self._run(run)  # type: ignore[no-any-return]

    def indexed_files(self, build_uuid: str) -> set[str]:
        def run(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(
                "SELECT DISTINCT f.value FROM kw_shape b JOIN kw_shape f ON f.shape = b.shape AND f.field = 'filename' "
                "WHERE b.field = 'build_uuid' AND b.value = ? AND EXISTS (SELECT 1 FROM docs d WHERE d.shape = b.shape)",
                (build_uuid,),
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
        return self._run(lambda conn: self._build_docs(conn, "build_uuid", build_uuid))  # type: ignore[no-any-return]


def _compare_op(op: str, value: str, params: list[str]) -> bool:
    vb = value.encode("utf-8")
    conds = [c.strip() for c in op.replace("AND value", "AND").split("AND")]
    for cond, param in zip(conds, params, strict=False):
        pb = param.encode("utf-8")
        if (
            (cond == ">= ?" and not vb >= pb)
            or (cond == "> ?" and not vb > pb)
            or (cond == "<= ?" and not vb <= pb)
            or (cond == "< ?" and not vb < pb)
            or (cond == "= ?" and vb != pb)
        ):
            return False
    return True


def _common_build(specs: Sequence[QuerySpec]) -> tuple[str, str] | None:
    """``(field, value)`` when every spec restricts the same single build."""
    if not specs:
        return None
    for name in ("build_uuid", "build_short_uuid"):
        values = {getattr(s.filters, name) for s in specs}
        if len(values) == 1:
            (value,) = values
            if value is not None:
                return name, str(value)
    return None


__all__ = ["GAP", "PRESENT", "EmbeddedStore", "flatten_fields", "keyword_values", "leaf_predicate"]
