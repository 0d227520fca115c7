"""Rules on the analyzed query (what the engines execute): unknown fields, queries without
a ``message`` clause, queries made only of common words; and the normalized form that finds
duplicate fingerprints."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable

from elastic_recheck.contrib.lint_findings import WARNING, QueryFinding
from elastic_recheck.contrib.lint_patterns import pattern_findings
from elastic_recheck.contrib.lint_syntax import Level, iter_clauses, parse_raw, unescape
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.required import weakest_tokens
from elastic_recheck.core.schema import DEFAULT_MAPPING, Mapping

LOG = logging.getLogger(__name__)

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
        tokens = weakest_tokens(ast, text_main)
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
        if c.explicit_field == "_exists_" and unescape(c.text) == name:
            return c.term_start
    return 0
