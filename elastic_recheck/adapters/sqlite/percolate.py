"""Percolation: many queries evaluated against one build's documents in memory.

When every search of an ``msearch`` is restricted to the same build (the
classifier's case), the embedded store loads that build's lines once into a
:class:`~elastic_recheck.core.lucene.matcher.MemoryIndex`
(:func:`~elastic_recheck.core.lucene.build_index.build_index`: each shape's
fields once, text postings only for the tokens the queries look up) and
evaluates every query in memory: a thousand fingerprints cost milliseconds.
Most are ruled out by their required terms without being evaluated. The
index is kept for the next few ``msearch`` calls (:data:`PERCOLATION_CACHE`)
and dropped when a write touches the build.
"""

from __future__ import annotations

import gc
import heapq
import operator
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from elastic_recheck.adapters.sqlite.layout import PRESENT, build_rows, dt_to_ms, loads_json, ms_to_dt, store_terms
from elastic_recheck.core.errors import QuerySyntaxError
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.build_index import build_index
from elastic_recheck.core.lucene.matcher import MemoryIndex
from elastic_recheck.core.lucene.required import required_pairs
from elastic_recheck.core.schema import Mapping
from elastic_recheck.core.search_types import Filters, Hit, QuerySpec, SearchResult

#: Builds kept in memory for percolation (the bot classifies a build once; a
#: cached index also costs memory and garbage-collector time).
PERCOLATION_CACHE = 2

_T = TypeVar("_T")

_EMPTY: frozenset[int] = frozenset()

#: Entries an identity cache holds before it is emptied (bounded memory).
IDENTITY_CACHE_SIZE = 100_000


_gc_lock = threading.Lock()
_gc_pauses = 0  # threads inside :func:`collector_paused`
_gc_restore = False  # whether the first of them found the collector enabled


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run without the cyclic garbage collector (re-enabled when the last thread leaves).

    Loading and evaluating a build allocates tens of thousands of
    containers (bodies, postings sets, results) that stay alive while the
    build is cached and hold no reference cycles: each collection the
    allocations would trigger walks them (and, every few, every object of the
    process, the parsed fingerprints and cached builds included) only to
    find nothing to free. Paused, the young objects are walked once, by the
    collection of the youngest generation that ends the pause (here, not at
    whatever allocation comes next).
    """
    global _gc_pauses, _gc_restore
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_restore = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            resume = _gc_pauses == 0 and _gc_restore
            if resume:
                gc.enable()
        if resume:
            gc.collect(0)


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


@dataclass
class _BuildCache:
    """One build's documents, indexed in memory for percolation."""

    # (tuples of numbers and strings: the garbage collector stops walking through them)
    #: the documents' ids (``Hit.id``: :class:`~.layout.DocIds`, as search gives them)
    ids: Sequence[str]
    ts: Sequence[int | None]
    #: per document: ``(shape id, per-line fields as JSON)`` (kept as text or UTF-8: a few thousand
    #: dicts would be more for the garbage collector to walk through, and most are never returned)
    rows: Sequence[tuple[int, str | bytes]]
    shapes: dict[int, dict[str, Any]]
    index: Any
    #: text field -> the tokens the index holds postings for (None: all; see :func:`~elastic_recheck.core.lucene.build_index.build_index`)
    wanted: dict[str, frozenset[str] | None] | None
    #: keyword fields whose values are indexed (None: all)
    keyword_fields: frozenset[str] | None = None
    #: fields whose presence is recorded (None: all)
    present_fields: frozenset[str] | None = None
    #: per document: its stored tokens (see :func:`~elastic_recheck.adapters.sqlite.layout._migration_2`)
    stored: Sequence[str | bytes | None] = ()
    #: text fields indexed only on the lines the queries of ``lines`` can match (:attr:`_Needs.lines`; None: all lines)
    defer: frozenset[str] = frozenset()
    lines: frozenset[frozenset[tuple[str, str]]] | None = None
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
            got.update(loads_json(body))
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
        if self.lines is not None and (needs.defer != self.defer or needs.lines != self.lines):
            return False  # (postings of the lines only other queries could match are missing)
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
    #: text fields whose per-line postings only the lines some query can match need (see :meth:`Percolator._lines_needed`)
    defer: frozenset[str] = frozenset()
    #: per query, the ``(field, term)`` pairs every match holds outside ``defer`` (None: any line can match)
    lines: frozenset[frozenset[tuple[str, str]]] | None = None


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
    """``wanted`` (see :func:`~elastic_recheck.core.lucene.build_index.build_index`) grown to cover ``needs`` too."""
    out = dict(wanted)
    for name, tokens in needs.tokens.items():
        have = out.get(name, frozenset())
        if have is not None:
            out[name] = have | tokens
    for name in needs.full:
        out[name] = None
    return out


_PRESENT_SP = PRESENT + " "


def _line_tokens_of(stored: Sequence[str | bytes | None]) -> Callable[[int], list[list[str] | None]]:
    """``line_tokens`` for :func:`build_index` from the ``docs.tokens`` of a build's lines
    (see :func:`~elastic_recheck.adapters.sqlite.layout._migration_2`)."""
    loads = loads_json
    mark = _PRESENT_SP
    skip = len(mark)

    def line_tokens(d: int) -> list[list[str] | None]:
        raw = stored[d]
        if raw is None:
            return []
        return [
            (text[skip:].split(" ") if len(text) > skip else []) if type(text) is str and text.startswith(mark) else None
            for text in loads(raw)
        ]

    return line_tokens


def _lines_holding(index: MemoryIndex, lines: frozenset[frozenset[tuple[str, str]]]) -> set[int]:
    """The documents holding every pair of at least one of ``lines``' sets (see :attr:`_Needs.lines`)."""
    out: set[int] = set()
    for pairs in lines:
        if not pairs:
            return set(index.all_docs)
        docs: frozenset[int] | None = None
        for name, term in pairs:
            got = index.docs_with(name, term)
            docs = got if docs is None else docs & got
            if not docs:
                break
        if docs:
            out |= docs
    return out


class Percolator:
    """One store's percolation: the indexes of the builds searched last, and the evaluation.

    :param mapping: the store's mapping.
    :param text_fields: the store's text fields, in the order of ``docs.tokens``.
    :param tokenize: gives the analyzer (loaded on first use).
    :param read: runs a function with a connection, translating SQLite errors.
    """

    def __init__(
        self,
        mapping: Mapping,
        text_fields: Sequence[str],
        tokenize: Callable[[], Callable[[str], list[str]]],
        read: Callable[[Callable[[sqlite3.Connection], Any]], Any],
        unpacker: Callable[[], Callable[[bytes], tuple[str | bytes, str | bytes | None]]],
    ) -> None:
        self.mapping = mapping
        self._unpacker = unpacker  # compressed lines (see lines.py): this thread's decompression
        self._text_fields = list(text_fields)
        self._tokenize = tokenize
        self._run = read
        #: ``(field, value)`` of a build -> its index, least recently used first
        self.builds: OrderedDict[tuple[str, str], _BuildCache] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_generation = 0  # bumped by every write that touches a build
        self._required: dict[int, tuple[qa.Query, frozenset[tuple[str, str]]]] = {}
        self._needs: dict[int, tuple[qa.Query, _Needs]] = {}
        self._last_needs: tuple[list[qa.Query], tuple[qa.Query, ...], _Needs] | None = None

    def build_entry(self, key: tuple[str, str], needs: _Needs | None = None) -> _BuildCache:
        """The build's in-memory index, holding at least the postings ``needs`` says (None: all)."""
        with self._cache_lock:
            generation = self._cache_generation
            old = self.builds.get(key)
            complete = (
                old is not None and old.wanted is None and old.keyword_fields is None and old.present_fields is None
            )
            if old is not None and (complete or (needs is not None and old.covers(needs))):
                self.builds.move_to_end(key)
                return old
        if old is None or old.lines is not None:
            # (an index missing some lines' postings cannot keep the results found with it)
            memo: dict[qa.Query, frozenset[int]] = {}
        if old is None:
            ids, ts, rows, shapes, stored = self._run(lambda conn: build_rows(conn, key[0], key[1], self._unpacker()))
            wanted = None if needs is None else _widen({}, needs)
            keyword_fields = None if needs is None else needs.keywords
            present_fields = None if needs is None else needs.exists
        else:  # more needed: index the loaded lines again (results found so far stay valid)
            ids, ts, rows, shapes, stored = old.ids, old.ts, old.rows, old.shapes, old.stored
            if old.lines is None:
                memo = old.memo
            wanted = None if needs is None or old.wanted is None else _widen(old.wanted, needs)
            keyword_fields = (
                None if needs is None or old.keyword_fields is None else old.keyword_fields | needs.keywords
            )
            present_fields = (
                None
                if needs is None or needs.exists is None or old.present_fields is None
                else old.present_fields | needs.exists
            )
        defer, lines = (frozenset(), None) if needs is None else (needs.defer, needs.lines)
        loads = loads_json
        bodies = [(sid, loads(body)) for sid, body in rows]
        doc_ids = ids
        index = build_index(
            shapes,
            bodies,
            self.mapping,
            self._tokenize(),
            wanted,
            keyword_fields,
            line_tokens=_line_tokens_of(stored),
            text_fields=self._text_fields,
            present_fields=present_fields,
            doc_ids=doc_ids,
            defer=defer,
            select=None if lines is None else lambda index: _lines_holding(index, lines),
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
            defer=defer,
            lines=lines,
        )
        if index is None:  # field names shared by shape and body: index the assembled documents
            entry.index = MemoryIndex([entry.doc(i) for i in range(len(rows))], mapping=self.mapping, ids=doc_ids)
            entry.wanted = entry.keyword_fields = entry.present_fields = entry.lines = None
            entry.defer = frozenset()
        with self._cache_lock:
            # Lines written while these were read may be missing: use the entry, do not keep it.
            if self._cache_generation == generation:
                self.builds[key] = entry
                while len(self.builds) > PERCOLATION_CACHE:
                    self.builds.popitem(last=False)
        return entry

    def invalidate(self, touched: set[tuple[str, str]]) -> None:
        if not touched:
            return
        with self._cache_lock:
            self._cache_generation += 1
            if any(k in self.builds for k in touched):
                for k in touched:
                    self.builds.pop(k, None)

    def percolate(
        self, key: tuple[str, str], specs: Sequence[QuerySpec], resolved: Sequence[qa.Query | QuerySyntaxError], size: int
    ) -> list[SearchResult]:
        """The results of ``specs`` (their analyzed queries, or their syntax errors: ``resolved``),
        all restricted to the build ``key``, evaluated in memory (see :func:`collector_paused`)."""
        with collector_paused():
            return self._percolate(key, specs, resolved, size)

    def _percolate(
        self, key: tuple[str, str], specs: Sequence[QuerySpec], resolved: Sequence[qa.Query | QuerySyntaxError], size: int
    ) -> list[SearchResult]:
        # The queries first: what they look up decides which postings the build's index needs.
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
        needs = self._needs_of_all(
            list({id(x): x for x in resolved if isinstance(x, qa.Query)}.values()),
            tuple(dict.fromkeys(x for x in filter_queries if x is not None)),
        )
        entry = self.build_entry(key, needs)

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
            start = dt_to_ms(spec.window.start) if spec.window.start is not None else None
            end = dt_to_ms(spec.window.end) if spec.window.end is not None else None
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
            elif any(t not in terms(f) for f, t in self._required_of(query)):
                got = frozenset()  # a token every match needs is nowhere in this build
            else:
                got = self._evaluate(entry, query)
                if allowed is not None:
                    got = got & allowed
                if in_window is not None:
                    got = got & in_window
            # the first ``size`` documents (oldest first); a fingerprint can match thousands of lines
            first = sorted(got) if size >= len(got) or size > 8 else heapq.nsmallest(max(size, 0), got)
            hits = []
            for i in first[: max(size, 0)]:
                doc = entry.doc(i)
                hits.append(Hit(id=entry.index.ids[i], source=doc, timestamp=ms_to_dt(entry.ts[i])))
            out.append(SearchResult(hits=hits, total=len(got), label=spec.label))
        return out

    def _filter_query(self, filters: Filters, skip: str) -> qa.Query | None:
        """The AND of ``filters`` (other than the build's own field) as a query; None: no restriction."""
        clauses: list[qa.Query] = []
        for name, values in store_terms(filters).items():
            if name == skip:
                continue
            terms = tuple(qa.Term(name, v) for v in values)
            clauses.append(terms[0] if len(terms) == 1 else qa.Bool(should=terms))
        return qa.and_(*clauses) if clauses else None

    def _needs_of_all(self, fingerprints: list[qa.Query], filters: tuple[qa.Query, ...]) -> _Needs:
        """What the queries look up together (the union of their :func:`query_needs`); the last
        answer is kept for the same fingerprints (the same objects: the classifier's) and equal filters."""
        last = self._last_needs
        if (
            last is not None
            and len(last[0]) == len(fingerprints)
            and all(map(operator.is_, last[0], fingerprints))
            and last[1] == filters
        ):
            return last[2]
        queries = [*fingerprints, *filters]
        tokens: dict[str, set[str]] = {}
        full: set[str] = set()
        keywords: set[str] = set()
        exists: set[str] | None = set()
        for q in queries:
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
        needs.defer, needs.lines = self._lines_needed(queries, needs)
        self._last_needs = (fingerprints, filters, needs)
        return needs

    def _lines_needed(
        self, queries: Sequence[qa.Query], needs: _Needs
    ) -> tuple[frozenset[str], frozenset[frozenset[tuple[str, str]]] | None]:
        """Text fields whose per-line postings only some lines need, and what those lines hold.

        A document matching a query holds the query's required pairs
        (:func:`~elastic_recheck.core.lucene.required.required_pairs`); so
        when every query requires something of fields other than ``defer``
        (``tags:"screen-n-cpu.txt"``, ``filename:...``), a line holding none
        of the queries' requirements on those fields matches no query
        whatever its ``defer`` fields hold, and their postings are left out
        for it (most of a build's tokens are its messages'). Matching is
        decided document by document, so the others' results are unchanged.
        Only fields looked up by exact tokens are deferred (a fuzzy query's
        expansions depend on the whole vocabulary); the fields with the
        most tokens to look up first.
        """
        required = [self._required_of(q) for q in queries]
        defer: set[str] = set()
        for name in sorted(needs.tokens, key=lambda n: -len(needs.tokens[n])):
            if name in needs.full:
                continue
            tried = defer | {name}
            if all(any(f not in tried for f, _ in pairs) for pairs in required):
                defer = tried
        if not defer:
            return frozenset(), None
        return frozenset(defer), frozenset(frozenset(p for p in pairs if p[0] not in defer) for pairs in required)

    def _needs_of(self, q: qa.Query) -> _Needs:
        """:func:`query_needs`, cached by identity."""
        return _by_identity(self._needs, q, lambda: query_needs(q, self.mapping))

    def _required_of(self, q: qa.Query) -> frozenset[tuple[str, str]]:
        """:func:`~elastic_recheck.core.lucene.required.required_pairs` of a query node, cached by
        identity (queries repeat as the same objects)."""
        return _by_identity(self._required, q, lambda: required_pairs(q, self.mapping.is_text))

    def _evaluate(self, entry: _BuildCache, q: qa.Query, within: frozenset[int] | None = None) -> frozenset[int]:
        """Lucene's boolean algebra over the build's MemoryIndex, with leaf results memoized:
        the documents matching ``q`` among ``within`` (None: among all).

        Same semantics as ``MemoryIndex.evaluate`` (must: all, cheapest first;
        should: any when there is no must; must_not: none); a clause shared by
        many fingerprints (``tags:"screen-n-cpu.txt"``, ``voting:1``) is
        evaluated once per build. The clauses after the first of a ``must``
        are evaluated among the documents the ones before left (``a AND (b OR
        c)`` is ``(a AND b) OR (a AND c)``, ``a AND NOT b`` is ``a - (a AND
        b)``): a fingerprint's rare clause keeps its common ones (``*:* -foo``,
        ``bar OR baz``) from making sets of thousands of lines.
        """
        if isinstance(q, qa.Bool):
            result: frozenset[int] | None = within
            if q.must:
                must = q.must if len(q.must) == 1 else sorted(q.must, key=lambda c: self._cost(entry, c))
                for clause in must:
                    result = self._evaluate(entry, clause, result)
                    if not result:
                        return _EMPTY
            elif q.should:
                acc: set[int] = set()
                for clause in q.should:
                    acc |= self._evaluate(entry, clause, within)
                result = frozenset(acc)
            else:
                return _EMPTY
            assert result is not None
            for clause in q.must_not:
                if not result:
                    break
                result = result - self._evaluate(entry, clause, result)
            return result
        got = entry.memo.get(q)
        if got is None:
            got = entry.index.evaluate(q)
            if len(entry.memo) > 100_000:
                entry.memo.clear()
            entry.memo[q] = got
        return got if within is None else within & got

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


def common_build(specs: Sequence[QuerySpec]) -> tuple[str, str] | None:
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
