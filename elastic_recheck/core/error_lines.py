"""Error lines of log documents: which lines say what went wrong, and their normalized form.

Shared by ``suggest`` (draft fingerprints), the site's uncategorized rows and
failure clusters, and failure signatures (:mod:`elastic_recheck.core.signatures`).
Pure: documents in, lines out.

1. **Error lines.** :func:`extract_lines` keeps the lines of a document that
   say what went wrong: the header of an ``ERROR``/``CRITICAL`` record (the
   ``loglevel`` field), the exception line that ends a traceback, and, in
   files without a log level (``job-output.txt``, syslog),
   ``ERROR``/``FAIL``/``E:``/exception/kernel-trouble lines. The log prefix
   (oslo.log header, console host, syslog header) is removed
   (:func:`strip_prefix`): it is not part of the error. Lines that say *that*
   something failed, not *what*, are left out (:func:`is_generic`).
2. **Normalization.** :func:`signature` replaces volatile parts (timestamps,
   request ids, UUIDs, IPs, hex ids, numbers, durations, sizes, paths under
   tmp directories) with placeholders; a whitespace-separated word holding
   one is *volatile*, the others are *stable*, and runs of stable words
   (:class:`Run`) are the material of phrase queries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from elastic_recheck.core.lucene.analysis import tokenize

#: Only the start of a very long line is considered.
MAX_LINE_CHARS = 500

#: The text field searched by drafts, and the field of file tags.
MESSAGE_FIELD = "message"
TAGS_FIELD = "tags"

#: Log levels whose record header is an error line.
ERROR_LEVELS: frozenset[str] = frozenset({"ERROR", "CRITICAL", "FATAL"})

# ---------------------------------------------------------------------------
# Log prefixes
# ---------------------------------------------------------------------------

_LEVEL = r"(?:TRACE|DEBUG|INFO|AUDIT|WARNING|WARN|ERROR|CRITICAL|FATAL)"
_ISO_TS = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_SYSLOG_TS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?"
#: oslo.log: ``<ts> [<pid>] LEVEL module [context] [instance: x] ``.
_OSLO_PREFIX = re.compile(
    rf"^{_ISO_TS}\s+(?:\d+\s+)?{_LEVEL}\s+[\w.\-]+(?:\s+\[[^\]]*\])?(?:\s+\[instance:\s*[^\]]*\])?\s?"
)
#: syslog / systemd journal: ``<Mon> <d> <hh:mm:ss> host program[pid]: `` (+ an oslo level part).
_SYSLOG_PREFIX = re.compile(
    rf"^{_SYSLOG_TS}\s+\S+\s+[^\s:\[]+(?:\[\d+\])?:\s"
    rf"(?:{_LEVEL}\s+[\w.\-]+(?:\s+\[[^\]]*\])?(?:\s+\[instance:\s*[^\]]*\])?\s?)?"
)
#: A Zuul console line after ingest removed its timestamp: ``host | ``.
_CONSOLE_HOST = re.compile(r"^[\w.@\-]+ \| ")
#: A leading timestamp (and an optional `` | `` console separator).
_LEADING_TS = re.compile(rf"^(?:{_ISO_TS}|{_SYSLOG_TS})(?:\s+\|\s|\s+)")


def strip_prefix(line: str) -> str:
    """The part of a log line that says what happened (log header removed).

    Leading whitespace after the header is kept: it tells a traceback's
    ``File ...`` and code lines from its exception line.
    """
    text = line.rstrip("\r\n")
    for _ in range(3):
        before = text
        for pattern in (_OSLO_PREFIX, _SYSLOG_PREFIX, _CONSOLE_HOST, _LEADING_TS):
            m = pattern.match(text)
            if m and m.end() > 0:
                text = text[m.end() :]
                break
        if text == before:
            break
    return text


# ---------------------------------------------------------------------------
# Which lines are error lines
# ---------------------------------------------------------------------------

_TRACEBACK = re.compile(r"\bTraceback \(most recent call last\)")
#: ``pkg.mod.SomeError: message`` (or a bare exception name at the end of a traceback).
_EXCEPTION = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*(?:[A-Za-z_]\w*(?:Error|Exception|Timeout|Failure|Fault|Deadlock|Exit|Interrupt|"
    r"Conflict|NotFound|Unavailable|Refused|Denied|Forbidden|Invalid)|(?:[A-Za-z_]\w*\.)?exceptions?\.\w+)"
    r"(?::\s+\S|:?\s*$)"
)
#: Error lines of files without a log level (console, syslog, ...).
_UNLEVELED = re.compile(
    r"\b(?:ERROR|CRITICAL|FATAL|FAIL|FAILED|FAILURE)\b"
    r"|^E: "
    r"|^(?i:error|fatal|failed)[:!]"
    r"|(?i:\bout of memory\b|\boom-killer\b|\bkilled process\b|\bsegfault\b|\bkernel panic\b|\bcall trace\b"
    r"|\bsoft lockup\b|\bblocked for more than\b|\btimed out\b)"
)
#: Lines that say a job failed without saying why: never a draft.
GENERIC_LINES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"^\W*$",
        r"^Traceback \(most recent call last\)",
        r"^(?:During handling of the above exception|The above exception was the direct cause)",
        r"Job complete, result: ",
        r"^Finished: ",
        r"^(?:FAILED|OK|PASSED)\s*\((?:failures|errors|skipped|passes|id)=",
        r"^Ran \d+ tests? in ",
        r"^(?:ERROR|FAIL)\s*:\s*(?:InvocationError|process-returncode|\S+: commands failed)",
        r"^\S*(?:process-returncode|tearDownClass|setUpClass)\b.*\.\.\. (?:FAIL|FAILED|ERROR)$",
        r"RESULT_(?:NORMAL|ABORTED|TIMED_OUT|UNREACHABLE)",
    )
)


def is_generic(body: str) -> bool:
    """A line that says *that* something failed, not *what* (the job result, test-run totals...)."""
    text = body.strip()
    return any(p.search(text) for p in GENERIC_LINES)


@dataclass(frozen=True)
class ErrorLine:
    """One error line of one document, with where it was seen."""

    #: The line without its log prefix (what is normalized and searched).
    body: str
    #: The physical line as logged.
    line: str
    build_uuid: str
    build_name: str = ""
    build_status: str = ""
    filename: str = ""
    tags: tuple[str, ...] = ()
    loglevel: str | None = None
    doc_id: str | None = None
    #: The document the line came from (for re-matching drafts in memory).
    doc: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else ""
    return str(value)


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return ()


def extract_lines(doc: Mapping[str, Any], doc_id: str | None = None) -> list[ErrorLine]:
    """The error lines of one log document (see the module docstring for the rules).

    A multi-line document (an oslo.log record with its traceback) may yield
    its header and its exception line(s); generic lines (:func:`is_generic`)
    are left out.
    """
    message = doc.get(MESSAGE_FIELD)
    if isinstance(message, (list, tuple)):
        message = "\n".join(str(m) for m in message)
    if not isinstance(message, str) or not message.strip():
        return []
    level_raw = doc.get("loglevel")
    level = str(level_raw).upper() if level_raw else None
    out: list[str] = []
    in_traceback = False
    for i, physical in enumerate(message.splitlines()):
        body = strip_prefix(physical)
        if not body.strip():
            continue
        if _TRACEBACK.search(body):
            in_traceback = True
            # "_StringException: Traceback (...)" and the like carry nothing more.
            continue
        if in_traceback:
            # Inside a traceback only the unindented line (the exception) counts;
            # "File ..." and code lines are indented.
            if not body[0].isspace() and not is_generic(body):
                out.append(physical)
            continue
        stripped = body.strip()
        if body[0].isspace() and (level is not None or i > 0):
            # An indented line of a leveled file (a traceback logged one line
            # per record: "File ...", code) or an indented continuation line
            # (a report, a dump) is not the error itself.
            continue
        if i == 0 and level is not None:
            keep = level in ERROR_LEVELS or bool(_EXCEPTION.match(stripped))
        elif level is not None:
            keep = bool(_EXCEPTION.match(stripped))
        else:
            keep = bool(_EXCEPTION.match(stripped) or _UNLEVELED.search(stripped))
        if keep and not is_generic(stripped):
            out.append(physical)
    uuid = _str(doc.get("build_uuid"))
    return [
        ErrorLine(
            body=strip_prefix(p).strip(),
            line=p,
            build_uuid=uuid,
            build_name=_str(doc.get("build_name")),
            build_status=_str(doc.get("build_status")),
            filename=_str(doc.get("filename")),
            tags=_tags(doc.get(TAGS_FIELD)),
            loglevel=level,
            doc_id=doc_id,
            doc=doc,
        )
        for p in out
    ]


# ---------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------

#: Parts that look volatile but identify the error (``[Errno 111]``, ``HTTP 500``...).
_PROTECTED = re.compile(
    r"\[?Errno \d+\]?"
    r"|\b(?:HTTP|[Ss]tatus(?: code)?|exit (?:code|status)|return(?:ed)? code|error code)[ :=]+\d{1,3}\b"
)

#: Volatile parts, tried in this order at each position (first match wins).
VOLATILE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("TS", _ISO_TS),
    ("TS", r"\d{4}-\d\d-\d\d\b"),
    ("TS", _SYSLOG_TS),
    ("TS", r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"),
    ("REQ", r"\breq-[0-9a-fA-F][0-9a-fA-F\-]{7,}"),
    ("UUID", r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z])"),
    ("UUID", r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])"),
    ("IP", r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2}|:\d{1,5})?\b"),
    ("IP", r"(?<![\w:])(?=[0-9a-fA-F:]*\d)(?:[0-9a-fA-F]{1,4}:){2,7}(?::|[0-9a-fA-F]{1,4})(?![\w:])"),
    ("IP", r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4})?(?![\w:])"),
    ("PATH", r"(?:/var)?/tmp/[^\s'\",;)\]]*"),
    ("PATH", r"\btmp[\w\-]{6,}"),
    ("DUR", r"\b\d+(?:\.\d+)?\s?(?:ms|us|ns|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?)\b"),
    ("SIZE", r"\b\d+(?:\.\d+)?\s?(?:[kKMGTP]i?B|bytes?)\b"),
    ("HEX", r"\b0x[0-9a-fA-F]+\b"),
    ("HEX", r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}(?![0-9A-Za-z])"),
    ("NUM", r"\d{4,}"),
    ("NUM", r"(?<![A-Za-z_\d])\d+(?:[.,]\d+)*(?![A-Za-z_\d])"),
)
_VOLATILE = re.compile("|".join(f"(?P<{name}{i}>{rx})" for i, (name, rx) in enumerate(VOLATILE_PATTERNS)))
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Signature:
    """A line split into words, each volatile or stable, with its analyzer tokens."""

    #: The normalized line: volatile parts replaced by ``<TS>``, ``<NUM>``...
    normalized: str
    words: tuple[str, ...]
    volatile: tuple[bool, ...]
    #: Analyzer tokens of each word (Lucene's standard analyzer).
    word_tokens: tuple[tuple[str, ...], ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(t for toks in self.word_tokens for t in toks)

    @property
    def stable_tokens(self) -> frozenset[str]:
        return frozenset(t for toks, vol in zip(self.word_tokens, self.volatile, strict=True) if not vol for t in toks)

    def runs(self) -> list[Run]:
        """Maximal runs of consecutive stable words that have at least one token."""
        out: list[Run] = []
        current: list[int] = []
        for i, vol in enumerate(self.volatile):
            if vol:
                if current:
                    out.append(_run(self, current))
                current = []
            else:
                current.append(i)
        if current:
            out.append(_run(self, current))
        return [r for r in out if r.tokens]


@dataclass(frozen=True)
class Run:
    """Consecutive stable words: the material of a phrase."""

    words: tuple[str, ...]
    word_tokens: tuple[tuple[str, ...], ...]
    #: Index of the first word in its line (earlier runs win ties: a message states its problem first).
    start: int = 0

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(t for toks in self.word_tokens for t in toks)

    @property
    def text(self) -> str:
        return phrase_text(self.words, self.word_tokens)

    def sub(self, i: int, j: int) -> Run:
        return Run(self.words[i:j], self.word_tokens[i:j], self.start + i)

    def rank(self) -> tuple[int, int, str]:
        """Most specific first: most tokens, then earliest in the line."""
        return (-len(self.tokens), self.start, self.text)


def _run(sig: Signature, indexes: list[int]) -> Run:
    words = [sig.words[i] for i in indexes]
    toks = [sig.word_tokens[i] for i in indexes]
    start = indexes[0]
    # Words without a token at either end add nothing to a phrase.
    while toks and not toks[0]:
        words.pop(0)
        toks.pop(0)
        start += 1
    while toks and not toks[-1]:
        words.pop()
        toks.pop()
    return Run(tuple(words), tuple(toks), start)


_LEFT_PUNCT = "\"'([{<,;:|`"
_RIGHT_PUNCT = "\"')]}>,;:.|`!?"


def phrase_text(words: Sequence[str], word_tokens: Sequence[Sequence[str]]) -> str:
    """The words joined by spaces, without edge punctuation that makes no token."""
    text = " ".join(words)
    expected = [t for toks in word_tokens for t in toks]
    trimmed = text.lstrip(_LEFT_PUNCT).rstrip(_RIGHT_PUNCT)
    if trimmed and tokenize(trimmed) == expected:
        return trimmed
    return text


@lru_cache(maxsize=65536)
def _word_tokens(word: str) -> tuple[str, ...]:
    return tuple(tokenize(word))


def _volatile_spans(text: str) -> list[tuple[int, int, str]]:
    protected = [(m.start(), m.end()) for m in _PROTECTED.finditer(text)]
    spans = []
    for m in _VOLATILE.finditer(text):
        if m.end() == m.start():
            continue
        if any(m.start() < pe and ps < m.end() for ps, pe in protected):
            continue
        name = re.sub(r"\d+$", "", m.lastgroup or "VAR")
        spans.append((m.start(), m.end(), name))
    return spans


@lru_cache(maxsize=65536)
def signature(body: str) -> Signature:
    """Normalize a line (without its log prefix) and split it into stable and volatile words."""
    text = body.strip()
    if len(text) > MAX_LINE_CHARS:
        # Cut at a word boundary: a partial word would not match the line's token.
        cut = text[: MAX_LINE_CHARS + 1]
        text = cut.rsplit(None, 1)[0] if not cut[-1].isspace() else cut
        text = text.rstrip()
    spans = _volatile_spans(text)
    parts: list[str] = []
    pos = 0
    for start, end, name in spans:
        parts.append(text[pos:start])
        parts.append(f"<{name}>")
        pos = end
    parts.append(text[pos:])
    normalized = " ".join("".join(parts).split())
    words: list[str] = []
    volatile: list[bool] = []
    k = 0
    for m in _WORD.finditer(text):
        while k < len(spans) and spans[k][1] <= m.start():
            k += 1
        vol = k < len(spans) and spans[k][0] < m.end()
        words.append(m.group())
        volatile.append(vol)
    return Signature(
        normalized=normalized,
        words=tuple(words),
        volatile=tuple(volatile),
        word_tokens=tuple(_word_tokens(w) for w in words),
    )


def normalize(body: str) -> str:
    """The normalized form of a line: what lines of one cluster have in common."""
    return signature(body).normalized
