"""The embedded store's query compiler: an analyzed query AST to SQL and FTS5.

Text-field subtrees become one FTS5 MATCH expression where FTS5 can say it
exactly (terms, exact phrases, prefixes, boolean combinations); keyword
leaves become index lookups (``kw``, ``kw_shape``); multi-term leaves on
text (wildcard, regexp, fuzzy, range) are expanded against the FTS5
vocabulary; sloppy phrases are found by FTS5 (all their terms) and verified
by the in-memory matcher. Structured filters and the time window
(:meth:`QueryCompiler.scope`) are SQL parameters.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from elastic_recheck.adapters.sqlite.layout import (
    DERIVED_ID_LENGTH,
    DERIVED_KEY_SQL,
    PRESENT,
    SENTINELS,
    UNINDEXED_PER_LINE,
    DerivedIds,
    assemble,
    derived_prefix,
    dt_to_ms,
    fts_exact,
    fts_string,
    keyword_values,
    loads_json,
    per_line,
    shape_keyword_table,
    shapes_with,
    store_terms,
)
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.matcher import (
    FUZZY_MAX_EXPANSIONS,
    ID_FIELD,
    MemoryIndex,
    edit_distance_at_most,
    wildcard_predicate,
)
from elastic_recheck.core.lucene.regexp import compile_regexp
from elastic_recheck.core.schema import Mapping
from elastic_recheck.core.search_types import Filters, TimeWindow

#: Terms per FTS5 OR expression when a multi-term query is expanded.
EXPANSION_CHUNK = 200

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


def _prefix_range(column: str, prefix: str) -> tuple[str, list[Any]]:
    """SQL (``" AND ..."``) and parameters restricting ``column`` to values starting with ``prefix``
    as an index range scan; nothing for an empty prefix."""
    if not prefix:
        return "", []
    upper = _prefix_upper(prefix)
    if upper is None:
        return f" AND {column} >= ?", [prefix]
    return f" AND {column} >= ? AND {column} < ?", [prefix, upper]


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
#: A document's id in SQL on ``d`` (as :class:`Hit` ids): its own (TEXT), derived from its shape
#: (an INTEGER line number, see :func:`~.layout.derived_prefix`), else ``r<rowid>``.
_ID_SQL = (
    "CASE typeof(d.doc_id) WHEN 'text' THEN d.doc_id WHEN 'null' THEN 'r' || d.id "
    f"ELSE er_derived_id((SELECT {DERIVED_KEY_SQL} FROM shapes s JOIN builds b ON b.id = s.build WHERE s.id = d.shape), "
    "d.doc_id) END"
)
_ROWID_ID = re.compile(r"r(0|[1-9][0-9]{0,17})")
_DERIVED_ID = re.compile(f"[0-9a-f]{{{DERIVED_ID_LENGTH}}}")


def _derived_rows(conn: sqlite3.Connection, value: str) -> list[int]:
    """Rowids of the documents whose derived id is ``value`` (40 hex digits).

    No index finds a derived id: the ids of lines ``1..n`` of every stored
    file are computed (``n``: the file's last stored line), about one per
    line of the store, then the lines found are looked up by number.
    """
    last: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}
    for sid, text, top in conn.execute(
        f"SELECT s.id, {DERIVED_KEY_SQL}, m.top FROM (SELECT shape, MAX(doc_id) AS top FROM docs "
        "WHERE typeof(doc_id) = 'integer' GROUP BY shape) m JOIN shapes s ON s.id = m.shape JOIN builds b ON b.id = s.build"
    ):
        prefix = derived_prefix(loads_json(text))
        if prefix is not None:
            shapes.setdefault(prefix, []).append(sid)
            last[prefix] = max(last.get(prefix, 0), int(top))
    target = bytes.fromhex(value)
    found: list[int] = []
    for prefix, top in last.items():
        head = hashlib.sha1(prefix.encode())
        for n in range(1, top + 1):
            h = head.copy()
            h.update(str(n).encode())
            if h.digest() == target:
                found.extend(
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM docs WHERE shape IN (SELECT value FROM json_each(?)) AND doc_id = ?",
                        (json.dumps(shapes[prefix]), n),
                    )
                )
    return found


def _id_term(conn: sqlite3.Connection, value: str) -> tuple[str, list[Any]]:
    """SQL on ``d`` for the document whose id is ``value`` (``_id:value``)."""
    ors = ["(typeof(d.doc_id) = 'text' AND d.doc_id = ?)"]  # (the partial index docs_text_id)
    params: list[Any] = [value]
    rowid = _ROWID_ID.fullmatch(value)
    if rowid is not None:
        ors.append("(d.id = ? AND d.doc_id IS NULL)")
        params.append(int(rowid.group(1)))
    if _DERIVED_ID.fullmatch(value):
        rows = _derived_rows(conn, value)
        if rows:
            ors.append("d.id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(rows))
    return "(" + " OR ".join(ors) + ")", params


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

    def __init__(self, store: QueryCompiler, conn: sqlite3.Connection, scope: _Scope) -> None:
        self.store = store
        self.conn = conn
        self.scope = scope

    # -- leaves ---------------------------------------------------------
    def column(self, field_name: str) -> str:
        return self.store.fts_columns[field_name]

    def keyword_lookup(self, field_name: str, op: str, params: list[Any]) -> tuple[str, list[Any]]:
        """SQL on ``d`` for docs whose keyword ``field`` has a value with ``value <op>``."""
        if field_name in UNINDEXED_PER_LINE:
            return f"er_body_kw(d.body, ?, '{op}', ?)", [field_name, json.dumps(params)]
        if self.store.per_line(field_name):
            return (f"d.id IN (SELECT doc FROM kw WHERE field = ? AND value {op})", [field_name, *params])
        return (f"d.shape IN ({shapes_with(field_name, op)})", [field_name, *params])

    def keyword_predicate(self, field_name: str, pred: Callable[[str], bool], prefix: str = "") -> _Plan:
        """Docs with a keyword value accepted by ``pred`` (Python predicate over distinct values)."""
        if field_name in UNINDEXED_PER_LINE:
            key = self.store.register_predicate(pred)
            return _Plan(sql=[("er_body_pred(d.body, ?, ?)", [field_name, key])])
        values = [v for v in self._distinct_values(self._keyword_table(field_name), field_name, prefix) if pred(v)]
        if not values:
            return _NONE
        return _Plan(sql=[self.keyword_lookup(field_name, "IN (SELECT value FROM json_each(?))", [json.dumps(values)])])

    def _keyword_table(self, field_name: str) -> str:
        """The keyword table holding ``field_name``'s values: ``kw`` (per line), ``kw_shape`` or ``kw_build``."""
        return "kw" if self.store.per_line(field_name) else shape_keyword_table(field_name)

    def keyword_vocabulary(self, field_name: str, prefix: str = "") -> list[str]:
        """Distinct values of a keyword field (starting with ``prefix``)."""
        if field_name in UNINDEXED_PER_LINE:
            values: set[str] = set()
            for (body,) in self.conn.execute("SELECT er_body(body) FROM docs"):
                values.update(keyword_values(loads_json(body).get(field_name)))
            return sorted(v for v in values if v.startswith(prefix))
        return self._distinct_values(self._keyword_table(field_name), field_name, prefix)

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
        exprs = [f"{col} : (" + " OR ".join(fts_string(t) for t in chunk) + ")" for chunk in chunks]
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
        where, params = candidates.as_sql()
        swhere, sparams = self.scope.where()
        rows = self.conn.execute(
            f"SELECT d.id, d.shape, er_body(d.body) FROM docs d WHERE {where} AND {swhere}", [*params, *sparams]
        ).fetchall()
        if not rows:
            return _NONE
        docs = [assemble(conn=self.conn, shape=shape, body=body) for _, shape, body in rows]
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
                names |= {f for (f,) in self.conn.execute("SELECT DISTINCT field FROM kw_build")}
                names |= {f for (f,) in self.conn.execute("SELECT DISTINCT field FROM kw")}
                names |= set(self.store.text_fields) | UNINDEXED_PER_LINE
                wanted = tuple(qa.Exists(n) for n in sorted(names) if match(n))
                return self.compile(qa.Bool(should=wanted)) if wanted else _NONE
            if mapping.is_text(q.field):
                return _Plan(fts=f"{self.column(q.field)} : {fts_string(PRESENT)}")
            if q.field in UNINDEXED_PER_LINE:
                return _Plan(sql=[("er_body_has(d.body, ?)", [q.field])])
            if self.store.per_line(q.field):
                return _Plan(sql=[("d.id IN (SELECT doc FROM kw WHERE field = ?)", [q.field])])
            return _Plan(sql=[(f"d.shape IN ({shapes_with(q.field, 'IS NOT NULL')})", [q.field])])
        name = q.field  # type: ignore[attr-defined]
        text = mapping.is_text(name)
        if name == ID_FIELD and not isinstance(q, (qa.Term, qa.Phrase)):
            return self.id_leaf(q)
        if isinstance(q, qa.Term):
            if text:
                if q.value in SENTINELS or not fts_exact(q.value):
                    return _NONE  # no analyzed token holds a separator or an upper-case letter
                return _Plan(fts=f"{self.column(name)} : {fts_string(q.value)}")
            if name == ID_FIELD:
                return _Plan(sql=[_id_term(self.conn, q.value)])
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
                return _Plan(fts=f"{col} : " + fts_string(" ".join(q.terms)))
            candidates = _Plan(fts=" AND ".join(f"{col} : {fts_string(t)}" for t in dict.fromkeys(q.terms)))
            return self.verified(candidates, q)
        if isinstance(q, qa.Prefix):
            if text:
                if q.prefix and fts_exact(q.prefix) and not any(s.startswith(q.prefix) for s in SENTINELS):
                    return _Plan(fts=f"{self.column(name)} : {fts_string(q.prefix)} *")
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
        key = self.store.register_predicate(pred)
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


#: A build filter narrows the FTS5 scan to the rowid range of its builds' lines
#: (a build's lines are written together) when it names at most this many
#: shapes (log files). Finding the range reads every line of those shapes,
#: so for many builds (the report's histogram of a fingerprint's voting
#: builds: hundreds) it costs a pass over most of the store per query and
#: the range is most of the store anyway: the shape filter alone decides.
ID_RANGE_SHAPES = 64


class QueryCompiler:
    """Compiles analyzed queries to SQL over one store's tables.

    :param mapping: the store's mapping.
    :param text_fields: the store's text fields (FTS5 columns ``c0``, ``c1``... in this order).
    :param predicates: the registry of Python predicates compiled queries call
        through the SQL functions :func:`register_functions` defines.
    """

    def __init__(self, mapping: Mapping, text_fields: Sequence[str], predicates: dict[int, Callable[[str], bool]]) -> None:
        self.mapping = mapping
        self.text_fields = list(text_fields)
        self.fts_columns = {name: f"c{i}" for i, name in enumerate(self.text_fields)}
        self._text_field_set = frozenset(self.text_fields)
        self._predicates = predicates

    def per_line(self, name: str) -> bool:
        """Whether field ``name`` is stored with each line (``kw``), not in the shape (``kw_shape``)."""
        return per_line(name, self._text_field_set)

    def register_predicate(self, pred: Callable[[str], bool]) -> int:
        key = id(pred)
        self._predicates[key] = pred
        return key

    def scope(self, conn: sqlite3.Connection, filters: Filters, window: TimeWindow) -> _Scope:
        """The restrictions of ``filters`` and ``window`` as SQL on ``d``."""
        sql: list[tuple[str, list[Any]]] = []
        lo_id: int | None = None
        hi_id: int | None = None
        for name, values in store_terms(filters).items():
            if not values:
                return _Scope([], empty=True)
            marks = ",".join("?" * len(values))
            if name in UNINDEXED_PER_LINE:
                ors = ["er_body_kw(d.body, ?, '= ?', ?)" for _ in values]
                params: list[Any] = []
                for v in values:
                    params.extend([name, json.dumps([v])])
                sql.append(("(" + " OR ".join(ors) + ")", params))
            elif self.per_line(name):
                sql.append((f"d.id IN (SELECT doc FROM kw WHERE field = ? AND value IN ({marks}))", [name, *values]))
            else:
                shapes = [s for (s,) in conn.execute(shapes_with(name, f"IN ({marks})"), [name, *values])]
                if not shapes:
                    return _Scope([], empty=True)
                sql.append(("d.shape IN (SELECT value FROM json_each(?))", [json.dumps(shapes)]))
                if name in ("build_uuid", "build_short_uuid") and len(shapes) <= ID_RANGE_SHAPES:
                    row = conn.execute(
                        "SELECT MIN(id), MAX(id) FROM docs WHERE shape IN (SELECT value FROM json_each(?))",
                        (json.dumps(shapes),),
                    ).fetchone()
                    if row[0] is None:
                        return _Scope([], empty=True)
                    lo_id = row[0] if lo_id is None else max(lo_id, row[0])
                    hi_id = row[1] if hi_id is None else min(hi_id, row[1])
        if window.start is not None:
            sql.append(("d.ts >= ?", [dt_to_ms(window.start)]))
        if window.end is not None:
            sql.append(("d.ts < ?", [dt_to_ms(window.end)]))
        if lo_id is not None and hi_id is not None:
            if lo_id > hi_id:
                return _Scope([], empty=True)
            sql.append(("d.id BETWEEN ? AND ?", [lo_id, hi_id]))
            return _Scope(sql, id_range=(lo_id, hi_id))
        return _Scope(sql)

    def matching(
        self, conn: sqlite3.Connection, query: qa.Query, filters: Filters, window: TimeWindow, columns: str
    ) -> tuple[str, list[Any]] | None:
        """``SELECT <columns> FROM <docs d matching query, filters and window>`` (None when nothing can match)."""
        scope = self.scope(conn, filters, window)
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


# ---------------------------------------------------------------------------
# SQL functions over body


def register_functions(
    conn: sqlite3.Connection, predicates: dict[int, Callable[[str], bool]], body_text: Callable[[str | bytes], str]
) -> None:
    """Define on ``conn`` the SQL functions compiled queries call (``er_body_kw``...);
    ``predicates`` is the registry :meth:`QueryCompiler.register_predicate` fills;
    ``body_text`` gives a stored body as JSON text (``er_body``: compressed lines, see :mod:`.lines`)."""

    def body_pred(body: str | bytes, name: str, key: int) -> int:
        pred = predicates.get(key)
        if pred is None:
            return 0
        try:
            return 1 if any(pred(v) for v in keyword_values(json.loads(body_text(body)).get(name))) else 0
        except (ValueError, AttributeError):
            return 0

    def body_kw(body: str | bytes, name: str, op: str, params_json: str) -> int:
        return _sql_body_kw(body_text(body), name, op, params_json)

    def body_has(body: str | bytes, name: str) -> int:
        return _sql_body_has(body_text(body), name)

    def value_pred(value: str | None, key: int) -> int:
        pred = predicates.get(key)
        return 1 if pred is not None and value is not None and pred(value) else 0

    conn.create_function("er_body", 1, body_text, deterministic=True)
    conn.create_function("er_body_kw", 4, body_kw, deterministic=True)
    conn.create_function("er_body_has", 2, body_has, deterministic=True)
    conn.create_function("er_body_pred", 3, body_pred, deterministic=True)
    conn.create_function("er_value_pred", 2, value_pred, deterministic=True)
    conn.create_function("er_derived_id", 2, DerivedIds(), deterministic=True)


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


def _sql_body_has(body: str, name: str) -> int:
    try:
        return 1 if keyword_values(json.loads(body).get(name)) else 0
    except (ValueError, AttributeError):
        return 0


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
