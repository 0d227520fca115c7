"""Compressed lines (``adapters/sqlite/lines.py``): what a store keeps, and that nothing it answers changes.

A store trains its zstd dictionary on its first thousand lines and keeps
every later line compressed; stores of schema 2 (plain lines) migrate. Every
answer is checked against the brute-force reference evaluator of
``test_store.py`` and against the same documents stored plain.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite import lines
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.search_types import Filters, QuerySpec
from tests.functional.test_store import expected_ids, ids, make_docs, random_query, reference
from tests.functional.test_store_builds import downgrade_to_schema_4
from tests.functional.test_store_bulk import _expected, _stored

N = 1500  # above lines.MIN_SAMPLES: the store trains its dictionary


def _types(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT typeof(body), COUNT(*) FROM docs GROUP BY 1").fetchall())
    finally:
        conn.close()


def _downgrade_to_schema_2(path: Path) -> None:
    """Make ``path`` what a store of schema 2 (before compressed lines) holds: plain bodies and tokens, no codec."""
    downgrade_to_schema_4(path)
    conn = sqlite3.connect(path)
    codec = lines.load(conn)
    assert codec is not None
    unpack = codec.decompressor().decompress
    rows = conn.execute("SELECT id, body FROM docs WHERE typeof(body) = 'blob'").fetchall()
    for rid, blob in rows:
        body, tokens = codec.split(unpack(blob))
        conn.execute("UPDATE docs SET body = ?, tokens = ? WHERE id = ?", (body, tokens, rid))
    conn.execute("DROP TABLE codec")
    conn.execute("DELETE FROM schema_migrations WHERE version >= 3")
    conn.execute("DROP TABLE schema_ledger")  # adopted again from schema_migrations, at version 2
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return make_docs(19, N)


@pytest.fixture(scope="module")
def compressed(tmp_path_factory: pytest.TempPathFactory, docs: list[dict[str, Any]]) -> Path:
    path = tmp_path_factory.mktemp("lines") / "store.db"
    with EmbeddedStore(path) as store:
        store.add_documents(docs, batch_size=400)
    return path


def test_lines_are_compressed_and_read_back_exactly(compressed: Path, docs: list[dict[str, Any]]) -> None:
    assert _types(compressed) == {"blob": N}  # the first batches too, once the dictionary was trained
    assert _stored(compressed) == _expected(docs)


def test_random_queries_match_the_reference(compressed: Path, docs: list[dict[str, Any]]) -> None:
    rng = random.Random(5)
    nonempty = 0
    with EmbeddedStore(compressed) as store:
        for _ in range(200):
            q = random_query(rng)
            want = expected_ids(docs, lambda d, q=q: reference(q, d))
            got = store.search(QuerySpec(), size=2000, query=q)
            assert ids(got) == want, q
            wanted = set(want)
            assert [h.source for h in got.hits] == [d for d in docs if d["id"] in wanted]
            nonempty += bool(want)
    assert nonempty > 40


def test_percolation_equals_search(compressed: Path) -> None:
    """``msearch`` of one build (lines loaded and decompressed in bulk) agrees with ``search`` (lines read by SQL)."""
    rng = random.Random(6)
    queries = [random_query(rng) for _ in range(150)]
    uuid = "05" * 16
    with EmbeddedStore(compressed) as store:
        specs = [QuerySpec(filters=Filters(build_uuid=uuid)) for _ in queries]
        percolated = store.msearch(specs, size=5, queries=queries)
        for q, got in zip(queries, percolated, strict=True):
            want = store.search(QuerySpec(filters=Filters(build_uuid=uuid)), size=5, query=q)
            assert got.total == want.total, q
            assert [h.source for h in got.hits] == [h.source for h in want.hits], q


def test_a_reader_opened_before_the_dictionary_reads_compressed_lines(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    path = tmp_path / "s.db"
    reader = EmbeddedStore(path)
    with EmbeddedStore(path) as writer:
        writer.add_documents(docs, batch_size=5000)
    assert _types(path) == {"blob": N}
    q = qa.Term("loglevel", "ERROR")
    assert ids(reader.search(QuerySpec(), size=N, query=q)) == expected_ids(docs, lambda d: d.get("loglevel") == "ERROR")
    assert len(reader.get_build_docs("05" * 16)) == sum(d["build_uuid"] == "05" * 16 for d in docs)
    reader.close()


def test_small_batches_train_once_enough_lines_are_stored(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    path = tmp_path / "s.db"
    with EmbeddedStore(path) as store:
        for i in range(0, 900, 300):
            store.add_documents(docs[i : i + 300])
        assert _types(path) == {"text": 900}  # too few lines to train on yet
        store.add_documents(docs[900:1200])
        assert _types(path) == {"blob": 1200}
        store.add_documents(docs[1200:])
    assert _stored(path) == _expected(docs)


def test_replacing_and_deleting_compressed_lines(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    """A document stored again under its id replaces the compressed one (its old tokens leave the FTS index)."""
    path = tmp_path / "s.db"
    again = [dict(d, message="replaced text here") for d in docs[:50]]
    with EmbeddedStore(path) as store:
        store.add_documents(docs)
        store.add_documents(again)
        assert store.count_documents() == N
        assert store.search(QuerySpec(), size=0, query=qa.Term("message", "replaced")).total == 50
        uuid = "03" * 16
        store.delete_build(uuid)
        assert store.get_build_docs(uuid) == []
    expected = _expected(docs[50:] + again)
    assert _stored(path) == [e for e in expected if e["doc"]["build_uuid"] != uuid]


def test_a_schema_2_store_migrates_and_answers_the_same(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    path = tmp_path / "s.db"
    with EmbeddedStore(path) as store:
        store.add_documents(docs)
    _downgrade_to_schema_2(path)
    assert _types(path) == {"text": N}
    rng = random.Random(8)
    queries = [random_query(rng) for _ in range(80)]
    with EmbeddedStore(path) as store:  # migration 3: trains the dictionary, compresses every line (then 4)
        conn = sqlite3.connect(path)
        assert [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")] == [1, 2, 3, 4, 5]
        conn.close()
        assert _types(path) == {"blob": N}
        for q in queries:
            assert ids(store.search(QuerySpec(), size=N, query=q)) == expected_ids(docs, lambda d, q=q: reference(q, d)), q
    assert _stored(path) == _expected(docs)


def test_too_few_lines_to_train_on_stay_plain(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    docs = make_docs(2, 50)
    with EmbeddedStore(path) as store:
        store.add_documents(docs)
        store.add_documents(docs)  # (replaced: still 50)
    assert _types(path) == {"text": 50}
    assert lines.train([json.dumps(d).encode() for d in docs]) is None


def test_a_batch_packs_into_frames_each_line_reads_back_from(compressed: Path) -> None:
    """``pack_batch``: frames end to end and fixed-width starts, the layout the batch trigger cuts lines from."""
    conn = sqlite3.connect(compressed)
    try:
        codec = lines.load(conn)
    finally:
        conn.close()
    assert codec is not None
    rng = random.Random(7)
    payloads = [lines.payload(json.dumps({"message": "x" * rng.randrange(0, 400), "n": i}), None if i % 3 else '["a"]')
                for i in range(300)]
    blob, offs = codec.pack_batch(payloads)
    width = lines.OFFSET_WIDTH
    assert len(offs) == width * (len(payloads) + 1)
    starts = [int(offs[i : i + width]) for i in range(0, len(offs), width)]
    assert starts[0] == 1 and starts[-1] == len(blob) + 1
    decompress = codec.decompressor().decompress
    assert [decompress(blob[a - 1 : b - 1]) for a, b in zip(starts, starts[1:], strict=False)] == payloads
    assert codec.pack_batch([]) == (b"", b"1".rjust(width, b"0"))
