"""Voting values: one reading of every spelling, one written form (core/schema.py)."""

from __future__ import annotations

from typing import Any

import pytest

from elastic_recheck.core.schema import VOTING_SPELLINGS, parse_voting, voting_spellings, voting_value
from elastic_recheck.core.search_types import Filters


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, True), ("1", True), ("true", True), ("True", True), (" YES ", True), ("on", True), (True, True), (["1"], True),
        (0, False), ("0", False), ("false", False), ("No", False), ("OFF", False), (False, False), ([0, 1], False),
        (None, None), ("", None), ([], None), ("maybe", None), (2, None),
    ],
)
def test_parse_voting_reads_every_spelling(raw: Any, expected: bool | None) -> None:
    assert parse_voting(raw) is expected


def test_strict_parsing_refuses_what_it_cannot_read() -> None:
    assert parse_voting(2, strict=True) is True  # a number's truth, as a Zuul record's flag
    assert parse_voting(0.0, strict=True) is False
    assert parse_voting(None, strict=True) is None
    with pytest.raises(ValueError, match="not a boolean: 'maybe'"):
        parse_voting("maybe", strict=True)


def test_written_form_and_filter_terms_read_back() -> None:
    for flag in (True, False):
        assert parse_voting(voting_value(flag)) is flag
        assert Filters(voting=flag).as_terms()["voting"] == (str(voting_value(flag)),)
        spellings = voting_spellings(flag)
        assert {parse_voting(s) for s in spellings} == {flag}
        assert set(VOTING_SPELLINGS[flag]) <= set(spellings) and "TRUE" in voting_spellings(True)
        assert len(spellings) == len(set(spellings))
