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
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

__all__ = [
    "MAX_DETERMINIZED_STATES",
    "TooComplexError",
    "compile_regexp_automaton",
    "compile_wildcard_automaton",
    "regexp_refusal",
    "wildcard_refusal",
]

#: Lucene's ``Operations.DEFAULT_MAX_DETERMINIZED_STATES`` (also ES's
#: ``max_determinized_states`` default for regexp queries).
MAX_DETERMINIZED_STATES = 10_000
#: ``Operations.MAX_RECURSION_LEVEL`` (the depth limit of ``isFinite``).
MAX_RECURSION_LEVEL = 1000
#: Elementary steps one compilation may take (our bound, not Lucene's).
MAX_WORK = 20_000_000
MAX_CODE_POINT = 0x10FFFF

Trans = tuple[int, int, int]  # (min, max, dest)


class TooComplexError(ValueError):
    """Lucene would refuse this pattern (``TooComplexToDeterminizeException``)."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_WORK

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise _OverBudget("more work than the evaluation budget")


class _OverBudget(Exception):
    """Internal: compiling took more than :data:`MAX_WORK` steps (our bound, not Lucene's)."""


_BUDGET_MESSAGE = "compiling {what} takes more than {steps:,} steps (elastic-recheck's evaluation budget)"


class _TooComplex(Exception):
    """Internal: a determinization went over the limit (message filled in by the caller)."""

    def __init__(self, nfa_desc: str, states: int = MAX_DETERMINIZED_STATES) -> None:
        super().__init__(nfa_desc)
        self.nfa_desc = nfa_desc
        self.states = states


class Automaton:
    """States ``0..n-1`` (0 is initial); per state a list of ``(min, max, dest)``."""

    __slots__ = ("accept", "trans")

    def __init__(self) -> None:
        self.trans: list[list[Trans]] = []
        self.accept: list[bool] = []

    @property
    def num_states(self) -> int:
        return len(self.trans)

    def create_state(self, accept: bool = False) -> int:
        self.trans.append([])
        self.accept.append(accept)
        return len(self.trans) - 1

    def copy_from(self, other: Automaton) -> int:
        """Append ``other``'s states (Lucene ``Automaton.copy``); returns their offset."""
        off = len(self.trans)
        for ts in other.trans:
            self.trans.append([(lo, hi, d + off) for lo, hi, d in ts])
        self.accept.extend(other.accept)
        return off

    def add_epsilon(self, source: int, dest: int) -> None:
        if dest >= len(self.trans):  # Builder.addEpsilon to a state that does not exist: nothing
            return
        self.trans[source].extend(list(self.trans[dest]))
        if self.accept[dest]:
            self.accept[source] = True

    def normalized(self, s: int) -> list[Trans]:
        """Lucene ``finishState``: per destination, adjacent/overlapping ranges merged; sorted by min."""
        ts = sorted(self.trans[s], key=lambda t: (t[2], t[0], t[1]))
        out: list[Trans] = []
        for lo, hi, d in ts:
            if out and out[-1][2] == d and lo <= out[-1][1] + 1:
                if hi > out[-1][1]:
                    out[-1] = (out[-1][0], hi, d)
            else:
                out.append((lo, hi, d))
        out.sort()
        return out

    def is_deterministic(self) -> bool:
        for s in range(len(self.trans)):
            last = -1
            for lo, hi, _d in self.normalized(s):
                if lo <= last:
                    return False
                last = hi
        return True

    def num_transitions(self) -> int:
        return sum(len(self.normalized(s)) for s in range(len(self.trans)))


# --------------------------------------------------------------------------
# Automata.make*
# --------------------------------------------------------------------------


def make_empty() -> Automaton:
    """``Automata.makeEmpty()``: no state at all (Lucene 8)."""
    return Automaton()


def make_empty_string() -> Automaton:
    a = Automaton()
    a.create_state(accept=True)
    return a


def make_char_range(lo: int, hi: int) -> Automaton:
    if lo > hi:
        return make_empty()
    a = Automaton()
    s = a.create_state()
    t = a.create_state(accept=True)
    a.trans[s].append((lo, hi, t))
    return a


def make_any_string() -> Automaton:
    a = Automaton()
    s = a.create_state(accept=True)
    a.trans[s].append((0, MAX_CODE_POINT, s))
    return a


def make_string(text: str) -> Automaton:
    a = Automaton()
    last = a.create_state()
    for ch in text:
        nxt = a.create_state()
        a.trans[last].append((ord(ch), ord(ch), nxt))
        last = nxt
    a.accept[last] = True
    return a


def _ranges_automaton(ranges: Sequence[tuple[int, int]]) -> Automaton:
    """One code point out of ``ranges`` (merged); no state at all when empty."""
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    a = Automaton()
    if not merged:
        return a
    s = a.create_state()
    t = a.create_state(accept=True)
    a.trans[s] = [(lo, hi, t) for lo, hi in merged]
    return a


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


# --------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------


def concatenate(parts: Sequence[Automaton]) -> Automaton:
    """``Operations.concatenate(List)``, state for state."""
    result = Automaton()
    for a in parts:
        if a.num_states == 0:
            return result  # the states made so far, no transitions: the empty language
        for _ in range(a.num_states):
            result.create_state()
    offset = 0
    for i, a in enumerate(parts):
        n = a.num_states
        next_a = parts[i + 1] if i + 1 < len(parts) else None
        for s in range(n):
            result.trans[offset + s].extend((lo, hi, offset + d) for lo, hi, d in a.trans[s])
            if a.accept[s]:
                follow = next_a
                follow_offset = offset
                upto = i + 1
                while True:
                    if follow is not None:
                        base = follow_offset + n
                        result.trans[offset + s].extend((lo, hi, base + d) for lo, hi, d in follow.trans[0])
                        if follow.accept[0]:
                            follow_offset += follow.num_states
                            follow = parts[upto + 1] if upto + 1 < len(parts) else None
                            upto += 1
                        else:
                            break
                    else:
                        result.accept[offset + s] = True
                        break
        offset += n
    if result.num_states == 0:
        result.create_state()
    return result


def union(parts: Sequence[Automaton]) -> Automaton:
    result = Automaton()
    result.create_state()
    for a in parts:
        result.copy_from(a)
    offset = 1
    for a in parts:
        if a.num_states == 0:
            continue
        result.add_epsilon(0, offset)
        offset += a.num_states
    return remove_dead_states(result)


def optional(a: Automaton) -> Automaton:
    result = Automaton()
    result.create_state(accept=True)
    if a.num_states > 0:
        result.copy_from(a)
        result.add_epsilon(0, 1)
    return result


def repeat_star(a: Automaton) -> Automaton:
    if a.num_states == 0:
        return a
    result = Automaton()
    result.create_state(accept=True)
    result.copy_from(a)
    result.trans[0].extend((lo, hi, d + 1) for lo, hi, d in a.trans[0])
    for s in range(a.num_states):
        if a.accept[s]:
            result.trans[s + 1].extend((lo, hi, d + 1) for lo, hi, d in a.trans[0])
    return result


def repeat_min(a: Automaton, count: int) -> Automaton:
    if count == 0:
        return repeat_star(a)
    return concatenate([a] * count + [repeat_star(a)])


def repeat_min_max(a: Automaton, lo: int, hi: int, budget: _Budget) -> Automaton:
    if lo > hi:
        return make_empty()
    if lo == 0:
        b = make_empty_string()
    elif lo == 1:
        b = Automaton()
        b.copy_from(a)
    else:
        budget.spend(lo * max(1, a.num_states))
        b = concatenate([a] * lo)
    prev_accept = [s for s in range(b.num_states) if b.accept[s]]
    result = Automaton()
    result.copy_from(b)
    for _ in range(lo, hi):
        budget.spend(max(1, a.num_states))
        n = result.num_states
        result.copy_from(a)
        for s in prev_accept:
            result.add_epsilon(s, n)
        prev_accept = [n + s for s in range(a.num_states) if a.accept[s]]
    return result


def _live_states(a: Automaton) -> list[bool]:
    n = a.num_states
    if n == 0:
        return []
    fwd = [False] * n
    fwd[0] = True
    stack = [0]
    rev: list[list[int]] = [[] for _ in range(n)]
    for s in range(n):
        for _lo, _hi, d in a.trans[s]:
            rev[d].append(s)
    while stack:
        s = stack.pop()
        for _lo, _hi, d in a.trans[s]:
            if not fwd[d]:
                fwd[d] = True
                stack.append(d)
    back = [False] * n
    stack = [s for s in range(n) if a.accept[s]]
    for s in stack:
        back[s] = True
    while stack:
        s = stack.pop()
        for p in rev[s]:
            if not back[p]:
                back[p] = True
                stack.append(p)
    return [f and b for f, b in zip(fwd, back, strict=True)]


def remove_dead_states(a: Automaton) -> Automaton:
    live = _live_states(a)
    mapping: dict[int, int] = {}
    result = Automaton()
    for s in range(a.num_states):
        if live[s]:
            mapping[s] = result.create_state(a.accept[s])
    for s, ns in mapping.items():
        result.trans[ns] = [(lo, hi, mapping[d]) for lo, hi, d in a.trans[s] if d in mapping]
    return result


def _describe(a: Automaton) -> str:
    return f"automaton with {a.num_states} states and {a.num_transitions()} transitions"


def determinize(a: Automaton, limit: int, budget: _Budget) -> Automaton:
    """Subset construction; raises :class:`_TooComplex` past ``limit`` states (Lucene's check)."""
    if a.num_states <= 1 or a.is_deterministic():
        return a
    n = a.num_states
    rows = [a.normalized(s) for s in range(n)]
    cuts = sorted({lo for row in rows for lo, _hi, _d in row} | {hi + 1 for row in rows for _lo, hi, _d in row})
    sym_of = {c: i for i, c in enumerate(cuts)}
    # per NFA state: symbol -> bit mask of destinations (symbol i = [cuts[i], cuts[i+1]-1])
    succ: list[dict[int, int]] = []
    for row in rows:
        table: dict[int, int] = {}
        for lo, hi, d in row:
            bit = 1 << d
            for sym in range(sym_of[lo], sym_of[hi + 1]):
                table[sym] = table.get(sym, 0) | bit
        succ.append(table)
        budget.spend(len(table) + 1)
    accept_mask = sum(1 << s for s in range(n) if a.accept[s])
    index: dict[int, int] = {1: 0}
    members_of: list[list[int]] = [[0]]
    out = Automaton()
    out.create_state(a.accept[0])
    wi = 0
    while wi < len(members_of):
        members = members_of[wi]
        src = wi
        wi += 1
        acc: dict[int, int] = {}
        for s in members:
            for sym, m in succ[s].items():
                acc[sym] = acc.get(sym, 0) | m
        budget.spend(len(members) + len(acc))
        row_out: list[Trans] = []
        for sym in sorted(acc):
            mask = acc[sym]
            q = index.get(mask)
            if q is None:
                q = out.num_states
                if q >= limit:
                    raise _TooComplex(_describe(a))
                out.create_state(bool(mask & accept_mask))
                index[mask] = q
                ms = _bits(mask)
                members_of.append(ms)
                budget.spend(len(ms))
            lo, hi = cuts[sym], cuts[sym + 1] - 1
            if row_out and row_out[-1][2] == q and row_out[-1][1] + 1 == lo:
                row_out[-1] = (row_out[-1][0], hi, q)
            else:
                row_out.append((lo, hi, q))
        out.trans[src] = row_out
    return out


def _bits(mask: int) -> list[int]:
    """The positions of the set bits, lowest first."""
    text = bin(mask)[:1:-1]
    out: list[int] = []
    i = text.find("1")
    while i != -1:
        out.append(i)
        i = text.find("1", i + 1)
    return out


def _is_total(a: Automaton) -> bool:
    if a.num_states == 0 or not a.accept[0]:
        return False
    ts = a.normalized(0)
    return len(ts) == 1 and ts[0] == (0, MAX_CODE_POINT, 0)


def minimize(a: Automaton, limit: int, budget: _Budget) -> Automaton:
    """``MinimizationOperations.minimize``: determinize (with the limit), then the minimal DFA without dead states."""
    if a.num_states == 0 or (not a.accept[0] and not a.trans[0]):
        return Automaton()
    a = determinize(a, limit, budget)
    ts0 = a.normalized(0)
    if len(ts0) == 1 and ts0[0] == (0, MAX_CODE_POINT, 0):
        return a
    n = a.num_states
    rows = [a.normalized(s) for s in range(n)]
    budget.spend(sum(len(r) for r in rows) + n)
    cls = _hopcroft(a, rows, budget)
    # The quotient, numbered in breadth-first order from the initial state.
    result = Automaton()
    order: dict[int, int] = {}
    rep: dict[int, int] = {}
    for s in range(n):
        rep.setdefault(cls[s], s)
    queue = [cls[0]]
    order[cls[0]] = result.create_state(a.accept[0])
    qi = 0
    while qi < len(queue):
        c = queue[qi]
        qi += 1
        s = rep[c]
        row: list[Trans] = []
        for lo, hi, d in rows[s]:
            dc = cls[d]
            if dc not in order:
                order[dc] = result.create_state(a.accept[rep[dc]])
                queue.append(dc)
            row.append((lo, hi, order[dc]))
        result.trans[order[c]] = row
    return remove_dead_states(result)


def _hopcroft(a: Automaton, rows: list[list[Trans]], budget: _Budget) -> list[int]:
    """Hopcroft's partition refinement over the totalized DFA; the block of each state.

    The alphabet is cut into the elementary ranges between all transition
    bounds; state ``n`` is the sink that totalizing adds.
    """
    n = a.num_states
    cuts = sorted({0} | {lo for row in rows for lo, _hi, _d in row} | {hi + 1 for row in rows for _lo, hi, _d in row if hi < MAX_CODE_POINT})
    k = len(cuts)
    sink = n
    inv: list[dict[int, list[int]]] = [{} for _ in range(k)]
    for s in range(n):
        row = rows[s]
        j = 0
        for sym, start in enumerate(cuts):
            while j < len(row) and row[j][1] < start:
                j += 1
            d = row[j][2] if j < len(row) and row[j][0] <= start else sink
            inv[sym].setdefault(d, []).append(s)
        budget.spend(k)
    for sym in range(k):
        inv[sym].setdefault(sink, []).append(sink)
    accepting = {s for s in range(n) if a.accept[s]}
    rest = set(range(n + 1)) - accepting
    blocks: list[set[int]] = [part for part in (accepting, rest) if part]
    block_of = [0] * (n + 1)
    for i, part in enumerate(blocks):
        for s in part:
            block_of[s] = i
    waiting = set(range(len(blocks)))
    while waiting:
        splitter = list(blocks[waiting.pop()])
        for sym in range(k):
            table = inv[sym]
            touched: dict[int, list[int]] = {}
            for q in splitter:
                for p in table.get(q, ()):
                    touched.setdefault(block_of[p], []).append(p)
            budget.spend(len(splitter) + 1)
            for bi, members in touched.items():
                if len(members) == len(blocks[bi]):
                    continue
                new = set(members)
                blocks[bi] -= new
                nb = len(blocks)
                blocks.append(new)
                for p in new:
                    block_of[p] = nb
                if bi in waiting or len(new) <= len(blocks[bi]):
                    waiting.add(nb)
                else:
                    waiting.add(bi)
    return block_of[:n]


def complement(a: Automaton, limit: int, budget: _Budget) -> Automaton:
    a = determinize(a, limit, budget)
    n = a.num_states
    result = Automaton()
    for s in range(n):
        result.create_state(not a.accept[s])
    dead = result.create_state(True)
    result.trans[dead].append((0, MAX_CODE_POINT, dead))
    for s in range(n):
        pos = 0
        row: list[Trans] = []
        for lo, hi, d in a.normalized(s):
            if lo > pos:
                row.append((pos, lo - 1, dead))
            row.append((lo, hi, d))
            pos = hi + 1
        if pos <= MAX_CODE_POINT:
            row.append((pos, MAX_CODE_POINT, dead))
        result.trans[s] = row
    return remove_dead_states(result)


def intersection(a1: Automaton, a2: Automaton, budget: _Budget) -> Automaton:
    if a1.num_states == 0:
        return a1
    if a2.num_states == 0:
        return a2
    t1 = [a1.normalized(s) for s in range(a1.num_states)]
    t2 = [a2.normalized(s) for s in range(a2.num_states)]
    result = Automaton()
    index = {(0, 0): result.create_state()}
    work = [(0, 0)]
    wi = 0
    while wi < len(work):
        p1, p2 = work[wi]
        src = wi
        wi += 1
        result.accept[src] = a1.accept[p1] and a2.accept[p2]
        row: list[Trans] = []
        for lo1, hi1, d1 in t1[p1]:
            for lo2, hi2, d2 in t2[p2]:
                lo, hi = max(lo1, lo2), min(hi1, hi2)
                if lo <= hi:
                    q = index.get((d1, d2))
                    if q is None:
                        q = index[(d1, d2)] = result.create_state()
                        work.append((d1, d2))
                    row.append((lo, hi, q))
        budget.spend(len(t1[p1]) * len(t2[p2]) + 1)
        result.trans[src] = row
    return remove_dead_states(result)


# --------------------------------------------------------------------------
# RegExp.toAutomaton
# --------------------------------------------------------------------------


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


def _is_empty(a: Automaton) -> bool:
    if a.num_states == 0:
        return True
    seen = {0}
    stack = [0]
    while stack:
        s = stack.pop()
        if a.accept[s]:
            return False
        for _lo, _hi, d in a.trans[s]:
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return True


def _singleton(a: Automaton) -> bool:
    s = 0
    seen = set()
    while True:
        seen.add(s)
        ts = a.normalized(s)
        if not a.accept[s]:
            if len(ts) == 1 and ts[0][0] == ts[0][1] and ts[0][2] not in seen:
                s = ts[0][2]
                continue
            return False
        return not ts


def _check_finite_depth(a: Automaton) -> bool:
    """``Operations.isFinite`` (recursive, depth-limited): same walk, same refusal; True when the language is finite."""
    n = a.num_states
    rows = [a.normalized(s) for s in range(n)]
    path = [False] * n
    visited = [False] * n
    # frames: (state, next transition index, level)
    stack: list[list[int]] = [[0, 0, 0]]
    path[0] = True
    while stack:
        frame = stack[-1]
        s, i, level = frame
        if i < len(rows[s]):
            frame[1] += 1
            d = rows[s][i][2]
            if path[d]:
                return False  # a loop: infinite, Lucene stops here
            if not visited[d]:
                if level + 1 > MAX_RECURSION_LEVEL:
                    raise _TooLarge(level + 1)
                path[d] = True
                stack.append([d, 0, level + 1])
            continue
        path[s] = False
        visited[s] = True
        stack.pop()
    return True


class _TooLarge(Exception):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.level = level


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


def reverse(a: Automaton) -> Automaton:
    """``Operations.reverse``: a new initial state 0 with the transitions of every old accept state, edges reversed."""
    result = Automaton()
    if _is_empty(a):
        return result
    result.create_state()
    for _ in range(a.num_states):
        result.create_state()
    result.accept[1] = True
    for s in range(a.num_states):
        for lo, hi, d in a.trans[s]:
            result.trans[d + 1].append((lo, hi, s + 1))
    for s in range(a.num_states):
        if a.accept[s]:
            result.add_epsilon(0, s + 1)
    return result


# --------------------------------------------------------------------------
# UTF32ToUTF8: the byte automaton Lucene runs (only its size matters here)
# --------------------------------------------------------------------------

_START_CODES = (0, 128, 2048, 65536)
_END_CODES = (127, 2047, 65535, 1114111)
_MASKS = [(2 << i) - 1 for i in range(32)]

_Seq = list[tuple[int, int]]  # UTF-8 bytes of one code point: (value, bits used)


def _utf8_seq(code: int) -> _Seq:
    if code < 128:
        return [(code, 7)]
    if code < 2048:
        lead, n = ((6 << 5) | (code >> 6), 5), 1
    elif code < 65536:
        lead, n = ((14 << 4) | (code >> 12), 4), 2
    else:
        lead, n = ((30 << 3) | (code >> 18), 3), 3
    rest: _Seq = []
    for _ in range(n):
        rest.append((128 | (code & 63), 6))
        code >>= 6
    return [lead, *reversed(rest)]


class _Utf8:
    """``UTF32ToUTF8.convert``: each code-point range becomes byte paths with fresh intermediate states."""

    def __init__(self, budget: _Budget) -> None:
        self.a = Automaton()
        self.budget = budget

    def new(self) -> int:
        self.budget.spend(1)
        return self.a.create_state()

    def add(self, src: int, lo: int, hi: int, dest: int) -> None:
        self.a.trans[src].append((lo, hi, dest))

    def edge(self, start: int, end: int, lo: int, hi: int) -> None:
        self.build(start, end, _utf8_seq(lo), _utf8_seq(hi), 0)

    def build(self, start: int, end: int, s: _Seq, e: _Seq, upto: int) -> None:
        if s[upto][0] == e[upto][0]:
            if upto == len(s) - 1 and upto == len(e) - 1:
                self.add(start, s[upto][0], e[upto][0], end)
                return
            n = self.new()
            self.add(start, s[upto][0], s[upto][0], n)
            self.build(n, end, s, e, upto + 1)
        elif len(s) == len(e):
            if upto == len(s) - 1:
                self.add(start, s[upto][0], e[upto][0], end)
            else:
                self.start(start, end, s, upto, False)
                if e[upto][0] - s[upto][0] > 1:
                    self.all(start, end, s[upto][0] + 1, e[upto][0] - 1, len(s) - upto - 1)
                self.end(start, end, e, upto, False)
        else:
            self.start(start, end, s, upto, True)
            count = 1 + len(s) - upto
            while count < len(e) - upto:
                lo, hi = _utf8_seq(_START_CODES[count - 1]), _utf8_seq(_END_CODES[count - 1])
                self.all(start, end, lo[0][0], hi[0][0], len(lo) - 1)
                count += 1
            self.end(start, end, e, upto, True)

    def start(self, start: int, end: int, seq: _Seq, upto: int, do_all: bool) -> None:
        value, bits = seq[upto]
        if upto == len(seq) - 1:
            self.add(start, value, value | _MASKS[bits - 1], end)
            return
        n = self.new()
        self.add(start, value, value, n)
        self.start(n, end, seq, upto + 1, True)
        end_code = value | _MASKS[bits - 1]
        if do_all and value != end_code:
            self.all(start, end, value + 1, end_code, len(seq) - upto - 1)

    def end(self, start: int, end: int, seq: _Seq, upto: int, do_all: bool) -> None:
        value, bits = seq[upto]
        if upto == len(seq) - 1:
            self.add(start, value & ~_MASKS[bits - 1], value, end)
            return
        start_code = 194 if bits == 5 else value & ~_MASKS[bits - 1]
        if do_all and value != start_code:
            self.all(start, end, start_code, value - 1, len(seq) - upto - 1)
        n = self.new()
        self.add(start, value, value, n)
        self.end(n, end, seq, upto + 1, True)

    def all(self, start: int, end: int, lo: int, hi: int, left: int) -> None:
        if left == 0:
            self.add(start, lo, hi, end)
            return
        last = self.new()
        self.add(start, lo, hi, last)
        while left > 1:
            n = self.new()
            self.add(last, 128, 191, n)
            left -= 1
            last = n
        self.add(last, 128, 191, end)


def utf8_automaton(a: Automaton, budget: _Budget) -> Automaton:
    """The UTF-8 byte automaton ``UTF32ToUTF8.convert`` makes of ``a`` (same states, same transitions)."""
    out = _Utf8(budget)
    if a.num_states == 0:
        return out.a
    mapping = {0: out.a.create_state(a.accept[0])}
    pending = [0]
    while pending:
        s = pending.pop()
        src = mapping[s]
        for lo, hi, d in a.normalized(s):
            dest = mapping.get(d)
            if dest is None:
                dest = mapping[d] = out.a.create_state(a.accept[d])
                pending.append(d)
            out.edge(src, dest, lo, hi)
    return out.a


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
