"""The StandardAnalyzer reproduction (elastic_recheck.core.lucene.analysis)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elastic_recheck.core.lucene.analysis import (
    MAX_TOKEN_LENGTH,
    analyze_values,
    java_lower,
    tokenize,
    tokenize_with_positions,
)

FIXTURES = Path(__file__).resolve().parents[1] / "conformance"


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("nova.compute.manager", ["nova.compute.manager"]),
        ("put_object", ["put_object"]),
        ("screen-n-cpu.txt", ["screen", "n", "cpu.txt"]),
        ("10.0.0.1", ["10.0.0.1"]),
        ("192.168.1.10:8080", ["192.168.1.10", "8080"]),  # ':' joins letters only
        ("can't", ["can't"]),
        ("a:b", ["a:b"]),
        ("foo-bar foo/bar foo@bar", ["foo", "bar", "foo", "bar", "foo", "bar"]),
        ("x@y.com", ["x", "y.com"]),
        ("12abc abc12 v1.2", ["12abc", "abc12", "v1.2"]),
        ("1.a a1.b", ["1", "a", "a1", "b"]),  # '.' joins digit-digit or letter-letter only
        ("1,000.5 1,a", ["1,000.5", "1", "a"]),
        ("__init__ ___", ["__init__"]),  # underscores alone are no token
        ("a_.b", ["a_", "b"]),
        ("Failed: [Errno 5] Input/output error", ["failed", "errno", "5", "input", "output", "error"]),
        ("ERROR oslo_messaging.rpc.server", ["error", "oslo_messaging.rpc.server"]),
        ("日本語", ["日", "本", "語"]),  # one token per ideograph
        ("ひらがな", ["ひ", "ら", "が", "な"]),
        ("カタカナ", ["カタカナ"]),
        ("한국어", ["한국어"]),
        ("ไทยภาษา", ["ไทยภาษา"]),
        ("😀 👍🏽 🇺🇸", ["😀", "👍🏽", "🇺🇸"]),
        ("İSTANBUL ΣΑΣ", ["istanbul", "σασ"]),  # Java's per-character lowercase
        ("a\u200bb", ["a", "b"]),
        ("ab\u00adcd", ["ab\u00adcd"]),
        ("", []),
        ("--- ... ///", []),
    ],
)
def test_tokenize_examples(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_long_tokens_are_cut_at_255_units() -> None:
    assert tokenize("a" * 300) == ["a" * 255, "a" * 45]
    # The scanner sees only 255 units from a token start: "." at the edge is not followed by a letter.
    assert tokenize("a" * 254 + ".bc") == ["a" * 254, "bc"]
    # No token fits inside the window at the first "_": Lucene slides on by one character.
    assert tokenize("_" * 300 + "a") == ["_" * 254 + "a"]
    assert all(len(t) <= MAX_TOKEN_LENGTH for t in tokenize(("ab" * 400) + " " + "é" * 600))


def test_recorded_lucene_tokens() -> None:
    """Strings tokenized by the real Lucene StandardAnalyzer (tests/conformance/generate.py)."""
    with gzip.open(FIXTURES / "tokens.json.gz", "rt", encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    assert len(cases) > 4000
    bad = [(text, want, tokenize(text)) for text, want in cases if tokenize(text) != want]
    assert not bad, f"{len(bad)} differ, e.g. {bad[:5]!r}"


def test_java_lower_is_per_code_point() -> None:
    assert java_lower("ΣΑΣ") == "σασ"  # Python's lower() would give a final sigma
    assert java_lower("İ") == "i"  # Python's lower() gives "i̇" (two code points)
    assert java_lower("ABC") == "abc"


def test_analyze_values_position_gap() -> None:
    assert analyze_values("a b") == [("a", 0), ("b", 1)]
    assert analyze_values(["a b", "c"]) == [("a", 0), ("b", 1), ("c", 102)]
    # An empty value still adds the gap.
    assert analyze_values(["a", "", "c"]) == [("a", 0), ("c", 201)]
    assert analyze_values(["a", "c"], position_increment_gap=0) == [("a", 0), ("c", 1)]
    assert tokenize_with_positions("x y", start=5) == [("x", 5), ("y", 6)]


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abcXYZ019_.:,;'\"-/@ \t\n()[]{}=*?!&|\\")),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_tokens_are_lowercase_without_whitespace(text: str) -> None:
    for tok in tokenize(text):
        assert tok
        assert java_lower(tok) == tok
        assert not any(ch in tok for ch in " \t\n\r")


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_tokenize_is_deterministic_and_idempotent(text: str) -> None:
    tokens = tokenize(text)
    assert tokenize(text) == tokens
    # Re-tokenizing the tokens joined by spaces gives them back.
    assert tokenize(" ".join(tokens)) == tokens


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=4))
def test_analyze_values_positions_increase(values: list[str]) -> None:
    pairs = analyze_values(values)
    positions = [p for _, p in pairs]
    assert positions == sorted(set(positions))
    assert [t for t, _ in pairs] == [t for v in values for t in tokenize(v)]
