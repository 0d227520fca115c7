"""Determinization, minimization and the checks Lucene runs on an automaton.

``determinize`` (with Lucene's state limit), Hopcroft minimization,
``complement``, ``intersection``, the emptiness/singleton/finiteness checks,
``reverse`` and the UTF-8 form (``UTF32ToUTF8``) of
:mod:`elastic_recheck.core.lucene.automaton`.
"""

from __future__ import annotations

from elastic_recheck.core.lucene.automaton_build import (
    MAX_CODE_POINT,
    MAX_RECURSION_LEVEL,
    Automaton,
    Trans,
    _Budget,
    _TooComplex,
    _TooLarge,
    remove_dead_states,
)


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

