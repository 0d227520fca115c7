"""The analyzed Lucene query AST: what a fingerprint *means*.

:func:`elastic_recheck.core.lucene.parser.parse` turns ``query_string`` text into these
nodes after applying Lucene's classic QueryParser rules (operator precedence,
``+``/``-`` prefixes, analysis of terms and phrases with the field's analyzer).
They are the only thing the engines see: the in-memory matcher
(:mod:`elastic_recheck.core.lucene.matcher`) and the embedded store's SQL compiler both
evaluate these nodes, so the two cannot disagree about syntax.

All values are already *analyzed*: on a text field a :class:`Term` holds one
lowercased token; on a keyword field it holds the exact value.
"""

from __future__ import annotations

from dataclasses import dataclass


class Query:
    """Base class of every node."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class MatchAll(Query):
    """Matches every document (``*:*``; also ES's fix for NOT-only groups)."""


@dataclass(frozen=True, slots=True)
class MatchNone(Query):
    """Matches nothing (e.g. a clause whose text analyzes to no token)."""


@dataclass(frozen=True, slots=True)
class Term(Query):
    """One analyzed token on a text field, or one exact value on a keyword field."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class Phrase(Query):
    """Tokens at consecutive positions on a text field (``slop`` = Lucene's ``~N``).

    ``positions`` are the relative token positions produced by analysis (they
    are ``0..n-1`` with the standard analyzer, which removes no stopwords).
    """

    field: str
    terms: tuple[str, ...]
    positions: tuple[int, ...]
    slop: int = 0


@dataclass(frozen=True, slots=True)
class Prefix(Query):
    """``field:abc*``; lowercased on text fields, exact on keyword fields."""

    field: str
    prefix: str


@dataclass(frozen=True, slots=True)
class Wildcard(Query):
    """``*`` (any run) and ``?`` (one character) over one token / keyword value.

    ``pattern`` uses Lucene's WildcardQuery syntax: ``\\x`` is a literal ``x``
    (so ``\\*`` is a literal star). On text fields the unescaped text is
    lowercased; escaped characters are kept as written.
    """

    field: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Regexp(Query):
    """``field:/regex/`` in Lucene's RegExp syntax, matched against whole tokens.

    See :mod:`elastic_recheck.core.lucene.regexp` (``~`` complement, ``&``
    intersection, ``<n-m>`` intervals, ``#``, ``@``; no ``\\d``-style classes).
    """

    field: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Fuzzy(Query):
    """``term~N``: tokens within ``max_edits`` Damerau-Levenshtein edits."""

    field: str
    value: str
    max_edits: int
    prefix_length: int = 0


@dataclass(frozen=True, slots=True)
class Range(Query):
    """``field:[a TO b]``/``{a TO b}`` compared as strings (``None`` = open end)."""

    field: str
    lower: str | None
    upper: str | None
    include_lower: bool = True
    include_upper: bool = True


@dataclass(frozen=True, slots=True)
class Exists(Query):
    """``_exists_:field`` (ES): the field has at least one value.

    ``field`` may be a glob (``build_*``) when the query wrote one escaped or
    quoted (``_exists_:build\\*``): any field whose name matches.
    """

    field: str


@dataclass(frozen=True, slots=True)
class Bool(Query):
    """Lucene's BooleanQuery.

    A document matches when it matches every ``must`` clause, none of the
    ``must_not`` clauses and, when ``must`` is empty, at least one ``should``
    clause. With no ``must`` and no ``should`` it matches nothing (plain
    Lucene); the parser inserts :class:`MatchAll` into ``must`` where ES would.
    """

    must: tuple[Query, ...] = ()
    should: tuple[Query, ...] = ()
    must_not: tuple[Query, ...] = ()


def and_(*queries: Query) -> Query:
    """Combine queries so that all must match (how filters join a fingerprint)."""
    parts = tuple(q for q in queries if not isinstance(q, MatchAll))
    if not parts:
        return MatchAll()
    if len(parts) == 1:
        return parts[0]
    return Bool(must=parts)


def fields_of(query: Query) -> set[str]:
    """Every field name a query refers to."""
    out: set[str] = set()
    stack: list[Query] = [query]
    while stack:
        q = stack.pop()
        if isinstance(q, Bool):
            stack.extend(q.must)
            stack.extend(q.should)
            stack.extend(q.must_not)
        elif isinstance(q, (MatchAll, MatchNone)):
            continue
        else:
            out.add(q.field)  # type: ignore[attr-defined]
    return out
