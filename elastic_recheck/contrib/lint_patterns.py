"""``check-queries`` rules for broad and slow multi-term clauses.

A fingerprint that matches every line classifies every failure under its
bug; a regexp or wildcard without a literal start makes a cluster run its
automaton over every term of the field. The rules look at the compiled
automaton itself (:mod:`elastic_recheck.core.lucene.automaton`), so ``/.*/``, ``/@/``,
``/(.|x)*/`` and ``*`` are all recognised as "every term":

* ``match-all``: ``*:*``, ``message:*`` (ES: every line with a message), a
  regexp or wildcard accepting every term;
* ``broad-pattern``: a prefix or pattern whose literal start is one or two
  characters (``message:a*`` hits about a third of all lines);
* ``slow-pattern``: a regexp with no literal start, or whose automaton has
  more than :data:`SLOW_STATES` states.

Positive clauses only: inside ``NOT`` such a clause excludes everything.
``check-queries`` backs these findings (and ``broad-query``) with the share
of lines the whole query hits on the configured store when it can
(:func:`measure_share`).
"""

from __future__ import annotations

from collections.abc import Iterator

from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.automaton import (
    MAX_CODE_POINT,
    Dfa,
    TooComplexError,
    compile_regexp_automaton,
    compile_wildcard_automaton,
)
from elastic_recheck.core.lucene.regexp import RegexpSyntaxError, parse_regexp
from elastic_recheck.core.schema import Mapping

__all__ = ["CODES", "MEASURED", "SLOW_STATES", "pattern_findings"]

#: A regexp automaton with more states than this is reported as slow.
SLOW_STATES = 1000
#: A literal start this short (or shorter) is broad.
BROAD_PREFIX = 2

CODES: dict[str, str] = {
    "match-all": "a clause that matches every line (*:*, message:*, /.*/, *): the fingerprint matches every failure",
    "broad-pattern": "a prefix, wildcard or regexp with a literal start of at most 2 characters: a large share of all lines",
    "slow-pattern": "a regexp without a literal start or with a large automaton: a cluster scans every term of the field",
}
#: Finding codes ``check-queries`` backs with the share of lines the query hits.
MEASURED = frozenset({"match-all", "broad-pattern", "slow-pattern", "broad-query"})


def _positive(query: qa.Query) -> Iterator[qa.Query]:
    if isinstance(query, qa.Bool):
        for q in (*query.must, *query.should):
            yield from _positive(q)
    else:
        yield query


def _accepts_everything(dfa: Dfa) -> bool:
    return dfa.num_states > 0 and bool(dfa.accept[0]) and dfa.transitions(0) == [(0, MAX_CODE_POINT, 0)]


def _literal_start(dfa: Dfa) -> str:
    """Lucene's ``getCommonPrefix``: the characters every accepted term starts with."""
    out: list[str] = []
    seen = {0}
    state = 0
    while dfa.num_states and not dfa.accept[state] and len(dfa.transitions(state)) == 1:
        [(lo, hi, nxt)] = dfa.transitions(state)
        if lo != hi or nxt in seen:
            break
        out.append(chr(lo))
        seen.add(nxt)
        state = nxt
    return "".join(out)


def _offset(query: str, needle: str) -> int:
    at = query.lower().find(needle.lower()) if needle else -1
    return at if at >= 0 else len(query) - len(query.lstrip())


def pattern_findings(query: str, ast: qa.Query, mapping: Mapping) -> list[tuple[int, str, str]]:
    """``(offset in query, code, message)`` for every broad or slow positive clause of ``ast``."""
    out: list[tuple[int, str, str]] = []
    for q in _positive(ast):
        if isinstance(q, qa.MatchAll):
            out.append((_offset(query, "*:*"), "match-all", "`*:*` matches every line: this fingerprint would match every failure"))
        elif isinstance(q, qa.Exists) and mapping.is_text(q.field):
            out.append(
                (
                    _offset(query, f"{q.field}:*"),
                    "match-all",
                    f"`{q.field}:*` matches every line that has a {q.field} (all of them): "
                    "this fingerprint would match every failure",
                )
            )
        elif isinstance(q, qa.Prefix) and len(q.prefix) <= BROAD_PREFIX and mapping.is_text(q.field):
            shown = f"{q.field}:{q.prefix}*"
            out.append(
                (
                    _offset(query, f"{q.prefix}*"),
                    "broad-pattern",
                    f"`{shown}` matches every {q.field} token starting with {q.prefix!r}: a large share of all lines",
                )
            )
        elif isinstance(q, (qa.Regexp, qa.Wildcard)):
            out.extend(_pattern(query, q, mapping))
    return out


def _pattern(query: str, q: qa.Regexp | qa.Wildcard, mapping: Mapping) -> list[tuple[int, str, str]]:
    regexp = isinstance(q, qa.Regexp)
    needle = f"/{q.pattern}/" if regexp else q.pattern
    shown = f"{q.field}:{needle}"
    try:
        dfa = compile_regexp_automaton(q.pattern, parse_regexp(q.pattern)) if regexp else compile_wildcard_automaton(q.pattern)
    except (RegexpSyntaxError, TooComplexError):  # the parser reports these
        return []
    at = _offset(query, needle)
    if _accepts_everything(dfa):
        return [(at, "match-all", f"`{shown}` matches every {q.field} term: this fingerprint would match every failure")]
    start = _literal_start(dfa)
    states = dfa.num_states
    if regexp and states > SLOW_STATES:
        return [(at, "slow-pattern", f"`{shown}` compiles to {states} automaton states: slow on a large cluster")]
    if regexp and not start:
        return [
            (
                at,
                "slow-pattern",
                f"`{shown}` has no literal start: a cluster runs it over every term of `{q.field}`; "
                "start it with the characters every match begins with",
            )
        ]
    if 0 < len(start) <= BROAD_PREFIX and mapping.is_text(q.field) and (not regexp or _loose(dfa)):
        return [(at, "broad-pattern", f"`{shown}` only needs {start!r} at the start of a {q.field} token: a large share of all lines")]
    return []


def _loose(dfa: Dfa) -> bool:
    """Some state after the literal start loops on any character (the pattern ends in ``.*``-like freedom)."""
    return any((row[0][0], row[-1][1]) == (0, MAX_CODE_POINT) for row in map(dfa.transitions, range(dfa.num_states)) if row)
