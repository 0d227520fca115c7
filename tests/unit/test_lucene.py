"""The query_string parser (elastic_recheck.core.lucene.parser) and the in-memory matcher.

Lucene conformance at large is in test_conformance.py (recorded with the real
Lucene); these tests pin the rules people trip over, one by one.
"""

from __future__ import annotations

from typing import Any

import pytest

from elastic_recheck.core.errors import QuerySyntaxError
from elastic_recheck.core.lucene.ast import (
    Bool,
    Exists,
    Fuzzy,
    MatchAll,
    MatchNone,
    Phrase,
    Prefix,
    Range,
    Regexp,
    Term,
    Wildcard,
)
from elastic_recheck.core.lucene.matcher import MemoryIndex, value_text
from elastic_recheck.core.lucene.parser import parse, to_string
from elastic_recheck.core.lucene.required import AllOf, AnyOf, NeedPrefix, NeedTerm, required_terms
from elastic_recheck.core.schema import Mapping


def m(value: str) -> Term:
    return Term("message", value)


# --- precedence (QueryParserBase.addClause) -----------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a OR b AND c", Bool(must=(m("b"), m("c")), should=(m("a"),))),
        ("a AND b OR c", Bool(must=(m("a"), m("b")), should=(m("c"),))),
        ("a b", Bool(should=(m("a"), m("b")))),
        ("a AND NOT b", Bool(must=(m("a"),), must_not=(m("b"),))),
        ("a -b +c", Bool(must=(m("c"),), should=(m("a"),), must_not=(m("b"),))),
        ("a && b || c", Bool(must=(m("a"), m("b")), should=(m("c"),))),
        ("!a b", Bool(should=(m("b"),), must_not=(m("a"),))),
        ("(a)", m("a")),
        ("a^2", m("a")),
    ],
)
def test_precedence(query: str, expected: Bool) -> None:
    assert parse(query, es_mode=False) == expected


def test_default_operator_and() -> None:
    assert parse("a b", default_operator="AND") == Bool(must=(m("a"), m("b")))
    assert parse("a OR b", default_operator="AND") == Bool(should=(m("a"), m("b")))
    assert parse("nova-compute", default_operator="AND") == Bool(must=(m("nova"), m("compute")))


# --- analysis of terms and phrases ---------------------------------------------


def test_terms_are_analyzed_with_the_field_analyzer() -> None:
    assert parse("Nova.Compute") == m("nova.compute")
    # An unquoted term that analyzes to several tokens is an OR of them (autoGeneratePhraseQueries=false).
    assert parse("nova-compute") == Bool(should=(m("nova"), m("compute")))
    assert parse('"Failed to Build"~2') == Phrase("message", ("failed", "to", "build"), (0, 1, 2), 2)
    assert parse('"Failed"~2') == m("failed")
    # Keyword fields keep the exact, case-sensitive value, quoted or escaped.
    assert parse('build_name:"Tempest Full"') == Term("build_name", "Tempest Full")
    assert parse(r"build_name:Tempest\ Full") == Term("build_name", "Tempest Full")
    assert parse("build_name:Foo-Bar") == Term("build_name", "Foo-Bar")
    assert parse('build_name:""') == Term("build_name", "")


def test_clauses_without_tokens_are_dropped() -> None:
    assert parse('foo "---"') == m("foo")  # one clause left: no Bool around it
    assert parse('+foo "---"') == Bool(must=(m("foo"),))
    assert parse('"---"', es_mode=False) == MatchNone()
    assert parse('foo AND "---"') == m("foo")


def test_field_groups_and_escapes() -> None:
    assert parse("tags:(a OR b)") == Bool(should=(Term("tags", "a"), Term("tags", "b")))
    assert parse(r"message:a\:b") == m("a:b")
    assert parse(r"a\-b") == Bool(should=(m("a"), m("b")))
    assert parse(r"project:openstack\/cinder") == Term("project", "openstack/cinder")
    assert parse(r"\u0041BC") == m("abc")


def test_multi_term_queries() -> None:
    assert parse("Nova*") == Prefix("message", "nova")
    assert parse("build_name:Tempest*") == Prefix("build_name", "Tempest")
    assert parse("n?va*x") == Wildcard("message", "n?va*x")
    assert parse(r"N\*va?") == Wildcard("message", r"n\*va?")
    assert parse("message:/Nov.*/") == Regexp("message", "nov.*")
    assert parse("build_name:/Temp.*/") == Regexp("build_name", "Temp.*")
    assert parse("nova~", es_mode=False) == Fuzzy("message", "nova", 2)
    assert parse("nova~") == Fuzzy("message", "nova", 1)  # ES AUTO: 3-5 characters -> 1 edit
    assert parse("no~") == m("no")  # AUTO: 1-2 characters -> exact
    assert parse("novacompute~1") == Fuzzy("message", "novacompute", 1)
    assert parse("build_change:[100 TO 200}") == Range("build_change", "100", "200", True, False)
    assert parse("message:{A TO *]") == Range("message", "a", None, False, True)


# --- ES mode versus plain Lucene --------------------------------------------------


def test_es_mode_differences() -> None:
    assert parse("-a") == Bool(must=(MatchAll(),), must_not=(m("a"),))
    assert parse("-a", es_mode=False) == Bool(must_not=(m("a"),))
    assert parse("x (-a)") == Bool(should=(m("x"), Bool(must=(MatchAll(),), must_not=(m("a"),))))
    assert parse("_exists_:build_name") == Exists("build_name")
    assert parse("_exists_:build_name", es_mode=False) == Term("_exists_", "build_name")
    assert parse("build_name:*") == Exists("build_name")
    assert parse("build_name:*", es_mode=False) == Wildcard("build_name", "*")
    assert parse("*:*") == MatchAll() == parse("*:*", es_mode=False)
    assert parse("build_change:>=100") == Range("build_change", "100", None, True, True)
    assert parse("build_change:<100") == Range("build_change", None, "100", True, False)
    assert parse("build_change:>=100", es_mode=False) == Term("build_change", ">=100")
    assert parse("") == MatchNone()
    with pytest.raises(QuerySyntaxError):
        parse("", es_mode=False)
    with pytest.raises(QuerySyntaxError):
        parse("nova~x")  # ES: bad fuzziness
    assert parse("nova~x", es_mode=False) == Fuzzy("message", "nova", 2)


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "line", "col", "words"),
    [
        ("project:openstack/cinder", 1, 18, "regular expression"),
        ('message:"unterminated', 1, 9, "quoted"),
        ("(a OR b", 1, 8, "parenthes"),
        ("a OR b)", 1, 7, "')'"),
        ("AND a", 1, 1, "AND"),
        ("OR a", 1, 1, "OR"),
        ("a AND", 1, 6, "ends"),
        ("a\nAND", 2, 4, "ends"),
        ("a^", 1, 3, "number"),
        ("foo\\", 1, 4, "escape"),
        ("message:/[/", 1, 9, "regular expression"),
        ("a:b:c", 1, 4, "field"),
        ("message:[a b]", 1, 12, "TO"),
        ('"a b"~-1', 1, 1, "slop"),
        ("a~1.5", 1, 2, "Fractional"),
    ],
)
def test_syntax_errors_have_positions(query: str, line: int, col: int, words: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query, es_mode=False)
    exc = info.value
    assert (exc.line, exc.col) == (line, col), str(exc)
    assert words.lower() in exc.message.lower()
    assert exc.query == query


def test_error_message_names_the_position() -> None:
    with pytest.raises(QuerySyntaxError, match=r"^1:18: "):
        parse("project:openstack/cinder")


# --- rendering ------------------------------------------------------------------------


def test_to_string_is_canonical() -> None:
    q = parse('message:"Timed out" AND (tags:"console.html" OR tags:screen-n-cpu.txt) -build_name:grenade')
    assert to_string(q) == (
        '+message:"timed out" +(tags:console.html (tags:screen tags:n tags:cpu.txt)) -build_name:grenade'
    )
    assert to_string(parse("a OR b")) == to_string(parse("a b"))
    assert to_string(parse("-a")) == "+*:* -message:a"
    assert to_string(MatchNone()) == "<match nothing>"


# --- the matcher ------------------------------------------------------------------------

DOCS: list[dict[str, Any]] = [
    {"message": "Timed out waiting for a reply", "tags": ["console.html", "console"], "build_name": "tempest-full"},
    {"message": "waiting timed out", "tags": "screen-n-cpu.txt", "build_name": "Tempest-Full", "voting": True},
    {"message": ["first value end", "start second"], "build_change": 12345},
    {"message": "nova.compute.manager Failed to build", "build_name": "", "voting": False},
    {"tags": None, "x": 1.5},
]


@pytest.fixture(scope="module")
def index() -> MemoryIndex:
    return MemoryIndex(DOCS)


@pytest.mark.parametrize(
    ("query", "hits"),
    [
        ('"timed out"', [0, 1]),
        ('"out waiting"', [0]),
        ('"waiting timed"~0', [1]),
        ('"timed waiting"~1', [0]),
        ('"timed waiting"~3', [0, 1]),
        ('"end start"', []),
        ('"end start"~99', []),
        ('"end start"~100', [2]),
        ("build_name:tempest-full", [0]),
        ("build_name:Tempest*", [1]),
        ('build_name:""', [3]),
        ("voting:true", [1]),
        ("build_change:12345", [2]),
        ("x:1.5", [4]),
        ("_exists_:voting", [1, 3]),
        ("_exists_:tags", [0, 1]),
        ("-timed", [2, 3, 4]),
        ("nova.compute.manager AND -failed", []),
        ("nova.compute.*", [3]),
        ("nova.compute", []),
        ("tags:console", [0]),
        ("tags:cpu.txt", [1]),
        ("message:[timed TO waiting]", [0, 1, 2, 3]),  # "to" is in the range too
        ("waitng~1", [0, 1]),
        ("message:/w.*g/", [0, 1]),
    ],
)
def test_memory_index_search(index: MemoryIndex, query: str, hits: list[int]) -> None:
    assert index.search(parse(query)) == hits


def test_plain_lucene_not_only_group_matches_nothing(index: MemoryIndex) -> None:
    assert index.search(parse("-timed", es_mode=False)) == []
    assert index.search(parse("-timed")) == [2, 3, 4]


def test_value_text_follows_jackson() -> None:
    assert value_text(True) == "true"
    assert value_text(12) == "12"
    assert value_text(1.5) == "1.5"
    assert value_text(100.0) == "100.0"
    assert value_text(1e10) == "1.0E10"
    assert value_text(0.0001) == "1.0E-4"


def test_custom_mapping() -> None:
    mapping = Mapping(text_fields=frozenset({"message", "module"}))
    docs = [{"module": "Oslo.Messaging rpc"}, {"module": "nova"}]
    assert MemoryIndex(docs, mapping).search(parse("module:rpc", mapping=mapping)) == [0]
    # A keyword under the default mapping: only the exact value matches.
    assert MemoryIndex(docs).search(parse("module:rpc")) == []
    assert MemoryIndex(docs).search(parse('module:"Oslo.Messaging rpc"')) == [0]


# --- prefilter ------------------------------------------------------------------------------


def test_required_terms() -> None:
    q = parse('message:"timed out" AND (tags:console OR tags:"screen-n-cpu.txt") AND NOT build_name:x')
    assert required_terms(q) == AllOf(
        (
            NeedTerm("message", "timed"),
            NeedTerm("message", "out"),
            AnyOf(
                (
                    NeedTerm("tags", "console"),
                    AllOf((NeedTerm("tags", "screen"), NeedTerm("tags", "n"), NeedTerm("tags", "cpu.txt"))),
                )
            ),
        )
    )
    assert required_terms(parse("a OR b*")) == AnyOf((NeedTerm("message", "a"), NeedPrefix("message", "b")))
    assert required_terms(parse("a OR bcdef~")) is None  # a fuzzy alternative: no restriction
    assert required_terms(parse("-a")) is None  # MatchAll minus a
    assert required_terms(parse("-a", es_mode=False)) == AnyOf(())  # matches nothing
    assert required_terms(parse('"---"')) == AnyOf(())


def test_required_terms_is_a_necessary_condition(index: MemoryIndex) -> None:
    queries = ['"timed out"', "a OR nova*", "tags:console AND -x", "(a b) AND c", "x:1.5", '"end start"~100']

    def holds(req: object, doc: int) -> bool:
        if req is None:
            return True
        if isinstance(req, NeedTerm):
            return doc in index.docs_with(req.field, req.term)
        if isinstance(req, NeedPrefix):
            return any(
                doc in index.docs_with(req.field, t) for t in index.vocabulary(req.field) if t.startswith(req.prefix)
            )
        if isinstance(req, AllOf):
            return all(holds(p, doc) for p in req.parts)
        assert isinstance(req, AnyOf)
        return any(holds(p, doc) for p in req.parts)

    for text in queries:
        q = parse(text)
        req = required_terms(q)
        for doc in index.search(q):
            assert holds(req, doc), (text, doc)


def test_classifier_sized_workload_matches_brute_force() -> None:
    """1,000 fingerprint-like queries over 5,000 lines of one build (the
    classifier's workload; its speed is measured by ``python -m benchmarks
    store``): every hit set equals the lines where the two words are adjacent,
    read off the text (one pass over the lines, not one per query)."""
    words = [f"w{i}" for i in range(3000)]
    docs = [
        {"message": " ".join(words[(i * 7 + j * 13) % 3000] for j in range(12)), "tags": "console"} for i in range(5000)
    ]
    idx = MemoryIndex(docs)
    queries = [
        parse(f'message:"w{i % 2900} w{(i + 13) % 2900}" AND tags:console AND NOT message:zz{i}') for i in range(1000)
    ]
    # the oracle: every adjacent pair of words of every line, read off the text once
    lines_with_pair: dict[tuple[str, str], set[int]] = {}
    for n, d in enumerate(docs):
        toks = d["message"].split()
        for pair in zip(toks, toks[1:], strict=False):
            lines_with_pair.setdefault(pair, set()).add(n)
    total = 0
    for i, q in enumerate(queries):
        expected = lines_with_pair.get((f"w{i % 2900}", f"w{(i + 13) % 2900}"), set())
        got = idx.evaluate(q)
        assert set(got) == expected, (i, sorted(got)[:5], sorted(expected)[:5])
        total += len(got)
    assert total > 0


# -- escapes and surrogates (issue 21) --------------------------------------------------------


@pytest.mark.parametrize("query", ["\\u?", "message:/\\user/", "message:foo\\u?*", "message:f?\\uZZ", "fo\\u00e*", "a\\u12"])
def test_bad_unicode_escapes_are_rejected_in_every_bare_term(query: str) -> None:
    """QueryParserBase.handleBareTokenQuery decodes escapes of wildcards and regexps too."""
    for es_mode in (True, False):
        with pytest.raises(QuerySyntaxError, match="Unicode escape|unicode escape"):
            parse(query, es_mode=es_mode)


def test_lone_surrogates_become_replacement_characters_after_analysis() -> None:
    assert parse("build_name:\\uD83D") == Term("build_name", "\ufffd")
    assert parse("build_name:a\\uD83D*") == Prefix("build_name", "a\ufffd")
    assert parse("message:foo\\uD83D~1") == Fuzzy("message", "foo\ufffd", 1)
    assert parse("build_name:\\uD83D\\uDE00") == Term("build_name", "\U0001f600")  # a pair is one character
    assert parse('build_name:"\ud83d"') == Term("build_name", "\ufffd")  # raw in the query text
    # analysis sees the surrogate: a text ending with a high surrogate has no token (Lucene's scanner)
    assert isinstance(parse("foo\\uD83D"), MatchNone)
    assert parse("foo\\uD83Dbar") == Bool(should=(Term("message", "foo"), Term("message", "bar")))


def test_escaped_separators_stay_inside_one_term() -> None:
    assert parse("foo\\ b*") == Prefix("message", "foo b")
    assert parse("foo\\ bar~0") == Term("message", "foo bar")
    assert parse("a\\\n*") == Prefix("message", "a\n")
