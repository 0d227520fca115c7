"""Fingerprints: one ``queries/<bug>.yaml`` file per known bug.

A fingerprint is a Lucene ``query_string`` plus options::

    query: >-
      message:"Timed out waiting for thing" AND tags:"screen-n-cpu.txt"
    suppress-graph: false          # leave out of the trend graphs
    suppress-notification: false   # matched, but the bot stays silent
    allow-nonvoting: false         # also count non-voting jobs
    test_ids: [tempest.api...]     # match only if one of these tests failed
    resolved_at: 2024-01-31        # the bug was fixed then (hits after = it came back);
                                   # also `date` output: Tue Dec 10 12:08:42 EST 2013
    bug_title: "..."               # offline title (no tracker needed)
    projects: [openstack/nova]     # offline affected projects

Loading a directory never stops at a bad file: it returns the good
fingerprints and a list of :class:`FingerprintError` naming file and position.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from elastic_recheck.core import bounded_yaml
from elastic_recheck.core.errors import FingerprintError, QuerySyntaxError, short_repr
from elastic_recheck.core.lucene.ast import Query
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping
from elastic_recheck.core.timestamps import parse_fingerprint_time

LOG = logging.getLogger(__name__)

#: Largest fingerprint file read (the largest real one is about 500 bytes;
#: a 200 MB file used to stall every command that loads fingerprints).
MAX_FINGERPRINT_BYTES = 64 * 1024
#: Most YAML values in one fingerprint, aliases counted in full (a real one has about 20).
MAX_FINGERPRINT_NODES = 10_000

KNOWN_KEYS: frozenset[str] = frozenset(
    {
        "query",
        "suppress-graph",
        "suppress-notification",
        "allow-nonvoting",
        "test_ids",
        "resolved_at",
        "bug_title",
        "projects",
        "bug_url",
        "tracker",
    }
)


@dataclass(frozen=True)
class Fingerprint:
    """One known bug and the query that recognises it in CI logs."""

    bug: str
    query: str
    ast: Query | None = field(default=None, compare=False, repr=False)
    path: Path | None = field(default=None, compare=False)
    suppress_graph: bool = False
    suppress_notification: bool = False
    allow_nonvoting: bool = False
    test_ids: tuple[str, ...] = ()
    resolved_at: datetime | None = None
    bug_title: str | None = None
    projects: tuple[str, ...] = ()
    bug_url: str | None = None
    #: 1-based line/column in the file where the query text starts.
    query_line: int = 1
    query_col: int = 1
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def url(self) -> str:
        """Link to the bug (Launchpad unless ``bug_url`` says otherwise)."""
        if self.bug_url:
            return self.bug_url
        if self.bug.isdigit():
            return f"https://bugs.launchpad.net/bugs/{self.bug}"
        return self.bug


def _key_position(root: yaml.Node | None, key: str) -> tuple[int | None, int | None]:
    """1-based line and column of ``key`` in the file's top mapping (None when absent)."""
    if isinstance(root, yaml.MappingNode):
        for k, _value in root.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k.start_mark.line + 1, k.start_mark.column + 1
    return None, None


def query_node(root: yaml.Node | None) -> yaml.ScalarNode | None:
    """The YAML node holding the ``query`` value (None when absent or not a scalar)."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "query" and isinstance(value, yaml.ScalarNode):
                return value
    return None


def _query_position(root: yaml.Node | None) -> tuple[int, int, str]:
    """Where the ``query`` value starts in the file and its scalar style."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "query":
                style = getattr(value, "style", None) or ""
                return value.start_mark.line + 1, value.start_mark.column + 1, style
    return 1, 1, ""


def align_offsets(raw: str, value: str) -> list[int] | None:
    """Map each character of a YAML scalar's value to its index in the scalar's source.

    ``raw`` is the source of the scalar (block header excluded). Works for
    plain, folded, literal and quoted scalars: characters of the value are
    found in order in the source, skipping line breaks, indentation, quotes
    and escape backslashes. None when the two cannot be aligned (e.g. an
    escape such as ``\\n`` in a double-quoted scalar).
    """
    pos: list[int] = []
    i = 0
    n = len(raw)
    for v in value:
        if v.isspace():
            pos.append(min(i, n))
            while i < n and raw[i].isspace():
                i += 1
            continue
        while i < n and raw[i] != v and (raw[i].isspace() or raw[i] in "\"'\\"):
            i += 1
        if i < n and raw[i] == v:
            pos.append(i)
            i += 1
        else:
            return None
    return pos


@dataclass
class QueryLocator:
    """Turns offsets in the query value into file line/column."""

    text: str
    base: int  # index in ``text`` of the first character of the query source
    fallback: tuple[int, int]
    offsets: list[int] | None
    line_starts: list[int]

    @classmethod
    def build(cls, text: str, node: yaml.ScalarNode | None, fallback: tuple[int, int]) -> QueryLocator:
        starts = [0] + [m.end() for m in re.finditer("\n", text)]
        if node is None:
            return cls(text, 0, fallback, None, starts)
        begin, end = node.start_mark.index, node.end_mark.index
        if node.style in ("|", ">"):
            nl = text.find("\n", begin)
            begin = nl + 1 if nl >= 0 else end
        src = text[begin:end]
        offsets = align_offsets(src, node.value)
        return cls(text, begin, fallback, offsets, starts)

    def position(self, offset: int) -> tuple[int, int]:
        if self.offsets is None or not self.offsets:
            return self.fallback
        offset = max(0, min(offset, len(self.offsets) - 1))
        index = self.base + self.offsets[offset]
        line = bisect.bisect_right(self.line_starts, index)
        return line, index - self.line_starts[line - 1] + 1


def offset_of(query: str, line: int, col: int) -> int:
    lines = query.split("\n")
    line = max(1, min(line, len(lines)))
    return sum(len(x) + 1 for x in lines[: line - 1]) + max(0, col - 1)


def parse_fingerprint(
    text: str,
    path: Path | str,
    mapping: Mapping = DEFAULT_MAPPING,
    es_mode: bool = True,
) -> Fingerprint:
    """Parse and validate one fingerprint file's text.

    :raises FingerprintError: with the file name and, where known, line/column.
    """
    from elastic_recheck.core.lucene import parser as lucene  # the Lucene layer (imported here: heavy)

    p = Path(path)
    name = str(path)
    if len(text) > MAX_FINGERPRINT_BYTES:
        raise FingerprintError(name, f"too large: more than {MAX_FINGERPRINT_BYTES} bytes (a fingerprint is a query and a few options)")
    try:
        root, data = bounded_yaml.load_bounded(text, MAX_FINGERPRINT_NODES)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise FingerprintError(name, f"invalid YAML: {exc.problem or exc}", line, col) from None
    except yaml.YAMLError as exc:
        raise FingerprintError(name, f"invalid YAML: {exc}") from None
    except RecursionError:  # PyYAML's scanner and composer recurse per nesting level
        raise FingerprintError(name, "invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise FingerprintError(name, "expected a mapping with a 'query' key", 1, 1)

    warnings = [f"{name}: unknown key {short_repr(key)} (ignored)" for key in sorted(map(str, data)) if key not in KNOWN_KEYS]
    for w in warnings:
        LOG.warning("%s", w)

    query = data.get("query")
    qline, qcol, style = _query_position(root)
    if query is None:
        raise FingerprintError(name, "missing required key 'query'", 1, 1)
    if not isinstance(query, str):
        raise FingerprintError(name, f"'query' must be a string, not {type(query).__name__}", qline, qcol)
    if not query.strip():
        raise FingerprintError(name, "'query' is empty", qline, qcol)

    def bad(key: str, message: str) -> FingerprintError:
        return FingerprintError(name, message, *_key_position(root, key))

    def flag(key: str) -> bool:
        value = data.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise bad(key, f"'{key}' must be true or false, not {short_repr(value)}")
        return value

    test_ids = data.get("test_ids") or []
    if isinstance(test_ids, str):
        test_ids = [test_ids]
    if not isinstance(test_ids, list) or not all(isinstance(t, str) for t in test_ids):
        raise bad("test_ids", "'test_ids' must be a list of test ids")

    resolved_at = None
    if data.get("resolved_at") is not None:
        try:
            resolved_at = parse_fingerprint_time(data["resolved_at"])
        except ValueError as exc:
            raise bad("resolved_at", f"'resolved_at': {exc}") from None

    projects = data.get("projects") or []
    if isinstance(projects, str):
        projects = [projects]
    if not isinstance(projects, list) or not all(isinstance(x, str) for x in projects):
        raise bad("projects", "'projects' must be a list of project names")
    title = data.get("bug_title")
    if title is not None and not isinstance(title, str):
        raise bad("bug_title", "'bug_title' must be a string")
    bug_url = data.get("bug_url")
    if bug_url is not None and not isinstance(bug_url, str):
        raise bad("bug_url", "'bug_url' must be a string")

    try:
        ast = lucene.parse(query, mapping=mapping, es_mode=es_mode)
    except QuerySyntaxError as exc:
        locator = QueryLocator.build(text, query_node(root), (qline, qcol))
        line, col = locator.position(offset_of(query, exc.line, exc.col))
        raise FingerprintError(name, f"invalid Lucene query: {exc.message}", line, col) from None

    return Fingerprint(
        bug=p.stem,
        query=query.strip(),
        ast=ast,
        path=p,
        suppress_graph=flag("suppress-graph"),
        suppress_notification=flag("suppress-notification"),
        allow_nonvoting=flag("allow-nonvoting"),
        test_ids=tuple(test_ids),
        resolved_at=resolved_at,
        bug_title=title,
        projects=tuple(projects),
        bug_url=bug_url,
        query_line=qline,
        query_col=qcol,
        warnings=tuple(warnings),
    )


def read_fingerprint_text(path: Path) -> str:
    """A fingerprint file's text. :raises FingerprintError: unreadable, larger than :data:`MAX_FINGERPRINT_BYTES` or not UTF-8."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FINGERPRINT_BYTES + 1)
        if len(raw) > MAX_FINGERPRINT_BYTES:
            raise FingerprintError(
                str(path), f"too large: more than {MAX_FINGERPRINT_BYTES} bytes (a fingerprint is a query and a few options)"
            )
        return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text: universal newlines
    except UnicodeDecodeError as exc:
        raise FingerprintError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise FingerprintError(str(path), f"cannot read: {exc.strerror}") from None


def load_file(path: Path | str, mapping: Mapping = DEFAULT_MAPPING, es_mode: bool = True) -> Fingerprint:
    p = Path(path)
    return parse_fingerprint(read_fingerprint_text(p), p, mapping=mapping, es_mode=es_mode)
