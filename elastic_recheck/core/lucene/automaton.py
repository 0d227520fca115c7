"""Finite automata over code points, built the way Lucene 8 builds them.

Regexp (``field:/.../``) and wildcard (``field:a*b?``) queries are matched
through a deterministic automaton, never by backtracking: a term of ``n``
code points costs ``n`` steps (a binary search over the state's ranges
each), whatever the pattern.

The automata are built with Lucene's own operations (``RegExp.toAutomaton``,
``Operations.concatenate/union/optional/repeat/complement/intersection``,
``determinize``, ``MinimizationOperations.minimize``, ``WildcardQuery
.toAutomaton``, ``CompiledAutomaton`` with its UTF-8 form (``UTF32ToUTF8``)
and, for infinite languages, the reversed UTF-8 form it determinizes to find
a common suffix), because Lucene refuses a query
when one of those determinizations would need more than
:data:`MAX_DETERMINIZED_STATES` states, and how many states a
determinization needs depends on the exact nondeterministic automaton it
starts from. :class:`TooComplexError` carries Lucene's message
("Determinizing ... would result in more than 10000 states.", or "input
automaton is too large: N" from ``Operations.isFinite``).

One addition: building stops with :class:`TooComplexError` after
:data:`MAX_WORK` elementary steps (states created plus transitions
visited), so no pattern can hold a thread for long; with every pattern we
generated (see ``docs/reliability.md``) Lucene refused the query before
this budget was reached.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from elastic_recheck.core.lucene.automaton_build import (
    _BUDGET_MESSAGE,
    MAX_CODE_POINT,
    MAX_DETERMINIZED_STATES,
    MAX_WORK,
    Automaton,
    TooComplexError,
    Trans,
    _Budget,
    _OverBudget,
    _ranges_automaton,
    _TooComplex,
    _TooLarge,
    concatenate,
    make_any_string,
    make_char_range,
    make_empty,
    make_string,
    optional,
    repeat_min,
    repeat_min_max,
    repeat_star,
    union,
)
from elastic_recheck.core.lucene.automaton_ops import (
    _check_finite_depth,
    _describe,
    _is_empty,
    _is_total,
    _singleton,
    complement,
    determinize,
    intersection,
    minimize,
    reverse,
    utf8_automaton,
)

__all__ = [
    "MAX_CODE_POINT",
    "MAX_DETERMINIZED_STATES",
    "Dfa",
    "TooComplexError",
    "compile_regexp_automaton",
    "compile_wildcard_automaton",
    "regexp_refusal",
    "wildcard_refusal",
]

def make_decimal_interval(lo: int, hi: int, digits: int, budget: _Budget) -> Automaton:
    """``<lo-hi>``: decimal numbers in ``[lo, hi]``; exactly ``digits`` long when > 0, else any leading zeros."""
    zero, nine = ord("0"), ord("9")
    parts: list[Automaton] = []
    lengths = [digits] if digits > 0 else list(range(len(str(lo)), len(str(hi)) + 1))
    for k in lengths:
        # numbers in [lo, hi] written with exactly k digits (k == digits: zero padded)
        first = 10 ** (k - 1) if (digits == 0 and k > 1) else 0
        a_lo, a_hi = max(lo, first), min(hi, 10**k - 1)
        if a_lo > a_hi:
            continue
        slo, shi = str(a_lo).zfill(k), str(a_hi).zfill(k)
        a = Automaton()
        states: dict[tuple[int, bool, bool], int] = {}

        def state(pos: int, tl: bool, th: bool, a: Automaton = a, states: dict[tuple[int, bool, bool], int] = states, k: int = k) -> int:
            key = (pos, tl, th)
            if key not in states:
                states[key] = a.create_state(accept=pos == k)
            return states[key]

        state(0, True, True)
        work = [(0, True, True)]
        while work:
            pos, tl, th = work.pop()
            if pos == k:
                continue
            src = states[(pos, tl, th)]
            dlo = ord(slo[pos]) if tl else zero
            dhi = ord(shi[pos]) if th else nine
            for c in range(dlo, dhi + 1):
                key = (pos + 1, tl and c == dlo, th and c == dhi)
                fresh = key not in states
                a.trans[src].append((c, c, state(*key)))
                if fresh:
                    work.append(key)
            budget.spend(10)
        parts.append(a)
    body = union(parts) if parts else make_empty()
    if digits == 0:
        zeros = Automaton()
        z = zeros.create_state(accept=True)
        zeros.trans[z].append((zero, zero, z))
        body = concatenate([zeros, body])
    return minimize(body, MAX_DETERMINIZED_STATES, budget)


def _leaves(node: tuple[Any, ...], kind: str, budget: _Budget) -> list[Automaton]:
    if node[0] == kind:
        return _leaves(node[1], kind, budget) + _leaves(node[2], kind, budget)
    return [_regexp(node, budget)]


def _repeat_check(a: Automaton, times: int) -> None:
    """RegExp's ``(numStates - 1) * max > maxDeterminizedStates`` check before repeating.

    Where Java's int product overflows, Lucene goes on building ~2**31
    states (and runs out of memory); we refuse like the check does.
    """
    product = (a.num_states - 1) * times
    if product > MAX_DETERMINIZED_STATES:
        raise _TooComplex(_describe(a), product)


def _regexp(node: tuple[Any, ...], budget: _Budget) -> Automaton:
    kind = node[0]
    limit = MAX_DETERMINIZED_STATES
    budget.spend(1)
    if kind == "char":
        return make_char_range(ord(node[1]), ord(node[1]))
    if kind == "any":
        return make_char_range(0, MAX_CODE_POINT)
    if kind == "none":
        return make_empty()
    if kind == "anystr":
        return make_any_string()
    if kind == "str":
        return make_string(node[1])
    if kind == "class":
        ranges = [(ord(lo), ord(hi)) for lo, hi in node[1]]
        if not node[2]:
            return _ranges_automaton(ranges)
        inside = _ranges_automaton(ranges)
        return minimize(intersection(make_char_range(0, MAX_CODE_POINT), complement(inside, limit, budget), budget), limit, budget)
    if kind == "union":
        return minimize(union(_leaves(node, "union", budget)), limit, budget)
    if kind == "concat":
        return minimize(concatenate(_leaves(node, "concat", budget)), limit, budget)
    if kind == "inter":
        return minimize(intersection(_regexp(node[1], budget), _regexp(node[2], budget), budget), limit, budget)
    if kind == "compl":
        return minimize(complement(_regexp(node[1], budget), limit, budget), limit, budget)
    if kind == "interval":
        return make_decimal_interval(node[1], node[2], node[3], budget)
    if kind == "repeat":
        inner = _regexp(node[1], budget)
        lo, hi, op = node[2], node[3], node[4] if len(node) > 4 else ""
        if op == "?":
            return minimize(optional(inner), limit, budget)
        if hi is None:
            if op == "*":
                return minimize(repeat_star(inner), limit, budget)
            _repeat_check(inner, lo)
            return minimize(repeat_min(inner, lo), limit, budget)
        _repeat_check(inner, hi)
        return repeat_min_max(inner, lo, hi, budget)
    raise AssertionError(kind)


# --------------------------------------------------------------------------
# CompiledAutomaton and running
# --------------------------------------------------------------------------


class Dfa:
    """A deterministic automaton ready to run, in flat arrays (about 12 bytes per transition).

    State ``s`` owns transitions ``offsets[s]:offsets[s + 1]`` of ``starts``/
    ``ends``/``dests`` (ranges sorted by start); a step is one binary search.
    """

    __slots__ = ("accept", "dests", "ends", "offsets", "starts")

    def __init__(self, a: Automaton) -> None:
        self.starts = array("i")
        self.ends = array("i")
        self.dests = array("i")
        self.offsets = array("i", [0])
        self.accept = bytes(bytearray(a.accept))
        for s in range(a.num_states):
            for lo, hi, d in a.normalized(s):
                self.starts.append(lo)
                self.ends.append(hi)
                self.dests.append(d)
            self.offsets.append(len(self.starts))

    @property
    def num_states(self) -> int:
        return len(self.accept)

    def transitions(self, state: int) -> list[Trans]:
        """``(min, max, dest)`` of one state, sorted."""
        lo, hi = self.offsets[state], self.offsets[state + 1]
        return list(zip(self.starts[lo:hi], self.ends[lo:hi], self.dests[lo:hi], strict=True))

    def matches(self, term: str) -> bool:
        if not self.accept:
            return False
        s = 0
        starts, ends, dests, offsets = self.starts, self.ends, self.dests, self.offsets
        for ch in term:
            cp = ord(ch)
            lo = offsets[s]
            i = bisect_right(starts, cp, lo, offsets[s + 1]) - 1
            if i < lo or cp > ends[i]:
                return False
            s = dests[i]
        return bool(self.accept[s])


def _compiled(a: Automaton, budget: _Budget, byte_checks: bool = False) -> Dfa:
    """``CompiledAutomaton(a, null, true, 10000, false)``: the checks Lucene makes, then a runnable DFA.

    Lucene runs the automaton over UTF-8 bytes (``ByteRunAutomaton``) and
    determinizes that form too, with the same limit; we count those states
    (:func:`utf8_automaton`) but run the code-point automaton.
    """
    if a.num_states == 0 or _is_empty(a):
        return Dfa(Automaton())
    if _is_total(a):
        return Dfa(make_any_string())
    a = determinize(a, MAX_DETERMINIZED_STATES, budget)
    if not _singleton(a):
        finite = _check_finite_depth(a)
        if not byte_checks:
            return Dfa(a)
        ascii_only = all(hi < 0x80 for row in a.trans for _lo, hi, _d in row)
        binary = a if ascii_only else utf8_automaton(a, budget)  # pure ASCII: the UTF-8 form is the same
        if not finite:  # getCommonSuffixBytesRef: the reversed byte automaton, determinized
            determinize(reverse(binary), MAX_DETERMINIZED_STATES, budget)
        determinize(binary, MAX_DETERMINIZED_STATES, budget)  # ByteRunAutomaton
    return Dfa(a)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _regexp_automaton(pattern: str, node: tuple[Any, ...], budget: _Budget) -> Automaton:
    try:
        return _regexp(node, budget)
    except _TooComplex as exc:
        raise TooComplexError(f"Determinizing {_short(pattern)} would result in more than {exc.states} states.") from None
    except RecursionError:
        raise TooComplexError(f"Determinizing {_short(pattern)}: the pattern is nested too deeply.") from None
    except _OverBudget:
        raise TooComplexError(_BUDGET_MESSAGE.format(what=_short(pattern), steps=MAX_WORK)) from None


@lru_cache(maxsize=256)
def compile_regexp_automaton(pattern: str, node: tuple[Any, ...]) -> Dfa:
    """The runnable automaton of a parsed ``RegExp`` (``node`` from :func:`lucene_regexp.parse_regexp`).

    Refuses what ``RegExp.toAutomaton`` and the code-point checks refuse; the
    UTF-8 checks are :func:`regexp_refusal`'s (they cost more, and a query is
    checked once when it is parsed).
    """
    budget = _Budget()
    return _run_checks(_regexp_automaton(pattern, node, budget), budget)


@lru_cache(maxsize=4096)
def regexp_refusal(pattern: str, node: tuple[Any, ...]) -> str | None:
    """Lucene's message when it refuses this ``RegExp`` as too complex (all of ``CompiledAutomaton``'s checks), else None."""
    budget = _Budget()
    try:
        _run_checks(_regexp_automaton(pattern, node, budget), budget, byte_checks=True)
    except TooComplexError as exc:
        return str(exc)
    return None


def _run_checks(a: Automaton, budget: _Budget, byte_checks: bool = False) -> Dfa:
    try:
        return _compiled(a, budget, byte_checks)
    except _TooComplex as exc:
        raise TooComplexError(f"Determinizing {exc.nfa_desc} would result in more than {exc.states} states.") from None
    except _TooLarge as exc:
        raise TooComplexError(f"input automaton is too large: {exc.level}") from None
    except _OverBudget:
        raise TooComplexError(_BUDGET_MESSAGE.format(what="the pattern", steps=MAX_WORK)) from None


def wildcard_automaton(pattern: str) -> Automaton:
    """``WildcardQuery.toAutomaton``: ``*`` any string, ``?`` one code point, ``\\`` escapes the next one."""
    parts: list[Automaton] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            parts.append(make_any_string())
        elif c == "?":
            parts.append(make_char_range(0, MAX_CODE_POINT))
        elif c == "\\" and i + 1 < n:
            i += 1
            parts.append(make_char_range(ord(pattern[i]), ord(pattern[i])))
        else:
            parts.append(make_char_range(ord(c), ord(c)))
        i += 1
    return concatenate(parts)


def _wildcard_checked(pattern: str, byte_checks: bool) -> Dfa:
    budget = _Budget()
    try:
        budget.spend(len(pattern))
        a = wildcard_automaton(pattern)
    except _OverBudget:
        raise TooComplexError(_BUDGET_MESSAGE.format(what=_short(pattern), steps=MAX_WORK)) from None
    return _run_checks(a, budget, byte_checks)


@lru_cache(maxsize=256)
def compile_wildcard_automaton(pattern: str) -> Dfa:
    """The runnable automaton of a Lucene wildcard pattern (code-point checks; see :func:`wildcard_refusal`)."""
    return _wildcard_checked(pattern, byte_checks=False)


@lru_cache(maxsize=4096)
def wildcard_refusal(pattern: str) -> str | None:
    """Lucene's message when its ``WildcardQuery`` refuses ``pattern`` as too complex, else None."""
    try:
        _wildcard_checked(pattern, byte_checks=True)
    except TooComplexError as exc:
        return str(exc)
    return None


def predicate(dfa: Dfa) -> Callable[[str], bool]:
    return dfa.matches
