"""Lint fingerprints without a backend: syntax, fields, and queries that don't mean what they seem to.

Everything here is pure: callers hand in ``(file name, file text)`` pairs and get
:class:`Finding` objects back (``elastic-recheck check-queries`` reads the
files and prints them).

Two views of a query are used:

* the **analyzed AST** from :func:`elastic_recheck.core.lucene.parser.parse` (what the
  engines execute): syntax errors, unknown fields, duplicates, queries without
  a ``message`` clause, queries made only of common words;
* the **raw syntax** from :func:`~elastic_recheck.contrib.lint_syntax.parse_raw`,
  the clauses as written, read with the parser's own lexer
  (:func:`elastic_recheck.core.lucene.lexer.tokens`), keeping every clause's
  conjunction, modifier, field and position: how the author *wrote* the query
  (implicit ``OR``, ``AND`` mixed with ``OR``, single quotes, leading
  wildcards, hyphenated unquoted words). It only runs on queries that
  :func:`~elastic_recheck.core.lucene.parser.parse` accepted, and never decides what is
  valid: acceptance is Lucene's (the parser's) business alone.

The rules live in :mod:`~elastic_recheck.contrib.lint_boolean` (implicit ``OR``,
``AND`` mixed with ``OR``), :mod:`~elastic_recheck.contrib.lint_terms` (terms and
phrases as written), :mod:`~elastic_recheck.contrib.lint_analyzed` (the analyzed
query) and :mod:`~elastic_recheck.contrib.lint_patterns` (broad and slow patterns).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import yaml

from elastic_recheck.contrib.lint_analyzed import lint_ast, normalized_key
from elastic_recheck.contrib.lint_boolean import boolean_findings
from elastic_recheck.contrib.lint_findings import ERROR, WARNING, Finding, QueryFinding
from elastic_recheck.contrib.lint_patterns import CODES as PATTERN_CODES
from elastic_recheck.contrib.lint_syntax import iter_clauses, iter_levels, parse_raw, shorten
from elastic_recheck.contrib.lint_terms import term_findings
from elastic_recheck.core.errors import FingerprintError, QuerySyntaxError
from elastic_recheck.core.fingerprints import KNOWN_KEYS, Fingerprint, QueryLocator, offset_of, parse_fingerprint
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping

LOG = logging.getLogger(__name__)

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


def lint_raw(query: str, mapping: Mapping = DEFAULT_MAPPING, es_mode: bool = True) -> list[QueryFinding]:
    """Findings about how the query is written (offsets into ``query``)."""
    root = parse_raw(query, mapping.default_field)
    out: list[QueryFinding] = []
    for lv in iter_levels(root):
        out.extend(boolean_findings(query, lv, es_mode, top=lv is root, mapping=mapping))
    for c, _lv in iter_clauses(root):
        out.extend(term_findings(query, c, mapping))
    return out


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
                f"same query as {seen.file} (after normalization: `{shorten(r.key, 80)}`); "
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
