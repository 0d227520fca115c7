"""Draft fingerprints from clusters of uncategorized failures.

The uncategorized page lists failed builds that no fingerprint explains.
Many of them fail the same way; this module finds those ways and proposes a
``queries/new-<n>.yaml`` draft for each:

1. **Uncategorized builds.** Failed voting builds of the configured queues
   (gate and check by default) in the window, found with ``[site]
   all_fails_query`` as on the uncategorized page, minus those some
   fingerprint hits (helper functions of
   :mod:`elastic_recheck.report.uncategorized`).
2. **Error lines.** Each build's candidate documents are fetched through the
   :class:`~elastic_recheck.ports.search.SearchBackend` port with a broad
   prefilter (:data:`ERROR_PREFILTER`), and :func:`extract_lines` keeps the
   lines that say what went wrong: the header of an ``ERROR``/``CRITICAL``
   record (the ``loglevel`` field), the exception line that ends a
   traceback, and, in files without a log level (``job-output.txt``,
   syslog), ``ERROR``/``FAIL``/``E:``/exception/kernel-trouble lines. The
   log prefix (oslo.log header, console host, syslog header) is removed:
   it is not part of the error.
3. **Normalization.** :func:`signature` replaces volatile parts (timestamps,
   request ids, UUIDs, IPs, hex ids, numbers, durations, sizes, paths under
   tmp directories) with placeholders; a whitespace-separated word holding
   one is *volatile*, the others are *stable*.
4. **Clusters.** Lines with the same normalized text form one group;
   :func:`cluster_lines` then merges near-duplicate groups (Jaccard
   similarity of their stable tokens, at least ``merge_threshold``) as long
   as they still share a stable phrase.
5. **Drafts.** For every cluster seen in at least ``min_builds`` builds the
   query is a Lucene phrase on the longest run of stable words common to all
   its lines (:func:`lucene_phrase` escapes ``"`` and ``\\``), narrowed with
   ``tags:"<file>"``, a second phrase, or the jobs (``build_name``) only when
   that raises the precision. Each candidate query is backtested over the
   window (failed vs successful builds hit, the rules of
   :func:`elastic_recheck.report.graph.fingerprint_spec`), and the draft must
   hit every build of its cluster (the phrase re-matches the original lines).
   Drafts are ranked by uncategorized builds affected, then precision; a
   draft whose cluster's builds are already covered by a better draft
   becomes that draft's alternative.

Everything up to the draft texts is pure; :func:`run_suggest` and
:func:`suggest_drafts` ask the backend.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import yaml

from elastic_recheck.core.config import Config
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.lucene.analysis import tokenize
from elastic_recheck.core.stats import newest_first
from elastic_recheck.ports.search import BuildInfo, Filters, QuerySpec, SearchBackend, TimeWindow
from elastic_recheck.report.graph import collect_bug_stats, fingerprint_spec
from elastic_recheck.report.uncategorized import all_fails_spec, bug_hit_sets, build_uncategorized
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

FAILURE = "FAILURE"
SUCCESS = "SUCCESS"

#: Queues whose failed voting builds are mined by default.
DEFAULT_QUEUES: tuple[str, ...] = ("gate", "check")
#: A cluster must be seen in at least this many uncategorized builds.
DEFAULT_MIN_BUILDS = 2
#: Drafts below this precision (failed / (failed + successful) builds hit) are dropped.
DEFAULT_MIN_PRECISION = 0.9
#: Token-set Jaccard similarity from which two normalized lines may merge.
DEFAULT_MERGE_THRESHOLD = 0.75
#: Candidate documents read per build (more are reported as truncated).
MAX_DOCS_PER_BUILD = 2000
#: At most this many builds are asked for in one search.
FETCH_BATCH = 1000
#: The most documents one search returns (Elasticsearch's default ``index.max_result_window``).
MAX_RESULT_WINDOW = 10_000
#: Example lines kept per cluster (for display; clustering sees them all).
MAX_EXAMPLES = 5
#: A phrase longer than this many tokens is cut (long phrases are brittle).
MAX_PHRASE_TOKENS = 16
#: At most this many jobs are listed in a ``build_name`` restriction.
MAX_SCOPE_JOBS = 3
#: Only the start of a very long line is considered.
MAX_LINE_CHARS = 500

#: The text field searched by drafts, and the field of file tags.
MESSAGE_FIELD = "message"
TAGS_FIELD = "tags"

#: A broad first cut, evaluated by the backend, of documents that may hold an
#: error line; :func:`extract_lines` decides. The regexp finds dotted exception
#: names (``libvirt.libvirterror``, ``tempest.lib.exceptions.sshtimeout``) with
#: one scan of the term dictionary (seven leading wildcards cost seven).
ERROR_PREFILTER = (
    "loglevel:(ERROR OR CRITICAL OR FATAL OR TRACE) OR "
    "message:(fail OR failed OR fatal OR traceback OR timed OR killed OR memory OR segfault OR panic) OR "
    "message:/.*(error|errors|exception|exceptions|timeout|failure|fault)/"
)

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


# ---------------------------------------------------------------------------
# Phrases common to many lines
# ---------------------------------------------------------------------------

_SEP = "\x00"


def _joined(tokens: Sequence[str]) -> str:
    return _SEP + _SEP.join(tokens) + _SEP


def contains_phrase(haystack: Sequence[str], phrase: Sequence[str]) -> bool:
    """``phrase`` occurs in ``haystack`` as consecutive tokens."""
    if not phrase:
        return False
    return _joined(phrase) in _joined(haystack)


def specific_enough(tokens: Sequence[str]) -> bool:
    """At least two tokens, or one long (dotted) token such as an exception name."""
    return len(tokens) >= 2 or (len(tokens) == 1 and len(tokens[0]) >= 12)


def common_runs(runs: Sequence[Run], targets: Sequence[Sequence[str]]) -> list[Run]:
    """The maximal sub-runs of ``runs`` that occur in every token list of ``targets``.

    Longest first (by tokens); sub-runs of one run do not overlap.
    """
    joined = [_joined(t) for t in targets]
    out: list[Run] = []
    for run in runs:
        n = len(run.words)
        taken = [False] * n
        spans = sorted(
            ((i, j) for i in range(n) for j in range(i + 1, n + 1)),
            key=lambda ij: (-len(run.sub(*ij).tokens), ij[0]),
        )
        for i, j in spans:
            if any(taken[i:j]):
                continue
            sub = run.sub(i, j)
            if not sub.tokens or not sub.word_tokens[0] or not sub.word_tokens[-1]:
                continue
            key = _joined(sub.tokens)
            if all(key in h for h in joined):
                out.append(sub)
                for k in range(i, j):
                    taken[k] = True
    return sorted(out, key=Run.rank)


def best_phrases(runs: Iterable[Run], limit: int = 3) -> list[Run]:
    """The most specific runs (most tokens, then earliest), cut to :data:`MAX_PHRASE_TOKENS`."""
    out = []
    for run in sorted(runs, key=Run.rank):
        if not specific_enough(run.tokens) or is_generic(run.text):
            continue
        out.append(_cut(run))
        if len(out) >= limit:
            break
    return out


def _cut(run: Run) -> Run:
    if len(run.tokens) <= MAX_PHRASE_TOKENS:
        return run
    count = 0
    for j, toks in enumerate(run.word_tokens):
        count += len(toks)
        if count >= MAX_PHRASE_TOKENS:
            return run.sub(0, j + 1)
    return run


# ---------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------


@dataclass
class Cluster:
    """Error lines that say the same thing, from one or more builds."""

    #: The normalized line of the group seen in most builds.
    key: str
    signature: Signature
    #: normalized line -> its lines.
    groups: dict[str, list[ErrorLine]] = field(default_factory=dict)
    #: Stable runs common to every line of the cluster, most specific first.
    runs: list[Run] = field(default_factory=list)

    @property
    def lines(self) -> list[ErrorLine]:
        return [line for group in self.groups.values() for line in group]

    @property
    def builds(self) -> set[str]:
        return {line.build_uuid for line in self.lines}

    def jobs(self) -> Counter[str]:
        """Job name -> distinct builds."""
        seen: dict[str, set[str]] = {}
        for line in self.lines:
            seen.setdefault(line.build_name or "(unknown job)", set()).add(line.build_uuid)
        return Counter({job: len(uuids) for job, uuids in seen.items()})

    def files(self) -> Counter[str]:
        """File name -> distinct builds."""
        seen: dict[str, set[str]] = {}
        for line in self.lines:
            seen.setdefault(line.filename or "(unknown file)", set()).add(line.build_uuid)
        return Counter({f: len(uuids) for f, uuids in seen.items()})

    def common_tag(self) -> str | None:
        """A ``tags`` value every line has: the file's own tag when there is one."""
        lines = self.lines
        if not lines:
            return None
        common = set(lines[0].tags)
        for line in lines[1:]:
            common &= set(line.tags)
        if not common:
            return None
        for line in lines:
            base = line.filename.rsplit("/", 1)[-1]
            if base in common:
                return base
        return next(t for t in lines[0].tags if t in common)

    def examples(self, limit: int = MAX_EXAMPLES) -> list[ErrorLine]:
        """Lines with distinct text (each variant's first line first), at most ``limit``."""
        out: list[ErrorLine] = []
        seen: set[str] = set()
        firsts = [group[0] for group in self.groups.values() if group]
        for line in [*firsts, *self.lines]:
            if len(out) >= limit:
                break
            if line.body not in seen:
                out.append(line)
                seen.add(line.body)
        return out

    def phrases(self, limit: int = 3) -> list[Run]:
        return best_phrases(self.runs, limit=limit)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _prefix_tokens(tokens: frozenset[str], order: Mapping[str, int], threshold: float) -> list[str]:
    """Prefix filtering: two sets with Jaccard >= t share one of these tokens."""
    ranked = sorted(tokens, key=lambda t: (order.get(t, 0), t))
    size = len(ranked)
    keep = size - int(threshold * size + 1e-9) + 1
    return ranked[: max(1, keep)]


def cluster_lines(
    lines: Iterable[ErrorLine],
    merge_threshold: float | None = DEFAULT_MERGE_THRESHOLD,
) -> list[Cluster]:
    """Group lines by normalized text, then merge near-duplicate groups.

    Groups are visited by decreasing number of builds; each joins the first
    cluster whose leader's stable tokens are at least ``merge_threshold``
    similar (Jaccard) and with which it still shares a specific phrase, or
    starts a cluster. ``merge_threshold`` None (or >= 1) merges nothing.
    Clusters come back by decreasing number of builds.
    """
    groups: dict[str, list[ErrorLine]] = {}
    sigs: dict[str, Signature] = {}
    for line in lines:
        sig = signature(line.body)
        if not sig.normalized:
            continue
        groups.setdefault(sig.normalized, []).append(line)
        sigs.setdefault(sig.normalized, sig)
    order = sorted(groups, key=lambda k: (-len({x.build_uuid for x in groups[k]}), k))
    merging = merge_threshold is not None and 0 < merge_threshold < 1
    threshold = float(merge_threshold or 0.0)
    # Global token frequency (rarest first) for prefix filtering.
    freq: Counter[str] = Counter()
    if merging:
        for k in order:
            freq.update(sigs[k].stable_tokens)
    rank = {t: i for i, (t, _) in enumerate(sorted(freq.items(), key=lambda kv: (kv[1], kv[0])))}
    clusters: list[Cluster] = []
    index: dict[str, list[int]] = {}
    for k in order:
        sig = sigs[k]
        runs = sig.runs()
        placed = False
        if merging and runs:
            stable = sig.stable_tokens
            candidates: set[int] = set()
            for tok in _prefix_tokens(stable, rank, threshold) if stable else []:
                candidates.update(index.get(tok, ()))
            for ci in sorted(candidates):
                cluster = clusters[ci]
                if jaccard(cluster.signature.stable_tokens, stable) < threshold:
                    continue
                shared = common_runs(cluster.runs, [sig.tokens])
                if not best_phrases(shared, limit=1):
                    continue
                cluster.groups[k] = groups[k]
                cluster.runs = shared
                placed = True
                break
        if placed:
            continue
        clusters.append(Cluster(key=k, signature=sig, groups={k: groups[k]}, runs=sorted(runs, key=Run.rank)))
        if merging and sig.stable_tokens:
            for tok in _prefix_tokens(sig.stable_tokens, rank, threshold):
                index.setdefault(tok, []).append(len(clusters) - 1)
    return sorted(clusters, key=lambda c: (-len(c.builds), c.key))


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------


def lucene_escape_phrase(text: str) -> str:
    """Escape ``\\`` and ``"`` for use inside a quoted Lucene phrase."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def lucene_phrase(field_name: str, text: str) -> str:
    """``field:"text"`` with the text escaped."""
    return f'{field_name}:"{lucene_escape_phrase(text)}"'


def build_query(phrases: Sequence[str], tag: str | None = None, jobs: Sequence[str] = ()) -> str:
    """A draft query: every phrase on ``message``, plus optional file tag and job scoping."""
    parts = [lucene_phrase(MESSAGE_FIELD, p) for p in phrases]
    if tag:
        parts.append(lucene_phrase(TAGS_FIELD, tag))
    if jobs:
        alts = " OR ".join(lucene_phrase("build_name", j) for j in jobs)
        parts.append(f"({alts})" if len(jobs) > 1 else alts)
    return " AND ".join(parts)


@dataclass(frozen=True)
class Candidate:
    """One way to query a cluster: its phrases and scoping."""

    phrases: tuple[str, ...]
    tag: str | None = None
    jobs: tuple[str, ...] = ()

    @property
    def query(self) -> str:
        return build_query(self.phrases, self.tag, self.jobs)

    @property
    def clauses(self) -> int:
        return len(self.phrases) + (self.tag is not None) + bool(self.jobs)


def candidates_for(cluster: Cluster) -> list[Candidate]:
    """Queries for a cluster, simplest first: phrase; + file tag; + second phrase; + jobs."""
    phrases = [r.text for r in cluster.phrases(limit=2)]
    if not phrases:
        return []
    tag = cluster.common_tag()
    out = [Candidate((phrases[0],))]
    if tag:
        out.append(Candidate((phrases[0],), tag))
    if len(phrases) > 1:
        out.append(Candidate(tuple(phrases), tag))
    names = {line.build_name for line in cluster.lines}
    jobs = tuple(sorted(names))
    if "" not in names and 0 < len(jobs) <= MAX_SCOPE_JOBS:
        out.append(Candidate(tuple(phrases), tag, jobs))
    return out


# ---------------------------------------------------------------------------
# Drafts
# ---------------------------------------------------------------------------


@dataclass
class Draft:
    """A proposed fingerprint for one cluster, with its backtest."""

    name: str
    candidate: Candidate
    cluster: Cluster
    #: Every build the query hits in the window (voting builds), newest first.
    hits: list[BuildInfo] = field(default_factory=list)
    #: Queries of lower-ranked drafts whose builds this one already covers.
    alternatives: list[str] = field(default_factory=list)

    @property
    def query(self) -> str:
        return self.candidate.query

    @property
    def builds_affected(self) -> int:
        """Uncategorized failed builds in which the cluster's lines were seen."""
        return len(self.cluster.builds)

    def status_counts(self) -> Counter[str]:
        return Counter(str(b.fields.get("build_status") or "(none)") for b in self.hits)

    @property
    def failed_uuids(self) -> set[str]:
        return {b.uuid for b in self.hits if b.fields.get("build_status") == FAILURE}

    @property
    def successful_uuids(self) -> set[str]:
        return {b.uuid for b in self.hits if b.fields.get("build_status") == SUCCESS}

    @property
    def failed(self) -> int:
        return len(self.failed_uuids)

    @property
    def successful(self) -> int:
        return len(self.successful_uuids)

    @property
    def precision(self) -> float | None:
        """failed / (failed + successful) builds hit, 0..1 (None: nothing hit)."""
        total = self.failed + self.successful
        return self.failed / total if total else None

    @property
    def precision_percent(self) -> float | None:
        p = self.precision
        return None if p is None else 100.0 * p

    def sort_key(self) -> tuple[Any, ...]:
        return (
            -self.builds_affected,
            -(self.precision or 0.0),
            -self.failed,
            self.candidate.clauses,
            -len(tokenize(" ".join(self.candidate.phrases))),
            self.query,
        )

    def as_json(self) -> dict[str, Any]:
        jobs = self.cluster.jobs()
        files = self.cluster.files()
        return {
            "name": self.name,
            "file": f"{self.name}.yaml",
            "query": self.query,
            "phrases": list(self.candidate.phrases),
            "tag": self.candidate.tag,
            "jobs_scope": list(self.candidate.jobs),
            "normalized": self.cluster.key,
            "variants": sorted(self.cluster.groups),
            "builds_affected": self.builds_affected,
            "uncategorized_builds": sorted(self.cluster.builds),
            "failed_builds": self.failed,
            "successful_builds": self.successful,
            "other_builds": {k: v for k, v in sorted(self.status_counts().items()) if k not in (FAILURE, SUCCESS)},
            "precision": self.precision,
            "hit_builds": [
                {"uuid": b.uuid, "status": b.fields.get("build_status"), "job": b.fields.get("build_name")}
                for b in self.hits
            ],
            "jobs": [{"name": j, "builds": n} for j, n in sorted(jobs.items(), key=lambda kv: (-kv[1], kv[0]))],
            "files": [{"name": f, "builds": n} for f, n in sorted(files.items(), key=lambda kv: (-kv[1], kv[0]))],
            "examples": [
                {"build": x.build_uuid, "job": x.build_name, "file": x.filename, "line": x.body}
                for x in self.cluster.examples()
            ],
            "alternatives": list(self.alternatives),
        }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")


def _comment_text(text: str, limit: int = 240) -> str:
    one = _CONTROL.sub(" ", text).replace("\n", " ").replace("\t", " ")
    return one if len(one) <= limit else one[: limit - 3] + "..."


def draft_yaml(draft: Draft, window: ReportWindow | None = None, builds: Mapping[str, BuildInfo] | None = None) -> str:
    """The draft as a ``queries/<name>.yaml`` file: a comment header and ``query:``.

    Loadable by :func:`elastic_recheck.core.fingerprints.parse_fingerprint`.
    """
    c = draft.cluster
    head = [
        f"# Draft fingerprint {draft.name} proposed by 'elastic-recheck suggest'.",
        "# Rename the file to <bug number>.yaml, review the query, add bug_title/projects.",
    ]
    if window is not None:
        head.append(f"# Window: {window.start:%Y-%m-%d %H:%M} to {window.now:%Y-%m-%d %H:%M} UTC ({window.days:g} days)")
    head += [
        "#",
        f"# Uncategorized failed builds with this error: {draft.builds_affected}",
        f"# Backtest: {draft.failed} failed and {draft.successful} successful voting builds hit; "
        f"precision {_pct(draft.precision)}",
        "# Jobs: " + ", ".join(f"{j} ({n})" for j, n in sorted(c.jobs().items(), key=lambda kv: (-kv[1], kv[0]))),
        "# Files: " + ", ".join(f"{f} ({n})" for f, n in sorted(c.files().items(), key=lambda kv: (-kv[1], kv[0]))),
        "# Normalized line:",
        f"#   {_comment_text(c.key)}",
        "# Example lines:",
    ]
    for x in c.examples():
        head.append(f"#   {_comment_text(x.filename.rsplit('/', 1)[-1] + ': ' + x.body)}")
    head.append("# Builds:")
    for uuid in sorted(c.builds):
        info = (builds or {}).get(uuid)
        if info is not None:
            f = info.fields
            extra = " ".join(
                str(v)
                for v in (f.get("build_name"), f.get("project"), f.get("build_change") and f"change {f.get('build_change')},{f.get('build_patchset')}", f.get("log_url"))
                if v
            )
            head.append(f"#   {uuid} {_comment_text(extra)}")
        else:
            head.append(f"#   {uuid}")
    if draft.alternatives:
        head.append("# Alternative queries (same builds):")
        head.extend(f"#   {_comment_text(q)}" for q in draft.alternatives)
    body = yaml.safe_dump({"query": draft.query}, default_flow_style=False, allow_unicode=True, width=1_000_000, sort_keys=False)
    return "\n".join(head) + "\n" + body


def format_text(drafts: Sequence[Draft], report: SuggestReport | None = None) -> str:
    """Drafts for people: one block each, best first."""
    out: list[str] = []
    if report is not None:
        w = report.window
        out.append(
            f"Suggested fingerprints over {w.start:%Y-%m-%d %H:%M} to {w.now:%Y-%m-%d %H:%M} UTC ({w.days:g} days), "
            f"queues {', '.join(report.queues) or 'all'}"
        )
        out.append(
            f"{len(report.uncategorized)} of {report.failed_builds} failed voting builds uncategorized; "
            f"{report.lines} error lines in {report.cluster_count} clusters; "
            f"{len(report.drafts)} draft(s) shown"
            + (f", {report.dropped_low_precision} below {_pct(report.min_precision)} precision left out" if report.dropped_low_precision else "")
        )
        if report.truncated:
            out.append(
                f"warning: {len(report.truncated)} build(s) had more than {report.max_docs_per_build} candidate lines; "
                "only the first were read"
            )
        if report.errors:
            out.append(f"warning: {len(report.errors)} quer(ies) failed on the backend: " + "; ".join(report.errors[:3]))
        out.append("")
    if not drafts:
        out.append("No draft: no error line is shared by enough uncategorized builds.")
    for d in drafts:
        out.append(f"{d.name}.yaml: {d.builds_affected} uncategorized build(s), precision {_pct(d.precision)}")
        out.append(f"  query: {d.query}")
        out.append(f"  backtest: {d.failed} failed, {d.successful} successful builds hit")
        jobs = d.cluster.jobs()
        out.append("  jobs: " + ", ".join(f"{j} ({n})" for j, n in sorted(jobs.items(), key=lambda kv: (-kv[1], kv[0]))))
        out.append(f"  line: {_comment_text(d.cluster.key, 200)}")
        for x in d.cluster.examples(3):
            out.append(f"    {x.build_uuid[:7]} {x.filename.rsplit('/', 1)[-1]}: {_comment_text(x.body, 160)}")
        for alt in d.alternatives:
            out.append(f"  alternative: {alt}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------
# Backend side
# ---------------------------------------------------------------------------

#: ``progress(phase, done, total)``.
Progress = Callable[[str, int, int], None]


@dataclass
class SuggestReport:
    """What :func:`run_suggest` found, with the numbers behind it."""

    window: ReportWindow
    queues: tuple[str, ...]
    drafts: list[Draft]
    #: Failed voting builds of the queues in the window.
    failed_builds: int = 0
    uncategorized: list[BuildInfo] = field(default_factory=list)
    lines: int = 0
    cluster_count: int = 0
    #: Drafts left out for low precision (unless ``include_all``).
    dropped_low_precision: int = 0
    #: Drafts left out because their query missed builds of their own cluster.
    dropped_unverified: int = 0
    #: Builds whose candidate documents were more than ``max_docs_per_build``.
    truncated: list[str] = field(default_factory=list)
    max_docs_per_build: int = MAX_DOCS_PER_BUILD
    min_precision: float = DEFAULT_MIN_PRECISION
    #: Queries the backend rejected (non-retryable errors).
    errors: list[str] = field(default_factory=list)
    #: The error lines of the uncategorized builds (the site's rows show each build's first).
    error_lines: list[ErrorLine] = field(default_factory=list, repr=False)

    def builds_by_uuid(self) -> dict[str, BuildInfo]:
        return {b.uuid: b for b in self.uncategorized}

    def as_json(self) -> dict[str, Any]:
        w = self.window
        return {
            "window": {"start": w.start.isoformat(), "end": w.now.isoformat(), "days": w.days},
            "queues": list(self.queues),
            "failed_builds": self.failed_builds,
            "uncategorized_builds": len(self.uncategorized),
            "error_lines": self.lines,
            "clusters": self.cluster_count,
            "min_precision": self.min_precision,
            "dropped_low_precision": self.dropped_low_precision,
            "dropped_unverified": self.dropped_unverified,
            "truncated_builds": list(self.truncated),
            "max_docs_per_build": self.max_docs_per_build,
            "errors": list(self.errors),
            "drafts": [d.as_json() for d in self.drafts],
        }


def failed_builds_spec(config: Config, window: ReportWindow, queues: Sequence[str]) -> QuerySpec:
    """Failed voting builds of ``queues`` (all queues when empty), as the uncategorized page finds them."""
    spec = all_fails_spec(config, window)
    extra = {"build_queue": tuple(queues)} if queues else {}
    return replace(spec, filters=Filters(voting=True, extra=extra), label="suggest-fails")


def find_uncategorized(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    window: ReportWindow,
    config: Config,
    queues: Sequence[str] = DEFAULT_QUEUES,
) -> tuple[list[BuildInfo], list[BuildInfo]]:
    """``(failed, uncategorized)`` voting builds of ``queues`` in the window, newest first."""
    failed = newest_first(backend.builds(failed_builds_spec(config, window, queues)))
    stats = collect_bug_stats(backend, fingerprints, window, histogram=False)
    report = build_uncategorized(failed, bug_hit_sets(stats), window, str(config.get("site", "integrated_projects_re")))
    return failed, report.uncategorized


def fetch_error_lines(
    backend: SearchBackend,
    builds: Sequence[BuildInfo],
    window: ReportWindow | TimeWindow,
    config: Config | None = None,
    max_docs: int = MAX_DOCS_PER_BUILD,
    progress: Progress | None = None,
    errors: list[str] | None = None,
) -> tuple[list[ErrorLine], list[str]]:
    """Error lines of ``builds`` (documents in the window), and the builds that had too many candidates.

    Builds are asked for together (one search for all of them when their
    candidate documents fit in :data:`MAX_RESULT_WINDOW`; a group that does
    not fit is split in halves), so the prefilter's wildcards are expanded a
    few times, not once per build. One build reads at most ``max_docs``
    documents; builds with more are returned as truncated.

    :raises BackendError: retryable errors (backend down) propagate; a
        rejected query is logged and listed in ``errors``.
    """
    # The job-result line ("Job complete, result: FAILURE") is dropped as a
    # generic line after fetching (is_generic), not by editing query text.
    texts: tuple[str, ...] = (ERROR_PREFILTER,)
    time_window = window.time_window if isinstance(window, ReportWindow) else window
    out: list[ErrorLine] = []
    truncated: list[str] = []
    done = 0

    def fetch(group: Sequence[BuildInfo]) -> None:
        nonlocal done
        single = len(group) == 1
        size = max_docs if single else min(MAX_RESULT_WINDOW, max_docs * len(group))
        filters = Filters(build_uuid=group[0].uuid) if single else Filters(extra={"build_uuid": tuple(b.uuid for b in group)})
        spec = QuerySpec(queries=texts, filters=filters, window=time_window, label="suggest-lines")
        try:
            if single:
                # One build: through msearch, which the embedded store answers
                # from the build's own documents (no term-dictionary scan).
                res = backend.msearch([spec], size=size)[0]
                if res.error:
                    raise BackendError(res.error, retryable=False)
            else:
                res = backend.search(spec, size=size)
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.error("candidate lines query failed: %s", exc)
            if errors is not None:
                errors.append(f"candidate lines of {len(group)} build(s): {exc}")
            done += len(group)
            return
        if res.total > len(res.hits) and not single:
            half = len(group) // 2
            fetch(group[:half])
            fetch(group[half:])
            return
        if res.total > len(res.hits):
            LOG.warning("build %s: %d candidate lines, only %d read", group[0].uuid, res.total, len(res.hits))
            truncated.append(group[0].uuid)
        for hit in res.hits:
            out.extend(extract_lines(hit.source, doc_id=hit.id))
        done += len(group)
        if progress is not None:
            progress("builds", done, len(builds))

    for start in range(0, len(builds), FETCH_BATCH):
        fetch(builds[start : start + FETCH_BATCH])
    return out, truncated


def backtest_builds(backend: SearchBackend, name: str, query: str, window: ReportWindow) -> list[BuildInfo]:
    """Builds a draft query hits in the window (the trend pages' rules: voting builds)."""
    fp = Fingerprint(bug=name, query=query)
    return newest_first(backend.builds(fingerprint_spec(fp, window)))


def _precision(hits: Sequence[BuildInfo]) -> float:
    statuses = Counter(b.fields.get("build_status") for b in hits)
    total = statuses[FAILURE] + statuses[SUCCESS]
    return statuses[FAILURE] / total if total else 0.0


def rematches(query: str, lines: Sequence[ErrorLine], es_mode: bool = True) -> bool:
    """The query parses and matches every document the lines came from.

    Parsed with :func:`elastic_recheck.core.lucene.parser.parse` and evaluated with
    :class:`elastic_recheck.core.lucene.matcher.MemoryIndex` over the lines' documents
    (lines without their document are only parsed).
    """
    from elastic_recheck.core.errors import QuerySyntaxError
    from elastic_recheck.core.lucene import parser as lucene
    from elastic_recheck.core.lucene.matcher import MemoryIndex

    try:
        ast = lucene.parse(query, es_mode=es_mode)
    except QuerySyntaxError as exc:
        LOG.warning("draft query %r does not parse: %s", query, exc)
        return False
    docs: dict[int, Mapping[str, Any]] = {}
    for line in lines:
        if line.doc is not None:
            docs.setdefault(id(line.doc), line.doc)
    if not docs:
        return True
    index = MemoryIndex(list(docs.values()))
    return len(index.search(ast)) == len(docs)


def evaluate_cluster(
    backend: SearchBackend,
    cluster: Cluster,
    window: ReportWindow,
    name: str = "draft",
    errors: list[str] | None = None,
    es_mode: bool = True,
) -> Draft | None:
    """Backtest a cluster's candidate queries and keep the best one.

    A candidate must parse and match every document its lines came from
    (:func:`rematches`), and it must hit every build of its cluster over the
    window; the simplest such candidate is taken unless a narrower one has a
    strictly better precision. None when no candidate works.
    """
    best: Draft | None = None
    best_precision = -1.0
    lines = cluster.lines
    for cand in candidates_for(cluster):
        if not rematches(cand.query, lines, es_mode=es_mode):
            LOG.warning("candidate %r does not re-match its own lines; skipped", cand.query)
            continue
        try:
            hits = backtest_builds(backend, name, cand.query, window)
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.error("draft query %r rejected by the backend: %s", cand.query, exc)
            if errors is not None:
                errors.append(f"{cand.query}: {exc}")
            continue
        hit = {b.uuid for b in hits}
        if not cluster.builds <= hit:
            LOG.info("candidate %r misses %d build(s) of its cluster", cand.query, len(cluster.builds - hit))
            continue
        precision = _precision(hits)
        if precision > best_precision:
            best = Draft(name=name, candidate=cand, cluster=cluster, hits=hits)
            best_precision = precision
        if precision >= 1.0:
            break
    return best


def rank_drafts(drafts: Iterable[Draft]) -> list[Draft]:
    """Best first; a draft whose cluster builds a better draft already hits becomes its alternative."""
    kept: list[Draft] = []
    for d in sorted(drafts, key=Draft.sort_key):
        covering = next((k for k in kept if d.cluster.builds <= k.failed_uuids), None)
        if covering is not None:
            covering.alternatives.append(d.query)
            continue
        kept.append(d)
    for i, d in enumerate(kept, 1):
        d.name = f"new-{i}"
    return kept


def run_suggest(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    window: ReportWindow,
    config: Config | None = None,
    *,
    queues: Sequence[str] = DEFAULT_QUEUES,
    min_builds: int = DEFAULT_MIN_BUILDS,
    min_precision: float = DEFAULT_MIN_PRECISION,
    include_all: bool = False,
    merge_threshold: float | None = DEFAULT_MERGE_THRESHOLD,
    max_docs_per_build: int = MAX_DOCS_PER_BUILD,
    progress: Progress | None = None,
) -> SuggestReport:
    """Find uncategorized builds, cluster their error lines and draft fingerprints.

    :raises BackendError: when the backend is unavailable (retryable); a
        query it rejects is logged and listed in :attr:`SuggestReport.errors`.
    """
    config = config or Config()
    failed, uncategorized = find_uncategorized(backend, fingerprints, window, config, queues)
    LOG.info("suggest: %d uncategorized of %d failed voting builds", len(uncategorized), len(failed))
    report = draft_from_builds(
        backend,
        uncategorized,
        window,
        config,
        min_builds=min_builds,
        min_precision=min_precision,
        include_all=include_all,
        merge_threshold=merge_threshold,
        max_docs_per_build=max_docs_per_build,
        progress=progress,
    )
    report.queues = tuple(queues)
    report.failed_builds = len(failed)
    return report


def draft_from_builds(
    backend: SearchBackend,
    uncategorized: Sequence[BuildInfo],
    window: ReportWindow,
    config: Config | None = None,
    *,
    min_builds: int = DEFAULT_MIN_BUILDS,
    min_precision: float = DEFAULT_MIN_PRECISION,
    include_all: bool = False,
    merge_threshold: float | None = DEFAULT_MERGE_THRESHOLD,
    max_docs_per_build: int = MAX_DOCS_PER_BUILD,
    progress: Progress | None = None,
) -> SuggestReport:
    """Draft fingerprints from already known uncategorized builds (e.g. the site's).

    :raises BackendError: when the backend is unavailable (retryable).
    """
    config = config or Config()
    es_mode = config.get("data_source", "lucene_mode") == "es"
    report = SuggestReport(
        window=window,
        queues=(),
        drafts=[],
        failed_builds=len(uncategorized),
        uncategorized=list(uncategorized),
        max_docs_per_build=max_docs_per_build,
        min_precision=min_precision,
    )
    lines, report.truncated = fetch_error_lines(
        backend, uncategorized, window, config, max_docs=max_docs_per_build, progress=progress, errors=report.errors
    )
    wanted = {b.uuid for b in uncategorized}
    lines = [x for x in lines if x.build_uuid in wanted]
    report.lines = len(lines)
    report.error_lines = lines
    clusters = cluster_lines(lines, merge_threshold=merge_threshold)
    report.cluster_count = len(clusters)
    big = [c for c in clusters if len(c.builds) >= max(1, min_builds)]
    LOG.info("suggest: %d error lines, %d clusters, %d in >= %d builds", len(lines), len(clusters), len(big), min_builds)
    drafts: list[Draft] = []
    for i, cluster in enumerate(big):
        draft = evaluate_cluster(backend, cluster, window, name=f"cluster-{i + 1}", errors=report.errors, es_mode=es_mode)
        if draft is None:
            report.dropped_unverified += 1
        else:
            drafts.append(draft)
        if progress is not None:
            progress("clusters", i + 1, len(big))
    if not include_all:
        good = [d for d in drafts if d.precision is not None and d.precision >= min_precision]
        report.dropped_low_precision = len(drafts) - len(good)
        drafts = good
    report.drafts = rank_drafts(drafts)
    return report


def suggest_drafts(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    window: ReportWindow,
    config: Config | None = None,
    **options: Any,
) -> list[Draft]:
    """The drafts of :func:`run_suggest` (options are passed on), best first."""
    return run_suggest(backend, fingerprints, window, config, **options).drafts


def site_suggestions(
    backend: SearchBackend,
    uncategorized: Sequence[BuildInfo],
    window: ReportWindow,
    config: Config,
    **options: Any,
) -> SuggestReport | None:
    """Drafts for the uncategorized page, or None when the backend rejected a query.

    The site must render without them: a non-retryable backend error is
    logged and the section left out; an unavailable backend (retryable
    error) propagates like every other site query.
    """
    try:
        return draft_from_builds(backend, uncategorized, window, config, **options)
    except BackendError as exc:
        if exc.retryable:
            raise
        LOG.error("possible fingerprints left out: the backend rejected a query: %s", exc)
        return None


def renumber(drafts: Sequence[Draft], taken: Iterable[str], start: int = 1) -> None:
    """Name drafts ``new-<n>`` in order, skipping names in ``taken`` (existing files)."""
    used = set(taken)
    n = start
    for d in drafts:
        while f"new-{n}" in used:
            n += 1
        d.name = f"new-{n}"
        used.add(d.name)
        n += 1


def yaml_documents(report: SuggestReport) -> str:
    """Every draft as a YAML file, separated by ``---`` (each loadable on its own)."""
    builds = report.builds_by_uuid()
    docs = [f"# file: {d.name}.yaml\n" + draft_yaml(d, report.window, builds) for d in report.drafts]
    return "---\n".join(docs)


def now_label(dt: datetime) -> str:
    return f"{dt:%Y-%m-%d %H:%M} UTC"
