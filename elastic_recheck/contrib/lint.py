"""Lint fingerprints without a backend: syntax, fields, and queries that don't mean what they seem to.

Everything here is pure: callers hand in ``(file name, file text)`` pairs and get
:class:`Finding` objects back (``elastic-recheck check-queries`` reads the
files and prints them).

Two views of a query are used:

* the **analyzed AST** from :func:`elastic_recheck.core.lucene.parser.parse` (what the
  engines execute): syntax errors, unknown fields, duplicates, queries without
  a ``message`` clause, queries made only of common words;
* the **raw syntax** from :func:`parse_raw`, a small scanner of Lucene's
  classic ``query_string`` grammar that keeps every clause's conjunction,
  modifier, field and position: how the author *wrote* the query (implicit
  ``OR``, ``AND`` mixed with ``OR``, single quotes, leading wildcards,
  hyphenated unquoted words). It only runs on queries that
  :func:`~elastic_recheck.core.lucene.parser.parse` accepted, and never decides what is
  valid: acceptance is Lucene's (the parser's) business alone.

Boolean meaning
---------------
Lucene's classic QueryParser does not give ``AND`` precedence over ``OR``.
Each parenthesis level is a flat list of clauses; ``AND`` marks the clauses
on both of its sides *required*, every other clause is *optional*
(``SHOULD``), and optional clauses change nothing as soon as one clause is
required. So ``a AND b OR c`` is ``+a +b c``: it matches ``a AND b`` and
``c`` is ignored, and ``a OR b AND c`` is ``a +b +c``, which matches
``b AND c``. :func:`level_meaning_differs` evaluates, over every truth
assignment of a level's clauses, both Lucene's meaning and the reading a
person would give it (``NOT`` binds tightest, then ``AND``, then ``OR``; a
missing operator is ``OR``; a ``+``/``-``/``NOT`` clause joined to its
neighbours without an explicit operator applies to the whole level, as
Lucene's modifiers do). ``mixed-and-or`` is reported exactly when the two
differ.

``implicit-or`` is reported whenever two clauses are joined without an
operator and so become alternatives (``message:"a" tags:"b"`` matches lines
with *either*). That is what the text literally says, but fingerprint
authors almost always mean ``AND``: writing the ``OR`` (or ``AND``) out
costs nothing and removes the doubt.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from elastic_recheck.contrib.lint_patterns import CODES as PATTERN_CODES
from elastic_recheck.contrib.lint_patterns import pattern_findings
from elastic_recheck.core.errors import FingerprintError, QuerySyntaxError
from elastic_recheck.core.fingerprints import (
    KNOWN_KEYS,
    Fingerprint,
    QueryLocator,
    offset_of,
    parse_fingerprint,
)
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping

LOG = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"

#: Every finding code, with a one-line description (shown by ``check-queries --list-codes``).
CODES: dict[str, str] = {
    "yaml": "the file is not valid YAML or not a mapping with a 'query' key",
    "invalid": "a key has a value of the wrong type",
    "syntax": "the query is rejected by Lucene's query parser",
    "unknown-key": "a key the loader does not know (ignored)",
    "file-name": "the file name is not a bug id (<Launchpad bug number>.yaml, or any id with bug_url)",
    "unknown-field": "a field that is not in the document mapping (the clause never matches)",
    "implicit-or": "two clauses joined without an operator: Lucene makes them alternatives (OR)",
    "mixed-and-or": "AND/OR/NOT combined so that Lucene's meaning differs from the usual boolean reading",
    "single-quotes": "single quotes are not phrase quotes in Lucene",
    "leading-wildcard": "a term starting with * or ?: slow, and refused by clusters without allow_leading_wildcard",
    "wildcard-in-phrase": "* inside double quotes is not a wildcard",
    "wildcard-split": "a wildcard/prefix term on a text field that can never match one token",
    "empty-clause": "a term or phrase that analyzes to no token: Lucene drops the clause",
    "split-term": "an unquoted word that the analyzer splits into several tokens, OR-ed together",
    "lowercase-operator": "a lower-case and/or/not: a search word, not an operator (operators are AND, OR, NOT)",
    "no-message": "no positive clause on the message field: it matches on metadata alone",
    "not-only": "only negative clauses",
    "duplicate": "the same query (after normalization) as another fingerprint",
    "broad-query": "the query needs only very common words to match",
    **PATTERN_CODES,
    "internal": "the linter itself failed on this file (a bug: please report it)",
}

#: Words so common in CI logs that a fingerprint relying on them alone matches a large share of all lines.
COMMON_WORDS: frozenset[str] = frozenset(
    (
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "if", "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
        "there", "these", "they", "this", "to", "was", "will", "with",
        "error", "errors", "err", "failed", "fail", "fails", "failure", "failures", "fatal", "exception", "exceptions", "traceback", "timeout", "timed",
        "time", "out", "warning", "warn", "warnings", "info", "debug", "trace", "critical", "notice",
        "true", "false", "none", "null", "ok", "yes", "test", "tests", "testing", "build", "job", "run", "running", "started", "start", "stop", "stopped",
        "file", "line", "status", "result", "results", "return", "returned", "code", "call", "called", "server", "client", "request", "response",
        "http", "https", "www", "com", "org", "net", "json",
    )
)

#: At most this many distinct clauses per level are compared on every truth assignment (2**16 bits).
MAX_TRUTH_TABLE_ATOMS = 16

_WS = " \t\n\r\u3000"
# Characters that cannot start a Lucene term (QueryParser.jj _TERM_START_CHAR), besides whitespace.
_NOT_TERM_START = set('+-!():^[]"{}~*?\\/') | set(_WS)
# Characters that cannot continue a term (+ and - can).
_NOT_TERM_CHAR = _NOT_TERM_START - {"+", "-"}


# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in one fingerprint file (``line``/``col`` are 1-based, in the file)."""

    file: str
    line: int
    col: int
    level: str
    code: str
    message: str

    def format_text(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.level}: {self.message} [{self.code}]"

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "level": self.level,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class QueryFinding:
    """A finding about a query string; ``offset`` is a 0-based index into the query text."""

    offset: int
    level: str
    code: str
    message: str


# ---------------------------------------------------------------------------
# Raw syntax: tokens and clauses as written
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # AND OR NOT PLUS MINUS LPAREN RPAREN COLON CARAT NUMBER FUZZY TERM STAR QUOTED REGEX RANGE
    text: str
    start: int
    end: int


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def _has_unescaped(text: str, chars: str) -> bool:
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


def scan(query: str) -> list[Token]:
    """Split a query into Lucene classic-QueryParser tokens, with positions.

    Lenient: never raises. Characters the grammar would reject come out as
    single-character ``TERM`` tokens (such queries never get here anyway).
    """
    out: list[Token] = []
    n = len(query)
    i = 0
    after_caret = False
    while i < n:
        c = query[i]
        if c in _WS:
            i += 1
            continue
        start = i
        if after_caret:
            after_caret = False
            m = re.compile(r"\d+(?:\.\d+)?").match(query, i)
            if m:
                out.append(Token("NUMBER", m.group(), i, m.end()))
                i = m.end()
                continue
        if c == '"':
            j = i + 1
            while j < n and query[j] != '"':
                j += 2 if query[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(Token("QUOTED", query[i:j], i, j))
            i = j
            continue
        if c == "/":
            j = i + 1
            while j < n and query[j] != "/":
                j += 2 if query[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(Token("REGEX", query[i:j], i, j))
            i = j
            continue
        if c in "[{":
            j = i + 1
            while j < n and query[j] not in "]}":
                if query[j] == '"':
                    j += 1
                    while j < n and query[j] != '"':
                        j += 2 if query[j] == "\\" else 1
                j += 1
            j = min(j + 1, n)
            out.append(Token("RANGE", query[i:j], i, j))
            i = j
            continue
        simple = {"(": "LPAREN", ")": "RPAREN", ":": "COLON", "^": "CARAT"}
        if c in simple:
            out.append(Token(simple[c], c, i, i + 1))
            after_caret = c == "^"
            i += 1
            continue
        if c == "~":
            m = re.compile(r"~(?:\d+(?:\.\d+)?)?").match(query, i)
            assert m is not None
            out.append(Token("FUZZY", m.group(), i, m.end()))
            i = m.end()
            continue
        if c in "+-!":
            # BAREOPER: an operator character followed by whitespace is a term.
            if i + 1 < n and query[i + 1] in _WS:
                out.append(Token("TERM", c, i, i + 1))
            else:
                out.append(Token({"+": "PLUS", "-": "MINUS", "!": "NOT"}[c], c, i, i + 1))
            i += 1
            continue
        # A term (possibly with wildcards): start char, escape, * or ?.
        j = i
        while j < n:
            ch = query[j]
            if ch == "\\":
                j = min(j + 2, n)
                continue
            if ch in "*?":
                j += 1
                continue
            if j == i and ch in _NOT_TERM_START:
                break
            if j > i and ch in _NOT_TERM_CHAR:
                break
            j += 1
        if j == i:  # a lone character the grammar has no use for
            out.append(Token("TERM", c, i, i + 1))
            i += 1
            continue
        text = query[i:j]
        kind = "TERM"
        if text in ("AND", "&&"):
            kind = "AND"
        elif text in ("OR", "||"):
            kind = "OR"
        elif text == "NOT":
            kind = "NOT"
        elif text == "*":
            kind = "STAR"
        out.append(Token(kind, text, start, j))
        i = j
    return out


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
    tokens = scan(query)
    pos = 0

    def peek(k: int = 0) -> Token | None:
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
                explicit = _unescape(t.text)
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


# ---------------------------------------------------------------------------
# Boolean meaning of one level: Lucene's versus the usual reading
# ---------------------------------------------------------------------------

MUST, SHOULD, MUST_NOT = "must", "should", "must_not"


def lucene_occurs(lv: Level) -> list[str]:
    """The occur (must/should/must_not) Lucene's classic parser gives each clause.

    Follows ``QueryParserBase.addClause`` with the default operator OR: an
    ``AND`` makes the clause before it required (unless it is prohibited) and
    the clause after it required; ``+`` is required; ``-``/``NOT`` prohibited;
    everything else optional.
    """
    occurs: list[str] = []
    for k, c in enumerate(lv.clauses):
        if k > 0 and c.conj == "AND" and occurs[k - 1] != MUST_NOT:
            occurs[k - 1] = MUST
        prohibited = c.mod in ("-", "NOT")
        required = c.mod == "+" or (c.conj == "AND" and not prohibited)
        occurs.append(MUST if required else MUST_NOT if prohibited else SHOULD)
    return occurs


def _atom_key(c: Clause) -> str:
    return f"{c.field}\x00{c.kind}\x00{' '.join(c.text.split())}"


def _var_masks(n: int) -> tuple[list[int], int]:
    """Bit masks of ``n`` boolean variables over all ``2**n`` assignments (bit j = assignment j)."""
    size = 1 << n
    full = (1 << size) - 1
    masks = []
    for i in range(n):
        block = 1 << i
        unit = ((1 << block) - 1) << block  # ones in the upper half of a 2*block window
        comb = full // ((1 << (2 * block)) - 1)
        masks.append(unit * comb)
    return masks, full


def _lucene_value(occurs: Sequence[str], values: Sequence[int], full: int, es_mode: bool) -> int:
    must = [v for o, v in zip(occurs, values, strict=True) if o == MUST]
    should = [v for o, v in zip(occurs, values, strict=True) if o == SHOULD]
    must_not = [v for o, v in zip(occurs, values, strict=True) if o == MUST_NOT]
    if must:
        result = full
        for v in must:
            result &= v
    elif should:
        result = 0
        for v in should:
            result |= v
    elif must_not and es_mode:
        result = full  # ES adds match_all to a purely negative query
    else:
        result = 0
    for v in must_not:
        result &= full ^ v
    return result


def reading_items(lv: Level) -> tuple[list[tuple[str | None, bool, int]], list[tuple[bool, int]]]:
    """The usual boolean reading of a level.

    Returns ``(items, globals)``: ``items`` are ``(conj, negated, clause
    index)`` with ``conj`` "AND"/"OR"/None, read with AND before OR;
    ``globals`` are ``(negated, clause index)`` for ``+``/``-``/``NOT``
    clauses that no explicit operator touches (Lucene-style modifiers, which
    apply to the whole level). A missing operator reads as OR.
    """
    clauses = lv.clauses
    items: list[tuple[str | None, bool, int]] = []
    globs: list[tuple[bool, int]] = []
    for k, c in enumerate(clauses):
        after = clauses[k + 1].conj if k + 1 < len(clauses) else None
        before = c.conj
        negated = c.mod in ("-", "NOT")
        if c.mod is not None and before in (None, "IMPLICIT") and after in (None, "IMPLICIT"):
            globs.append((negated, k))
            continue
        conj: str | None = "AND" if before == "AND" else "OR" if before in ("OR", "IMPLICIT") else None
        if not items:
            conj = None
        items.append((conj, negated, k))
    return items, globs


def _reading_value(lv: Level, values: Sequence[int], full: int) -> int:
    items, globs = reading_items(lv)
    result = full
    for negated, k in globs:
        result &= (full ^ values[k]) if negated else values[k]
    if items:
        total = 0
        cur: int | None = None
        for conj, negated, k in items:
            v = (full ^ values[k]) if negated else values[k]
            if conj == "AND" and cur is not None:
                cur &= v
            else:
                if cur is not None:
                    total |= cur
                cur = v
        if cur is not None:
            total |= cur
        result &= total
    return result


def level_meaning_differs(lv: Level, es_mode: bool = True) -> bool | None:
    """True when Lucene's meaning of this level differs from its usual boolean reading.

    Clauses are atoms (identical clauses are the same atom); nested groups
    are atoms too (they are checked on their own). None when the level has
    too many distinct clauses to compare (see :data:`MAX_TRUTH_TABLE_ATOMS`).
    """
    if len(lv.clauses) < 2:
        return False
    keys: dict[str, int] = {}
    idx = [keys.setdefault(_atom_key(c), len(keys)) for c in lv.clauses]
    if len(keys) > MAX_TRUTH_TABLE_ATOMS:
        return None
    masks, full = _var_masks(len(keys))
    values = [masks[i] for i in idx]
    lucene = _lucene_value(lucene_occurs(lv), values, full, es_mode)
    reading = _reading_value(lv, values, full)
    return lucene != reading


def _short(text: str, limit: int = 48) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _clause_src(query: str, c: Clause) -> str:
    """The clause as written, without its modifier."""
    src = query[c.start : c.end]
    if c.mod is not None:
        src = src[3:] if src.startswith("NOT") else src[1:]
    return _short(src.lstrip())


def explain_lucene(query: str, lv: Level) -> str:
    """Lucene's reading of a level, e.g. ``+a +b c``."""
    prefix = {MUST: "+", SHOULD: "", MUST_NOT: "-"}
    return " ".join(prefix[o] + _clause_src(query, c) for o, c in zip(lucene_occurs(lv), lv.clauses, strict=True))


def explain_reading(query: str, lv: Level) -> str:
    """The usual reading of a level with explicit parentheses, e.g. ``(a AND b) OR c``."""
    items, globs = reading_items(lv)
    groups: list[list[str]] = []
    for conj, negated, k in items:
        text = ("NOT " if negated else "") + _clause_src(query, lv.clauses[k])
        if conj == "AND" and groups:
            groups[-1].append(text)
        else:
            groups.append([text])
    parts = []
    for g in groups:
        joined = " AND ".join(g)
        parts.append(f"({joined})" if len(g) > 1 and len(groups) > 1 else joined)
    text = " OR ".join(parts)
    extra = [("NOT " if neg else "") + _clause_src(query, lv.clauses[k]) for neg, k in globs]
    if extra:
        head = " AND ".join(extra)
        text = f"{head} AND ({text})" if len(parts) > 1 else (f"{head} AND {text}" if text else head)
    return text


def _describe_lucene(query: str, lv: Level, es_mode: bool) -> str:
    occurs = lucene_occurs(lv)
    must = [_clause_src(query, c) for o, c in zip(occurs, lv.clauses, strict=True) if o == MUST]
    should = [_clause_src(query, c) for o, c in zip(occurs, lv.clauses, strict=True) if o == SHOULD]
    must_not = [_clause_src(query, c) for o, c in zip(occurs, lv.clauses, strict=True) if o == MUST_NOT]
    if len(must) > 1:
        text = "it matches only when " + " and ".join(must) + " match"
    elif must:
        text = f"it matches only when {must[0]} matches"
    elif len(should) > 1:
        text = "it matches when any of " + ", ".join(should) + " matches"
    elif should:
        text = f"it matches when {should[0]} matches"
    elif es_mode:
        text = "it matches everything"
    else:
        text = "it matches nothing"
    if must_not:
        text += ", unless " + " or ".join(must_not) + " matches"
    if must and should:
        verb = "is optional and changes" if len(should) == 1 else "are optional and change"
        text += "; " + ", ".join(should) + f" {verb} nothing"
    return text


# ---------------------------------------------------------------------------
# Text analysis helpers
# ---------------------------------------------------------------------------


def _tokenize(text: str) -> list[str]:
    """Tokens of ``text`` with the text fields' analyzer (StandardAnalyzer)."""
    from elastic_recheck.core.lucene import analysis

    return analysis.tokenize(text)


def _fits_in_token(fragment: str, open_left: bool, open_right: bool) -> bool:
    """Can ``fragment`` be part of one analyzed token (wildcards standing for what is on the open sides)?

    Characters such as ``.`` ``:`` ``'`` join letters or digits inside a
    token but not at its ends, so the fragment is tried with a letter or a
    digit on each side where the wildcard could supply one.
    """
    from elastic_recheck.core.lucene.analysis import java_lower

    lefts = ("a", "0") if open_left else ("",)
    rights = ("a", "0") if open_right else ("",)
    for left in lefts:
        for right in rights:
            probe = left + fragment + right
            if _tokenize(probe) == [java_lower(probe)]:
                return True
    return False


def _phrase_content(token_text: str) -> str:
    inner = token_text[1:-1] if len(token_text) >= 2 and token_text.endswith('"') else token_text[1:]
    return _unescape(inner)


# ---------------------------------------------------------------------------
# Rules on the raw syntax
# ---------------------------------------------------------------------------


def lint_raw(query: str, mapping: Mapping = DEFAULT_MAPPING, es_mode: bool = True) -> list[QueryFinding]:
    """Findings about how the query is written (offsets into ``query``)."""
    root = parse_raw(query, mapping.default_field)
    out: list[QueryFinding] = []
    for lv in iter_levels(root):
        out.extend(_boolean_findings(query, lv, es_mode, top=lv is root, mapping=mapping))
    for c, _lv in iter_clauses(root):
        out.extend(_term_findings(query, c, mapping))
    return out


def _boolean_findings(
    query: str, lv: Level, es_mode: bool, top: bool, mapping: Mapping = DEFAULT_MAPPING
) -> list[QueryFinding]:
    out: list[QueryFinding] = []
    clauses = lv.clauses
    if not clauses:
        return out
    occurs = lucene_occurs(lv)
    if all(o == MUST_NOT for o in occurs) and (top or not es_mode):
        what = "every log line except those" if es_mode else "nothing at all (plain Lucene drops purely negative groups)"
        if not top:
            what = "nothing: in plain Lucene a group of only negative clauses matches no document"
        out.append(
            QueryFinding(
                lv.start if not top else clauses[0].start,
                WARNING,
                "not-only",
                f"only negative clauses: this matches {what}; add a positive clause (e.g. the message you expect)",
            )
        )
    differs = level_meaning_differs(lv, es_mode)
    has_and = any(c.conj == "AND" for c in clauses)
    has_or = any(c.conj in ("OR", "IMPLICIT") for c in clauses)
    if differs is None:  # too many clauses for a truth table: syntactic fallback
        differs = has_and and has_or
    if differs:
        first = next(
            (c.conj_pos for c in clauses if c.conj in ("OR", "IMPLICIT") and c.conj_pos is not None),
            clauses[0].start,
        )
        explicit = any(c.conj in ("AND", "OR") for c in clauses) or any(c.mod == "NOT" for c in clauses)
        lucene = explain_lucene(query, lv)
        reading = explain_reading(query, lv)
        if explicit:
            why = (
                "Lucene does not give AND precedence over OR"
                if has_and and has_or
                else "Lucene's NOT and OR are not the boolean operators they look like"
            )
            message = (
                f"{why}: it reads this as `{lucene}` (+ required, - excluded, others optional), so "
                f"{_describe_lucene(query, lv, es_mode)}; not `{reading}`. "
                "Add parentheses (or use AND NOT) to say which you mean"
            )
            out.append(QueryFinding(first, WARNING, "mixed-and-or", message))
        else:
            message = (
                f"clauses without an operator are optional: Lucene reads this as `{lucene}`, so "
                f"{_describe_lucene(query, lv, es_mode)}; write AND or OR between the clauses"
            )
            out.append(QueryFinding(first, WARNING, "implicit-or", message))
        return out
    # Implicit OR between two clauses that really become alternatives.
    if any(o == MUST for o in occurs):
        return out
    for k in range(1, len(clauses)):
        c, prev = clauses[k], clauses[k - 1]
        if c.conj != "IMPLICIT" or occurs[k] != SHOULD or occurs[k - 1] != SHOULD:
            continue
        if c.field == prev.field and not mapping.is_text(c.field) and "GROUP" not in (c.kind, prev.kind):
            # Two values of one keyword field (build_name:(a b)): a build has
            # one value, so OR is the only meaning that can match.
            continue
        a, b = _clause_src(query, prev), _clause_src(query, c)
        out.append(
            QueryFinding(
                c.conj_pos if c.conj_pos is not None else c.start,
                WARNING,
                "implicit-or",
                f"no operator between `{a}` and `{b}`: Lucene's default operator is OR, so a line "
                "matching either one matches. Fingerprint authors almost always mean AND here, so this is "
                "always flagged: write `AND` if both must match, or `OR` if either is really enough",
            )
        )
        break  # one per level is enough
    return out


def _term_findings(query: str, c: Clause, mapping: Mapping) -> list[QueryFinding]:
    out: list[QueryFinding] = []
    text_field = mapping.is_text(c.field)
    at = c.term_start
    if c.kind == "TERM":
        raw = c.text
        if raw.upper() in ("AND", "OR", "NOT") and raw != raw.upper() and c.explicit_field is None:
            out.append(
                QueryFinding(
                    at,
                    WARNING,
                    "lowercase-operator",
                    f"`{raw}` is a search word here, not an operator: Lucene's operators are upper case "
                    f"({raw.upper()}); write `{raw.upper()}`, or quote the word if you mean to search for it",
                )
            )
        if raw.startswith("'"):
            out.append(
                QueryFinding(
                    at,
                    WARNING,
                    "single-quotes",
                    "single quotes are not phrase quotes in Lucene: "
                    f"`{_short(raw)}...` is read as separate terms, OR-ed together; use double quotes for a phrase",
                )
            )
        has_wild = _has_unescaped(raw, "*?")
        if has_wild:
            if raw[0] in "*?" and raw != "*":
                out.append(
                    QueryFinding(
                        at,
                        WARNING,
                        "leading-wildcard",
                        f"`{_short(raw)}` starts with a wildcard: it scans every term of the field, is slow on "
                        "a large cluster and is refused where allow_leading_wildcard is off",
                    )
                )
            if text_field:
                pieces = re.split(r"(?<!\\)[*?]", raw)
                for k, part in enumerate(pieces):
                    if not part or _fits_in_token(_unescape(part), k > 0, k < len(pieces) - 1):
                        continue
                    toks = _tokenize(_unescape(part))
                    out.append(
                        QueryFinding(
                            at,
                            WARNING,
                            "wildcard-split",
                            f"`{_short(raw)}` is a wildcard pattern, matched against single tokens of "
                            f"{c.field} without analysis, but `{part}` is never part of one token "
                            f"(the analyzer makes {', '.join(toks) or 'nothing'} of it): "
                            "this clause matches nothing; use a phrase of whole words instead",
                        )
                    )
                    break
        elif text_field and not c.fuzzy:
            value = _unescape(raw)
            toks = _tokenize(value)
            if not toks:
                out.append(_empty_finding(at, raw, c.field))
            elif len(toks) > 1:
                quoted = '"' + value.replace('"', '\\"') + '"'
                out.append(
                    QueryFinding(
                        at,
                        WARNING,
                        "split-term",
                        f"`{_short(raw)}` is not quoted, so the analyzer splits it into {len(toks)} tokens "
                        f"({', '.join(toks[:6])}{', ...' if len(toks) > 6 else ''}) and the clause matches a line "
                        f"containing any one of them; quote it to match the words in sequence: {c.field}:{_short(quoted)}",
                    )
                )
    elif c.kind == "QUOTED":
        content = _phrase_content(c.text)
        if text_field and not _tokenize(content):
            out.append(_empty_finding(at, c.text, c.field))
        elif re.search(r"(?<=\w)\*|(?<!\\)\*(?=\w)", content):
            what = (
                "the analyzer drops the `*` and the phrase matches the literal words only"
                if text_field
                else f"{c.field} is an exact keyword, so this matches only a value with a literal `*`"
            )
            out.append(
                QueryFinding(
                    at,
                    WARNING,
                    "wildcard-in-phrase",
                    f"`{_short(c.text)}`: wildcards are not expanded inside double quotes; {what}. "
                    "Use an unquoted wildcard term (AND-ed with the rest) if you need one",
                )
            )
    return out


def _empty_finding(at: int, raw: str, fld: str) -> QueryFinding:
    return QueryFinding(
        at,
        WARNING,
        "empty-clause",
        f"`{_short(raw)}` has no letters or digits, so it analyzes to no token on {fld}: Lucene silently "
        "drops the clause (the rest of the query matches without it; alone it matches nothing)",
    )


# ---------------------------------------------------------------------------
# Rules on the analyzed AST
# ---------------------------------------------------------------------------


def positive_fields(query: qa.Query) -> set[str]:
    """Fields of clauses that can make a document match (not under ``must_not``)."""
    out: set[str] = set()
    stack: list[qa.Query] = [query]
    while stack:
        q = stack.pop()
        if isinstance(q, qa.Bool):
            stack.extend(q.must)
            stack.extend(q.should)
        elif isinstance(q, (qa.MatchAll, qa.MatchNone)):
            continue
        else:
            name = getattr(q, "field", None)
            if isinstance(name, str):
                out.add(name)
    return out


def required_tokens(query: qa.Query, text_field: str = "message") -> frozenset[str] | None:
    """Tokens of ``text_field`` required by the *weakest* way the query can match.

    For a disjunction the alternative with the fewest required tokens wins;
    a conjunction requires the union. Wildcard/prefix/regex/fuzzy clauses count
    as one token each (their pattern). None when some way to match needs no
    clause on ``text_field`` at all.
    """
    if isinstance(query, qa.Term):
        return frozenset({query.value}) if query.field == text_field else None
    if isinstance(query, qa.Phrase):
        return frozenset(query.terms) if query.field == text_field else None
    if isinstance(query, (qa.Prefix, qa.Wildcard, qa.Regexp, qa.Fuzzy)):
        if query.field != text_field:
            return None
        pattern = getattr(query, "prefix", None) or getattr(query, "pattern", None) or getattr(query, "value", "")
        return frozenset({f"{pattern}*"})
    if isinstance(query, qa.Bool):
        if query.must:
            acc: set[str] = set()
            any_known = False
            for q in query.must:
                sub = required_tokens(q, text_field)
                if sub is not None:
                    acc |= sub
                    any_known = True
            return frozenset(acc) if any_known else None
        best: frozenset[str] | None = None
        for q in query.should:
            sub = required_tokens(q, text_field)
            if sub is None:
                return None
            if best is None or len(sub) < len(best):
                best = sub
        return best
    return None


def _sorted_unique(queries: Iterable[qa.Query]) -> tuple[qa.Query, ...]:
    by_repr = {repr(q): q for q in queries}
    return tuple(by_repr[k] for k in sorted(by_repr))


def normalize(query: qa.Query) -> qa.Query:
    """A canonical form: Bool clauses sorted, single-clause Bools unwrapped, nested pure ANDs/ORs flattened."""
    if not isinstance(query, qa.Bool):
        return query
    must: list[qa.Query] = []
    should: list[qa.Query] = []
    must_not = [normalize(q) for q in query.must_not]
    for q in map(normalize, query.must):
        if isinstance(q, qa.Bool) and not q.should and not q.must_not and q.must:
            must.extend(q.must)
        elif isinstance(q, qa.Bool) and not q.should and q.must_not and not q.must:
            must_not.extend(q.must_not)
        else:
            must.append(q)
    for q in map(normalize, query.should):
        if not query.must and isinstance(q, qa.Bool) and not q.must and not q.must_not and q.should:
            should.extend(q.should)
        else:
            should.append(q)
    if must:
        should = []  # optional next to required clauses: no effect on matching
    result = qa.Bool(must=_sorted_unique(must), should=_sorted_unique(should), must_not=_sorted_unique(must_not))
    if len(result.must) == 1 and not result.should and not result.must_not:
        return result.must[0]
    if len(result.should) == 1 and not result.must and not result.must_not:
        return result.should[0]
    return result


def normalized_key(query: qa.Query) -> str:
    """The text two fingerprints share when they match the same documents by construction."""
    norm = normalize(query)
    try:
        from elastic_recheck.core.lucene import parser as lucene

        return str(lucene.to_string(norm))
    except Exception:
        LOG.debug("to_string failed on %r", norm, exc_info=True)
        return repr(norm)


def lint_ast(
    query: str,
    ast: qa.Query,
    mapping: Mapping = DEFAULT_MAPPING,
    raw: Level | None = None,
    alternatives: bool = True,
) -> list[QueryFinding]:
    """Findings that need the analyzed query (offsets into ``query``).

    ``alternatives=False`` leaves out the "an alternative has no message
    clause" warning (when an ``implicit-or``/``mixed-and-or`` finding already
    explains where the alternative comes from).
    """
    out: list[QueryFinding] = []
    raw = raw or parse_raw(query, mapping.default_field)
    fields = qa.fields_of(ast)
    known = sorted(mapping.known_fields | mapping.text_fields)
    for name in sorted(fields):
        if mapping.is_known(name):
            continue
        at = _field_offset(raw, name)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        out.append(
            QueryFinding(
                at,
                WARNING,
                "unknown-field",
                f"unknown field `{name}`: documents have no such field, so this clause never matches{hint}",
            )
        )
    text_main = mapping.default_field if mapping.is_text(mapping.default_field) else "message"
    positive = positive_fields(ast)
    if positive and text_main not in positive:
        out.append(
            QueryFinding(
                _first_offset(query),
                WARNING,
                "no-message",
                f"no `{text_main}:` clause: the query selects lines by metadata only "
                f"({', '.join(sorted(positive))}) and matches every line of those files or builds; "
                "add the log message that identifies the bug",
            )
        )
    elif positive:
        tokens = required_tokens(ast, text_main)
        if tokens is not None and tokens and all(t in COMMON_WORDS for t in tokens):
            out.append(
                QueryFinding(
                    _first_offset(query),
                    WARNING,
                    "broad-query",
                    f"the query can match with only common word(s) in {text_main} ({', '.join(sorted(tokens))}): "
                    "it will hit a large share of all log lines; add a more specific phrase",
                )
            )
        elif tokens is None and alternatives:
            out.append(
                QueryFinding(
                    _first_offset(query),
                    WARNING,
                    "broad-query",
                    f"one alternative of the query has no `{text_main}:` clause, so it matches every line "
                    "of the files or builds it selects",
                )
            )
    out.extend(QueryFinding(at, WARNING, code, message) for at, code, message in pattern_findings(query, ast, mapping))
    return out


def _first_offset(query: str) -> int:
    return len(query) - len(query.lstrip())


def _field_offset(raw: Level, name: str) -> int:
    for c, _lv in iter_clauses(raw):
        if c.explicit_field == name:
            return c.start if c.mod is None else c.start + (3 if c.mod == "NOT" else 1)
        if c.explicit_field == "_exists_" and _unescape(c.text) == name:
            return c.term_start
    return 0


# ---------------------------------------------------------------------------
# Positions: query text offsets -> file line/column
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


@dataclass
class FileResult:
    """What linting one file produced."""

    file: str
    findings: list[Finding] = field(default_factory=list)
    fingerprint: Fingerprint | None = None
    #: Normalized query (for duplicate detection), when the query parsed.
    key: str | None = None
    position: tuple[int, int] = (1, 1)


def _query_node(text: str) -> yaml.Node | None:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    return root


def _unknown_keys(name: str, root: yaml.Node | None) -> list[Finding]:
    out: list[Finding] = []
    if not isinstance(root, yaml.MappingNode):
        return out
    for key, _value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value not in KNOWN_KEYS:
            close = difflib.get_close_matches(key.value, sorted(KNOWN_KEYS), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            out.append(
                Finding(
                    name,
                    key.start_mark.line + 1,
                    key.start_mark.column + 1,
                    WARNING,
                    "unknown-key",
                    f"unknown key `{key.value}` (ignored){hint}",
                )
            )
    return out


def _error_code(message: str) -> str:
    if message.startswith("invalid Lucene query"):
        return "syntax"
    if message.startswith(("invalid YAML", "expected a mapping", "missing required key", "not UTF-8", "cannot read", "too large")):
        return "yaml"
    return "invalid"


def lint_query(
    query: str, ast: qa.Query | None, mapping: Mapping = DEFAULT_MAPPING, es_mode: bool = True
) -> list[QueryFinding]:
    """Every finding about one query that Lucene accepted (``ast``: its parse; None skips the AST rules)."""
    raw = parse_raw(query, mapping.default_field)
    qfindings = lint_raw(query, mapping, es_mode)
    if ast is not None:
        explained = any(f.code in ("implicit-or", "mixed-and-or") for f in qfindings)
        qfindings.extend(lint_ast(query, ast, mapping, raw, alternatives=not explained))
    return qfindings


def lint_search(query: str, mapping: Mapping = DEFAULT_MAPPING, es_mode: bool = True, name: str = "query") -> list[Finding]:
    """The findings of ``check-queries`` for a query typed on the command line (positions in ``query``).

    A query Lucene rejects has none: the caller reports its syntax error.
    """
    from elastic_recheck.core.lucene import parser as lucene

    try:
        ast = lucene.parse(query, mapping=mapping, es_mode=es_mode)
    except QuerySyntaxError:
        return []
    out = []
    for qf in lint_query(query, ast, mapping, es_mode):
        line = query.count("\n", 0, qf.offset) + 1
        col = qf.offset - (query.rfind("\n", 0, qf.offset) + 1) + 1
        out.append(Finding(name, line, col, qf.level, qf.code, qf.message))
    return sorted(out)


def lint_text(
    text: str,
    name: str,
    mapping: Mapping = DEFAULT_MAPPING,
    es_mode: bool = True,
) -> FileResult:
    """Lint one fingerprint file's text; ``name`` is the file name shown in findings."""
    from elastic_recheck.core.lucene import parser as lucene

    result = FileResult(name)
    root = _query_node(text)
    node: yaml.ScalarNode | None = None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "query" and isinstance(value, yaml.ScalarNode):
                node = value
    qpos = (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (1, 1)
    result.position = qpos
    locator = QueryLocator.build(text, node, qpos)
    try:
        fp = parse_fingerprint(text, name, mapping=mapping, es_mode=es_mode)
    except FingerprintError as exc:
        line, col = exc.line or 1, exc.col or 1
        code = _error_code(exc.message)
        if code == "syntax" and node is not None:
            try:
                lucene.parse(node.value, mapping=mapping, es_mode=es_mode)
            except QuerySyntaxError as qexc:
                line, col = locator.position(offset_of(node.value, qexc.line, qexc.col))
        result.findings.append(Finding(name, line, col, ERROR, code, exc.message))
        result.findings.extend(_unknown_keys(name, root))
        return result
    result.fingerprint = fp
    result.findings.extend(_unknown_keys(name, root))
    query = node.value if node is not None else fp.query
    qfindings = lint_query(query, fp.ast, mapping, es_mode)
    if fp.ast is not None:
        result.key = normalized_key(fp.ast)
    for qf in qfindings:
        line, col = locator.position(qf.offset)
        result.findings.append(Finding(name, line, col, qf.level, qf.code, qf.message))
    return result


@dataclass
class LintReport:
    """Findings of a whole run, sorted by file and position."""

    files: list[FileResult]

    @property
    def findings(self) -> list[Finding]:
        return sorted(f for r in self.files for f in r.findings)

    def count(self, level: str) -> int:
        return sum(1 for f in self.findings if f.level == level)

    @property
    def errors(self) -> int:
        return self.count(ERROR)

    @property
    def warnings(self) -> int:
        return self.count(WARNING)


def find_duplicates(results: Sequence[FileResult]) -> list[Finding]:
    """A ``duplicate`` finding on every file whose normalized query an earlier file already has."""
    first: dict[str, FileResult] = {}
    out: list[Finding] = []
    for r in results:
        if r.key is None:
            continue
        seen = first.get(r.key)
        if seen is None:
            first[r.key] = r
            continue
        line, col = r.position
        out.append(
            Finding(
                r.file,
                line,
                col,
                WARNING,
                "duplicate",
                f"same query as {seen.file} (after normalization: `{_short(r.key, 80)}`); "
                "one bug per fingerprint: merge them or make one more specific",
            )
        )
    return out


#: A file name the bot can report as a bug: a Launchpad bug number, or (with ``bug_url``) a plain id.
_BUG_ID = re.compile(r"[0-9]+")
_OTHER_TRACKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def file_name_finding(result: FileResult) -> Finding | None:
    """An error when the file's name is not a bug id: the file name *is* the bug the bot reports."""
    stem = re.sub(r"\.ya?ml$", "", result.file.replace("\\", "/").rsplit("/", 1)[-1])
    fp = result.fingerprint
    if _BUG_ID.fullmatch(stem) or (fp is not None and fp.bug_url and _OTHER_TRACKER_ID.fullmatch(stem)):
        return None
    return Finding(
        result.file, 1, 1, ERROR, "file-name",
        f"`{stem}` is not a bug id, yet the bot would report it as the bug: name the file after the "
        "Launchpad bug number (e.g. 1234567.yaml), or set bug_url for a bug of another tracker",
    )


def lint_files(
    files: Iterable[tuple[str, str]],
    mapping: Mapping = DEFAULT_MAPPING,
    es_mode: bool = True,
    on_internal_error: Callable[[str, Exception], None] | None = None,
    bug_file_names: bool = False,
) -> LintReport:
    """Lint ``(name, text)`` pairs and look for duplicates across them.

    A bug in a rule never stops the run: the file gets an ``internal`` error
    finding (and ``on_internal_error`` is told, e.g. to log the traceback).
    ``bug_file_names``: also require every file to be named after its bug
    (:func:`file_name_finding`; ``check-queries`` does, drafts are ``new-N.yaml``).
    """
    results: list[FileResult] = []
    for name, text in files:
        try:
            results.append(lint_text(text, name, mapping=mapping, es_mode=es_mode))
            named = file_name_finding(results[-1]) if bug_file_names else None
            if named is not None:
                results[-1].findings.insert(0, named)
        except Exception as exc:  # noqa: BLE001 - reported as a finding, never a crash
            if on_internal_error is not None:
                on_internal_error(name, exc)
            results.append(
                FileResult(name, [Finding(name, 1, 1, ERROR, "internal", f"linter failure: {type(exc).__name__}: {exc}")])
            )
    dups = find_duplicates(results)
    by_file = {r.file: r for r in results}
    for d in dups:
        by_file[d.file].findings.append(d)
    return LintReport(results)
