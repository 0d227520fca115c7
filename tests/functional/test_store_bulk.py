"""The embedded store's write path: batches stored by one SQL statement, written by a background thread.

What is stored is read back table by table (documents, keyword indexes and,
through ``fts5vocab``, every token the full-text index holds with its column
and position) and compared with what the documents say, computed here
independently of the store's code.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite import lines
from elastic_recheck.adapters.sqlite.layout import (
    GAP,
    PER_LINE_FIELDS,
    PRESENT,
    keyword_values,
)
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.documents import flatten_fields
from elastic_recheck.core.errors import StoreError
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.analysis import tokenize
from elastic_recheck.core.search_types import Filters, QuerySpec
from tests.functional.test_store import make_docs

TEXT = ("message", "tags")


def _expected_tokens(value: Any) -> list[str] | None:
    """The FTS column of one text field: PRESENT, then each value's tokens, values separated by GAP."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    texts = []
    for item in items:
        if item is None or isinstance(item, (dict, list)):
            continue
        texts.append(item if isinstance(item, str) else keyword_values(item)[0])
    if not texts:
        return None
    out = [PRESENT]
    for i, text in enumerate(texts):
        if i:
            out.append(GAP)
        out.extend(tokenize(text))
    return out


def _stored(path: Path) -> list[dict[str, Any]]:
    """Every stored document with its keyword rows and indexed tokens, in rowid order."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE VIRTUAL TABLE temp.inst USING fts5vocab(main, fts, instance)")
    columns = {f"c{i}": name for i, name in enumerate(sorted(TEXT))}
    tokens: dict[int, dict[str, dict[int, str]]] = {}
    for term, doc, col, offset in conn.execute("SELECT term, doc, col, offset FROM temp.inst"):
        tokens.setdefault(doc, {}).setdefault(columns[col], {})[offset] = term
    kw: dict[int, set[tuple[str, str]]] = {}
    for field, value, doc in conn.execute("SELECT field, value, doc FROM kw"):
        kw.setdefault(doc, set()).add((field, value))
    # a shape's keyword rows: its file fields' (kw_shape) and its build's (kw_build, once per build)
    shape_kw: dict[int, set[tuple[str, str]]] = {}
    for field, value, shape in conn.execute(
        "SELECT field, value, shape FROM kw_shape UNION ALL "
        "SELECT k.field, k.value, s.id FROM kw_build k JOIN shapes s ON s.build = k.build"
    ):
        assert (field, value) not in shape_kw.get(shape, set())  # never in both
        shape_kw.setdefault(shape, set()).add((field, value))
    out = []
    codec = lines.load(conn)  # compressed lines: the body and the tokens in one zstd frame
    for rid, doc_id, ts, shape, body, stored, build_json, own_json in conn.execute(
        "SELECT d.id, d.doc_id, d.ts, d.shape, d.body, d.tokens, b.json, s.json FROM docs d "
        "JOIN shapes s ON s.id = d.shape JOIN builds b ON b.id = s.build ORDER BY d.id"
    ):
        shape_json = json.dumps({**json.loads(build_json), **json.loads(own_json)})
        if isinstance(body, bytes):
            assert codec is not None and stored is None
            body, stored = codec.split(codec.decompressor().decompress(body))
        cols = tokens.get(rid, {})
        out.append(
            {
                "doc": {**json.loads(shape_json), **json.loads(body)},
                "doc_id": doc_id,
                "ts": ts,
                "kw": kw.get(rid, set()),
                "shape_kw": shape_kw.get(shape, set()),
                "tokens": {name: [cols[name][i] for i in sorted(cols[name])] for name in sorted(cols)},
                "stored": json.loads(stored) if stored is not None else None,
            }
        )
    conn.close()
    return out


def _expected(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last = {str(d["id"]): i for i, d in enumerate(docs) if "id" in d}
    out = []
    for i, doc in enumerate(docs):
        if "id" in doc and last[str(doc["id"])] != i:
            continue
        ts = doc.get("@timestamp")
        ms = None
        if isinstance(ts, str):
            dt = datetime.fromisoformat(ts)
            ms = int((dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000 + 0.5)
        per_line = {k: v for k, v in doc.items() if k in PER_LINE_FIELDS and k not in ("id", "@timestamp")}
        shape = {k: v for k, v in doc.items() if k not in PER_LINE_FIELDS and k not in TEXT}
        out.append(
            {
                "doc": doc,
                "doc_id": str(doc["id"]) if "id" in doc else None,
                "ts": ms,
                "kw": {(name, v) for name, raw in flatten_fields(per_line) for v in keyword_values(raw)},
                "shape_kw": {(name, v) for name, raw in flatten_fields(shape) for v in keyword_values(raw)},
                "tokens": {name: toks for name in TEXT if (toks := _expected_tokens(doc.get(name))) is not None},
                "stored": _expected_stored(doc),
            }
        )
    return out


def _expected_stored(doc: dict[str, Any]) -> list[str | None] | None:
    """``docs.tokens``: the FTS text of each single-valued text field (store column order), else null."""
    out = []
    for name in sorted(TEXT):
        value = doc.get(name)
        if isinstance(value, str):  # (the FTS text of a string: PRESENT and a space, even with no token)
            out.append(PRESENT + " " + " ".join(tokenize(value)))
            continue
        toks = _expected_tokens(value)
        out.append(" ".join(toks) if toks is not None and GAP not in toks else None)
    return out if any(out) else None


def _docs() -> list[dict[str, Any]]:
    docs = make_docs(23, 700)
    rng = random.Random(4)
    for doc in docs[::9]:
        doc["module"] = rng.choice(["nova.compute", ["a", "b"], 7, {"x": "y"}])
    for doc in docs[5::50]:
        doc["id"] = "d3"  # the same id again: the last one is kept
    return docs


@pytest.mark.parametrize("batch_size", [1, 29, 5000])
def test_stored_rows_are_what_the_documents_say(tmp_path: Path, batch_size: int) -> None:
    """One batch (no thread), many small batches (written by the background thread), one document at a time."""
    docs = _docs()
    with EmbeddedStore(tmp_path / "s.db") as store:
        stats = store.add_documents(docs, batch_size=batch_size)
        assert stats.docs == len(docs)
        assert store.integrity_check() == []
    assert _stored(tmp_path / "s.db") == _expected(docs)


def test_nul_characters_are_stored_exactly(tmp_path: Path) -> None:
    """SQLite's JSON functions cut strings at NUL: such batches take the row-by-row path, same result."""
    docs = [
        {"id": "a\x00b", "message": "nul in the id", "build_uuid": "u"},
        {"loglevel": "ERR\x00OR", "message": "nul in a keyword", "build_uuid": "u"},
        {"message": "nul \x00 in the text", "build_uuid": "u\x00v"},
        {"message": "plain", "build_uuid": "u"},
    ]
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents(docs, batch_size=2)
        assert store.search(QuerySpec(), query=qa.Term("loglevel", "ERR\x00OR")).total == 1
        assert store.search(QuerySpec(), query=qa.Term("_id", "a\x00b")).total == 1
        assert store.search(QuerySpec(), query=qa.Term("build_uuid", "u\x00v")).total == 1
    assert _stored(tmp_path / "s.db") == _expected(docs)


def test_latest_timestamp_never_goes_back(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents([{"message": "new", "@timestamp": "2026-11-20T00:00:00.000Z"}])
        store.add_documents([{"message": "old", "@timestamp": "2026-11-10T00:00:00.000Z"}])
        assert store.latest_timestamp() == datetime(2026, 11, 20, tzinfo=UTC)


def test_a_failing_background_batch_is_raised_and_earlier_batches_stay(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents([{"message": "small"}])
        small = [{"message": f"line {i}"} for i in range(40)]
        store.add_documents(small, batch_size=10)
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        big = [{"message": f"kept {i}"} for i in range(5)] + [
            {"message": " ".join(f"word{i}x{j}" for j in range(300))} for i in range(200)
        ]
        with pytest.raises(StoreError, match="full"):
            store.add_documents(big, batch_size=5)
        store._conn.execute(f"PRAGMA max_page_count = {2**31}")
        stored = store.count_documents()
        assert 41 <= stored < 41 + len(big)
        assert store.integrity_check() == []
        # the store goes on working after the failure
        store.add_documents([{"message": "after"}] * 12, batch_size=5)
        assert store.count_documents() == stored + 12
        assert store.search(QuerySpec(), query=qa.Term("message", "after")).total == 12


def test_concurrent_pipelined_ingests_and_percolation(tmp_path: Path) -> None:
    """Threads ingesting many batches each (each with its background writer) while others classify builds."""
    store = EmbeddedStore(tmp_path / "s.db")
    errors: list[BaseException] = []
    per_thread = [
        [{"message": f"thread{k} line {i} deadlock", "build_uuid": f"b{k}", "tags": ["screen"], "loglevel": "ERROR"} for i in range(300)]
        for k in range(3)
    ]

    def writer(k: int) -> None:
        try:
            store.add_documents(per_thread[k], batch_size=17)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def classifier() -> None:
        try:
            for _ in range(15):
                for k in range(3):
                    specs = [QuerySpec(filters=Filters(build_uuid=f"b{k}"), label=str(i)) for i in range(2)]
                    queries = [qa.Term("message", "deadlock"), qa.Term("message", f"thread{k}")]
                    fast = store.msearch(specs, size=1, queries=queries)
                    assert fast[0].total == fast[1].total  # every line of build k has both words
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)] + [threading.Thread(target=classifier) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_documents() == 900
    for k in range(3):
        specs = [QuerySpec(filters=Filters(build_uuid=f"b{k}"), label="x"), QuerySpec(filters=Filters(build_uuid=f"b{k}"), label="y")]
        got = store.msearch(specs, size=1, queries=[qa.Term("message", "deadlock"), qa.Term("loglevel", "ERROR")])
        assert [r.total for r in got] == [300, 300]
    assert store.integrity_check() == []
    store.close()
    expected = sorted(_expected([d for docs in per_thread for d in docs]), key=lambda r: r["doc"]["message"])
    assert sorted(_stored(tmp_path / "s.db"), key=lambda r: r["doc"]["message"]) == expected
