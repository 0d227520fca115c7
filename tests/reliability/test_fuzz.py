"""Hostile and random input to the parsers: they parse, or raise the project's own error.

Hypothesis drives the Lucene layer (:func:`elastic_recheck.core.lucene.parser.parse`),
the event parser (:func:`elastic_recheck.core.events.parse_event` and
:func:`~elastic_recheck.core.events.parse_line`) and the fingerprint loader with
random text, grammar-shaped queries and arbitrary JSON; fixed cases cover
10,000 nested parentheses, megabyte inputs, binary bytes and non-UTF-8 logs
on ingest. Any exception other than ``QuerySyntaxError`` / ``EventParseError``
/ ``FingerprintError`` (a ``RecursionError``, ``TypeError``, ``KeyError``...)
fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elastic_recheck.core.errors import EventParseError, FingerprintError, QuerySyntaxError
from elastic_recheck.core.events import FailureReport, parse_event, parse_line
from elastic_recheck.core.fingerprints import load_file, parse_fingerprint
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene import parser as lucene

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- Lucene --------------------------------------------------------------------------

_ATOMS = st.sampled_from([
    "a", "nova", "Timed", "out", "é", "日本", "1.5", "-1", "*", "?", "te?t", "ab*", "*:*", "\\", "\\\"", "\\:",
    "foo~", "foo~2", "foo~0.5", "\"a b\"", "\"a b\"~3", "/re.*x/", "/[a-", "[a TO b]", "{a TO *}", "[* TO *]",
    "^2", "^", "~", "!", "&&", "||", "AND", "OR", "NOT", "TO", "+", "-", "(", ")", "\"", "'", ":", "/",
    "message:", "tags:", "build_name:", "_exists_:", "filename:", "message:(", "\u0000", "\u2028", "\ud7ff",
])


@st.composite
def query_texts(draw: Any) -> str:
    parts = draw(st.lists(st.one_of(_ATOMS, st.text(max_size=6)), max_size=24))
    seps = draw(st.lists(st.sampled_from([" ", "", "  ", "\t", "\n"]), min_size=len(parts), max_size=len(parts)))
    return "".join(p + s for p, s in zip(parts, seps, strict=True))


def _parse_or_syntax_error(text: str, es_mode: bool) -> None:
    try:
        q = lucene.parse(text, es_mode=es_mode)
    except QuerySyntaxError as exc:
        assert exc.line >= 1 and exc.col >= 1
        return
    assert isinstance(q, qa.Query)
    qa.fields_of(q)  # the tree is well formed


@FUZZ
@given(text=st.text(max_size=200), es_mode=st.booleans())
def test_lucene_parse_random_text(text: str, es_mode: bool) -> None:
    _parse_or_syntax_error(text, es_mode)


@FUZZ
@given(text=query_texts(), es_mode=st.booleans())
def test_lucene_parse_query_shaped_text(text: str, es_mode: bool) -> None:
    _parse_or_syntax_error(text, es_mode)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 10_000 + "a" + ")" * 10_000,
        "(" * 10_000,
        ")" * 10_000,
        "NOT " * 10_000 + "a",
        "+-" * 10_000 + "a",
        "a AND " * 10_000 + "b",
        "message:(" * 5_000 + "x" + ")" * 5_000,
        '"' * 10_001,
        "\\" * 10_001,
        "[" * 10_000,
        "/" * 10_001,
        "a~" * 10_000,
        "x" * 200_000,
        "word " * 200_000,
    ],
    ids=lambda t: f"{t[:12]!r}x{len(t)}",
)
@pytest.mark.timeout(120)
def test_lucene_parse_pathological_input_is_bounded(text: str) -> None:
    for es_mode in (True, False):
        _parse_or_syntax_error(text, es_mode)


def test_lucene_parser_stops_at_the_clause_limit() -> None:
    """The 1,025th clause ends the parse: the rest of the text is not even lexed,
    so the unterminated quote at its end is never reached."""
    from elastic_recheck.core.errors import QuerySyntaxError
    from elastic_recheck.core.lucene.parser import MAX_CLAUSE_COUNT, parse

    for es_mode in (True, False):
        with pytest.raises(QuerySyntaxError, match="too many boolean clauses"):
            parse("word " * (MAX_CLAUSE_COUNT + 1) + "tail " * 100_000 + '"', es_mode=es_mode)
        with pytest.raises(QuerySyntaxError, match="unterminated quoted phrase"):
            parse("word " * MAX_CLAUSE_COUNT + '"', es_mode=es_mode)
        assert parse("word " * MAX_CLAUSE_COUNT, es_mode=es_mode) is not None


# -- Gerrit events ----------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_KEYS = ["type", "author", "comment", "change", "patchSet", "eventCreatedOn", "approvals", "project", "number",
         "username", "name", "url", "branch"]


@st.composite
def gerrit_like(draw: Any) -> dict[str, Any]:
    """Events with the right keys and wrong (or right) types and texts."""
    header = draw(st.sampled_from(["Build failed.", "Build failed (gate pipeline).", "Build failed (x) pipeline)",
                                   "Build succeeded.", "build FAILED (check pipeline)", ""]))
    job_lines = draw(st.lists(st.one_of(
        st.text(max_size=60),
        st.builds(lambda n, u, r, d: f"- {n} {u} : {r}{d}",
                  st.text(min_size=1, max_size=20), st.sampled_from(["https://z/t/o/build/" + "a" * 32, "http://l/1/2/gate/j/abcdef0/", "x", ""]),
                  st.sampled_from(["FAILURE", "SUCCESS", "POST_FAILURE", "ERROR Node request failed", "", ":"]),
                  st.sampled_from(["", " in 1h 02m 03s", " (non-voting)", " in 5s (non-voting)", " in -1s"])),
    ), max_size=5))
    comment = draw(st.one_of(st.just(f"Patch Set 3: Verified-1\n\n{header}\n\n" + "\n".join(job_lines)), _json))
    event: dict[str, Any] = {
        "type": draw(st.one_of(st.just("comment-added"), _json)),
        "author": draw(st.one_of(st.just({"username": "zuul"}), st.just({"name": "Jenkins"}), _json)),
        "comment": comment,
        "change": draw(st.one_of(st.fixed_dictionaries({"number": st.one_of(st.integers(), st.text(max_size=25), _json),
                                                         "project": st.one_of(st.text(max_size=20), _json)}), _json)),
        "patchSet": draw(st.one_of(st.fixed_dictionaries({"number": st.one_of(st.integers(), st.text(max_size=5))}), _json)),
        "eventCreatedOn": draw(st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=12), _json)),
    }
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=3)):
        event.pop(key, None)
    return event


def _event_or_parse_error(event: Any) -> None:
    try:
        report = parse_event(event, ci_users=("zuul", "jenkins"))
    except EventParseError:
        return
    assert report is None or isinstance(report, FailureReport)
    if report is not None:
        assert report.change.isdigit() and report.patchset.isdigit()
        for job in report.jobs:
            assert job.build_uuid is None or (len(job.build_uuid) == 32 and set(job.build_uuid) <= set("0123456789abcdef"))


@FUZZ
@given(event=gerrit_like())
def test_parse_event_gerrit_shaped(event: dict[str, Any]) -> None:
    _event_or_parse_error(event)


@FUZZ
@given(event=_json)
def test_parse_event_any_json(event: Any) -> None:
    _event_or_parse_error(event)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_parse_line_any_bytes(raw: bytes) -> None:
    try:
        event = parse_line(raw)
    except EventParseError:
        return
    assert isinstance(event, dict)
    _event_or_parse_error(event)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"\xff\xfe\x00\x00garbage",
        b'{"type": "comment-added", "comment": "\xc3\x28"}',
        json.dumps({"type": "comment-added", "author": {"username": "zuul"}, "comment": "Build failed.\n\n" + "- j http://x/1/2/gate/j/abcdef0/ : FAILURE\n" * 20_000,
                    "change": {"number": 1}, "patchSet": {"number": 1}}).encode(),
    ],
    ids=["deep-list", "deep-object", "binary", "bad-utf8", "20k-jobs"],
)
@pytest.mark.timeout(120)
def test_parse_line_pathological(raw: bytes) -> None:
    try:
        event = parse_line(raw)
    except EventParseError:
        return
    _event_or_parse_error(event)


# -- fingerprint files ------------------------------------------------------------------------


@FUZZ
@given(text=st.text(max_size=300))
def test_fingerprint_yaml_random_text(text: str) -> None:
    try:
        parse_fingerprint(text, "queries/123.yaml")
    except FingerprintError as exc:
        assert exc.path == "queries/123.yaml"


@pytest.mark.parametrize(
    "text",
    [
        "query: " + "[" * 10_000 + "]" * 10_000,
        "query:\n" + "".join("  " * i + "- \n" for i in range(2_000)),
        "query: " + "(" * 10_000 + "a" + ")" * 10_000,
        "a: &a [" + ",".join(["*a"] * 10) + "]\n",  # a recursive alias
        "query: !!python/object/apply:os.system ['true']\n",
        "query: message:x\n" + "pad: " + "y" * 5_000_000 + "\n",
        "\x00\x01\x02query: x",
    ],
    ids=["deep-flow", "deep-block", "deep-parens", "recursive-alias", "python-tag", "5MB", "control-chars"],
)
@pytest.mark.timeout(120)
def test_fingerprint_yaml_pathological(text: str) -> None:
    try:
        fp = parse_fingerprint(text, "queries/9.yaml")
    except FingerprintError:
        pass
    else:
        assert fp.query == "message:x"


def test_remote_inventory_yaml_nested_too_deeply_is_unreadable_not_a_crash() -> None:
    from elastic_recheck.adapters.zuul.api import parse_inventory
    from elastic_recheck.core.zuul_build import NodeInfo

    assert parse_inventory("[" * 10_000) == NodeInfo()
    assert parse_inventory("all: {hosts: " * 5_000) == NodeInfo()


def test_fingerprint_file_binary_and_non_utf8(tmp_path: Path) -> None:
    for name, data in (("1.yaml", b"\xff\xfe\xfa query: x"), ("2.yaml", bytes(range(256)) * 100), ("3.yaml", b"query: caf\xe9")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(FingerprintError) as info:
            load_file(path)
        assert str(path) in str(info.value)


# -- ingest of non-UTF-8 and binary logs -------------------------------------------------------


def test_ingest_non_utf8_binary_and_nul_bytes(tmp_path: Path) -> None:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore
    from elastic_recheck.core.search_types import Filters, QuerySpec
    from elastic_recheck.ingest.build_dir import ingest_build_dir
    from elastic_recheck.ingest.build_info import BuildInfo

    build = tmp_path / "build"
    (build / "logs").mkdir(parents=True)
    (build / "job-output.txt").write_bytes(
        b"2026-11-20 10:00:00.000000 | latin-1 caf\xe9 \xff\xfe markerone\n"
        b"2026-11-20 10:00:01.000000 | nul\x00byte markertwo\r\n"
        b"2026-11-20 10:00:02.000000 | lone surrogate \xed\xa0\x80 markerthree\n"
    )
    (build / "logs" / "blob.bin").write_bytes(bytes(range(256)) * 64)
    (build / "logs" / "empty.txt").write_bytes(b"")
    with EmbeddedStore(tmp_path / "store.db") as store:
        stats = ingest_build_dir(store, build, BuildInfo(uuid="f" * 32, name="tempest-full", status="FAILURE"))
        assert stats.docs >= 3
        assert store.integrity_check() == []
        docs = store.search(QuerySpec(filters=Filters(build_uuid="f" * 32, extra={"filename": "job-output.txt"})), size=10).hits
        text = "\n".join(str(h.get("message")) for h in docs)
        assert "caf\ufffd" in text and "markerone" in text and "markerthree" in text
        for marker in ("markerone", "markertwo", "markerthree"):
            assert store.search(QuerySpec(queries=(f"message:{marker}",)), size=1).total == 1
        json.dumps([h.source for h in docs])  # everything stored is valid text


@pytest.mark.timeout(120)
def test_tokenizer_splits_one_long_token() -> None:
    """A 200,000-character token is cut into Lucene's 255-character pieces (its
    speed, linear in the length, is measured by ``python -m benchmarks parse``)."""
    from elastic_recheck.core.lucene.analysis import tokenize

    tokens = tokenize("QUJD" * 50_000)
    assert len(tokens) == -(-200_000 // 255)
    assert {len(t) for t in tokens[:-1]} == {255} and "".join(tokens) == "qujd" * 50_000
