"""What a query needs of a document: the terms every match must contain.

One walk over the analyzed query (:func:`requirement`) says, for every node,
which indexed terms a matching document must hold: a term or a phrase needs
its tokens, a prefix some term starting with it, a wildcard, regexp or fuzzy
clause some term matching its pattern; a ``must`` group needs all of its
clauses' requirements, a ``should`` group one of its alternatives';
prohibited clauses, ``*:*``, ranges and ``_exists_`` need nothing. It is a
necessary condition, never a sufficient one: whoever rules documents out
with it must still evaluate the query exactly.

Three readings of that one walk serve the three users:

* :func:`required_terms`: the condition as a small tree of exact terms and
  prefixes (:class:`NeedTerm`, :class:`NeedPrefix`, :class:`AllOf`,
  :class:`AnyOf`), simplified, for prefiltering with an index;
* :func:`required_pairs`: the ``(field, term)`` pairs *every* match holds,
  which the embedded store's percolation uses to rule out most fingerprints
  for a build without evaluating them, and to order clauses by cost;
* :func:`weakest_tokens`: the tokens of one text field required by the
  *weakest* way the query can match, which ``check-queries`` uses to find
  queries that can match with only very common words (``broad-query``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from elastic_recheck.core.lucene.ast import (
    Bool,
    Fuzzy,
    MatchNone,
    Phrase,
    Prefix,
    Query,
    Regexp,
    Term,
    Wildcard,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "NeedPattern",
    "NeedPrefix",
    "NeedTerm",
    "Requirement",
    "required_pairs",
    "required_terms",
    "requirement",
    "weakest_tokens",
]


@dataclass(frozen=True, slots=True)
class NeedTerm:
    """The document must hold this exact indexed term in ``field``.

    On a text field ``term`` is one analyzed (lowercased) token; on a keyword
    field it is the exact value.
    """

    field: str
    term: str


@dataclass(frozen=True, slots=True)
class NeedPrefix:
    """The document must hold some indexed term of ``field`` starting with ``prefix``."""

    field: str
    prefix: str


@dataclass(frozen=True, slots=True)
class NeedPattern:
    """The document must hold some indexed term of ``field`` matching a wildcard, regexp or fuzzy
    ``pattern`` (only :func:`requirement` gives these: an index cannot look them up directly)."""

    field: str
    pattern: str


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part must hold (an empty ``AllOf`` always holds)."""

    parts: tuple[Requirement, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one part must hold (an empty ``AnyOf`` never holds: the query matches nothing)."""

    parts: tuple[Requirement, ...]


Requirement = NeedTerm | NeedPrefix | NeedPattern | AllOf | AnyOf


def requirement(query: Query, is_text: Callable[[str], bool] | None = None) -> Requirement | None:
    """What a document must hold to match ``query``, as written (not simplified); None: nothing.

    ``is_text`` (a field -> text field? test), when given, makes a phrase on
    a field that is not a text field require nothing.
    """
    if isinstance(query, Term):
        return NeedTerm(query.field, query.value)
    if isinstance(query, Phrase):
        if is_text is not None and not is_text(query.field):
            return None
        return AllOf(tuple(NeedTerm(query.field, t) for t in dict.fromkeys(query.terms)))
    if isinstance(query, Prefix):
        return NeedPrefix(query.field, query.prefix)
    if isinstance(query, (Wildcard, Regexp)):
        return NeedPattern(query.field, query.pattern)
    if isinstance(query, Fuzzy):
        return NeedPattern(query.field, query.value)
    if isinstance(query, MatchNone):
        return AnyOf(())
    if isinstance(query, Bool):
        if query.must:
            parts = [r for r in (requirement(c, is_text) for c in query.must) if r is not None]
            return AllOf(tuple(parts)) if parts else None
        if query.should:
            alts = [requirement(c, is_text) for c in query.should]
            if any(a is None for a in alts):
                return None
            return AnyOf(tuple(a for a in alts if a is not None))
        return AnyOf(())  # only prohibited clauses: matches nothing
    return None  # MatchAll, Exists, Range


# --------------------------------------------------------------------------
# Exact terms and prefixes: a prefilter tree
# --------------------------------------------------------------------------


def required_terms(query: Query) -> Requirement | None:
    """A necessary condition for a document to match ``query``, or ``None`` (no restriction).

    Conservative: every document that matches ``query`` satisfies the returned
    requirement, but not every document that satisfies it matches (so the
    caller must still evaluate the query exactly, e.g. with
    :class:`~elastic_recheck.core.lucene.matcher.MemoryIndex`). Only exact
    terms and non-empty prefixes are kept (no :class:`NeedPattern`): a
    wildcard, regexp or fuzzy clause adds no requirement. The result is
    simplified: nested ``AllOf``/``AnyOf`` of the same kind are flattened and
    single-part groups unwrapped.
    """
    return _simplify(requirement(query))


def _simplify(req: Requirement | None) -> Requirement | None:
    if req is None or isinstance(req, NeedTerm):
        return req
    if isinstance(req, NeedPrefix):
        return req if req.prefix else None
    if isinstance(req, NeedPattern):
        return None
    if isinstance(req, AllOf):
        parts = [r for r in (_simplify(p) for p in req.parts) if r is not None]
        return _all(parts) if parts else None
    if not req.parts:
        return req
    alts = [_simplify(p) for p in req.parts]
    if any(a is None for a in alts):
        return None
    return _any([a for a in alts if a is not None])


def _all(parts: list[Requirement]) -> Requirement:
    flat: list[Requirement] = []
    for p in parts:
        if isinstance(p, AllOf):
            flat.extend(p.parts)
        else:
            flat.append(p)
    if any(isinstance(p, AnyOf) and not p.parts for p in flat):
        return AnyOf(())
    flat = list(dict.fromkeys(flat))
    if not flat:
        return AllOf(())
    return flat[0] if len(flat) == 1 else AllOf(tuple(flat))


def _any(parts: list[Requirement]) -> Requirement:
    flat: list[Requirement] = []
    for p in parts:
        if isinstance(p, AnyOf):
            flat.extend(p.parts)
        else:
            flat.append(p)
    flat = list(dict.fromkeys(flat))
    if not flat:
        return AnyOf(())
    return flat[0] if len(flat) == 1 else AnyOf(tuple(flat))


# --------------------------------------------------------------------------
# Terms every match holds
# --------------------------------------------------------------------------


def required_pairs(query: Query, is_text: Callable[[str], bool] | None = None) -> frozenset[tuple[str, str]]:
    """``(field, term)`` pairs every matching document contains (conservative: may be empty).

    Text terms are tokens, keyword terms exact values; an alternative
    contributes only the pairs all its branches share. ``is_text`` as for
    :func:`requirement`.
    """
    return _pairs(requirement(query, is_text))


def _pairs(req: Requirement | None) -> frozenset[tuple[str, str]]:
    if isinstance(req, NeedTerm):
        return frozenset({(req.field, req.term)})
    if isinstance(req, AllOf):
        out: set[tuple[str, str]] = set()
        for p in req.parts:
            out |= _pairs(p)
        return frozenset(out)
    if isinstance(req, AnyOf) and req.parts:
        common = set(_pairs(req.parts[0]))
        for p in req.parts[1:]:
            common &= _pairs(p)
        return frozenset(common)
    return frozenset()


# --------------------------------------------------------------------------
# The weakest way to match, on one text field
# --------------------------------------------------------------------------


def weakest_tokens(query: Query, text_field: str = "message") -> frozenset[str] | None:
    """Tokens of ``text_field`` required by the *weakest* way the query can match.

    For a disjunction the alternative with the fewest required tokens wins
    (the first of them on a tie); a conjunction requires the union.
    Wildcard/prefix/regex/fuzzy clauses count as one token each (their
    pattern followed by ``*``). None when some way to match needs no clause
    on ``text_field`` at all.
    """
    return _weakest(requirement(query), text_field)


def _weakest(req: Requirement | None, text_field: str) -> frozenset[str] | None:
    if req is None:
        return None
    if isinstance(req, NeedTerm):
        return frozenset({req.term}) if req.field == text_field else None
    if isinstance(req, NeedPrefix):
        return frozenset({f"{req.prefix}*"}) if req.field == text_field else None
    if isinstance(req, NeedPattern):
        return frozenset({f"{req.pattern}*"}) if req.field == text_field else None
    if isinstance(req, AllOf):
        acc: set[str] = set()
        known = False
        for p in req.parts:
            sub = _weakest(p, text_field)
            if sub is not None:
                acc |= sub
                known = True
        return frozenset(acc) if known else None
    best: frozenset[str] | None = None
    for p in req.parts:
        sub = _weakest(p, text_field)
        if sub is None:
            return None
        if best is None or len(sub) < len(best):
            best = sub
    return best
