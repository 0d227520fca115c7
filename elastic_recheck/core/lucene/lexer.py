"""The lexer of Lucene's classic ``QueryParser`` (``QueryParser.jj``'s token definitions).

JavaCC picks the longest match, and the earliest declared token on a tie; a
``^`` switches to the boost state (a number), ``[``/``{`` to the range state
(``TO``, bounds, the closing bracket). :mod:`elastic_recheck.core.lucene.parser`
pulls these tokens as it parses; ``check-queries`` reads them to see how a
query was written (:func:`tokens`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import regex

__all__ = ["WHITESPACE", "Token", "iter_tokens", "tokens"]


WHITESPACE = " \t\n\r\u3000"
_ESC = r"\\[\s\S]"
_TSC = rf"(?:[^ \t\n\r\u3000+\-!():^\[\]\"{{}}~*?\\/]|{_ESC})"  # _TERM_START_CHAR
_TC = rf"(?:[^ \t\n\r\u3000!():^\[\]\"{{}}~*?\\/]|{_ESC})"  # _TERM_CHAR (adds - and +)

# (kind, pattern) in declaration order. POSIX = leftmost-longest, like JavaCC.
_DEFAULT_TOKENS: tuple[tuple[str, str], ...] = (
    ("AND", r"AND|&&"),
    ("OR", r"OR|\|\|"),
    ("NOT", r"NOT|!"),
    ("PLUS", r"\+"),
    ("MINUS", r"-"),
    ("BAREOPER", r"[+\-!][ \t\n\r\u3000]"),
    ("LPAREN", r"\("),
    ("RPAREN", r"\)"),
    ("COLON", r":"),
    ("STAR", r"\*"),
    ("CARAT", r"\^"),
    ("QUOTED", r'"(?:[^"\\]|\\[\s\S])*"'),
    ("TERM", rf"{_TSC}{_TC}*"),
    ("FUZZY_SLOP", rf"~(?:[0-9]+(?:\.[0-9]+)?{_TC}*|{_TC}*)"),
    ("PREFIXTERM", rf"\*|{_TSC}{_TC}*\*"),
    ("WILDTERM", rf"(?:{_TSC}|[*?])(?:{_TC}|[*?])*"),
    ("REGEXPTERM", r"/(?:[^/]|\\/)*/"),
    ("RANGEIN_START", r"\["),
    ("RANGEEX_START", r"\{"),
)
_RANGE_TOKENS: tuple[tuple[str, str], ...] = (
    ("RANGE_TO", r"TO"),
    ("RANGEIN_END", r"\]"),
    ("RANGEEX_END", r"\}"),
    ("RANGE_QUOTED", r'"(?:[^"]|\\")+"'),
    ("RANGE_GOOP", r"[^ \]}]+"),
)
_BOOST_TOKENS: tuple[tuple[str, str], ...] = (("NUMBER", r"[0-9]+(?:\.[0-9]+)?"),)


def _compile(tokens: tuple[tuple[str, str], ...]) -> tuple[tuple[str, regex.Pattern[str]], ...]:
    return tuple((kind, regex.compile(pat, regex.POSIX | regex.DOTALL)) for kind, pat in tokens)


_DEFAULT_RE = _compile(_DEFAULT_TOKENS)
_RANGE_RE = _compile(_RANGE_TOKENS)
_BOOST_RE = _compile(_BOOST_TOKENS)
# The lexical state a token switches to (JavaCC "Boost" and "Range" states).
_NEXT_STATE = {"CARAT": "BOOST", "NUMBER": "DEFAULT", "RANGEIN_START": "RANGE", "RANGEEX_START": "RANGE"}
_NEXT_STATE.update({"RANGEIN_END": "DEFAULT", "RANGEEX_END": "DEFAULT"})


@dataclass(frozen=True, slots=True)
class Token:
    """One token as the parser reads it, with where it is in the query text."""

    kind: str  # a token kind above, "EOF", or "ERROR" (a lexical error; ``image`` is the message)
    image: str
    pos: int  # offset in the query text

    @property
    def end(self) -> int:
        """The offset just after the token (``pos`` for ``EOF`` and ``ERROR``)."""
        return self.pos if self.kind in ("EOF", "ERROR") else self.pos + len(self.image)


def tokens(text: str) -> list[Token]:
    """Every token of ``text`` in order, ending with ``EOF``, or with ``ERROR`` at a lexical error.

    The kinds are ``QueryParser.jj``'s (``TERM``, ``PREFIXTERM``, ``WILDTERM``,
    ``QUOTED``, ``REGEXPTERM``, ``FUZZY_SLOP``, ``BAREOPER``, the range tokens...),
    with JavaCC's longest match and lexical states: what the parser reads, for
    tools that need to know how a query was written (``check-queries``).
    """
    return list(iter_tokens(text))


def iter_tokens(text: str) -> Iterator[Token]:
    """The tokens of ``text`` one by one (the parser pulls only as many as it reads)."""
    state = "DEFAULT"
    i = 0
    n = len(text)
    while True:
        if state != "BOOST":
            while i < n and text[i] in WHITESPACE:
                # SKIP is declared before the tokens: on a tie it wins, but a
                # longer RANGE_GOOP (e.g. "\tfoo") beats it in a range.
                if state == "RANGE" and text[i] != " ":
                    m = _RANGE_RE[4][1].match(text, i)
                    if m is not None and m.end() - i > 1:
                        break
                i += 1
        if i >= n:
            yield Token("EOF", "", n)
            return
        table = _DEFAULT_RE if state == "DEFAULT" else _RANGE_RE if state == "RANGE" else _BOOST_RE
        best_kind = ""
        best_end = i
        for kind, pat in table:
            m = pat.match(text, i)
            if m is not None and m.end() > best_end:
                best_kind, best_end = kind, m.end()
        if not best_kind:
            yield Token("ERROR", _lex_error_message(text, i, state), i)
            return
        yield Token(best_kind, text[i:best_end], i)
        state = _NEXT_STATE.get(best_kind, state)
        i = best_end


def _lex_error_message(text: str, i: int, state: str) -> str:
    ch = text[i]
    if ch == '"':
        return "unterminated quoted phrase (missing closing '\"')"
    if ch == "/":
        return "unterminated regular expression: '/' starts a /regex/; escape it as '\\/' or quote the value"
    if ch == "\\":
        return "a query cannot end with an escape character '\\'"
    if state == "BOOST":
        return f"'^' must be followed by a number (boost), found {ch!r}"
    return f"unexpected character {ch!r}"
