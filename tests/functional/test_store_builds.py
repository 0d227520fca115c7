"""Build metadata once per build (schema 5): what a store keeps, and that nothing it answers changes.

A shape keeps its file fields (``filename``, ``log_url``) and a reference to
a ``builds`` row holding the rest, found by content (a 64-bit hash, then the
JSON compared), so a field that varies from file to file only makes more
build rows. Stores of schema 4 (one JSON per shape, every keyword row per
shape) migrate. Answers are checked against the brute-force reference
evaluator of ``test_store.py``, against the same store before the migration,
and table by table (``test_store_bulk._stored``).
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite.layout import FILE_FIELDS
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.search_types import Filters, QuerySpec
from tests.functional.test_store import expected_ids, ids, make_docs, random_query, reference
from tests.functional.test_store_bulk import _expected, _stored

N = 1500


def downgrade_to_schema_4(path: Path) -> None:
    """Make ``path`` what a store of schema 4 holds: each shape's whole JSON (UNIQUE) with its build's
    uuid and status, every keyword row per shape; no ``builds``."""
    conn = sqlite3.connect(path)
    shapes = conn.execute(
        "SELECT s.id, b.json, s.json, b.build_uuid, b.build_status, s.build FROM shapes s JOIN builds b ON b.id = s.build"
    ).fetchall()
    moved = conn.execute("SELECT k.field, k.value, s.id FROM kw_build k JOIN shapes s ON s.build = k.build").fetchall()
    conn.execute("DROP TABLE shapes")
    conn.execute("DROP TABLE builds")
    conn.execute("DROP TABLE kw_build")
    conn.execute("CREATE TABLE shapes (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE, build_uuid TEXT, build_status TEXT)")
    conn.execute("CREATE INDEX shapes_build ON shapes (build_uuid)")
    conn.executemany(
        "INSERT INTO shapes (id, json, build_uuid, build_status) VALUES (?, ?, ?, ?)",
        [
            (sid, json.dumps({**json.loads(b), **json.loads(o)}, sort_keys=True, ensure_ascii=False, separators=(",", ":")), u, st)
            for sid, b, o, u, st, _ in shapes
        ],
    )
    conn.executemany("INSERT INTO kw_shape (field, value, shape) VALUES (?, ?, ?)", moved)
    conn.execute("DELETE FROM schema_migrations WHERE version >= 5")
    conn.execute("DELETE FROM schema_ledger WHERE component = 'store' AND version >= 5")
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return make_docs(23, N)


def _store(path: Path, docs: list[dict[str, Any]]) -> Path:
    with EmbeddedStore(path) as store:
        store.add_documents(docs, batch_size=400)
    return path


def _answers(store: EmbeddedStore, queries: list[qa.Query]) -> dict[str, Any]:
    """Everything the store answers about builds and shape fields, for comparing two stores."""
    spec = QuerySpec()
    uuids = sorted({b.uuid for b in store.builds()})
    out: dict[str, Any] = {
        "queries": [ids(store.search(spec, size=N, query=q)) for q in queries],
        "builds": [(b.uuid, b.fields, b.first_seen, b.last_seen, b.docs) for b in store.builds()],
        "count_builds": [store.count_builds(spec, query=q) for q in queries[:20]],
        "histogram": [store.build_histogram(spec, timedelta(hours=6), query=q) for q in queries[:10]],
        "files": {u: store.indexed_files(u) for u in uuids},
        "build_docs": {u: store.get_build_docs(u) for u in uuids[:3]},
        "by_build": {u: ids(store.search(QuerySpec(filters=Filters(build_uuid=u)), size=N)) for u in uuids},
    }
    for field in ("build_name", "build_status", "filename", "node_provider", "voting", "extra.inner", "loglevel"):
        out[f"terms {field}"] = store.terms(spec, field, size=50)
    for pattern in ("build_*", "node*", "file*"):
        out[f"exists {pattern}"] = ids(store.search(spec, size=N, query=qa.Exists(pattern)))
    out["wildcard"] = ids(store.search(spec, size=N, query=qa.Wildcard("build_name", "*py*")))
    out["prefix"] = ids(store.search(spec, size=N, query=qa.Prefix("filename", "logs/")))
    out["classify"] = [
        [ids(r) for r in store.msearch([QuerySpec(filters=Filters(build_uuid=u))] * 3, size=N, queries=queries[:3])]
        for u in uuids[:4]
    ]
    return out


def test_build_fields_are_stored_once_per_build(tmp_path: Path) -> None:
    """Two builds of four files each, every build field the same across a build's files."""
    docs = [
        {
            "message": f"line {i} of {name}",
            "build_uuid": f"{b}" * 32,
            "build_short_uuid": f"{b}" * 7,
            "build_name": "tempest",
            "build_status": "FAILURE",
            "project": "openstack/nova",
            "filename": name,
            "log_url": f"https://logs/{b}/{name}",
        }
        for b in (1, 2)
        for name in ("a.txt", "b.txt", "c.txt", "d.txt")
        for i in range(3)
    ]
    path = _store(tmp_path / "s.db", docs)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM shapes").fetchone()[0] == 8
        builds = conn.execute("SELECT build_uuid, build_status, json FROM builds ORDER BY id").fetchall()
        assert [(u, s) for u, s, _ in builds] == [("1" * 32, "FAILURE"), ("2" * 32, "FAILURE")]
        assert all(not set(json.loads(j)) & FILE_FIELDS for _, _, j in builds)
        assert {tuple(json.loads(j)) for (j,) in conn.execute("SELECT json FROM shapes")} == {("filename", "log_url")}
        # keyword rows: five build fields once per build, two file fields per shape
        assert conn.execute("SELECT COUNT(*) FROM kw_build").fetchone()[0] == 2 * 5
        assert conn.execute("SELECT COUNT(*) FROM kw_shape").fetchone()[0] == 8 * 2
    finally:
        conn.close()
    assert _stored(path) == _expected(docs)
    with EmbeddedStore(path) as store:
        assert store.indexed_files("1" * 32) == {"a.txt", "b.txt", "c.txt", "d.txt"}
        assert [t.value for t in store.terms(QuerySpec(), "project")] == ["openstack/nova"]
        assert store.count_builds(QuerySpec(queries=('build_name:tempest AND filename:"b.txt"',))) == 2


def test_a_field_varying_per_file_makes_more_build_rows_and_answers_the_same(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    path = _store(tmp_path / "s.db", docs)
    conn = sqlite3.connect(path)
    builds, uuids = conn.execute("SELECT COUNT(*), COUNT(DISTINCT build_uuid) FROM builds").fetchone()
    conn.close()
    assert builds > uuids == 12  # node_provider and extra.inner vary from line to line
    assert _stored(path) == _expected(docs)
    rng = random.Random(3)
    with EmbeddedStore(path) as store:
        for _ in range(150):
            q = random_query(rng)
            assert ids(store.search(QuerySpec(), size=N, query=q)) == expected_ids(docs, lambda d, q=q: reference(q, d)), q


def test_shapes_whose_hashes_collide_stay_apart(tmp_path: Path, docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A shape or build is found by its hash, then its JSON: with every hash equal, nothing mixes."""
    from elastic_recheck.adapters.sqlite import writer

    monkeypatch.setattr(writer, "text_hash", lambda text: 7)
    path = _store(tmp_path / "s.db", docs[:600])
    with EmbeddedStore(path) as store:
        store.add_documents(docs[600:], batch_size=1)  # (and row by row: one shape at a time)
    assert _stored(path) == _expected(docs)


def test_a_schema_4_store_migrates_and_answers_the_same(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    path = _store(tmp_path / "s.db", docs)
    rng = random.Random(11)
    queries = [random_query(rng) for _ in range(60)]
    with EmbeddedStore(path) as store:
        before = _answers(store, queries)
    downgrade_to_schema_4(path)
    conn = sqlite3.connect(path)
    assert {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}.isdisjoint({"builds", "kw_build"})
    conn.close()
    with EmbeddedStore(path) as store:  # migration 5
        conn = sqlite3.connect(path)
        assert [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")] == [1, 2, 3, 4, 5]
        assert conn.execute("SELECT COUNT(*) FROM kw_shape WHERE field NOT IN ('filename', 'log_url')").fetchone()[0] == 0
        conn.close()
        assert store.integrity_check() == []
        assert _pragma(path, "freelist_count") == 0  # (an incremental store: the old tables' pages went back)
        assert _answers(store, queries) == before
        for q in queries:
            assert ids(store.search(QuerySpec(), size=N, query=q)) == expected_ids(docs, lambda d, q=q: reference(q, d)), q
        # and it keeps working: more lines of known and new builds, a build deleted
        more = make_docs(29, 300)
        store.add_documents(more)
        store.delete_build("05" * 16)
    assert _stored(path) == [e for e in _expected(docs + more) if e["doc"]["build_uuid"] != "05" * 16]


def _fts_tables(path: Path) -> set[tuple[str, str, int]]:
    conn = sqlite3.connect(path)
    try:
        return set(conn.execute("SELECT name, sql, rootpage FROM sqlite_master WHERE name LIKE 'fts%'").fetchall())
    finally:
        conn.close()


def _pragma(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


def test_a_new_store_keeps_no_column_sizes_and_gives_freed_pages_back(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    path = _store(tmp_path / "s.db", docs)
    assert "fts_docsize" not in {name for name, _, _ in _fts_tables(path)}  # columnsize=0: nothing reads them
    assert _pragma(path, "auto_vacuum") == 2  # incremental, from the start
    with EmbeddedStore(path) as store:
        store.add_documents(make_docs(31, 2000), batch_size=100)  # many small FTS5 segments
        for b in range(6):
            store.delete_build(f"{b:02d}" * 16)
        assert _pragma(path, "freelist_count") > 0
        store.optimize()
        assert store.integrity_check() == []
    assert _pragma(path, "freelist_count") == 0


def test_a_migrated_store_keeps_its_fts_table(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    """Rebuilding a store's FTS5 index without column sizes would analyze every line again: a store
    with lines keeps its FTS5 table as it is (not recreated)."""
    path = _store(tmp_path / "s.db", docs[:100])
    downgrade_to_schema_4(path)
    tables = _fts_tables(path)
    with EmbeddedStore(path) as store:
        assert store.count_documents() == 100
    assert _fts_tables(path) == tables


def test_build_summary_fields_decoded_once_equal_those_of_the_whole_shape(tmp_path: Path) -> None:
    """``builds()`` keeps each decoded part of a shape: its summaries' fields are what the joined shape gives."""
    builds = [
        {"build_uuid": "u1", "build_name": "job", "build_status": "FAILURE", "project": "p", "voting": 1},
        {"build_uuid": "u2", "build_name": "job", "log_url": "https://l/a/b/x.txt"},  # file fields in the build's part
        {"build_uuid": "u3", "filename": "y.txt", "build_change": 5},
        {},
    ]
    owns = [
        {"filename": "controller/logs/x.txt", "log_url": "https://l/1/2/controller/logs/x.txt"},
        {"log_url": "https://l/1/2/z.txt"},  # no file name of its own
        {"filename": "f.txt"},
        {},
    ]
    with EmbeddedStore(tmp_path / "s.db") as store:
        for _ in range(2):  # the second round answers from what the first kept
            for b, o in itertools.product(builds, owns):
                parts = (json.dumps(b), json.dumps(o))
                got = store._summary_fields(parts)
                assert got == store._summary_fields_of(*parts), (b, o)
                assert list(got) == list(store._summary_fields_of(*parts)), (b, o)
                got["build_name"] = "changed"  # a fresh dict each time
        assert store._summary_fields(None) == {}
