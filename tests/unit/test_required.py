"""The one required-terms analyzer (``core/lucene/required.py``) and its three readings."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.core.errors import QuerySyntaxError
from elastic_recheck.core.lucene.matcher import MemoryIndex
from elastic_recheck.core.lucene.parser import parse
from elastic_recheck.core.lucene.required import (
    AllOf,
    AnyOf,
    NeedPattern,
    NeedPrefix,
    NeedTerm,
    required_pairs,
    requirement,
    weakest_tokens,
)
from elastic_recheck.core.schema import DEFAULT_MAPPING

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"


def test_requirement_keeps_patterns_and_structure() -> None:
    q = parse('message:"timed out" AND (tags:console OR build_name:tempest*) AND NOT a AND message:/err.*/')
    assert requirement(q) == AllOf(
        (
            AllOf((NeedTerm("message", "timed"), NeedTerm("message", "out"))),
            AnyOf((NeedTerm("tags", "console"), NeedPrefix("build_name", "tempest"))),
            NeedPattern("message", "err.*"),
        )
    )
    assert requirement(parse("abcdef~2")) == NeedPattern("message", "abcdef")
    assert requirement(parse("*:*")) is None
    assert requirement(parse("-a", es_mode=False)) == AnyOf(())


def test_required_pairs() -> None:
    # A conjunction needs the union, an alternative only what all branches share.
    q = parse('message:"timed out" AND (message:"timed x" OR message:timed) AND tags:console')
    assert required_pairs(q) == {("message", "timed"), ("message", "out"), ("tags", "console")}
    assert required_pairs(parse("a OR b*")) == frozenset()
    assert required_pairs(parse("-a")) == frozenset()
    assert required_pairs(parse('build_name:"tempest-full"')) == {("build_name", "tempest-full")}
    # A phrase on a field that is not a text field needs nothing when the caller says so.
    phrase = parse('message:"timed out"')
    assert required_pairs(phrase, is_text=lambda f: f != "message") == frozenset()


def test_weakest_tokens() -> None:
    assert weakest_tokens(parse('message:"timed out" OR message:error')) == {"error"}
    # the first of the smallest alternatives wins a tie
    assert weakest_tokens(parse("message:the OR message:oslo")) == {"the"}
    assert weakest_tokens(parse("message:oslo OR message:the")) == {"oslo"}
    assert weakest_tokens(parse("message:foo* AND tags:console")) == {"foo*"}
    assert weakest_tokens(parse("message:/fo+/ AND message:bar")) == {"fo+*", "bar"}
    # an alternative without a message clause: no restriction on the message
    assert weakest_tokens(parse("message:foo OR tags:console")) is None
    assert weakest_tokens(parse("tags:console")) is None
    assert weakest_tokens(parse("tags:console"), "tags") == {"console"}


def _fingerprint_queries() -> list[str]:
    """The recorded queries of real fingerprints (the conformance suite's ``fingerprints``)."""
    data: Any = json.loads(gzip.open(CONFORMANCE / "fingerprints.json.gz").read())
    return [c["q"] for c in data["cases"] if isinstance(c.get("q"), str)]


DOCS = [
    {"message": "Timed out waiting for a reply to message ID abc", "tags": ["screen-n-cpu.txt", "screen"]},
    {"message": "ERROR oslo.messaging timed out", "tags": "console", "build_name": "tempest-full"},
    {"message": "the build node is assumed to be invalid", "build_name": "grenade"},
    {"message": "nova.compute.manager Traceback error", "tags": "console"},
]


@pytest.mark.parametrize("es_mode", [True, False])
def test_every_match_holds_the_required_pairs(es_mode: bool) -> None:
    """A necessary condition: over the recorded fingerprint queries, every document a query matches holds
    every pair of :func:`required_pairs` (with the mapping's text fields, as the store asks)."""
    index = MemoryIndex(DOCS)
    checked = 0
    for text in _fingerprint_queries():
        try:
            q = parse(text, es_mode=es_mode)
        except QuerySyntaxError:
            continue
        pairs = required_pairs(q, DEFAULT_MAPPING.is_text)
        for doc in index.search(q):
            for name, term in pairs:
                assert doc in index.docs_with(name, term), (text, doc, name, term)
            checked += 1
    assert checked > 0
