"""Lucene's ``RegExp`` syntax (``field:/.../`` queries): parser and matcher.

Lucene 8's ``RegexpQuery`` uses ``RegExp.ALL``: besides ``| * + ? {n,m} [..]
[^..] . ( ) "literal"`` and ``\\`` escapes it has ``#`` (the empty language),
``@`` (any string), ``~x`` (complement), ``x&y`` (intersection) and
``<n-m>`` (decimal numbers in a range). A pattern always matches a *whole*
term. It is not Perl/Python syntax: ``\\d`` is just ``d``, ``^``/``$`` are
literals outside classes, and there are no lazy quantifiers.

:func:`parse_regexp` raises :class:`RegexpSyntaxError` where Lucene's
``RegExp`` constructor throws (so the query parser can reject the query, as
Lucene does). :func:`compile_regexp` returns a predicate over terms, run by
a deterministic automaton built as Lucene builds it
(:mod:`elastic_recheck.core.lucene.automaton`): linear in the term, never backtracking.
:func:`validate_regexp` raises :class:`RegexpTooComplexError` where Lucene's
``RegexpQuery`` refuses the pattern ("Determinizing ... would result in more
than 10000 states.").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from elastic_recheck.core.lucene.automaton import Dfa, TooComplexError, compile_regexp_automaton, regexp_refusal

__all__ = ["RegexpSyntaxError", "RegexpTooComplexError", "check_regexp", "compile_regexp", "parse_regexp", "validate_regexp"]


class RegexpSyntaxError(ValueError):
    """The pattern is not valid Lucene ``RegExp`` syntax."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} at position {pos}")
        self.pos = pos


class RegexpTooComplexError(TooComplexError):
    """Lucene refuses the pattern: its automaton would need more than 10,000 states."""


# Nodes are tuples: (kind, ...). Kinds: char c | any | none (#) | anystr (@)
# | str s | class (ranges, negated) | union a b | inter a b | concat a b
# | repeat e min max(None=inf) op ("?", "*", "+" or "{": Lucene builds
# each differently) | compl e | interval lo hi digits
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
    return _java_int(p.s[start : p.pos], start)


def _java_int(digits: str, pos: int) -> int:
    """``Integer.parseInt``: refuses values past 2**31 - 1 (and never converts thousands of digits)."""
    value = int(digits.lstrip("0") or "0") if len(digits.lstrip("0")) <= 10 else 2**31
    if value >= 2**31:
        raise RegexpSyntaxError(f"For input string: \"{digits[:20]}{'...' if len(digits) > 20 else ''}\"", pos)
    return value


def _repeat(p: _P) -> Node:
    e = _compl(p)
    while p.peek("?*+{"):
        if p.match("?"):
            e = ("repeat", e, 0, 1, "?")
        elif p.match("*"):
            e = ("repeat", e, 0, None, "*")
        elif p.match("+"):
            e = ("repeat", e, 1, None, "+")
        elif p.match("{"):
            n = _int(p)
            m: int | None = n
            if p.match(","):
                start = p.pos
                while p.peek("0123456789"):
                    p.pos += 1
                m = _java_int(p.s[start : p.pos], start) if start != p.pos else None
            if not p.match("}"):
                raise RegexpSyntaxError("expected '}'", p.pos)
            # max < min is the empty language (Operations.repeat), after Lucene's size check
            e = ("repeat", e, n, m, "{")
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


def compile_regexp(pattern: str) -> Callable[[str], bool]:
    """A predicate: does a whole term match the Lucene ``RegExp`` ``pattern``?

    The pattern is compiled to a deterministic automaton the way Lucene
    does (:mod:`elastic_recheck.core.lucene.automaton`), so a term costs one step per
    code point.
    """
    try:
        return compile_regexp_automaton(pattern, parse_regexp(pattern)).matches
    except TooComplexError as exc:
        raise RegexpTooComplexError(str(exc)) from None
    except RecursionError:
        raise RegexpTooComplexError("the regular expression is nested too deeply") from None


def validate_regexp(pattern: str) -> None:
    """:class:`RegexpSyntaxError` for bad syntax, :class:`RegexpTooComplexError` for what Lucene's ``RegexpQuery`` refuses."""
    try:
        refusal = regexp_refusal(pattern, parse_regexp(pattern))
    except RecursionError:
        raise RegexpTooComplexError("the regular expression is nested too deeply") from None
    if refusal is not None:
        raise RegexpTooComplexError(refusal)


def check_regexp(pattern: str) -> Dfa:
    """:func:`validate_regexp`, then the runnable automaton."""
    validate_regexp(pattern)
    try:
        return compile_regexp_automaton(pattern, parse_regexp(pattern))
    except TooComplexError as exc:
        raise RegexpTooComplexError(str(exc)) from None
