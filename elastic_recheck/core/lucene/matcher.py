"""Evaluate query ASTs over documents held in memory, exactly as Lucene would.

:class:`MemoryIndex` indexes a batch of documents (one build's log lines, say)
the way the Elasticsearch mapping does (:mod:`elastic_recheck.core.schema`): text
fields through :func:`elastic_recheck.core.lucene.analysis.analyze_values` into postings
(each token's occurrences as ``doc << 32 | position`` keys), keyword fields as exact values. Then
:meth:`MemoryIndex.search` evaluates a :mod:`elastic_recheck.core.lucene.ast` tree
with set algebra on the postings: a term is a dictionary lookup, a phrase
intersects the documents of its terms (rarest first) before it looks at
positions, a boolean query intersects/unites/subtracts sets. Multi-term
queries (prefix, wildcard, regexp, fuzzy, range) scan the field's vocabulary
(not the documents) once.

What a query needs of a document (a conservative prefilter) is
:mod:`elastic_recheck.core.lucene.required`.

Known approximations (documented where they live):

* sloppy phrases (``"a b"~N``) follow Lucene's ``SloppyPhraseMatcher``: the
  smallest window over the terms' positions (each relative to its place in
  the phrase) must be at most N. Phrases that repeat a term also need distinct
  positions for the repeats; this searches all windows for such an
  assignment, where Lucene resolves collisions greedily. They agreed on every
  recorded case (thousands of random phrases with repeats), but corner cases
  of Lucene's greedy repeat handling may remain.
* ``FuzzyQuery`` keeps only the best 50 expansions of a term (Lucene ranks
  them over a shard's whole vocabulary); here they are ranked over the
  vocabulary of the indexed batch, so a per-build index can match a line that
  a large Elasticsearch index would not.
"""

from __future__ import annotations

import heapq
import logging
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Mapping as AbcMapping
from decimal import Decimal
from typing import Any

from elastic_recheck.core.documents import flatten_fields
from elastic_recheck.core.lucene.analysis import analyze_values
from elastic_recheck.core.lucene.ast import (
    Bool,
    Exists,
    Fuzzy,
    MatchAll,
    MatchNone,
    Phrase,
    Prefix,
    Query,
    Range,
    Regexp,
    Term,
    Wildcard,
)
from elastic_recheck.core.lucene.automaton import compile_wildcard_automaton
from elastic_recheck.core.lucene.regexp import compile_regexp
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping

__all__ = [
    "MemoryIndex",
    "document_id",
    "flatten_document",
    "value_text",
]

LOG = logging.getLogger(__name__)

#: ``FuzzyQuery.defaultMaxExpansions``: a fuzzy term expands to at most this many terms.
FUZZY_MAX_EXPANSIONS = 50
#: Lucene refuses to index a keyword (``StringField``) longer than this many UTF-8 bytes.
MAX_KEYWORD_BYTES = 32766
#: Elasticsearch's metadata field of the document id (``_id:d1``, ``_id:d*``).
ID_FIELD = "_id"

_EMPTY: frozenset[int] = frozenset()
# Postings keys pack (doc, position) into one int so that an exact phrase is a
# few set lookups per occurrence of its rarest term.
_SHIFT = 32
_MASK = (1 << _SHIFT) - 1


# --------------------------------------------------------------------------
# Documents -> field values
# --------------------------------------------------------------------------


def value_text(value: Any) -> str:
    """A scalar JSON value as the text Lucene indexes (Jackson's ``asText``).

    Strings as they are; ``true``/``false``; integers in decimal; floats like
    Java's ``Double.toString`` (``1.5``, ``100.0``, ``1.0E10``, ``1.0E-4``).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _java_double(value)
    return str(value)


def _java_double(d: float) -> str:
    if math.isnan(d):
        return "NaN"
    if math.isinf(d):
        return "Infinity" if d > 0 else "-Infinity"
    if d == 0:
        return "-0.0" if math.copysign(1.0, d) < 0 else "0.0"
    a = abs(d)
    if 1e-3 <= a < 1e7:
        r = repr(d)
        return r if ("." in r or "e" in r) else r + ".0"
    sign, digits, exponent = Decimal(repr(d)).normalize().as_tuple()
    assert isinstance(exponent, int)
    ds = "".join(map(str, digits))
    exp10 = exponent + len(ds) - 1
    mant = ds[0] + "." + (ds[1:] or "0")
    return ("-" if sign else "") + f"{mant}E{exp10}"


def document_id(value: Any) -> str | None:
    """A document's id from its ``id`` value (a string or an integer; anything else: no id)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def flatten_document(doc: AbcMapping[str, Any]) -> dict[str, list[str]]:
    """``field -> values`` as the oracle/ES index them: arrays are multi-valued,
    nested objects become ``a.b`` (:func:`~elastic_recheck.core.documents.flatten_fields`),
    ``null`` is skipped, scalars become text."""
    out: dict[str, list[str]] = {}

    def add(name: str, v: Any) -> None:
        if v is None:
            return
        if isinstance(v, (list, tuple)):
            for x in v:
                add(name, x)
            return
        out.setdefault(name, []).append(value_text(v))

    for name, value in flatten_fields(doc):
        add(name, value)
    return out


# --------------------------------------------------------------------------
# Multi-term helpers
# --------------------------------------------------------------------------


def wildcard_predicate(pattern: str) -> Callable[[str], bool]:
    """Lucene ``WildcardQuery`` syntax: ``*`` any run, ``?`` one character, ``\\`` escapes.

    Run by a deterministic automaton (:mod:`elastic_recheck.core.lucene.automaton`): one
    step per code point of the term, whatever the pattern.
    """
    return compile_wildcard_automaton(pattern).matches


def edit_distance_at_most(a: str, b: str, k: int) -> int | None:
    """The optimal-string-alignment distance between ``a`` and ``b`` if it is <= ``k``, else ``None``.

    Lucene's Levenshtein automata with transpositions count an adjacent swap as
    one edit (restricted Damerau-Levenshtein), over code points.
    """
    la, lb = len(a), len(b)
    if abs(la - lb) > k:
        return None
    if a == b:
        return 0
    i = 0
    while i < la and i < lb and a[i] == b[i]:
        i += 1
    a, b = a[i:], b[i:]
    la, lb = len(a), len(b)
    j = 0
    while j < la and j < lb and a[la - 1 - j] == b[lb - 1 - j]:
        j += 1
    if j:
        a, b = a[: la - j], b[: lb - j]
    la, lb = len(a), len(b)
    if la == 0 or lb == 0:
        d = max(la, lb)
        return d if d <= k else None
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for x in range(1, la + 1):
        cur = [x] + [0] * lb
        best = cur[0]
        ca = a[x - 1]
        for y in range(1, lb + 1):
            cb = b[y - 1]
            v = min(prev[y] + 1, cur[y - 1] + 1, prev[y - 1] + (ca != cb))
            if x > 1 and y > 1 and ca == b[y - 2] and a[x - 2] == cb:
                v = min(v, prev2[y - 2] + 1)
            cur[y] = v
            if v < best:
                best = v
        if best > k:
            return None
        prev2, prev = prev, cur
    return prev[lb] if prev[lb] <= k else None


def damerau_within(a: str, b: str, k: int) -> bool:
    """Is the optimal-string-alignment distance between ``a`` and ``b`` at most ``k``?"""
    return edit_distance_at_most(a, b, k) is not None


# --------------------------------------------------------------------------
# Phrase matching
# --------------------------------------------------------------------------


def _min_window(lists: Sequence[Sequence[int]], offsets: Sequence[int], slop: int) -> bool:
    """SloppyPhraseMatcher without repeated terms: the smallest range of
    ``pos_i - offset_i`` (one position per term) must be <= slop."""
    heap = []
    hi = -(10**18)
    for i, lst in enumerate(lists):
        v = lst[0] - offsets[i]
        heap.append((v, i, 0))
        hi = max(hi, v)
    heapq.heapify(heap)
    while True:
        v, i, k = heap[0]
        if hi - v <= slop:
            return True
        if k + 1 >= len(lists[i]):
            return False
        nv = lists[i][k + 1] - offsets[i]
        heapq.heapreplace(heap, (nv, i, k + 1))
        if nv > hi:
            hi = nv


def _sloppy_with_repeats(
    terms: Sequence[str], lists: Sequence[Sequence[int]], offsets: Sequence[int], slop: int
) -> bool:
    """Sloppy phrase whose terms repeat: repeats must use distinct positions.

    Tries every window start; see the module doc on how this relates to
    Lucene's matcher.
    """
    n = len(lists)
    # candidate "starts": every value pos - offset; the window is [s, s + slop]
    values = sorted({p - offsets[i] for i in range(n) for p in lists[i]})
    for lo in values:
        hi = lo + slop
        choices = [
            lists[i][bisect_left(lists[i], lo + offsets[i]) : bisect_right(lists[i], hi + offsets[i])] for i in range(n)
        ]
        if any(not c for c in choices):
            continue
        if _distinct_assignment(terms, choices):
            return True
    return False


def _distinct_assignment(terms: Sequence[str], choices: Sequence[Sequence[int]]) -> bool:
    """Can every repeated term take a different position among its ``choices``?

    For one term, each repeat's choices are that term's positions inside an
    interval, so a greedy matching (intervals by increasing end, each taking
    its smallest free position) is optimal.
    """
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(terms):
        groups.setdefault(t, []).append(i)
    for idxs in groups.values():
        if len(idxs) == 1:
            continue
        used: set[int] = set()
        for i in sorted(idxs, key=lambda i: (choices[i][-1], choices[i][0])):
            for p in choices[i]:
                if p not in used:
                    used.add(p)
                    break
            else:
                return False
    return True


# --------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------


class MemoryIndex:
    """An in-memory index of a batch of documents; :meth:`search` returns doc indexes.

    :param docs: documents as dicts ``field -> value`` (or list of values);
        numbers and booleans are indexed as their text, ``None`` is skipped.
    :param mapping: which fields are analyzed text; every other field is a keyword.
    :param ids: each document's id, answered by ``_id`` queries as
        Elasticsearch does (default: :func:`document_id` of its ``id``, which
        stays an ordinary field too).
    """

    def __init__(
        self,
        docs: Iterable[AbcMapping[str, Any]],
        mapping: Mapping = DEFAULT_MAPPING,
        ids: Sequence[str | None] | None = None,
    ) -> None:
        self.mapping = mapping
        own_ids: list[str | None] = list(ids) if ids is not None else []
        #: each document's id (``_id``), None for a document without one
        self.ids: Sequence[str | None] = own_ids
        self._id_docs: dict[str, set[int]] | None = None
        #: text field -> token -> ``doc << 32 | position`` keys (one per occurrence)
        self.postings: dict[str, dict[str, set[int]]] = {}
        #: keyword field -> value -> docs
        self.values: dict[str, dict[str, set[int]]] = {}
        #: field -> docs where it has at least one value (ES ``_field_names``)
        self.present: dict[str, set[int]] = {}
        self._doc_sets: dict[tuple[str, str], frozenset[int]] = {}
        self._positions: dict[tuple[str, str], dict[int, list[int]]] = {}
        n = 0
        gap = mapping.position_increment_gap
        for doc_id, doc in enumerate(docs):
            n += 1
            if ids is None:
                own_ids.append(document_id(doc.get("id")))
            for name, vals in flatten_document(doc).items():
                if name == ID_FIELD:
                    continue  # a metadata field: the document's own id answers it
                if mapping.is_text(name):
                    field_post = self.postings.setdefault(name, {})
                    base = doc_id << _SHIFT
                    for tok, pos in analyze_values(vals, gap):
                        keys = field_post.get(tok)
                        if keys is None:
                            field_post[tok] = {base | pos}
                        else:
                            keys.add(base | pos)
                    self.present.setdefault(name, set()).add(doc_id)
                else:
                    kept = False
                    field_vals = self.values.setdefault(name, {})
                    for v in vals:
                        if len(v) * 3 > MAX_KEYWORD_BYTES and len(v.encode("utf-8")) > MAX_KEYWORD_BYTES:
                            LOG.warning("keyword value too long for Lucene, not indexed: field %s", name)
                            continue
                        field_vals.setdefault(v, set()).add(doc_id)
                        kept = True
                    if kept:
                        self.present.setdefault(name, set()).add(doc_id)
        self.size = n
        self.all_docs: frozenset[int] = frozenset(range(n))

    @classmethod
    def from_postings(
        cls,
        mapping: Mapping,
        ids: Sequence[str | None],
        postings: dict[str, dict[str, set[int]]],
        values: dict[str, dict[str, set[int]]],
        present: dict[str, set[int]],
    ) -> MemoryIndex:
        """An index of ``len(ids)`` documents indexed elsewhere, in this class's layout.

        ``postings``: text field -> token -> ``doc << 32 | position`` keys;
        ``values``: keyword field -> value -> documents; ``present``: field ->
        documents with a value. :func:`elastic_recheck.core.lucene.build_index.build_index`
        builds them from a build's stored parts.
        """
        index = cls((), mapping=mapping)
        index.ids = ids  # (as given: a lazy sequence stays lazy)
        index.postings = postings
        index.values = values
        index.present = present
        index.size = len(index.ids)
        index.all_docs = frozenset(range(index.size))
        return index

    # -- term access -----------------------------------------------------------
    def id_docs(self) -> dict[str, set[int]]:
        """``_id`` value -> its document (a keyword field made of the documents' ids)."""
        if self._id_docs is None:
            out: dict[str, set[int]] = {}
            for d, value in enumerate(self.ids):
                if value is not None:
                    out.setdefault(value, set()).add(d)
            self._id_docs = out
        return self._id_docs

    def keyword_terms(self, field: str) -> AbcMapping[str, set[int]]:
        """A keyword field's values -> their documents (``_id`` included)."""
        if field == ID_FIELD:
            return self.id_docs()
        return self.values.get(field, {})

    def docs_with(self, field: str, term: str) -> frozenset[int]:
        """Documents holding ``term`` (a token on text fields, a value on keyword fields)."""
        key = (field, term)
        got = self._doc_sets.get(key)
        if got is not None:
            return got
        if field == ID_FIELD:
            got = frozenset(self.id_docs().get(term, ()))
        elif self.mapping.is_text(field):
            post = self.postings.get(field, {}).get(term)
            got = frozenset([k >> _SHIFT for k in post]) if post else _EMPTY
        else:
            vals = self.values.get(field, {}).get(term)
            got = frozenset(vals) if vals else _EMPTY
        self._doc_sets[key] = got
        return got

    def _keys(self, field: str, term: str) -> set[int]:
        return self.postings.get(field, {}).get(term) or set()

    def positions(self, field: str, term: str) -> dict[int, list[int]]:
        """``doc -> sorted positions`` of a token of a text field."""
        key = (field, term)
        got = self._positions.get(key)
        if got is None:
            got = {}
            for k in sorted(self.postings.get(field, {}).get(term, ())):
                got.setdefault(k >> _SHIFT, []).append(k & _MASK)
            self._positions[key] = got
        return got

    def vocabulary(self, field: str) -> Iterator[str]:
        """Every distinct indexed term of ``field``."""
        if self.mapping.is_text(field):
            return iter(self.postings.get(field, {}))
        return iter(self.keyword_terms(field))

    def doc_frequency(self, field: str, term: str) -> int:
        return len(self.docs_with(field, term))

    def _docs_matching_terms(self, field: str, pred: Callable[[str], bool]) -> frozenset[int]:
        out: set[int] = set()
        for term in self.vocabulary(field):
            if pred(term):
                out |= self.docs_with(field, term)
        return frozenset(out)

    # -- evaluation ------------------------------------------------------------
    def search(self, query: Query) -> list[int]:
        """Indexes (0-based, in input order) of the matching documents, sorted."""
        return sorted(self.evaluate(query))

    def count(self, query: Query) -> int:
        return len(self.evaluate(query))

    def evaluate(self, query: Query) -> frozenset[int]:
        """The set of matching document indexes."""
        return self._eval(query)

    def _eval(self, q: Query) -> frozenset[int]:
        if isinstance(q, Term):
            return self.docs_with(q.field, q.value)
        if isinstance(q, Bool):
            return self._eval_bool(q)
        if isinstance(q, Phrase):
            return self._eval_phrase(q)
        if isinstance(q, MatchAll):
            return self.all_docs
        if isinstance(q, MatchNone):
            return _EMPTY
        if isinstance(q, Prefix):
            p = q.prefix
            return self._docs_matching_terms(q.field, lambda t: t.startswith(p))
        if isinstance(q, Wildcard):
            return self._docs_matching_terms(q.field, wildcard_predicate(q.pattern))
        if isinstance(q, Regexp):
            return self._docs_matching_terms(q.field, compile_regexp(q.pattern))
        if isinstance(q, Fuzzy):
            return self._eval_fuzzy(q)
        if isinstance(q, Range):
            return self._docs_matching_terms(q.field, _range_predicate(q))
        if isinstance(q, Exists):
            return self._eval_exists(q.field)
        raise TypeError(f"cannot evaluate {q!r}")

    def _eval_exists(self, field: str) -> frozenset[int]:
        if field == ID_FIELD:
            return self.all_docs  # every document has an id (ES: a match-all query)
        if "*" not in field and "?" not in field:
            return frozenset(self.present.get(field, ()))
        pred = wildcard_predicate(field)
        out: set[int] = set()
        for name, docs in self.present.items():
            if pred(name):
                out |= docs
        return frozenset(out)

    def _eval_fuzzy(self, q: Fuzzy) -> frozenset[int]:
        """Lucene's FuzzyQuery: the best ``FUZZY_MAX_EXPANSIONS`` terms within the edit distance.

        Terms are ranked like ``TopTermsBlendedFreqScoringRewrite``: by
        similarity ``1 - edits / min(len(term), len(query))`` (1 for an exact
        match), then by term order. So on a large vocabulary a term within the
        distance may still not match (ES behaves the same, per shard).
        """
        value, k = q.value, q.max_edits
        pre = value[: q.prefix_length]
        qlen = len(value)
        scored: list[tuple[float, str]] = []
        for term in self.vocabulary(q.field):
            if not term.startswith(pre):
                continue
            ed = edit_distance_at_most(value, term, k)
            if ed is None:
                continue
            boost = 1.0 if ed == 0 else 1.0 - ed / min(len(term), qlen) if min(len(term), qlen) else -math.inf
            scored.append((boost, term))
        if len(scored) > FUZZY_MAX_EXPANSIONS:
            scored.sort(key=lambda bt: (-bt[0], bt[1]))
            del scored[FUZZY_MAX_EXPANSIONS:]
        out: set[int] = set()
        for _, term in scored:
            out |= self.docs_with(q.field, term)
        return frozenset(out)

    def _term_cost(self, field: str, term: str) -> int:
        if self.mapping.is_text(field):
            return len(self.postings.get(field, {}).get(term, ()))
        return len(self.keyword_terms(field).get(term, ()))

    def _cost(self, q: Query) -> int:
        """A cheap estimate of how much evaluating ``q`` costs (to order AND clauses)."""
        if isinstance(q, Term):
            return self._term_cost(q.field, q.value)
        if isinstance(q, Phrase):
            return min(self._term_cost(q.field, t) for t in q.terms)
        if isinstance(q, Bool) and q.must:
            return min(self._cost(c) for c in q.must)
        return (self.size + 1) * 64

    def _eval_bool(self, q: Bool) -> frozenset[int]:
        if q.must:
            result: frozenset[int] | None = None
            for c in sorted(q.must, key=self._cost):
                docs = self._eval(c)
                result = docs if result is None else result & docs
                if not result:
                    return _EMPTY
            assert result is not None
        elif q.should:
            acc: set[int] = set()
            for c in q.should:
                acc |= self._eval(c)
            result = frozenset(acc)
        else:
            return _EMPTY  # only prohibited clauses: Lucene matches nothing
        for c in q.must_not:
            if not result:
                break
            result = result - self._eval(c)
        return result

    def _eval_phrase(self, q: Phrase) -> frozenset[int]:
        field_post = self.postings.get(q.field)
        if field_post is None:
            return _EMPTY
        posts = []
        for t in q.terms:
            p = field_post.get(t)
            if not p:
                return _EMPTY
            posts.append(p)
        offsets = q.positions
        if q.slop == 0:
            # Exact: walk the rarest term's occurrences, look the others up.
            order = sorted(range(len(posts)), key=lambda i: len(posts[i]))
            r = order[0]
            cur: Iterable[int] = posts[r]
            for i in order[1:]:
                keyset = self._keys(q.field, q.terms[i])
                delta = offsets[i] - offsets[r]
                cur = [k for k in cur if k + delta in keyset]
                if not cur:
                    return _EMPTY
            return frozenset([k >> _SHIFT for k in cur])
        order = sorted(range(len(posts)), key=lambda i: len(posts[i]))
        cand = set(self.docs_with(q.field, q.terms[order[0]]))
        for i in order[1:]:
            cand.intersection_update(self.docs_with(q.field, q.terms[i]))
            if not cand:
                return _EMPTY
        pos_maps = [self.positions(q.field, t) for t in q.terms]
        repeats = len(set(q.terms)) < len(q.terms)
        matched = []
        for d in cand:
            lists = [pm[d] for pm in pos_maps]
            if repeats:
                ok = _sloppy_with_repeats(q.terms, lists, offsets, q.slop)
            else:
                ok = _min_window(lists, offsets, q.slop)
            if ok:
                matched.append(d)
        return frozenset(matched)


def _range_predicate(q: Range) -> Callable[[str], bool]:
    lo, hi, il, iu = q.lower, q.upper, q.include_lower, q.include_upper

    def pred(t: str) -> bool:
        if lo is not None and (t < lo or (t == lo and not il)):
            return False
        if hi is not None and (t > hi or (t == hi and not iu)):
            return False
        return True

    return pred
