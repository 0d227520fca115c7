"""Lucene ``query_string`` -> :mod:`elastic_recheck.core.lucene.ast`, the way ES 7 reads it.

:func:`parse` reproduces Lucene 8.7's classic ``QueryParser`` (``QueryParser.jj``)
as Elasticsearch 7 configures it for ``query_string`` (default field
``message``, default operator OR, leading wildcards allowed,
``autoGeneratePhraseQueries=false``, ``splitOnWhitespace=true``), plus, with
``es_mode=True``, the Elasticsearch behaviours modelled by the Lucene oracle
(``../shared/tools/lucene-oracle``):

* a group made only of ``NOT``/``-`` clauses matches everything but them;
* ``_exists_:f`` and ``f:*`` mean "f has a value";
* ``f:>x``, ``f:>=x``, ``f:<x``, ``f:<=x`` are one-sided ranges, and ``*`` in a
  range is an open end even when quoted;
* ``term~`` uses ``AUTO`` fuzziness (0/1/2 edits for 1-2/3-5/6+ characters),
  ``term~N`` uses ``min(2, int(N))``;
* an empty query matches nothing (plain Lucene: a syntax error).

Why not luqum: the project brief suggested parsing with ``luqum``. Its grammar
differs from Lucene's in ways that change what a fingerprint matches or
whether it is accepted at all: it accepts unterminated regexes
(``project:openstack/cinder`` is a syntax error in Lucene), it tokenizes
``-`` ``+`` ``!`` ``&&`` inside terms differently, it has no notion of
JavaCC's longest-match lexing (``foo*bar`` vs ``foo*``, ``~`` slop tokens,
range "goop"), and its operator precedence is not Lucene's ``addClause``
(``a OR b AND c`` is ``a +b +c`` in Lucene). So this module has its own
lexer (:mod:`elastic_recheck.core.lucene.lexer`) and a recursive-descent
parser that mirror ``QueryParser.jj`` token by token and production by
production; the semantic actions mirror
``QueryParserBase``/``QueryBuilder``. Every rule was checked against real
Lucene with the oracle (``tests/conformance``).

Syntax errors raise :class:`~elastic_recheck.core.errors.QuerySyntaxError` with a
1-based line and column.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import fields, replace
from functools import lru_cache
from typing import Any

from elastic_recheck.core.errors import QuerySyntaxError
from elastic_recheck.core.lucene.analysis import java_lower, tokenize
from elastic_recheck.core.lucene.ast import (
    Bool,
    Exists,
    Fuzzy,
    MatchAll,
    MatchNone,
    Phrase,
    Prefix,
    Query,
    Range,
    Regexp,
    Term,
    Wildcard,
)
from elastic_recheck.core.lucene.automaton import wildcard_refusal
from elastic_recheck.core.lucene.lexer import WHITESPACE, Token, iter_tokens
from elastic_recheck.core.lucene.regexp import RegexpSyntaxError, RegexpTooComplexError, validate_regexp
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping

__all__ = ["DEFAULT_OPERATOR", "MAX_CLAUSE_COUNT", "parse", "to_string"]

LOG = logging.getLogger(__name__)

DEFAULT_OPERATOR = "OR"
#: Lucene's ``BooleanQuery.maxClauseCount``: more clauses in one group is an error.
MAX_CLAUSE_COUNT = 1024
#: The field of ``_exists_:f`` (ES).
EXISTS_FIELD = "_exists_"

# --------------------------------------------------------------------------
# Helpers mirroring QueryParserBase
# --------------------------------------------------------------------------


class _ParseError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _discard_escape_char(text: str, pos: int) -> str:
    """QueryParserBase.discardEscapeChar: drop ``\\``, decode ``\\uXXXX``."""
    units: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            units.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise _ParseError("Term can not end with escape character.", pos)
        nxt = text[i + 1]
        if nxt == "u":
            hexdigits = text[i + 2 : i + 6]
            if len(hexdigits) < 4:
                bad = [h for h in hexdigits if h not in "0123456789abcdefABCDEF"]
                if bad:
                    raise _ParseError(f"Non-hex character in Unicode escape sequence: {bad[0]}", pos)
                raise _ParseError("Truncated unicode escape sequence.", pos)
            for h in hexdigits:
                if h not in "0123456789abcdefABCDEF":
                    raise _ParseError(f"Non-hex character in Unicode escape sequence: {h}", pos)
            units.append(chr(int(hexdigits, 16)))
            i += 6
            continue
        units.append(nxt)
        i += 2
    out = "".join(units)
    if any("\ud800" <= u <= "\udfff" for u in out):
        # \uD83D\uDE00 escapes build one supplementary character, as in Java.
        out = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return out


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(text: str) -> str:
    """``text`` with each unpaired surrogate replaced by U+FFFD.

    Lucene turns a term into UTF-8 bytes with ``UnicodeUtil.UTF16toUTF8``,
    which writes U+FFFD for a surrogate without its pair: ``build_name:\\uD83D``
    looks up the keyword ``"\\uFFFD"``. Doing the same here keeps every value
    of the query tree encodable (SQLite refuses lone surrogates). Analysis
    sees the surrogate itself (it splits or drops tokens there); only the
    terms that come out are replaced.
    """
    return _LONE_SURROGATE.sub("\ufffd", text)


def _encodable(q: Query) -> Query:
    """``q`` with lone surrogates replaced in every field name, term and pattern."""
    if isinstance(q, Bool):
        return Bool(
            must=tuple(_encodable(c) for c in q.must),
            should=tuple(_encodable(c) for c in q.should),
            must_not=tuple(_encodable(c) for c in q.must_not),
        )
    node: Any = q  # every other node is a dataclass of strings, tuples of strings and numbers
    changes: dict[str, object] = {}
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, str):
            changes[f.name] = replace_lone_surrogates(value)
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            changes[f.name] = tuple(replace_lone_surrogates(v) for v in value)
    new: Query = replace(node, **changes) if changes else q
    return new


_JAVA_TRIM = "".join(chr(c) for c in range(0x21))
_JAVA_FLOAT = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?)"
)


def _java_float(text: str) -> float | None:
    """``Float.valueOf`` (32-bit), or ``None`` where Java throws."""
    s = text.strip(_JAVA_TRIM)
    if not _JAVA_FLOAT.fullmatch(s):
        return None
    body = s.rstrip("fFdD") if not s.lower().startswith(("0x", "+0x", "-0x")) else s
    if body.lower().lstrip("+-").startswith("0x"):
        sign = -1.0 if body.startswith("-") else 1.0
        value = sign * float.fromhex(body.lstrip("+-").rstrip("fFdD"))
    else:
        value = float(body)
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _java_int(value: float) -> int:
    """Java's ``(int)`` cast of a float."""
    if math.isnan(value):
        return 0
    if value >= 2**31 - 1:
        return 2**31 - 1
    if value <= -(2**31):
        return -(2**31)
    return int(value)


def _float_to_edits(min_similarity: float, term_len: int) -> int:
    """FuzzyQuery.floatToEdits."""
    if min_similarity >= 1.0:
        return int(min(min_similarity, 2.0))
    if min_similarity == 0.0:
        return 0
    return min(_java_int((1.0 - min_similarity) * term_len), 2)


# --------------------------------------------------------------------------
# Parser (QueryParser.jj productions) + semantic actions (QueryParserBase)
# --------------------------------------------------------------------------

_CONJ_NONE, _CONJ_AND, _CONJ_OR = 0, 1, 2
_MOD_NONE, _MOD_NOT, _MOD_REQ = 0, 10, 11
_MUST, _SHOULD, _MUST_NOT = "must", "should", "must_not"

_CLAUSE_START = frozenset(
    {
        "AND",
        "OR",
        "NOT",
        "PLUS",
        "MINUS",
        "BAREOPER",
        "LPAREN",
        "STAR",
        "QUOTED",
        "TERM",
        "PREFIXTERM",
        "WILDTERM",
        "REGEXPTERM",
        "RANGEIN_START",
        "RANGEEX_START",
        "NUMBER",
    }
)
_TERM_KINDS = frozenset({"TERM", "STAR", "PREFIXTERM", "WILDTERM", "REGEXPTERM", "NUMBER", "BAREOPER"})

_WILDCARD_CHUNKS = re.compile(r"(\\.)|([?*]+)", re.DOTALL)


class _Parser:
    def __init__(self, text: str, mapping: Mapping, es_mode: bool, default_operator: str) -> None:
        self.text = text
        self.mapping = mapping
        self.es = es_mode
        self.and_default = default_operator.upper() == "AND"
        # Lexed lazily: a query rejected early (too many clauses) is never
        # tokenized to its end.
        self._pending: Iterator[Token] | None = iter_tokens(text)
        self.tokens: list[Token] = []
        self.i = 0

    # -- token access ------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        want = self.i + k
        while self._pending is not None and len(self.tokens) <= want:
            tok = next(self._pending)
            self.tokens.append(tok)
            if tok.kind in ("EOF", "ERROR"):
                self._pending = None
        j = min(want, len(self.tokens) - 1)
        tok = self.tokens[j]
        return tok

    def kind(self, k: int = 0) -> str:
        # A lexical error only matters once the parser reaches it.
        return self.peek(k).kind

    def take(self, *kinds: str) -> Token:
        tok = self.peek()
        if tok.kind == "ERROR":
            raise _ParseError(tok.image, tok.pos)
        if tok.kind not in kinds:
            raise _ParseError(self._expected(tok, kinds), tok.pos)
        self.i += 1
        return tok

    def _expected(self, tok: Token, kinds: tuple[str, ...]) -> str:
        found = "end of query" if tok.kind == "EOF" else f"{tok.image!r}"
        names = {
            "RPAREN": "')'",
            "EOF": "end of query",
            "NUMBER": "a number",
            "RANGEIN_END": "']'",
            "RANGEEX_END": "'}'",
            "RANGE_GOOP": "a range bound",
            "RANGE_TO": "TO",
        }
        want = ", ".join(names.get(k, k.lower()) for k in kinds[:4])
        hint = ""
        if tok.kind in ("AND", "OR"):
            hint = f" ({tok.image} needs a clause on both sides)"
        elif tok.kind == "COLON":
            hint = " (a field name must be a plain term; escape ':' in values as '\\:')"
        elif tok.kind == "EOF" and kinds and kinds[0] == "RPAREN":
            hint = " (unbalanced parentheses)"
        elif tok.kind == "RPAREN":
            hint = " (unbalanced parentheses?)"
        return f"syntax error: found {found}, expected {want}{hint}"

    def _check_lexical(self) -> None:
        tok = self.peek()
        if tok.kind == "ERROR":
            raise _ParseError(tok.image, tok.pos)

    # -- grammar -------------------------------------------------------------
    def top_level(self, field: str) -> Query | None:
        q = self.query(field)
        self.take("EOF")
        return q

    def query(self, field: str) -> Query | None:
        clauses: list[tuple[str, Query]] = []
        self._check_lexical()
        mods = self.modifiers()
        q = self.clause(field)
        self.add_clause(clauses, _CONJ_NONE, mods, q)
        first_query = q if mods == _MOD_NONE else None
        while True:
            self._check_lexical()
            if self.kind() not in _CLAUSE_START:
                break
            conj = self.conjunction()
            mods = self.modifiers()
            q = self.clause(field)
            self.add_clause(clauses, conj, mods, q)
        if len(clauses) == 1 and first_query is not None:
            return first_query
        return self.get_boolean_query(clauses)

    def conjunction(self) -> int:
        k = self.kind()
        if k == "AND":
            self.i += 1
            return _CONJ_AND
        if k == "OR":
            self.i += 1
            return _CONJ_OR
        return _CONJ_NONE

    def modifiers(self) -> int:
        k = self.kind()
        if k == "PLUS":
            self.i += 1
            return _MOD_REQ
        if k in ("MINUS", "NOT"):
            self.i += 1
            return _MOD_NOT
        return _MOD_NONE

    def clause(self, field: str) -> Query | None:
        self._check_lexical()
        if self.kind() in ("TERM", "STAR") and self.kind(1) == "COLON":
            ftok = self.peek()
            field = "*" if ftok.kind == "STAR" else _discard_escape_char(ftok.image, ftok.pos)
            self.i += 2
        self._check_lexical()
        if self.kind() == "LPAREN":
            self.i += 1
            q = self.query(field)
            self.take("RPAREN")
            if self.kind() == "CARAT":
                self.i += 1
                self.take("NUMBER")
            return q
        return self.term(field)

    def term(self, field: str) -> Query | None:
        tok = self.peek()
        if tok.kind == "ERROR":
            raise _ParseError(tok.image, tok.pos)
        if tok.kind in _TERM_KINDS:
            self.i += 1
            fuzzy_slop = self._boost_and_slop()
            return self.handle_bare_token(field, tok, fuzzy_slop)
        if tok.kind in ("RANGEIN_START", "RANGEEX_START"):
            self.i += 1
            start_inc = tok.kind == "RANGEIN_START"
            goop1 = self.take("RANGE_GOOP", "RANGE_QUOTED", "RANGE_TO")
            self.take("RANGE_TO")
            goop2 = self.take("RANGE_GOOP", "RANGE_QUOTED", "RANGE_TO")
            end = self.take("RANGEIN_END", "RANGEEX_END")
            end_inc = end.kind == "RANGEIN_END"
            if self.kind() == "CARAT":
                self.i += 1
                self.take("NUMBER")
            part1, open1 = self._range_part(goop1)
            part2, open2 = self._range_part(goop2)
            return self.get_range_query(field, None if open1 else part1, None if open2 else part2, start_inc, end_inc)
        if tok.kind == "QUOTED":
            self.i += 1
            fuzzy_slop = self._boost_and_slop()
            return self.handle_quoted_term(field, tok, fuzzy_slop)
        if tok.kind == "EOF":
            raise _ParseError("syntax error: the query ends where a term, phrase or group was expected", tok.pos)
        raise _ParseError(self._expected(tok, ("a term", "a phrase", "'('")), tok.pos)

    def _range_part(self, tok: Token) -> tuple[str, bool]:
        if tok.kind == "RANGE_QUOTED":
            return _discard_escape_char(tok.image[1:-1], tok.pos), False
        if tok.image == "*":
            return "*", True
        return _discard_escape_char(tok.image, tok.pos), False

    def _boost_and_slop(self) -> Token | None:
        fuzzy_slop = None
        if self.kind() == "CARAT":
            self.i += 1
            self.take("NUMBER")
            if self.kind() == "FUZZY_SLOP":
                fuzzy_slop = self.peek()
                self.i += 1
        elif self.kind() == "FUZZY_SLOP":
            fuzzy_slop = self.peek()
            self.i += 1
            if self.kind() == "CARAT":
                self.i += 1
                self.take("NUMBER")
        return fuzzy_slop

    # -- semantic actions ----------------------------------------------------
    def add_clause(self, clauses: list[tuple[str, Query]], conj: int, mods: int, q: Query | None) -> None:
        if clauses and conj == _CONJ_AND:
            occur, prev = clauses[-1]
            if occur != _MUST_NOT:
                clauses[-1] = (_MUST, prev)
        if clauses and self.and_default and conj == _CONJ_OR:
            occur, prev = clauses[-1]
            if occur != _MUST_NOT:
                clauses[-1] = (_SHOULD, prev)
        if q is None:
            return
        if not self.and_default:
            prohibited = mods == _MOD_NOT
            required = mods == _MOD_REQ
            if conj == _CONJ_AND and not prohibited:
                required = True
        else:
            prohibited = mods == _MOD_NOT
            required = not prohibited and conj != _CONJ_OR
        if required and not prohibited:
            clauses.append((_MUST, q))
        elif not required and not prohibited:
            clauses.append((_SHOULD, q))
        else:
            clauses.append((_MUST_NOT, q))
        if len(clauses) > MAX_CLAUSE_COUNT:  # stop now, not after parsing every remaining clause
            raise _ParseError(f"too many boolean clauses (more than {MAX_CLAUSE_COUNT})", 0)

    def get_boolean_query(self, clauses: list[tuple[str, Query]]) -> Query | None:
        if not clauses:
            return None
        if len(clauses) > MAX_CLAUSE_COUNT:
            raise _ParseError(f"too many boolean clauses (more than {MAX_CLAUSE_COUNT})", 0)
        must = tuple(q for o, q in clauses if o == _MUST)
        should = tuple(q for o, q in clauses if o == _SHOULD)
        must_not = tuple(q for o, q in clauses if o == _MUST_NOT)
        if self.es and not must and not should:
            must = (MatchAll(),)  # ES Queries.fixNegativeQueryIfNeeded
        return Bool(must=must, should=should, must_not=must_not)

    def _is_text(self, field: str) -> bool:
        return self.mapping.is_text(field)

    def _normalize(self, field: str, text: str) -> str:
        return java_lower(text) if self._is_text(field) else text

    def handle_bare_token(self, field: str, tok: Token, fuzzy_slop: Token | None) -> Query | None:
        image = tok.image
        if tok.kind == "BAREOPER":
            image = image[0]
        # QueryParserBase.handleBareTokenQuery decodes escapes of every bare
        # token first, wildcards and regexps included: a bad \u escape is an
        # error even where the term itself is read raw.
        term_image = _discard_escape_char(image, tok.pos)
        if tok.kind in ("STAR", "WILDTERM"):
            wild = self.get_wildcard_query(field, image)
            if isinstance(wild, Wildcard):
                refusal = wildcard_refusal(wild.pattern)  # what Lucene's WildcardQuery refuses (too complex)
                if refusal is not None:
                    raise _ParseError(refusal, tok.pos)
            return wild
        if tok.kind == "PREFIXTERM":
            return self.get_prefix_query(field, _discard_escape_char(image[:-1], tok.pos))
        if tok.kind == "REGEXPTERM":
            pattern = self._normalize(field, image[1:-1])
            try:
                validate_regexp(pattern)
            except RegexpSyntaxError as exc:
                raise _ParseError(f"invalid regular expression /{image[1:-1]}/: {exc}", tok.pos) from None
            except RegexpTooComplexError as exc:
                raise _ParseError(str(exc), tok.pos) from None
            return Regexp(field, pattern)
        if fuzzy_slop is not None:
            return self.handle_bare_fuzzy(field, fuzzy_slop, term_image)
        return self.get_field_query(field, term_image, quoted=False, pos=tok.pos)

    def handle_bare_fuzzy(self, field: str, slop: Token, term_image: str) -> Query | None:
        if self.es:
            if len(slop.image) == 1:
                n = len(term_image)
                edits = 0 if n < 3 else (1 if n < 6 else 2)
            else:
                f = _java_float(slop.image[1:])
                if f is None:
                    raise _ParseError(f"bad fuzziness {slop.image}", slop.pos)
                edits = min(2, _java_int(f))
            return self.get_fuzzy_query(field, term_image, float(edits))
        fms = _java_float(slop.image[1:])
        if fms is None:
            fms = 2.0
        if fms < 0.0:
            raise _ParseError("Minimum similarity for a FuzzyQuery has to be between 0.0f and 1.0f !", slop.pos)
        if fms >= 1.0 and fms != _java_int(fms):
            raise _ParseError("Fractional edit distances are not allowed!", slop.pos)
        return self.get_fuzzy_query(field, term_image, fms)

    def get_fuzzy_query(self, field: str, term_text: str, min_similarity: float) -> Query:
        value = self._normalize(field, term_text)
        edits = _float_to_edits(min_similarity, len(value))
        if edits == 0:
            return Term(field, value)
        return Fuzzy(field, value, edits)

    def handle_quoted_term(self, field: str, tok: Token, fuzzy_slop: Token | None) -> Query | None:
        slop = 0
        if fuzzy_slop is not None:
            f = _java_float(fuzzy_slop.image[1:])
            if f is not None:
                slop = _java_int(f)
        text = _discard_escape_char(tok.image[1:-1], tok.pos)
        q = self.get_field_query(field, text, quoted=True, pos=tok.pos)
        if isinstance(q, Phrase):
            if slop < 0:
                raise _ParseError("slop value cannot be negative", tok.pos)
            q = Phrase(q.field, q.terms, q.positions, slop)
        return q

    def get_field_query(self, field: str, text: str, quoted: bool, pos: int) -> Query | None:
        if self.es:
            if field == EXISTS_FIELD:
                return Exists(text)
            if not quoted and len(text) > 1 and text[0] in "<>":
                if text[0] == ">":
                    if len(text) > 2 and text[1] == "=":
                        return self.get_range_query(field, text[2:], None, True, True)
                    return self.get_range_query(field, text[1:], None, False, True)
                if len(text) > 2 and text[1] == "=":
                    return self.get_range_query(field, None, text[2:], True, True)
                return self.get_range_query(field, None, text[1:], True, False)
        if not self._is_text(field):
            return Term(field, text)  # KeywordAnalyzer: the whole text, even ""
        tokens = tokenize(text)
        if not tokens:
            return None
        if len(tokens) == 1:
            return Term(field, tokens[0])
        if quoted:
            return Phrase(field, tuple(tokens), tuple(range(len(tokens))), 0)
        if len(tokens) > MAX_CLAUSE_COUNT:
            raise _ParseError(f"too many boolean clauses (more than {MAX_CLAUSE_COUNT})", pos)
        terms = tuple(Term(field, t) for t in tokens)
        return Bool(must=terms) if self.and_default else Bool(should=terms)

    def get_wildcard_query(self, field: str, term_str: str) -> Query:
        if self.es and term_str == "*":
            return MatchAll() if field == "*" else Exists(field)
        if field == "*" and term_str == "*":
            return MatchAll()
        if not self._is_text(field):
            return Wildcard(field, term_str)
        # analyzeWildcard: normalize the text between wildcards and escapes
        out: list[str] = []
        last = 0
        for m in _WILDCARD_CHUNKS.finditer(term_str):
            if m.start() > last:
                out.append(java_lower(term_str[last : m.start()]))
            out.append(m.group())
            last = m.end()
        if last < len(term_str):
            out.append(java_lower(term_str[last:]))
        return Wildcard(field, "".join(out))

    def get_prefix_query(self, field: str, term_str: str) -> Query:
        return Prefix(field, self._normalize(field, term_str))

    def get_range_query(
        self, field: str, part1: str | None, part2: str | None, start_inc: bool, end_inc: bool
    ) -> Query:
        if self.es:
            if part1 == "*":
                part1 = None
            if part2 == "*":
                part2 = None
        lower = None if part1 is None else self._normalize(field, part1)
        upper = None if part2 is None else self._normalize(field, part2)
        return Range(field, lower, upper, start_inc, end_inc)


def _line_col(text: str, pos: int) -> tuple[int, int]:
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def parse(
    text: str,
    mapping: Mapping = DEFAULT_MAPPING,
    es_mode: bool = True,
    default_operator: str = DEFAULT_OPERATOR,
) -> Query:
    """Parse a Lucene ``query_string`` into the analyzed query AST.

    :param mapping: which fields are analyzed text (default field: ``mapping.default_field``).
    :param es_mode: add Elasticsearch 7's ``query_string`` behaviours (see the module doc).
    :param default_operator: ``"OR"`` (ES default) or ``"AND"``.
    :raises QuerySyntaxError: where Lucene's parser (or ES) rejects the query.
    """
    key = (text, mapping, es_mode, default_operator.upper())
    known = _REMEMBERED.get(key)
    if known is not None:
        return known
    return _parse_cached(*key)


#: Parses made by an earlier process of this same parser (the fingerprint
#: cache, :mod:`elastic_recheck.core.fingerprint_cache`, hands them over):
#: ``(text, mapping, es_mode, default_operator) -> query``.
_REMEMBERED: dict[tuple[str, Mapping, bool, str], Query] = {}


def remember(text: str, mapping: Mapping, es_mode: bool, query: Query, default_operator: str = DEFAULT_OPERATOR) -> None:
    """Record that ``parse(text, mapping, es_mode, default_operator)`` returns ``query``.

    Only for results of :func:`parse` itself, kept by a cache that is keyed by
    this parser's version: a later :func:`parse` of the same arguments returns
    ``query`` without parsing again.
    """
    if len(_REMEMBERED) >= 20_000:
        _REMEMBERED.clear()
    _REMEMBERED[(text, mapping, es_mode, default_operator.upper())] = query


@lru_cache(maxsize=4096)
def _parse_cached(text: str, mapping: Mapping, es_mode: bool, default_operator: str) -> Query:
    if default_operator not in ("OR", "AND"):
        raise ValueError(f"default_operator must be OR or AND, not {default_operator!r}")
    if es_mode and not text.strip(_JAVA_TRIM):  # Java's String.trim(): chars <= U+0020
        return MatchNone()
    parser = _Parser(text, mapping, es_mode, default_operator)
    try:
        q = parser.top_level(mapping.default_field)
    except _ParseError as exc:
        line, col = _line_col(text, exc.pos)
        raise QuerySyntaxError(exc.message, line, col, text) from None
    except RecursionError:
        raise QuerySyntaxError("query is nested too deeply", 1, 1, text) from None
    if q is None:
        return MatchNone()
    if "\\u" in text or _LONE_SURROGATE.search(text):
        q = _encodable(q)
    return q


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

_SPECIAL = set('+-!():^[]"{}~*?\\/ &|')


def _escape(value: str) -> str:
    if value == "":
        return '""'
    out = []
    for ch in value:
        if ch in _SPECIAL or ch in WHITESPACE:
            out.append("\\" + ch)
        else:
            out.append(ch)
    s = "".join(out)
    if s in ("AND", "OR", "NOT", "TO") or s[0] in "<>":  # not an operator, not an ES range
        return "\\" + s
    return s


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_string(query: Query) -> str:
    """A canonical, readable Lucene-like rendering of an AST (for ``--explain``/dedup).

    Required clauses are ``+x``, prohibited ``-x``, optional ``x``; nested
    groups are parenthesised and one-clause groups collapse to their clause.
    Equal ASTs render equally, and the rendering of a parsed query parses
    back to an equivalent query (except ``<match nothing>``).
    """
    return _render(query, top=True)


def _render(q: Query, top: bool = False) -> str:
    if isinstance(q, MatchAll):
        return "*:*"
    if isinstance(q, MatchNone):
        return "<match nothing>"
    if isinstance(q, Term):
        return f"{q.field}:{_escape(q.value)}"
    if isinstance(q, Phrase):
        body = " ".join(q.terms)
        if q.positions != tuple(range(len(q.terms))):
            body = " ".join(f"{t}@{p}" for t, p in zip(q.terms, q.positions, strict=True))
        return f"{q.field}:{_quote(body)}" + (f"~{q.slop}" if q.slop else "")
    if isinstance(q, Prefix):
        return f"{q.field}:{_escape(q.prefix)}*"
    if isinstance(q, Wildcard):
        return f"{q.field}:{q.pattern}"
    if isinstance(q, Regexp):
        return f"{q.field}:/{q.pattern}/"
    if isinstance(q, Fuzzy):
        return f"{q.field}:{_escape(q.value)}~{q.max_edits}"
    if isinstance(q, Range):
        lo = "*" if q.lower is None else _quote(q.lower)
        hi = "*" if q.upper is None else _quote(q.upper)
        return f"{q.field}:{'[' if q.include_lower else '{'}{lo} TO {hi}{']' if q.include_upper else '}'}"
    if isinstance(q, Exists):
        return f"{EXISTS_FIELD}:{_escape(q.field)}"
    if isinstance(q, Bool):
        if not q.must_not and len(q.must) + len(q.should) == 1:
            return _render((q.must or q.should)[0], top)  # a one-clause group means its clause
        parts = [f"+{_render(c)}" for c in q.must]
        parts += [_render(c) for c in q.should]
        parts += [f"-{_render(c)}" for c in q.must_not]
        body = " ".join(parts)
        return body if top and body else f"({body})"
    raise TypeError(f"not a query node: {q!r}")
