"""Automata over code points, and the Lucene operations that build them.

The nondeterministic side of :mod:`elastic_recheck.core.lucene.automaton`:
the work budget, the errors, :class:`Automaton` itself, its elementary
constructors (strings, ranges, decimal intervals) and ``concatenate``,
``union``, ``optional`` and the repeats, as Lucene's ``Automata`` and
``Operations`` build them (the exact NFA matters: Lucene's refusals depend
on it).
"""

from __future__ import annotations

from collections.abc import Sequence

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


class _TooLarge(Exception):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.level = level
