"""The one dotted-name flattener (core.documents.flatten_fields) of the store and the matcher."""

from __future__ import annotations

from typing import Any

import pytest

from elastic_recheck.core.documents import flatten_fields
from elastic_recheck.core.lucene.matcher import flatten_document


@pytest.mark.parametrize(
    ("doc", "pairs"),
    [
        ({"a": 1, "b": "x"}, [("a", 1), ("b", "x")]),
        ({"a": {"b": 1, "c": {"d": None}}}, [("a.b", 1), ("a.c.d", None)]),
        ({"a": [1, 2]}, [("a", [1, 2])]),
        ({"a": [1, {"b": 2}, 3]}, [("a", [1, 3]), ("a.b", 2)]),
        ({"a": [{"b": 1}, {"b": 2}]}, [("a.b", 1), ("a.b", 2)]),
        ({"a": [[{"b": 1}], "x"]}, [("a", ["x"]), ("a.b", 1)]),  # an object in a nested list
        ({"a": [[1, {"b": 2}]]}, [("a", [[1]]), ("a.b", 2)]),
        ({"a": [[1, [2]]]}, [("a", [[1, [2]]])]),  # lists without objects stay as given
        ({"a.b": 1, "a": {"b": 2}}, [("a.b", 1), ("a.b", 2)]),
        ({}, []),
    ],
)
def test_flatten_fields(doc: dict[str, Any], pairs: list[tuple[str, Any]]) -> None:
    assert list(flatten_fields(doc)) == pairs


def test_the_matcher_indexes_what_the_flattener_gives() -> None:
    doc = {"a": [[{"b": 1}], "x", None, True], "c": {"d": [1.5, None]}}
    assert flatten_document(doc) == {"a": ["x", "true"], "a.b": ["1"], "c.d": ["1.5"]}
