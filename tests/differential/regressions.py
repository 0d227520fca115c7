"""The regression corpus: every disagreement the differential tests have found, with Lucene's answer.

``regressions.json`` holds corpora (``name``, ``docs``, ``cases``); each case
is a query with its outcome in ES mode and in plain Lucene mode (sorted hit
ids, or ``"error"``), as the oracle gave it when the case was recorded
(``python -m tests.differential record``). A corpus may carry a ``source``
saying where its answers come from when it is not the oracle (Elasticsearch
behaviours the oracle does not model, such as ``_exists_:_id``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REGRESSIONS = Path(__file__).with_name("regressions.json")


def load() -> dict[str, Any]:
    if not REGRESSIONS.exists():
        return {"corpora": []}
    data: dict[str, Any] = json.loads(REGRESSIONS.read_text(encoding="utf-8"))
    return data


def save(data: dict[str, Any]) -> None:
    """Write ``regressions.json``: one line per document and per case (readable diffs)."""

    def one(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"))

    corpora = []
    for corpus in data["corpora"]:
        head = ",\n".join(f"  {one(k)}: {one(v)}" for k, v in corpus.items() if k not in ("docs", "cases"))
        docs = ",\n".join(f"   {one(d)}" for d in corpus["docs"])
        cases = ",\n".join(f"   {one(c)}" for c in corpus["cases"])
        corpora.append(f' {{\n{head},\n  "docs": [\n{docs}\n  ],\n  "cases": [\n{cases}\n  ]\n }}')
    text = '{"corpora": [\n' + ",\n".join(corpora) + "\n]}\n"
    assert json.loads(text) == data
    REGRESSIONS.write_text(text, encoding="utf-8")
