"""Tests of the fingerprint linter (``elastic_recheck.contrib.lint``) and ``check-queries``."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elastic_recheck.cli.main import cli
from elastic_recheck.contrib import lint, lint_analyzed, lint_boolean, lint_findings, lint_syntax
from elastic_recheck.core.errors import QuerySyntaxError
from elastic_recheck.core.fingerprints import align_offsets
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene import lexer
from elastic_recheck.core.lucene import parser as lucene

REPO = Path(__file__).resolve().parents[2]


def yaml_query(query: str, extra: str = "") -> str:
    """A fingerprint file with the query as a folded block scalar."""
    body = "\n".join("  " + line for line in query.splitlines())
    return f"query: >-\n{body}\n{extra}"


def findings(query: str, name: str = "q.yaml", extra: str = "") -> list[lint_findings.Finding]:
    return lint.lint_text(yaml_query(query, extra), name).findings


def codes(query: str, extra: str = "") -> set[str]:
    return {f.code for f in findings(query, extra=extra)}


# ---------------------------------------------------------------------------
# The raw scanner
# ---------------------------------------------------------------------------


def kinds(query: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in lint_syntax.pieces(query)]


def test_scan_operators_and_symbolic_forms() -> None:
    assert kinds("a && b || !c") == [("TERM", "a"), ("AND", "&&"), ("TERM", "b"), ("OR", "||"), ("NOT", "!"), ("TERM", "c")]
    # Longest match: an operator word inside a longer term is a term.
    assert kinds("ANDROID ORACLE NOTE") == [("TERM", "ANDROID"), ("TERM", "ORACLE"), ("TERM", "NOTE")]


def test_scan_bare_operator_is_a_term() -> None:
    # "+", "-" or "!" followed by whitespace is Lucene's BAREOPER, parsed as a term.
    assert kinds("a - b") == [("TERM", "a"), ("TERM", "-"), ("TERM", "b")]
    assert kinds("a -b") == [("TERM", "a"), ("MINUS", "-"), ("TERM", "b")]


def test_scan_escapes_phrases_ranges_regex() -> None:
    assert kinds(r"foo\:bar") == [("TERM", r"foo\:bar")]
    assert kinds(r'message:"say \"hi\" now"') == [("TERM", "message"), ("COLON", ":"), ("QUOTED", r'"say \"hi\" now"')]
    assert kinds("f:[a TO b] g:{1 TO 5}") == [
        ("TERM", "f"), ("COLON", ":"), ("RANGE", "[a TO b]"),
        ("TERM", "g"), ("COLON", ":"), ("RANGE", "{1 TO 5}"),
    ]  # fmt: skip
    assert kinds("message:/ab[c]+/ x~2 y^3") == [
        ("TERM", "message"), ("COLON", ":"), ("REGEX", "/ab[c]+/"),
        ("TERM", "x"), ("FUZZY", "~2"), ("TERM", "y"), ("CARAT", "^"), ("NUMBER", "3"),
    ]  # fmt: skip


def test_scan_positions_cover_the_text() -> None:
    q = 'message:"a b" AND (tags:c OR -d*)'
    for t in lint_syntax.pieces(q):
        assert q[t.start : t.end] == t.text


def test_pieces_are_the_parsers_tokens() -> None:
    # The linter reads the parser's own lexer: a slop token takes the term
    # characters after "~" (JavaCC's FUZZY_SLOP), so "foo~1e1" is one clause
    # (Elasticsearch accepts it: 1e1 edits, capped at 2), not "foo~1" OR "e1".
    assert [(t.kind, t.image) for t in lexer.tokens("foo~1e1")] == [("TERM", "foo"), ("FUZZY_SLOP", "~1e1"), ("EOF", "")]
    assert kinds("foo~1e1") == [("TERM", "foo"), ("FUZZY", "~1e1")]
    assert [(c.text, c.fuzzy) for c in lint_syntax.parse_raw("foo~1e1").clauses] == [("foo", True)]
    assert "implicit-or" not in {f.code for f in lint.lint_search("foo~1e1")}
    # A lexical error ends the pieces (the parser rejects such queries before any rule runs).
    assert kinds('a "b') == [("TERM", "a")]


def test_parse_raw_levels_conjunctions_and_fields() -> None:
    q = 'message:(a b) AND NOT tags:"x" OR +c'
    root = lint_syntax.parse_raw(q)
    assert [(c.conj, c.mod, c.field, c.kind) for c in root.clauses] == [
        (None, None, "message", "GROUP"),
        ("AND", "NOT", "tags", "QUOTED"),
        ("OR", "+", "message", "TERM"),
    ]
    group = root.clauses[0].group
    assert group is not None
    # Terms inside field:(...) inherit the field.
    assert [(c.conj, c.field, c.text) for c in group.clauses] == [(None, "message", "a"), ("IMPLICIT", "message", "b")]
    assert q[root.clauses[1].start : root.clauses[1].end] == 'NOT tags:"x"'


@pytest.mark.parametrize(
    "query",
    ["", "(", ")", "AND", "a AND", "NOT", '"', "a:(b", "[a TO", "\\", "a^", "::", "((a)", "a))b", "+-!x", "OR OR a"],
)
def test_parse_raw_never_raises_on_garbage(query: str) -> None:
    lint_syntax.parse_raw(query)
    lint.lint_raw(query)


# ---------------------------------------------------------------------------
# Boolean meaning
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # QueryParserBase.addClause with default operator OR.
        ("a AND b OR c", ["must", "must", "should"]),
        ("a OR b AND c", ["should", "must", "must"]),
        ("NOT a AND b", ["must_not", "must"]),
        ("a AND NOT b OR c", ["must", "must_not", "should"]),
        ("a -b +c d", ["should", "must_not", "must", "should"]),
        ("a OR b OR c", ["should", "should", "should"]),
    ],
)
def test_lucene_occurs(query: str, expected: list[str]) -> None:
    assert lint_boolean.lucene_occurs(lint_syntax.parse_raw(query)) == expected


def _eval_ast(q: qa.Query, words: frozenset[str]) -> bool:
    """A tiny independent evaluator of the parser's AST over one document's message tokens."""
    if isinstance(q, qa.MatchAll):
        return True
    if isinstance(q, qa.MatchNone):
        return False
    if isinstance(q, qa.Term):
        return q.value in words
    if isinstance(q, qa.Bool):
        if any(_eval_ast(c, words) for c in q.must_not):
            return False
        if q.must:
            return all(_eval_ast(c, words) for c in q.must)
        return any(_eval_ast(c, words) for c in q.should)
    raise AssertionError(f"unexpected node {q!r}")


def _truth_tables(query: str, python_expr: str, atoms: Sequence[str]) -> tuple[list[bool], list[bool]]:
    ast = lucene.parse(query)
    lucene_tt, python_tt = [], []
    for bits in itertools.product([False, True], repeat=len(atoms)):
        present = frozenset(a for a, b in zip(atoms, bits, strict=True) if b)
        lucene_tt.append(_eval_ast(ast, present))
        python_tt.append(bool(eval(python_expr, {}, {a: (a in present) for a in atoms})))
    return lucene_tt, python_tt


@st.composite
def explicit_boolean_query(draw: st.DrawFn) -> tuple[str, str, list[str], bool]:
    """A flat query of AND/OR/NOT/implicit-OR over a few atoms, and its Python reading.

    Python's ``not`` > ``and`` > ``or`` precedence is exactly the usual
    boolean reading, and a missing operator reads as ``or``. ``NOT`` is only
    put where an explicit operator touches it (a ``NOT`` joined to both
    neighbours without operators is a Lucene-style modifier, read like Lucene).
    """
    n = draw(st.integers(min_value=2, max_value=5))
    atoms = ["w" + str(draw(st.integers(0, 3))) for _ in range(n)]
    conjs = [draw(st.sampled_from(["AND", "OR", "", "&&", "||"])) for _ in range(n - 1)]
    q_parts: list[str] = []
    py_parts: list[str] = []
    for k, atom in enumerate(atoms):
        if k:
            q_parts.append(conjs[k - 1])
            py_parts.append({"AND": "and", "&&": "and", "OR": "or", "||": "or", "": "or"}[conjs[k - 1]])
        touched = (k > 0 and conjs[k - 1] != "") or (k < n - 1 and conjs[k] != "")
        if touched and draw(st.booleans()):
            q_parts.append("NOT")
            py_parts.append("not")
        q_parts.append(atom)
        py_parts.append(atom)
    return " ".join(p for p in q_parts if p), " ".join(py_parts), sorted(set(atoms)), "" in conjs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(explicit_boolean_query())
def test_meaning_differs_matches_the_parser_and_python(case: tuple[str, str, list[str], bool]) -> None:
    """``mixed-and-or``'s core agrees with the real parser's AST versus Python's boolean precedence."""
    query, python_expr, atoms, implicit = case
    lucene_tt, python_tt = _truth_tables(query, python_expr, atoms)
    differs = lucene_tt != python_tt
    assert lint_boolean.level_meaning_differs(lint_syntax.parse_raw(query)) == differs, query
    got = {f.code for f in lint.lint_raw(query)} & {"mixed-and-or", "implicit-or"}
    if differs:
        assert got, query
    elif not implicit:
        assert not got, query


@pytest.mark.parametrize(
    "query",
    ["a AND b OR c", "a OR b AND c", "a OR NOT b", "NOT a OR b", "a AND NOT b OR c", "a AND b c", "+a b", "a +b"],
)
def test_meaning_differs_examples(query: str) -> None:
    assert lint_boolean.level_meaning_differs(lint_syntax.parse_raw(query)) is True


@pytest.mark.parametrize(
    "query",
    ["a AND b", "a OR b OR c", "(a AND b) OR c", "a AND (b OR c)", "a -b c", "-a b", "a NOT b", "+a +b -c", "NOT a AND b", "a b"],
)
def test_meaning_same_examples(query: str) -> None:
    assert lint_boolean.level_meaning_differs(lint_syntax.parse_raw(query)) is False


def test_meaning_many_atoms_falls_back_to_syntax() -> None:
    many = " AND ".join(f"w{i}" for i in range(lint_boolean.MAX_TRUTH_TABLE_ATOMS + 1))
    assert lint_boolean.level_meaning_differs(lint_syntax.parse_raw(many)) is None
    assert "mixed-and-or" not in {f.code for f in lint.lint_raw(many)}
    assert "mixed-and-or" in {f.code for f in lint.lint_raw(many + " OR x")}


def test_var_masks_are_all_assignments() -> None:
    masks, full = lint_boolean._var_masks(3)
    rows = {tuple((m >> j) & 1 for m in masks) for j in range(8)}
    assert rows == set(itertools.product([0, 1], repeat=3))
    assert full == 0xFF


# ---------------------------------------------------------------------------
# Every rule: a positive and a negative case, through the file-level linter
# ---------------------------------------------------------------------------

RULE_CASES: list[tuple[str, str, str]] = [
    # (code, query that triggers it, similar query that does not)
    ("implicit-or", 'message:"Timed out" tags:"screen-n-cpu.txt"', 'message:"Timed out" AND tags:"screen-n-cpu.txt"'),
    ("implicit-or", 'message:(libvirtError "cannot acquire")', 'message:(libvirtError AND "cannot acquire")'),
    # Alternatives of one keyword field can only mean OR: not flagged.
    ("implicit-or", 'message:"x failed" build_name:(tempest-full tempest-slow)', 'message:"x failed" AND build_name:(tempest-full tempest-slow)'),
    (
        "mixed-and-or",
        'message:"volume failed" AND tags:"screen-c-vol.txt" OR tags:"screen-c-bak.txt"',
        'message:"volume failed" AND (tags:"screen-c-vol.txt" OR tags:"screen-c-bak.txt")',
    ),
    ("mixed-and-or", 'message:"x happened" OR NOT message:"y happened"', 'message:"x happened" AND NOT message:"y happened"'),
    ("single-quotes", "message:'Connection refused' AND tags:console", 'message:"Connection refused" AND tags:console'),
    ("leading-wildcard", "message:*Timeout AND tags:console", "message:Timeout* AND tags:console"),
    ("wildcard-in-phrase", 'message:"Connect* refused" AND tags:console', 'message:"**** Connect refused ****" AND tags:console'),
    ("wildcard-split", "message:nova-comp* AND tags:console", "message:nova* AND tags:console"),
    # "." and ":" join letters inside a token, so these patterns can match one token.
    ("wildcard-split", "message:foo@bar* AND tags:console", "message:nova.comp* AND message:oslo\\:mess?ging"),
    ("empty-clause", 'message:"..." AND message:"disk full"', 'message:"disk full..." AND tags:console'),
    ("empty-clause", 'message:"@@" AND message:"disk full"', 'message:"@@ disk @@" AND tags:console'),
    ("split-term", "message:nova-compute AND tags:console", 'message:"nova-compute" AND tags:console'),
    ("split-term", "message:nova-compute AND tags:console", "build_name:nova-compute AND message:libvirtError"),
    ("lowercase-operator", 'message:"a b" and message:"c d"', 'message:"a b" AND message:"and so on"'),
    ("lowercase-operator", 'message:"a b" or tags:"console"', 'message:"a b" OR build_name:or'),
    ("no-message", 'tags:"console" AND build_name:"tempest-full"', 'message:"Kernel panic" AND tags:"console"'),
    ("no-message", 'NOT message:"ok" AND tags:"console"', 'message:"Kernel panic" AND NOT tags:"syslog.txt"'),
    ("not-only", 'NOT message:"Kernel panic"', 'message:"oops" AND NOT message:"Kernel panic"'),
    ("not-only", '-message:"Kernel panic" -tags:console', 'message:"oops" -message:"Kernel panic"'),
    ("unknown-field", 'mesage:"Kernel panic"', 'message:"Kernel panic"'),
    ("broad-query", 'message:"error" AND tags:"console"', 'message:"error: disk quota exceeded" AND tags:"console"'),
    ("broad-query", 'message:"Traceback" OR message:"libvirtError: internal error"', 'message:"libvirtError" AND message:"Traceback"'),
    ("broad-query", 'message:"libvirtError internal" OR tags:"syslog.txt"', 'message:"libvirtError internal" OR message:"qemu crashed"'),
]


@pytest.mark.parametrize(("code", "positive", "negative"), RULE_CASES)
def test_rule_positive_and_negative(code: str, positive: str, negative: str) -> None:
    assert code in codes(positive), findings(positive)
    assert code not in codes(negative), findings(negative)


def test_clean_query_has_no_findings() -> None:
    assert findings('message:"Cannot destroy instance, operation time out" AND tags:"screen-n-cpu.txt"') == []


def test_mixed_and_or_explains_lucenes_reading() -> None:
    (f,) = [f for f in findings('message:"a b" AND tags:"c" OR tags:"d"') if f.code == "mixed-and-or"]
    assert '+message:"a b" +tags:"c" tags:"d"' in f.message
    assert '(message:"a b" AND tags:"c") OR tags:"d"' in f.message
    assert 'tags:"d" is optional' in f.message


def test_unknown_field_suggests_the_right_one() -> None:
    (f,) = [f for f in findings('mesage:"Kernel panic"') if f.code == "unknown-field"]
    assert "`mesage`" in f.message and "`message`" in f.message
    assert f.level == "warning"


def test_unknown_key_is_a_warning_at_the_key() -> None:
    text = 'query: >-\n  message:"Kernel panic"\nsuppress_graph: true\n'
    (f,) = [f for f in lint.lint_text(text, "k.yaml").findings if f.code == "unknown-key"]
    assert (f.line, f.col, f.level) == (3, 1, "warning")
    assert "suppress-graph" in f.message


def test_broad_query_ignores_specific_alternatives() -> None:
    assert "broad-query" not in codes('message:"libvirtError" OR message:"qemu-kvm crashed"')


def test_implicit_or_explains_the_metadata_alternative_once() -> None:
    got = codes('message:"libvirtError internal" tags:"syslog.txt"')
    assert "implicit-or" in got and "broad-query" not in got


# ---------------------------------------------------------------------------
# Errors and positions in the file
# ---------------------------------------------------------------------------


def at(text: str, f: lint_findings.Finding) -> str:
    return text.splitlines()[f.line - 1][f.col - 1 :]


def test_syntax_error_points_into_a_folded_block() -> None:
    text = 'query: >-\n  message:"Kernel panic" AND\n  tags:(console OR syslog\n'
    with pytest.raises(QuerySyntaxError):
        lucene.parse('message:"Kernel panic" AND tags:(console OR syslog')
    (f,) = lint.lint_text(text, "s.yaml").findings
    assert (f.level, f.code) == ("error", "syntax")
    assert f.line in (2, 3)
    assert 1 <= f.col <= len(text.splitlines()[f.line - 1]) + 1


def test_yaml_error_is_an_error_with_position() -> None:
    (f,) = lint.lint_text("query: [unclosed\n", "y.yaml").findings
    assert (f.level, f.code) == ("error", "yaml")
    assert f.line >= 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "yaml"),
        ("suppress-graph: true\n", "yaml"),
        ("query: [1, 2]\n", "invalid"),
        ('query: message:"x"\nsuppress-graph: "yes"\n', "invalid"),
    ],
)
def test_bad_files_are_errors(text: str, expected: str) -> None:
    errors = [f for f in lint.lint_text(text, "b.yaml").findings if f.level == "error"]
    assert [f.code for f in errors] == [expected]


@pytest.mark.parametrize("style", ["folded", "literal", "plain", "single", "double"])
def test_finding_positions_point_at_the_clause(style: str) -> None:
    q = 'message:"Kernel panic" AND message:nova-compute'
    if style == "folded":
        text = 'query: >-\n  message:"Kernel panic" AND\n  message:nova-compute\n'
    elif style == "literal":
        text = 'query: |\n  message:"Kernel panic" AND\n  message:nova-compute\n'
    elif style == "plain":
        text = f"query: {q}\n"
    elif style == "single":
        text = "query: '" + q.replace("'", "''") + "'\n"
    else:
        text = 'query: "' + q.replace('"', '\\"') + '"\n'
    (f,) = [f for f in lint.lint_text(text, "p.yaml").findings if f.code == "split-term"]
    assert at(text, f).startswith("nova-compute"), (style, f)


def test_align_offsets_quoted_escapes() -> None:
    raw = "'it''s here'"
    value = "it's here"
    pos = align_offsets(raw, value)
    assert pos is not None
    assert "".join(raw[p] for p in pos) == value


# ---------------------------------------------------------------------------
# Duplicates and normalization
# ---------------------------------------------------------------------------


def test_normalize_is_order_insensitive_and_flattens() -> None:
    a = lucene.parse('message:"a b" AND (tags:c AND build_name:d)')
    b = lucene.parse('build_name:d AND tags:c AND message:"a b"')
    c = lucene.parse('build_name:d AND tags:c AND message:"a c"')
    assert lint_analyzed.normalized_key(a) == lint_analyzed.normalized_key(b)
    assert lint_analyzed.normalized_key(a) != lint_analyzed.normalized_key(c)


def test_duplicates_across_files() -> None:
    report = lint.lint_files(
        [
            ("one.yaml", yaml_query('message:"Kernel panic" AND tags:"console"')),
            ("two.yaml", yaml_query('tags:"console" AND message:"Kernel  panic"')),
            ("three.yaml", yaml_query('message:"Kernel panic" AND tags:"syslog.txt"')),
        ]
    )
    dups = [f for f in report.findings if f.code == "duplicate"]
    assert [(f.file, "one.yaml" in f.message) for f in dups] == [("two.yaml", True)]


# ---------------------------------------------------------------------------
# The command: formats, exit codes, summary
# ---------------------------------------------------------------------------


def write(tmp: Path, files: dict[str, str]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    return tmp


CLEAN = yaml_query('message:"Cannot destroy instance, operation time out" AND tags:"screen-n-cpu.txt"')
WARNS = yaml_query('message:"Timed out waiting for libvirt" tags:"screen-n-cpu.txt"')
BROKEN = yaml_query('message:"Timed out waiting for libvirt" AND (tags:"screen-n-cpu.txt"')


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["check-queries", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_exit_codes(tmp_path: Path) -> None:
    clean = write(tmp_path / "clean", {"1.yaml": CLEAN})
    warns = write(tmp_path / "warns", {"1.yaml": CLEAN, "2.yaml": WARNS})
    broken = write(tmp_path / "broken", {"1.yaml": CLEAN, "3.yaml": BROKEN})
    assert run(str(clean))[0] == 0
    assert run("--strict", str(clean))[0] == 0
    assert run(str(warns))[0] == 0
    assert run("--strict", str(warns))[0] == 1
    assert run(str(broken))[0] == 1
    assert run("--ignore", "implicit-or", "--ignore", "broad-query", "--strict", str(warns))[0] == 0


def test_text_format_and_summary(tmp_path: Path) -> None:
    d = write(tmp_path / "q", {"1.yaml": CLEAN, "2.yaml": WARNS, "3.yaml": BROKEN})
    code, out, err = run(str(d))
    lines = out.splitlines()
    assert code == 1
    assert any(line.startswith(f"{d / '2.yaml'}:2:") and line.endswith("[implicit-or]") and ": warning: " in line for line in lines)
    assert any(line.startswith(f"{d / '3.yaml'}:") and ": error: " in line and line.endswith("[syntax]") for line in lines)
    assert "checked 3 fingerprint files: 1 error" in err
    assert str(d) not in err


def test_json_format_contract(tmp_path: Path) -> None:
    d = write(tmp_path / "q", {"1.yaml": CLEAN, "2.yaml": WARNS, "3.yaml": BROKEN, "4.yaml": "query: [\n"})
    code, out, _err = run("--format", "json", str(d))
    assert code == 1
    objs = [json.loads(line) for line in out.splitlines()]
    assert objs, out
    for o in objs:
        assert set(o) == {"file", "line", "col", "level", "code", "message"}
        assert isinstance(o["line"], int) and o["line"] >= 1
        assert isinstance(o["col"], int) and o["col"] >= 1
        assert o["level"] in ("error", "warning")
        assert o["code"] in lint.CODES
        assert isinstance(o["message"], str) and o["message"]
    assert {o["file"] for o in objs} == {str(d / "2.yaml"), str(d / "3.yaml"), str(d / "4.yaml")}


def test_not_utf8_is_an_error(tmp_path: Path) -> None:
    d = tmp_path / "q"
    d.mkdir()
    (d / "bad.yaml").write_bytes(b"query: message:\xff\n")
    code, out, _ = run(str(d))
    assert code == 1 and "not UTF-8" in out


def test_unknown_ignore_code_is_a_usage_error(tmp_path: Path) -> None:
    d = write(tmp_path / "q", {"1.yaml": CLEAN})
    assert run("--ignore", "no-such-code", str(d))[0] == 2


def test_a_failing_rule_becomes_an_internal_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> list[lint_findings.QueryFinding]:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(lint, "lint_raw", broken)
    seen: list[str] = []
    report = lint.lint_files([("a.yaml", CLEAN), ("b.yaml", CLEAN)], on_internal_error=lambda name, exc: seen.append(name))
    assert [(f.file, f.code, f.level) for f in report.findings] == [("a.yaml", "internal", "error"), ("b.yaml", "internal", "error")]
    assert seen == ["a.yaml", "b.yaml"]


def test_list_codes() -> None:
    code, out, _ = run("--list-codes")
    assert code == 0
    assert {line.split()[0] for line in out.splitlines()} == set(lint.CODES)


def test_project_queries_pass() -> None:
    """``tox -e queries`` on the project's own fingerprints: no errors."""
    queries = REPO / "queries"
    if not any(queries.glob("*.yaml")):
        pytest.skip("no queries/*.yaml in this checkout yet")
    code, out, err = run(str(queries))
    assert code == 0, out + err


# ---------------------------------------------------------------------------
# Real-world queries, mutated: findings only, never a crash; fast
# ---------------------------------------------------------------------------


def real_queries(shared_data: Path) -> list[tuple[str, str]]:
    """The 91 production elastic-recheck queries (``shared_data`` skips, or fails in CI, when absent)."""
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted((shared_data / "elastic-recheck-queries").glob("*.yaml"))]


def test_real_queries_lint_without_errors(shared_data: Path) -> None:
    files = real_queries(shared_data)
    assert len(files) >= 90
    report = lint.lint_files(files)
    assert [f for f in report.findings if f.level == "error"] == []
    # A few of the real queries really rely on Lucene pitfalls; the rest are clean.
    noisy = {f.file for f in report.findings}
    assert len(noisy) < len(files) / 2


MUTATIONS = ['"', "(", ")", " AND ", " OR ", " NOT ", "-", "+", "*", "?", "'", "\\", ":", "~", "^", "[", "]", "{", "}", "/", "!", "&&", " ", "\n", "é", "\t", "\u3000"]


def mutate(text: str, rng: random.Random, n: int) -> str:
    chars = list(text)
    for _ in range(n):
        op = rng.randrange(3)
        pos = rng.randrange(len(chars) + 1)
        if op == 0:
            chars.insert(pos, rng.choice(MUTATIONS))
        elif op == 1 and chars:
            del chars[min(pos, len(chars) - 1)]
        else:
            chars[pos:pos] = list(rng.choice(MUTATIONS) + rng.choice(["x", "message:", "tags:", "mesage:", "*a", '"b c"']))
    return "".join(chars)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_real_queries_never_crash(shared_data: Path, data: st.DataObject) -> None:
    files = real_queries(shared_data)
    name, text = data.draw(st.sampled_from(files))
    seed = data.draw(st.integers(0, 2**32 - 1))
    n = data.draw(st.integers(1, 6))
    mutated = mutate(text, random.Random(seed), n)
    report = lint.lint_files([(name, mutated)])
    assert not [f for f in report.findings if f.code == "internal"], report.findings
    for f in report.findings:
        assert f.line >= 1 and f.col >= 1 and f.level in ("error", "warning")


def test_thousand_mutated_real_files_never_crash_the_linter(shared_data: Path, tmp_path: Path) -> None:
    """1,100 files from the real queries and mutations of them: every file is
    reported on, nothing is an internal error. (How fast: ``python -m
    benchmarks lint``; speed is not asserted in tests.)"""
    files = real_queries(shared_data)
    rng = random.Random(1234)
    d = tmp_path / "many"
    d.mkdir()
    count = 0
    while count < 1100:
        for name, text in files:
            variant = text if count < len(files) else mutate(text, rng, rng.randrange(0, 4))
            (d / f"{count:05d}-{name}").write_text(variant, encoding="utf-8")
            count += 1
    code, out, err = run("--format", "json", str(d))
    assert f"checked {count} fingerprint files" in err
    objs = [json.loads(line) for line in out.splitlines()]
    assert not [o for o in objs if o["code"] == "internal"]
    assert {o["level"] for o in objs} <= {"error", "warning"}
    assert any(o["level"] == "error" for o in objs)  # the mutations broke some files...
    assert code == 1  # ...so the run fails, as a CI gate should


def test_check_queries_rejects_a_file_not_named_after_a_bug(tmp_path: Path) -> None:
    """``new-1.yaml`` (a suggest draft) would make classify report bug "new-1"."""
    from elastic_recheck.cli.main import cli

    good = 'query: >-\n  message:"Kernel panic" AND tags:"console"\n'
    (tmp_path / "1234567.yaml").write_text(good)
    (tmp_path / "new-1.yaml").write_text(good.replace("Kernel panic", "Kernel oops"))
    (tmp_path / "story-42.yaml").write_text(good.replace("Kernel panic", "disk full") + "bug_url: https://storyboard.example.org/#!/story/42\n")
    res = CliRunner().invoke(cli, ["check-queries", "--format", "json", str(tmp_path)])
    assert res.exit_code == 1
    found = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert [(f["file"].rsplit("/", 1)[-1], f["code"], f["level"], f["line"]) for f in found] == [
        ("new-1.yaml", "file-name", "error", 1)
    ]
    assert "`new-1` is not a bug id" in found[0]["message"] and "1234567.yaml" in found[0]["message"]
    (tmp_path / "new-1.yaml").rename(tmp_path / "7654321.yaml")
    assert CliRunner().invoke(cli, ["check-queries", "--strict", str(tmp_path)]).exit_code == 0
