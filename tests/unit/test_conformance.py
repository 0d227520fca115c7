"""Replay the Lucene conformance fixtures (recorded with the real Lucene oracle).

Each fixture in ``tests/conformance/*.json.gz`` (written by
``tests/conformance/generate.py``) holds documents and queries with the
oracle's outcome in ES mode and in plain Lucene mode. Here every query is
parsed with :func:`elastic_recheck.core.lucene.parser.parse` and evaluated with
:class:`elastic_recheck.core.lucene.matcher.MemoryIndex`; the hit set (or the fact that
the query is rejected) must be identical. No Java is needed.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.core.errors import QuerySyntaxError
from elastic_recheck.core.lucene.analysis import tokenize
from elastic_recheck.core.lucene.ast import Bool, Query, Term
from elastic_recheck.core.lucene.matcher import MemoryIndex
from elastic_recheck.core.lucene.parser import parse, to_string
from elastic_recheck.core.schema import DEFAULT_MAPPING

FIXTURES = Path(__file__).resolve().parents[1] / "conformance"
SUITES = ("features", "random", "syntax", "fingerprints", "multiterm", "limits")


@cache
def load(suite: str) -> dict[str, Any]:
    with gzip.open(FIXTURES / f"{suite}.json.gz", "rt", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@cache
def index(suite: str) -> MemoryIndex:
    return MemoryIndex(load(suite)["docs"])


def outcome(query: str, idx: MemoryIndex, es: bool) -> list[int] | str:
    try:
        ast = parse(query, es_mode=es)
    except QuerySyntaxError:
        return "error"
    return idx.search(ast)


def expected(value: Any) -> list[int] | str:
    return "error" if isinstance(value, dict) else list(value)


def test_fixtures_present() -> None:
    for suite in SUITES:
        assert (FIXTURES / f"{suite}.json.gz").exists(), f"missing fixture {suite}; run tests/conformance/generate.py"
    total = sum(len(load(s)["cases"]) for s in SUITES)
    assert total >= 3000


#: The ``limits`` suite (regexps and wildcards at Lucene's automaton limits) costs
#: more than all the others together, in the automaton code it checks: ``slow``.
SUITE_PARAMS = [pytest.param(s, marks=pytest.mark.slow) if s == "limits" else s for s in SUITES]


@pytest.mark.parametrize("suite", SUITE_PARAMS)
@pytest.mark.parametrize("mode", ["es", "plain"])
def test_suite_matches_lucene(suite: str, mode: str) -> None:
    data = load(suite)
    idx = index(suite)
    failures = []
    for case in data["cases"]:
        want = expected(case[mode])
        got = outcome(case["q"], idx, es=(mode == "es"))
        if got != want:
            try:
                shown = to_string(parse(case["q"], es_mode=(mode == "es")))
            except QuerySyntaxError as exc:
                shown = f"error {exc}"
            failures.append(f"{case['q']!r}\n    ours: {shown} -> {got}\n    lucene: {want}")
    n = len(data["cases"])
    assert not failures, f"{len(failures)}/{n} queries differ from Lucene ({mode}):\n" + "\n".join(failures[:30])


@pytest.mark.parametrize("suite", SUITE_PARAMS)
def test_errors_are_reported_with_positions(suite: str) -> None:
    """Every query the oracle rejects raises QuerySyntaxError with a position inside the text."""
    for case in load(suite)["cases"]:
        if not isinstance(case["es"], dict):
            continue
        with pytest.raises(QuerySyntaxError) as info:
            parse(case["q"], es_mode=True)
        exc = info.value
        lines = case["q"].split("\n")
        assert 1 <= exc.line <= len(lines)
        assert 1 <= exc.col <= len(lines[exc.line - 1]) + 1
        assert exc.message


@pytest.mark.slow
def test_too_complex_messages_are_lucenes() -> None:
    """Where Lucene refuses a regexp/wildcard as too complex, our error says what Lucene says."""
    checked = 0
    for case in load("limits")["cases"]:
        want = case["es"]
        if not isinstance(want, dict) or not want["error"].startswith(("Determinizing", "input automaton is too large")):
            continue
        with pytest.raises(QuerySyntaxError) as info:
            parse(case["q"], es_mode=True)
        assert info.value.message == want["error"], case["q"]
        checked += 1
    assert checked >= 90


def _expressible(q: Query) -> bool:
    """False for ASTs holding a text-field term that is not one token (from ``x~0``)."""
    if isinstance(q, Bool):
        return all(_expressible(c) for c in (*q.must, *q.should, *q.must_not))
    if isinstance(q, Term) and DEFAULT_MAPPING.is_text(q.field):
        return tokenize(q.value) == [q.value]
    return True


def test_to_string_round_trips() -> None:
    """``to_string`` of a parsed query parses back to a query with the same hits."""
    checked = 0
    for suite in SUITES:
        if suite == "limits":  # automaton limits, not renderings (and costly to compile twice more)
            continue
        idx = index(suite)
        for case in load(suite)["cases"]:
            for es in (True, False):
                try:
                    q = parse(case["q"], es_mode=es)
                except QuerySyntaxError:
                    continue
                rendered = to_string(q)
                if "<match nothing>" in rendered or not _expressible(q):
                    continue
                again = parse(rendered, es_mode=es)
                assert idx.search(again) == idx.search(q), (case["q"], rendered, to_string(again))
                checked += 1
    assert checked > 5000
