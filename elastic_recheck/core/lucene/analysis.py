"""Text analysis: Lucene 8's ``StandardAnalyzer`` (the ES ``standard`` analyzer).

:func:`tokenize` splits text like Lucene 8.7's ``StandardTokenizer`` (the
UAX#29 word-break rules as its JFlex grammar implements them) followed by
``LowerCaseFilter``; no stopwords are removed. Some consequences worth knowing
when writing fingerprints:

* ``.`` ``:`` and ``'`` join letters (``nova.compute.manager``, ``a:b``,
  ``can't`` are one token); ``.`` ``,`` ``;`` and ``'`` join digits
  (``10.0.0.1``, ``1,000.5``); ``_`` joins anything (``put_object``);
  letters and digits stick together (``abc12``, ``v1.2``), but ``1.a`` and
  ``a1.b`` split after the digit.
* ``-`` ``/`` ``@`` ``#`` ``=`` ``(`` ... always split, and are dropped.
* Han ideographs and Hiragana give one token per character; Katakana,
  Hangul and Thai/Lao/Khmer/Myanmar runs stay together; emoji (and emoji
  sequences) are tokens of their own.
* A token longer than 255 UTF-16 units is cut: the scanner only looks 255
  units ahead of a token start, then goes on after what it matched.

Lowercasing is Java's per-code-point ``Character.toLowerCase`` (simple case
mapping), not Python's ``str.lower`` (which maps ``İ`` to two characters and
has a context-sensitive final sigma).

The character tables are Unicode properties of the ``regex`` module, corrected
by the exceptions in :mod:`elastic_recheck.core.lucene._unicode_tables`, which were
measured against real Lucene (see ``tests/conformance/generate.py``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import regex

from elastic_recheck.core.lucene import _unicode_tables as _tables

__all__ = ["MAX_TOKEN_LENGTH", "analyze_values", "java_lower", "tokenize", "tokenize_with_positions"]

#: Lucene's ``StandardAnalyzer.DEFAULT_MAX_TOKEN_LENGTH`` (in UTF-16 units).
MAX_TOKEN_LENGTH = 255

# --- ASCII fast path -------------------------------------------------------
# For pure-ASCII text the word-break classes are: letters, digits, "_"
# (ExtendNumLet), ":" (MidLetter), "," ";" (MidNum), "." "'" (MidNumLet and
# Single_Quote: both). A token is a run of letters, digits and "_" holding at
# least one letter or digit, in which ":" joins two letters, "," ";" join two
# digits, and "." "'" join two letters or two digits. Everything else breaks
# and is dropped. (Written for the standard ``re`` module with possessive
# quantifiers: several times faster than the general pattern.)
_ASCII_BODY = r"_*+[a-z0-9][a-z0-9_]*+(?:(?:(?<=[a-z])[.:'](?=[a-z])|(?<=[0-9])[.,;'](?=[0-9]))[a-z0-9_]++)*+"
# A token never starts inside a run of "_" (it would have started at the run's
# first "_"), so the look-behind only saves quadratic rescans of long runs.
_ASCII_TOKEN = re.compile(r"(?<!_)" + _ASCII_BODY)
_ASCII_TOKEN_ANYWHERE = re.compile(_ASCII_BODY)  # for the 255-unit slow path


def _cls(body: str) -> str:
    return "[" + body + "]"


# --- full Unicode grammar --------------------------------------------------
_X = _cls(_tables.EXTEND) + "*"  # WB4: Extend/Format/ZWJ attach to what precedes
_AL = _cls(_tables.ALETTER) + _X  # ALetter or Hebrew_Letter
_HL = _cls(_tables.HEBREW_LETTER) + _X
_NU = _cls(_tables.NUMERIC) + _X
_KA = _cls(_tables.KATAKANA) + _X
_EX = _cls(_tables.EXTEND_NUM_LET) + _X
_ML = _cls(_tables.MID_LETTER) + _X
_MN = _cls(_tables.MID_NUM) + _X
_SQ = _cls(_tables.SINGLE_QUOTE) + _X
_DQ = _cls(_tables.DOUBLE_QUOTE) + _X

_KCHAIN = rf"{_KA}(?:(?:{_EX})*{_KA})*"
_LCHAIN = rf"{_AL}(?:(?:{_EX})*{_AL}|{_ML}{_AL})*"
_NCHAIN = rf"{_NU}(?:(?:{_EX})*{_NU}|{_MN}{_NU})*"
# WB7a-c: a Hebrew letter followed by a single quote, or two Hebrew letters
# around a double quote, form a unit of their own.
_UNIT = rf"(?:{_HL}(?:{_SQ}|{_DQ}{_HL})|{_NCHAIN}|{_LCHAIN})"
_WORD = rf"(?:{_EX})*(?:{_KCHAIN}|{_UNIT}+)(?:(?:{_EX})+(?:{_KCHAIN}|{_UNIT}+))*(?:{_EX})*"
_SEA = rf"(?:{_cls(_tables.COMPLEX_CONTEXT)}{_X})+"
_IDEO = _cls(_tables.IDEOGRAPHIC) + _X  # Han and Hiragana: one token per character
# Emoji sequences as Lucene 8 accepts them (measured, see the module doc):
# an emoji (optionally after ZWJs) takes either U+FE0F right away, or a tail
# of Extend/Format/ZWJ characters in which U+FE0F may appear after the first;
# a modifier base takes a skin-tone modifier; ZWJ chains join such units;
# U+FE0E (text presentation) is never absorbed.
_XE = _cls(_tables.EMOJI_EXTEND)  # Extend/Format/ZWJ minus U+FE0E, U+FE0F
_TAIL = rf"(?:{_XE}+\uFE0F?)"
_TAGS = r"(?:[\U000E0020-\U000E007E]+\U000E007F)"
_MOD = _cls(_tables.EMOJI_MODIFIER)
_E_CORE = (
    rf"(?:{_cls(_tables.EMOJI_MODIFIER_BASE)}{_XE}*{_MOD}{_XE}*"
    rf"|{_cls(_tables.EMOJI_NON_MODIFIER)}(?:\uFE0F{_TAGS}?|{_TAIL})?)"
)
_E_NEXT = rf"(?:\u200D*{_E_CORE}|{_MOD}{_XE}*)"  # a unit after a ZWJ
_E_FIRST = rf"(?:\u200D*{_E_CORE}|{_MOD}{_XE}*)"
_E_CHAIN = rf"(?:(?:(?<=\u200D)|\u200D){_E_NEXT})"
_E_SEQ = rf"{_E_FIRST}{_E_CHAIN}*"
_RI = _cls(_tables.REGIONAL_INDICATOR) + _X
_KEYCAP = rf"[#*]{_XE}*\uFE0F?\u20E3{_XE}*"
_EMOJI = rf"(?:{_E_SEQ}|{_RI}{_RI}|{_KEYCAP})"

# Lucene's scanner takes the longest match among its rules. The alternatives
# are ordered so that the first match is the longest one, except in two rare
# cases where the regex module's (slow) POSIX leftmost-longest mode is used:
# Hebrew letters next to quotes (WB7a-c), and letters that are also emoji
# (U+2139 ...) next to a ZWJ.
_TOKEN_BODY = rf"{_WORD}|{_SEA}|{_IDEO}|{_EMOJI}"


# The general pattern is ~240,000 characters long (the Extend class follows
# every character class) and takes ~0.25 s to compile, per flavour: it is
# compiled on first use, i.e. the first time non-ASCII text is analyzed, so
# that commands which never meet any (``--help``, most searches and
# classifications: stored lines carry their tokens) do not pay for it.
@functools.cache
def _full_token(posix: bool) -> regex.Pattern[str]:
    return regex.compile(_TOKEN_BODY, regex.VERSION1 | (regex.POSIX if posix else 0))


@functools.cache
def _posix_triggers() -> tuple[regex.Pattern[str], regex.Pattern[str]]:
    """Hebrew letters, and letters that are also emoji (see :func:`_needs_posix`)."""
    return (
        regex.compile(_cls(_tables.HEBREW_LETTER), regex.VERSION1),
        regex.compile(f"[{_tables.ALETTER}&&{_tables.EMOJI}]", regex.VERSION1),
    )


def compiled_patterns() -> int:
    """How many of the general grammar's patterns are compiled (0 until non-ASCII text is analyzed)."""
    return _full_token.cache_info().currsize + _posix_triggers.cache_info().currsize


def _needs_posix(text: str) -> bool:
    hebrew, letter_emoji = _posix_triggers()
    if ("'" in text or '"' in text) and hebrew.search(text):
        return True
    return "\u200d" in text and letter_emoji.search(text) is not None


def _build_lower_table() -> dict[int, int]:
    table: dict[int, int] = {}
    for lo, hi, delta in _tables.LOWER_RANGES:
        for cp in range(lo, hi + 1):
            table[cp] = cp + delta
    return table


_LOWER = _build_lower_table()


def java_lower(token: str) -> str:
    """Lowercase like Lucene's ``LowerCaseFilter`` (Java ``Character.toLowerCase``)."""
    if token.isascii():
        return token.lower()
    return token.translate(_LOWER)


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _window_end(text: str, start: int) -> int:
    """Index just past the 255 UTF-16 units that follow ``start``."""
    units = 0
    i = start
    n = len(text)
    while i < n:
        units += 2 if ord(text[i]) > 0xFFFF else 1
        if units > MAX_TOKEN_LENGTH:
            break
        i += 1
    return i


def _tokenize_long(text: str, pattern: re.Pattern[str] | regex.Pattern[str]) -> list[str]:
    """Slow path for text holding a match of 255+ UTF-16 units.

    Lucene's scanner buffer holds 255 units and cannot grow, so at each
    position it takes the longest match *inside the next 255 units*; when
    there is none there (e.g. a run of 255+ ``_``), it moves on by one
    character, as it does at any position where no token starts.
    """
    out: list[str] = []
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if m is None:
            return out
        start = m.start()
        if _utf16_len(m.group()) < MAX_TOKEN_LENGTH:
            out.append(m.group())
            pos = m.end()
            continue
        # A run of 255+ units: walk it with window-bounded matches only, so
        # the cost is linear in the run (re-searching the whole rest of the
        # run for every 255-unit piece was quadratic).
        run_end = m.end()
        p = start
        while p < run_end:
            m2 = pattern.match(text, p, _window_end(text, p))
            if m2 is not None and m2.end() > p:
                out.append(m2.group())
                p = m2.end()
            else:
                p += 1
        pos = p


def _tokenize_ascii(text: str) -> list[str]:
    text = text.lower()
    tokens: list[str] = _ASCII_TOKEN.findall(text)
    if len(text) >= MAX_TOKEN_LENGTH:
        for tok in tokens:
            if len(tok) >= MAX_TOKEN_LENGTH:
                return _tokenize_long(text, _ASCII_TOKEN_ANYWHERE)
    return tokens


def _tokenize_full(text: str) -> list[str]:
    pattern = _full_token(_needs_posix(text))
    tokens: list[str] = pattern.findall(text)
    if len(text) >= MAX_TOKEN_LENGTH // 2:
        for tok in tokens:
            if len(tok) >= MAX_TOKEN_LENGTH // 2 and _utf16_len(tok) >= MAX_TOKEN_LENGTH:
                tokens = _tokenize_long(text, pattern)
                break
    return [t.lower() if t.isascii() else t.translate(_LOWER) for t in tokens]


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def tokenize(text: str) -> list[str]:
    """Tokens of ``text`` as ES's ``standard`` analyzer (no stopwords) indexes them."""
    if text.isascii():
        return _tokenize_ascii(text)
    if "\ud800" <= text[-1] <= "\udbff":
        # Lucene's scanner reads a high surrogate at the very end as the start
        # of a pair whose second half never comes: the text yields no token.
        return []
    # No token spans a space, and the scanner restarts after one: only the
    # space-delimited words holding non-ASCII characters need the (slower)
    # general pattern; the ASCII stretches between them take the fast path.
    out: list[str] = []
    pos = 0
    n = len(text)
    for m in _NON_ASCII_RUN.finditer(text):
        if m.start() < pos:
            continue
        start = text.rfind(" ", 0, m.start()) + 1
        end = text.find(" ", m.end())
        if end < 0:
            end = n
        if start > pos:
            out += _tokenize_ascii(text[pos:start])
        out += _tokenize_full(text[start:end])
        pos = end
    if pos < n:
        out += _tokenize_ascii(text[pos:])
    return out


def tokenize_with_positions(text: str, start: int = 0) -> list[tuple[str, int]]:
    """``(token, position)`` pairs, positions counting from ``start``."""
    return [(tok, start + i) for i, tok in enumerate(tokenize(text))]


def analyze_values(values: str | Iterable[str], position_increment_gap: int = 100) -> list[tuple[str, int]]:
    """``(token, position)`` for all values of a (multi-valued) text field.

    Positions follow Lucene's indexing chain: the first value's tokens are at
    ``0..n-1``; each further value starts ``position_increment_gap + 1`` after
    the previous value's last position (an empty value still adds the gap),
    so a phrase only matches across two values with a slop of at least the gap.
    """
    if isinstance(values, str):
        values = (values,)
    out: list[tuple[str, int]] = []
    position = -1  # Lucene's FieldInvertState starts at -1
    first = True
    for value in values:
        if not first:
            position += position_increment_gap
        first = False
        for tok in tokenize(value):
            position += 1
            out.append((tok, position))
    return out
