"""How a query is written: its clauses, with their conjunctions, modifiers, fields and positions.

The analyzed AST (:mod:`elastic_recheck.core.lucene.ast`) says what a query
means; the linter also needs how the author *wrote* it (implicit ``OR``,
``AND`` mixed with ``OR``, single quotes, leading wildcards, hyphenated
unquoted words). :func:`parse_raw` gives each parenthesis level as a flat
list of :class:`Clause` objects, as Lucene's classic QueryParser sees it,
from the parser's own tokens (:func:`elastic_recheck.core.lucene.lexer.tokens`:
one lexer for the engines and the linter). It only runs on queries that :func:`~elastic_recheck.core.lucene.parser.parse`
accepted, and never decides what is valid: acceptance is Lucene's (the
parser's) business alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from elastic_recheck.core.lucene.lexer import tokens

#: The parser's token kinds as the clause builder reads them (the others keep their kind).
_KINDS = {"PREFIXTERM": "TERM", "WILDTERM": "TERM", "REGEXPTERM": "REGEX", "FUZZY_SLOP": "FUZZY"}
_RANGE_ENDS = ("RANGEIN_END", "RANGEEX_END")


@dataclass(frozen=True)
class Piece:
    """A token of :func:`elastic_recheck.core.lucene.lexer.tokens` as the clause builder reads it.

    ``kind`` is one of AND OR NOT PLUS MINUS LPAREN RPAREN COLON CARAT NUMBER
    FUZZY TERM STAR QUOTED REGEX RANGE: terms with wildcards are ``TERM``, a
    bare operator (``-`` before a space) is the one-character ``TERM`` it
    stands for, and a whole range (``[a TO b]``) is one ``RANGE``.
    """

    kind: str
    text: str
    start: int
    end: int


def pieces(query: str) -> list[Piece]:
    """The query's tokens, read by the parser's own lexer, up to its end or a lexical error."""
    toks = tokens(query)
    out: list[Piece] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind in ("EOF", "ERROR"):
            break
        if t.kind == "BAREOPER":
            out.append(Piece("TERM", t.image[0], t.pos, t.pos + 1))
        elif t.kind in ("RANGEIN_START", "RANGEEX_START"):
            j = i + 1
            while toks[j].kind not in (*_RANGE_ENDS, "EOF", "ERROR"):
                j += 1
            end = toks[j].end if toks[j].kind in _RANGE_ENDS else len(query)
            out.append(Piece("RANGE", query[t.pos : end], t.pos, end))
            i = j
        else:
            out.append(Piece(_KINDS.get(t.kind, t.kind), t.image, t.pos, t.end))
        i += 1
    return out


def unescape(text: str) -> str:
    """``text`` with every ``\\x`` escape replaced by ``x``."""
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def has_unescaped(text: str, chars: str) -> bool:
    """``text`` holds one of ``chars`` that is not escaped."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in chars:
            return True
        i += 1
    return False


@dataclass
class Level:
    """One parenthesis level: a flat list of clauses, as Lucene's parser sees it."""

    clauses: list[Clause] = field(default_factory=list)
    start: int = 0
    end: int = 0


@dataclass
class Clause:
    """One clause as written: ``[conj] [modifier] [field:] (term | phrase | (group))``."""

    conj: str | None  # None (first clause), "AND", "OR" or "IMPLICIT"
    mod: str | None  # None, "+", "-" or "NOT"
    field: str  # effective field (explicit, inherited from field:(...), or the default)
    explicit_field: str | None
    kind: str  # TERM STAR QUOTED REGEX RANGE GROUP
    text: str  # the term/phrase token as written (no field, no boost)
    start: int  # offset of the clause (modifier included)
    end: int
    term_start: int  # offset of the term/phrase token (or of the group's "(")
    conj_pos: int | None = None
    group: Level | None = None
    fuzzy: bool = False


def parse_raw(query: str, default_field: str = "message") -> Level:
    """The clause structure of a query as written (see :class:`Level`). Never raises."""
    tokens = pieces(query)
    pos = 0

    def peek(k: int = 0) -> Piece | None:
        return tokens[pos + k] if pos + k < len(tokens) else None

    def level(fld: str, depth: int) -> Level:
        nonlocal pos
        lv = Level(start=tokens[pos].start if pos < len(tokens) else len(query))
        while pos < len(tokens):
            tok = tokens[pos]
            if tok.kind == "RPAREN":
                if depth > 0:
                    break
                pos += 1  # stray ")" (rejected by the real parser): skip
                continue
            conj: str | None = None
            conj_pos: int | None = None
            if tok.kind in ("AND", "OR"):
                conj, conj_pos = tok.kind, tok.start
                pos += 1
            elif lv.clauses:
                conj, conj_pos = "IMPLICIT", tok.start
            if lv.clauses and conj is None:
                conj = "IMPLICIT"
            if not lv.clauses and conj in ("AND", "OR"):
                conj = None  # a leading operator (rejected by the real parser)
            mod: str | None = None
            start = tokens[pos].start if pos < len(tokens) else len(query)
            while (t := peek()) is not None and t.kind in ("PLUS", "MINUS", "NOT"):
                mod = mod or {"PLUS": "+", "MINUS": "-", "NOT": "NOT"}[t.kind]
                pos += 1
            t = peek()
            if t is None or t.kind == "RPAREN":
                break
            explicit: str | None = None
            nxt = peek(1)
            if t.kind in ("TERM", "STAR") and nxt is not None and nxt.kind == "COLON":
                explicit = unescape(t.text)
                pos += 2
                t = peek()
                if t is None:
                    break
            cfld = explicit if explicit is not None else fld
            if t.kind == "LPAREN":
                pos += 1
                sub = level(cfld, depth + 1)
                end = tokens[pos].end if pos < len(tokens) else len(query)
                if pos < len(tokens) and tokens[pos].kind == "RPAREN":
                    pos += 1
                clause = Clause(conj, mod, cfld, explicit, "GROUP", query[t.start : end], start, end, t.start, conj_pos, sub)
                sub.end = end
            elif t.kind in ("TERM", "STAR", "QUOTED", "REGEX", "RANGE", "NUMBER"):
                pos += 1
                clause = Clause(conj, mod, cfld, explicit, "TERM" if t.kind == "NUMBER" else t.kind, t.text, start, t.end, t.start, conj_pos)
            else:
                pos += 1  # an operator or colon where a term belongs: skip it
                continue
            # Fuzzy/proximity and boost suffixes.
            while (t2 := peek()) is not None and t2.kind in ("FUZZY", "CARAT", "NUMBER"):
                if t2.kind == "FUZZY":
                    clause.fuzzy = True
                clause.end = t2.end
                pos += 1
            lv.clauses.append(clause)
        lv.end = tokens[pos - 1].end if pos else 0
        return lv

    root = level(default_field, 0)
    root.start = 0
    root.end = len(query)
    return root


def iter_clauses(lv: Level) -> Iterable[tuple[Clause, Level]]:
    """Every clause below ``lv`` (depth first) with the level that holds it."""
    for c in lv.clauses:
        yield c, lv
        if c.group is not None:
            yield from iter_clauses(c.group)


def iter_levels(lv: Level) -> Iterable[Level]:
    yield lv
    for c in lv.clauses:
        if c.group is not None:
            yield from iter_levels(c.group)


def shorten(text: str, limit: int = 48) -> str:
    """``text`` on one line, cut to ``limit`` characters (for messages)."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def clause_source(query: str, c: Clause) -> str:
    """The clause as written, without its modifier."""
    src = query[c.start : c.end]
    if c.mod is not None:
        src = src[3:] if src.startswith("NOT") else src[1:]
    return shorten(src.lstrip())
