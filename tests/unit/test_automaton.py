"""Regexps and wildcards run as automata: no backtracking, Lucene's refusals.

The patterns are the ones from the hostile-input review (issue 20): with
Python's backtracking ``re`` each of them took minutes on one term. Here
they are answered by a deterministic automaton, one step per code point;
the timeout only guards against a regression hanging the run.
"""

from __future__ import annotations

import pytest

from elastic_recheck.core.errors import QuerySyntaxError
from elastic_recheck.core.lucene.automaton import MAX_DETERMINIZED_STATES, TooComplexError, compile_wildcard_automaton
from elastic_recheck.core.lucene.matcher import wildcard_predicate
from elastic_recheck.core.lucene.parser import parse
from elastic_recheck.core.lucene.regexp import RegexpTooComplexError, check_regexp, compile_regexp

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("pattern", "hit", "miss"),
    [
        ("([a-f0-9]+)+z", "0a1b2cz", "0a1b2c" * 20_000 + "!"),
        (".*.*.*.*.*.*.*.*.*.*.*.*x", "y" * 50_000 + "x", "y" * 100_000),
        ("(a|aa)*b", "a" * 1000 + "b", "a" * 100_000),
        ("(x+x+)+y", "xxxxy", "x" * 100_000),
        ("~(a+)&[a-z]+", "abc", "a" * 100_000),
        ("<1-9999>.*", "0042zz", "x" + "1" * 100_000),
    ],
)
def test_catastrophic_regexps_answer_on_long_terms(pattern: str, hit: str, miss: str) -> None:
    matches = compile_regexp(pattern)
    assert matches(hit)
    assert not matches(miss)


def test_catastrophic_wildcard_answers_on_long_terms() -> None:
    matches = wildcard_predicate("*a*a*a*a*a*b")
    assert matches("xa" * 5 + "b")
    assert not matches("a" * 120)
    assert not matches("a" * 200_000)
    assert matches("a" * 200_000 + "b")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("message:/(a|b)*a(a|b){14}/", "Determinizing (a|b)*a(a|b){14} would result in more than 10000 states."),
        (
            "message:*a??????????????",
            "Determinizing automaton with 31 states and 31 transitions would result in more than 10000 states.",
        ),
        ('message:/("abc"){3334}/', 'Determinizing ("abc"){3334} would result in more than 10002 states.'),
        ("message:/a{1001}b*/", "input automaton is too large: 1001"),
    ],
)
def test_what_lucene_refuses_is_a_parse_error(query: str, message: str) -> None:
    """Same refusal, same text as Lucene 8 (see the ``limits`` conformance suite for 1,276 more)."""
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    assert info.value.message == message
    assert str(info.value).startswith("1:9: ")


def test_just_under_the_limit_is_accepted_and_exact() -> None:
    # [ab]*a[ab]{12}: the minimal DFA has 2**13 = 8192 states, under the 10,000 limit
    matches = check_regexp("[ab]*a[ab]{12}").matches
    assert matches("b" * 50 + "a" + "b" * 12)
    assert not matches("b" * 50 + "a" + "b" * 13)
    with pytest.raises(RegexpTooComplexError):
        check_regexp("[ab]*a[ab]{13}")
    assert MAX_DETERMINIZED_STATES == 10_000


def test_refusal_messages_are_bounded() -> None:
    huge = "(a|b)*a(a|b){14}" + "c" * 300
    with pytest.raises(TooComplexError) as info:
        check_regexp(huge)
    assert len(str(info.value)) < 400
    with pytest.raises(TooComplexError):
        compile_wildcard_automaton("*a" + "?" * 20)


def test_huge_repeat_counts_are_refused_without_building() -> None:
    for pattern in ("a{2147483647}", "(ab){0,2000000000}", "a{99999999999999999999}", "a" * 100_000):
        with pytest.raises(ValueError):
            check_regexp(pattern)


def test_memory_of_a_pattern_at_the_limit_is_bounded() -> None:
    """Building costs a few MB; what the caches keep is the compact DFA (about 0.4 MB for 8,192 states)."""
    import tracemalloc

    tracemalloc.start()
    try:
        dfa = check_regexp("[ab]*a[ab]{12}")
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dfa.num_states == 8192
    assert retained < 2_000_000
    assert peak < 100_000_000
    for pattern in ("(a|b)*a(a|b){14}", "[ab]*a[ab]{13}"):
        tracemalloc.start()
        try:
            with pytest.raises(RegexpTooComplexError):
                check_regexp(pattern)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 100_000_000
