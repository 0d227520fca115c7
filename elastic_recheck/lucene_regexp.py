"""Lucene's ``RegExp`` syntax (``field:/.../`` queries): parser and matcher.

Lucene 8's ``RegexpQuery`` uses ``RegExp.ALL``: besides ``| * + ? {n,m} [..]
[^..] . ( ) "literal"`` and ``\\`` escapes it has ``#`` (the empty language),
``@`` (any string), ``~x`` (complement), ``x&y`` (intersection) and
``<n-m>`` (decimal numbers in a range). A pattern always matches a *whole*
term. It is not Perl/Python syntax: ``\\d`` is just ``d``, ``^``/``$`` are
literals outside classes, and there are no lazy quantifiers.

:func:`parse_regexp` raises :class:`RegexpSyntaxError` where Lucene's
``RegExp`` constructor throws (so the query parser can reject the query, as
Lucene does). :func:`compile_regexp` returns a predicate over terms: patterns
without ``~``, ``&`` and ``<n-m>`` become a Python regular expression; the
rest is run by a small interpreter over sets of end positions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["RegexpSyntaxError", "compile_regexp", "parse_regexp"]


class RegexpSyntaxError(ValueError):
    """The pattern is not valid Lucene ``RegExp`` syntax."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} at position {pos}")
        self.pos = pos


# Nodes are tuples: (kind, ...). Kinds: char c | any | none (#) | anystr (@)
# | str s | class (ranges, negated) | union a b | inter a b | concat a b
# | repeat e min max(None=inf) | compl e | interval lo hi digits
Node = tuple[Any, ...]


@dataclass
class _P:
    s: str
    pos: int = 0

    def more(self) -> bool:
        return self.pos < len(self.s)

    def peek(self, chars: str) -> bool:
        return self.more() and self.s[self.pos] in chars

    def match(self, c: str) -> bool:
        if self.more() and self.s[self.pos] == c:
            self.pos += 1
            return True
        return False

    def next(self) -> str:
        if not self.more():
            raise RegexpSyntaxError("unexpected end-of-string", self.pos)
        c = self.s[self.pos]
        self.pos += 1
        return c


def parse_regexp(pattern: str) -> Node:
    """Parse like ``new RegExp(pattern, RegExp.ALL)``."""
    return _parse_cached(pattern)


@lru_cache(maxsize=1024)
def _parse_cached(pattern: str) -> Node:
    if pattern == "":
        return ("str", "")
    p = _P(pattern)
    e = _union(p)
    if p.pos < len(p.s):
        raise RegexpSyntaxError("end-of-string expected", p.pos)
    return e


def _union(p: _P) -> Node:
    e = _inter(p)
    if p.match("|"):
        e = ("union", e, _union(p))
    return e


def _inter(p: _P) -> Node:
    e = _concat(p)
    if p.match("&"):
        e = ("inter", e, _inter(p))
    return e


def _concat(p: _P) -> Node:
    e = _repeat(p)
    if p.more() and not p.peek(")|") and not p.peek("&"):
        e = ("concat", e, _concat(p))
    return e


def _int(p: _P) -> int:
    start = p.pos
    while p.peek("0123456789"):
        p.pos += 1
    if start == p.pos:
        raise RegexpSyntaxError("integer expected", p.pos)
    return int(p.s[start : p.pos])


def _repeat(p: _P) -> Node:
    e = _compl(p)
    while p.peek("?*+{"):
        if p.match("?"):
            e = ("repeat", e, 0, 1)
        elif p.match("*"):
            e = ("repeat", e, 0, None)
        elif p.match("+"):
            e = ("repeat", e, 1, None)
        elif p.match("{"):
            n = _int(p)
            m: int | None = n
            if p.match(","):
                start = p.pos
                while p.peek("0123456789"):
                    p.pos += 1
                m = int(p.s[start : p.pos]) if start != p.pos else None
            if not p.match("}"):
                raise RegexpSyntaxError("expected '}'", p.pos)
            if m is not None and m < n:
                e = ("none",)  # Operations.repeat(a, min, max) with max < min: empty language
            else:
                e = ("repeat", e, n, m)
    return e


def _compl(p: _P) -> Node:
    if p.match("~"):
        return ("compl", _compl(p))
    return _charclass(p)


def _charclass(p: _P) -> Node:
    if p.match("["):
        negate = p.match("^")
        ranges: list[tuple[str, str]] = []
        ranges.append(_class_item(p))
        while p.more() and not p.peek("]"):
            ranges.append(_class_item(p))
        if not p.match("]"):
            raise RegexpSyntaxError("expected ']'", p.pos)
        return ("class", tuple(ranges), negate)
    return _simple(p)


def _class_item(p: _P) -> tuple[str, str]:
    c = _charexp(p)
    if p.match("-"):
        d = _charexp(p)
        if ord(c) > ord(d):
            raise RegexpSyntaxError(f"invalid range: from ({ord(c)}) cannot be > to ({ord(d)})", p.pos)
        return (c, d)
    return (c, c)


def _charexp(p: _P) -> str:
    p.match("\\")
    return p.next()


def _simple(p: _P) -> Node:
    if p.match("."):
        return ("any",)
    if p.match("#"):
        return ("none",)
    if p.match("@"):
        return ("anystr",)
    if p.match('"'):
        start = p.pos
        while p.more() and not p.peek('"'):
            p.pos += 1
        if not p.match('"'):
            raise RegexpSyntaxError("expected '\"'", p.pos)
        return ("str", p.s[start : p.pos - 1])
    if p.match("("):
        if p.match(")"):
            return ("str", "")
        e = _union(p)
        if not p.match(")"):
            raise RegexpSyntaxError("expected ')'", p.pos)
        return e
    if p.match("<"):
        start = p.pos
        while p.more() and not p.peek(">"):
            p.pos += 1
        if not p.match(">"):
            raise RegexpSyntaxError("expected '>'", p.pos)
        body = p.s[start : p.pos - 1]
        i = body.find("-")
        if i == -1:
            raise RegexpSyntaxError(f"'{body}' not found (named automata are not supported)", start)
        if i == 0 or i == len(body) - 1 or i != body.rfind("-"):
            raise RegexpSyntaxError("interval syntax error", p.pos - 1)
        smin, smax = body[:i], body[i + 1 :]
        if not (smin.isdigit() and smax.isdigit() and smin.isascii() and smax.isascii()):
            raise RegexpSyntaxError("interval syntax error", p.pos - 1)
        lo, hi = int(smin), int(smax)
        if lo >= 2**31 or hi >= 2**31:
            raise RegexpSyntaxError("interval syntax error", p.pos - 1)
        digits = len(smin) if len(smin) == len(smax) else 0
        if lo > hi:
            lo, hi = hi, lo
        return ("interval", lo, hi, digits)
    return ("char", _charexp(p))


# --------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------


def _needs_interpreter(e: Node) -> bool:
    kind = e[0]
    if kind in ("compl", "inter", "interval"):
        return True
    return any(_needs_interpreter(x) for x in e[1:] if isinstance(x, tuple) and x and isinstance(x[0], str))


def _class_body(ranges: tuple[tuple[str, str], ...]) -> str:
    parts = []
    for a, b in ranges:
        parts.append(re.escape(a) if a == b else f"{re.escape(a)}-{re.escape(b)}")
    return "".join(parts)


def _to_python(e: Node) -> str:
    kind = e[0]
    if kind == "char":
        return re.escape(str(e[1]))
    if kind == "any":
        return "."
    if kind == "none":
        return "(?!)"
    if kind == "anystr":
        return ".*"
    if kind == "str":
        return re.escape(str(e[1]))
    if kind == "class":
        return f"[{'^' if e[2] else ''}{_class_body(e[1])}]"
    if kind == "union":
        return f"(?:{_to_python(e[1])}|{_to_python(e[2])})"
    if kind == "concat":
        return _to_python(e[1]) + _to_python(e[2])
    if kind == "repeat":
        lo, hi = e[2], e[3]
        return f"(?:{_to_python(e[1])}){{{lo},{'' if hi is None else hi}}}"
    raise AssertionError(kind)


def compile_regexp(pattern: str) -> Callable[[str], bool]:
    """A predicate: does a whole term match the Lucene ``RegExp`` ``pattern``?"""
    return _compile_cached(pattern)


@lru_cache(maxsize=1024)
def _compile_cached(pattern: str) -> Callable[[str], bool]:
    node = parse_regexp(pattern)
    if not _needs_interpreter(node):
        rx = re.compile(_to_python(node), re.DOTALL)
        return lambda term: rx.fullmatch(term) is not None

    def matches(term: str) -> bool:
        memo: dict[tuple[int, int], frozenset[int]] = {}
        return len(term) in _ends(node, term, 0, memo)

    return matches


def _interval_ok(text: str, lo: int, hi: int, digits: int) -> bool:
    if not text or not text.isascii() or not text.isdigit():
        return False
    if digits > 0 and len(text) != digits:
        return False
    return lo <= int(text) <= hi


def _ends(e: Node, s: str, i: int, memo: dict[tuple[int, int], frozenset[int]]) -> frozenset[int]:
    key = (id(e), i)
    got = memo.get(key)
    if got is not None:
        return got
    kind = e[0]
    n = len(s)
    out: frozenset[int]
    if kind == "char":
        out = frozenset((i + 1,)) if i < n and s[i] == e[1] else frozenset()
    elif kind == "any":
        out = frozenset((i + 1,)) if i < n else frozenset()
    elif kind == "none":
        out = frozenset()
    elif kind == "anystr":
        out = frozenset(range(i, n + 1))
    elif kind == "str":
        out = frozenset((i + len(e[1]),)) if s.startswith(e[1], i) else frozenset()
    elif kind == "class":
        if i < n:
            inside = any(a <= s[i] <= b for a, b in e[1])
            out = frozenset((i + 1,)) if inside != e[2] else frozenset()
        else:
            out = frozenset()
    elif kind == "union":
        out = _ends(e[1], s, i, memo) | _ends(e[2], s, i, memo)
    elif kind == "inter":
        out = _ends(e[1], s, i, memo) & _ends(e[2], s, i, memo)
    elif kind == "concat":
        acc: set[int] = set()
        for k in _ends(e[1], s, i, memo):
            acc |= _ends(e[2], s, k, memo)
        out = frozenset(acc)
    elif kind == "compl":
        inner = _ends(e[1], s, i, memo)
        out = frozenset(j for j in range(i, n + 1) if j not in inner)
    elif kind == "interval":
        out = frozenset(j for j in range(i + 1, n + 1) if _interval_ok(s[i:j], e[1], e[2], e[3]))
    elif kind == "repeat":
        lo, hi = e[2], e[3]
        result: set[int] = {i} if lo == 0 else set()
        frontier = {i}
        seen: set[int] = set()
        count = 0
        while frontier and (hi is None or count < hi):
            count += 1
            nxt: set[int] = set()
            for k in frontier:
                nxt |= _ends(e[1], s, k, memo)
            if count >= lo:
                result |= nxt
            if count >= lo:
                nxt -= seen
                seen |= nxt
            frontier = nxt
        out = frozenset(result)
    else:
        raise AssertionError(kind)
    memo[key] = out
    return out
