"""Document ids in the embedded store: derived ids stored as line numbers, every answer unchanged.

A derived id (:func:`elastic_recheck.core.documents.document_id` of a line's
``build_uuid``, ``filename`` and ``n``) is stored as the INTEGER ``n`` and read
back from the line's shape; any other id is TEXT (see
``adapters/sqlite/layout.py``). What a store answers is checked against the
ids the documents were given: search hits, ``_id`` queries, replacement when a
build is loaded again, and stores of schema 3 (40-character TEXT ids under a
UNIQUE index) migrating.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite import layout
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.documents import StableIds, document_id, stable_ids
from elastic_recheck.core.errors import StoreError
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.search_types import Filters, QuerySpec
from tests.functional.test_store import make_docs, random_query
from tests.functional.test_store_builds import downgrade_to_schema_4

N = 1200  # above lines.MIN_SAMPLES: lines are compressed, as in a real store


def _plain(seed: int, n: int) -> list[dict[str, Any]]:
    """Documents without an id of their own, in file order per build (what ``ingest`` and ``collect`` read)."""
    docs = make_docs(seed, n)
    for doc in docs:
        del doc["id"]
    return docs


def _derived(docs: list[dict[str, Any]]) -> list[str]:
    """The ids :class:`StableIds` gives ``docs``, in order."""
    ids = StableIds()
    return [ids.of(d) or "" for d in docs]


def _typeof(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT typeof(doc_id), COUNT(*) FROM docs GROUP BY 1").fetchall())
    finally:
        conn.close()


def _everything(store: EmbeddedStore) -> list[tuple[str, dict[str, Any]]]:
    return [(h.id, h.source) for h in store.search(QuerySpec(), size=100_000, query=qa.MatchAll()).hits]


def _ids(store: EmbeddedStore, q: qa.Query) -> list[str]:
    return sorted(h.id for h in store.search(QuerySpec(), size=100_000, query=q).hits)


@pytest.fixture(scope="module")
def plain() -> list[dict[str, Any]]:
    return _plain(31, N)


def test_derived_ids_are_line_numbers_and_read_back(tmp_path: Path, plain: list[dict[str, Any]]) -> None:
    kept_out, in_body = tmp_path / "a.db", tmp_path / "b.db"
    with EmbeddedStore(kept_out) as store:  # ``ingest``: the id kept out of the stored body
        store.add_documents(plain, batch_size=300, id_of=StableIds().of)
        got = _everything(store)
    with EmbeddedStore(in_body) as store:  # ``collect``: the id is a field of the document
        store.add_documents(stable_ids(plain), batch_size=300)
        got_in_body = _everything(store)
    want = _derived(plain)
    assert [i for i, _ in got] == want  # (make_docs: timestamps in document order)
    assert [s for _, s in got] == plain
    assert [i for i, _ in got_in_body] == want
    assert [s for _, s in got_in_body] == [{**d, "id": i} for d, i in zip(plain, want, strict=True)]
    assert _typeof(kept_out) == _typeof(in_body) == {"integer": N}
    conn = sqlite3.connect(kept_out)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_docs%'").fetchall() == []
    conn.close()


def test_loading_again_replaces_even_with_another_build_status(tmp_path: Path, plain: list[dict[str, Any]]) -> None:
    path = tmp_path / "s.db"
    with EmbeddedStore(path) as store:
        store.add_documents(plain, batch_size=250, id_of=StableIds().of)
        again = [dict(d) for d in plain]
        for d in again:
            if d["build_uuid"] == "03" * 16:
                d["build_status"] = "TIMED_OUT"  # another shape for the same lines
                d["message"] = "replaced " + str(d.get("message", ""))
        store.add_documents(again, batch_size=170, id_of=StableIds().of)  # batches cut elsewhere
        assert store.count_documents() == N
        assert _everything(store) == list(zip(_derived(plain), again, strict=True))
        store.add_documents(stable_ids(again), batch_size=400)  # once more, the ids in the bodies
        assert store.count_documents() == N
        assert [i for i, _ in _everything(store)] == _derived(plain)


def test_a_file_loaded_again_replaces_its_lines_only(tmp_path: Path, plain: list[dict[str, Any]]) -> None:
    """Line ``n`` of one file is not line ``n`` of another file or build."""
    path = tmp_path / "s.db"
    uuid = "05" * 16
    with EmbeddedStore(path) as store:
        store.add_documents(plain, id_of=StableIds().of)
        one_file = [d for d in plain if d["build_uuid"] == uuid and d["filename"] == "job-output.txt"]
        assert len(one_file) > 10
        store.add_documents([{**d, "message": "again"} for d in one_file], id_of=StableIds().of)
        assert store.count_documents() == N
        assert store.search(QuerySpec(), size=0, query=qa.Term("message", "again")).total == len(one_file)
        # a shorter file loaded again: its first lines replaced, the rest kept
        store.add_documents([{**d, "message": "shorter"} for d in one_file[:3]], id_of=StableIds().of)
        assert store.count_documents() == N
        assert store.search(QuerySpec(), size=0, query=qa.Term("message", "shorter")).total == 3


def test_explicit_ids_stay_text_numeric_looking_ones_too(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    docs = make_docs(7, 60)
    docs[0]["id"] = "5"
    docs[1]["id"] = 6  # an integer id: the text "6"
    docs[2]["id"] = "1"
    docs[3]["id"] = document_id(docs[3]["build_uuid"], docs[3]["filename"], 9)  # 40 hex, not line 1 of its file
    docs[4]["id"] = "A" * 40
    with EmbeddedStore(path) as store:
        store.add_documents(docs)
        assert _typeof(path) == {"text": 60}
        want = ["5", "6", "1", docs[3]["id"], "A" * 40] + [f"d{i}" for i in range(5, 60)]
        assert [i for i, _ in _everything(store)] == want
        for value in want:
            assert _ids(store, qa.Term("_id", value)) == [value]
        assert _ids(store, qa.Term("_id", "r1")) == []
        again = [{**d, "message": "replaced"} for d in docs]
        store.add_documents(again[:5])
        assert store.count_documents() == 60
        assert _ids(store, qa.Term("message", "replaced")) == sorted(want[:5])


def test_an_explicit_id_that_is_a_derived_one_replaces_it(tmp_path: Path, plain: list[dict[str, Any]]) -> None:
    """Documents exported with their ids (an Elasticsearch dump, in any order) loaded again."""
    path = tmp_path / "s.db"
    ids = _derived(plain)
    with EmbeddedStore(path) as store:
        store.add_documents(plain, id_of=StableIds().of)
        dump = [{**d, "id": i, "message": "dumped"} for d, i in zip(plain, ids, strict=True)]
        random.Random(3).shuffle(dump)
        store.add_documents(dump, batch_size=200)
        assert store.count_documents() == N
        assert _ids(store, qa.Term("message", "dumped")) == sorted(ids)
        assert "text" in _typeof(path)  # out of order: not recognized as line numbers, still the same ids
        store.add_documents(plain, id_of=StableIds().of)  # and back: the TEXT ones are replaced too
        assert store.count_documents() == N
        assert _ids(store, qa.Term("message", "dumped")) == []
        assert [i for i, _ in _everything(store)] == ids


def test_documents_without_a_build_keep_their_content_ids(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    docs = _plain(9, 40)
    for d in docs:
        del d["build_uuid"]
    docs[7] = dict(docs[6])  # a copy: its own id (the digest and a count)
    with EmbeddedStore(path) as store:
        store.add_documents(docs, id_of=StableIds().of)
        store.add_documents(docs, id_of=StableIds().of)
        assert store.count_documents() == 40
        assert _typeof(path) == {"text": 40}
        assert [i for i, _ in _everything(store)] == _derived(docs)


def test_documents_without_ids_are_rowids(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with EmbeddedStore(path) as store:
        store.add_documents(_plain(2, 5))
        assert [i for i, _ in _everything(store)] == ["r1", "r2", "r3", "r4", "r5"]
        assert _ids(store, qa.Term("_id", "r3")) == ["r3"]
        assert _ids(store, qa.Term("_id", "r03")) == []
        assert _typeof(path) == {"null": 5}


def test_id_queries_answer_as_over_the_ids(tmp_path: Path, plain: list[dict[str, Any]]) -> None:
    path = tmp_path / "s.db"
    docs = plain[:300]
    ids = _derived(docs)
    mixed = [{**d, "id": f"x{i}"} if i % 7 == 0 else d for i, d in enumerate(docs)]
    numbered = StableIds()
    want = [numbered.of(d) or d["id"] for d in mixed]  # (an own id takes no line number)
    with EmbeddedStore(path) as store:
        store.add_documents(mixed, id_of=StableIds().of)
        assert [i for i, _ in _everything(store)] == want
        for value in [want[1], want[7], want[299], ids[7], "x14", document_id("05" * 16, "nope", 1)]:
            assert _ids(store, qa.Term("_id", value)) == [v for v in want if v == value]
        for prefix in ["a", "0", "x1", want[5][:6]]:
            assert _ids(store, qa.Prefix("_id", prefix)) == sorted(v for v in want if v.startswith(prefix))
        assert _ids(store, qa.Wildcard("_id", "?f*")) == sorted(v for v in want if v[1:2] == "f")
        q = qa.Range("_id", "3", "9", include_lower=True, include_upper=False)
        assert _ids(store, q) == sorted(v for v in want if "3" <= v < "9")
        both = qa.Bool(must=(qa.Term("_id", want[2]), qa.Term("build_uuid", docs[2]["build_uuid"])))
        assert _ids(store, both) == [want[2]]


# ---------------------------------------------------------------------------
# stores of schema 3 migrate


def _downgrade_to_schema_3(path: Path) -> None:
    """Make ``path`` what today's release wrote before migration 4: every id TEXT, under a UNIQUE index."""
    downgrade_to_schema_4(path)  # (the shapes as schema 4 kept them)
    conn = sqlite3.connect(path)
    shapes = {sid: layout.loads_json(text) for sid, text in conn.execute("SELECT id, json FROM shapes")}
    rows = [
        (rid, layout.doc_id_text(rid, doc_id, shapes[shape]) if doc_id is not None else None, ts, shape, body, tokens)
        for rid, doc_id, ts, shape, body, tokens in conn.execute("SELECT id, doc_id, ts, shape, body, tokens FROM docs")
    ]
    conn.execute("DROP TABLE docs")
    conn.execute(
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, doc_id TEXT UNIQUE, ts INTEGER, shape INTEGER NOT NULL, "
        "body TEXT NOT NULL, tokens TEXT)"
    )
    conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.execute("CREATE INDEX docs_shape ON docs (shape, ts)")
    conn.execute("DELETE FROM schema_migrations WHERE version >= 4")
    conn.execute("DELETE FROM schema_ledger WHERE component = 'store' AND version >= 4")
    conn.commit()
    conn.close()


def _answers(path: Path, queries: list[qa.Query]) -> list[Any]:
    with EmbeddedStore(path) as store:
        out: list[Any] = [_everything(store)]
        for q in queries:
            got = store.search(QuerySpec(), size=100_000, query=q)
            out.append((got.total, [h.id for h in got.hits]))
        return out


@pytest.fixture()
def schema_3(tmp_path: Path, plain: list[dict[str, Any]]) -> tuple[Path, list[str]]:
    """A store of schema 3: derived ids (in file order and out of it), explicit and numeric-looking ones, none."""
    path = tmp_path / "s.db"
    docs = [dict(d) for d in plain]
    ids = _derived(docs)
    with EmbeddedStore(path) as store:
        store.add_documents(docs[:900], id_of=StableIds().of)
        extra = [{**d, "id": i} for d, i in zip(docs[900:1000], ids[900:1000], strict=True)]
        extra[10], extra[50] = extra[50], extra[10]  # two lines out of order: still found
        store.add_documents(extra)
        store.add_documents([{**d, "id": str(k)} for k, d in enumerate(docs[1000:1100])])
        store.add_documents(docs[1100:])  # no id
    _downgrade_to_schema_3(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM docs WHERE typeof(doc_id) = 'integer'").fetchone()[0] == 0
    conn.close()
    return path, ids


def test_a_schema_3_store_migrates_and_answers_the_same(schema_3: tuple[Path, list[str]]) -> None:
    path, ids = schema_3
    rng = random.Random(12)
    queries = [random_query(rng) for _ in range(40)]
    queries += [qa.Term("_id", v) for v in (ids[3], ids[910], ids[960], ids[1050], "17", "r1101", "r1200")]
    queries += [qa.Prefix("_id", "1"), qa.Prefix("_id", ids[4][:3]), qa.Wildcard("_id", "r11*")]
    copy = path.with_name("copy.db")
    copy.write_bytes(path.read_bytes())
    conn = sqlite3.connect(copy)  # today's reader, on the schema 3 file as it is
    before = conn.execute("SELECT id, doc_id FROM docs ORDER BY id").fetchall()
    conn.close()
    after = _answers(path, queries)  # opening migrates
    types = _typeof(path)
    assert types == {"integer": 900 + 100, "text": 100, "null": 100}
    assert after[0] == _answers(path, queries)[0]
    with EmbeddedStore(path) as store:
        got = [(h.id, h.source) for h in store.search(QuerySpec(), size=100_000, query=qa.MatchAll()).hits]
        assert store.integrity_check() == []
    rowid_of = {rid: doc_id if doc_id is not None else f"r{rid}" for rid, doc_id in before}
    assert sorted(i for i, _ in got) == sorted(rowid_of.values())
    for q, (total, hit_ids) in zip(queries, after[1:], strict=True):
        assert len(hit_ids) == total
        if isinstance(q, qa.Term) and q.field == "_id":
            assert hit_ids == [v for v in rowid_of.values() if v == q.value], q
    conn = sqlite3.connect(path)
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "sqlite_autoindex_docs_1" not in names and {"docs_shape", "docs_text_id"} <= names
    conn.close()


def test_migration_answers_equal_those_before_it(schema_3: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same queries on the schema 3 file (read as today's code does: the ids as stored) and after."""
    path, _ids_ = schema_3
    rng = random.Random(13)
    queries = [random_query(rng) for _ in range(60)]
    conn = sqlite3.connect(path)
    stored = dict(conn.execute("SELECT id, doc_id FROM docs").fetchall())
    conn.close()
    # before: the migration left out (version 3), ids read from the TEXT column as today
    # (migration 4 a no-op; the later ones, the shapes' own, run: today's reader needs them)
    monkeypatch.setitem(layout.MIGRATIONS, 4, lambda conn, fields: None)
    old = path.with_name("old.db")
    old.write_bytes(path.read_bytes())
    before = _answers(old, queries)
    monkeypatch.undo()
    assert before[0][0][0] == stored[1]
    assert _answers(path, queries) == before


def test_an_interrupted_migration_leaves_schema_3_then_completes(
    schema_3: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, ids = schema_3
    conn = sqlite3.connect(path)
    sql_before = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    docs_before = conn.execute("SELECT * FROM docs ORDER BY id").fetchall()
    conn.close()

    def fail(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("injected failure after the copy")

    monkeypatch.setattr(layout, "_docs_indexes", fail)
    with pytest.raises((StoreError, sqlite3.Error), match="injected failure"):
        EmbeddedStore(path)
    monkeypatch.undo()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall() == sql_before
    assert conn.execute("SELECT * FROM docs ORDER BY id").fetchall() == docs_before
    assert max(v for (v,) in conn.execute("SELECT version FROM schema_migrations")) == 3
    conn.close()
    with EmbeddedStore(path) as store:
        assert store.count_documents() == N
        assert _ids(store, qa.Term("_id", ids[5])) == [ids[5]]
    assert _typeof(path)["integer"] == 1000


def test_classification_gives_the_ids_search_gives(tmp_path: Path, plain: list[dict[str, Any]]) -> None:
    """Percolation (``msearch`` against one build) names its hits as ``search`` does, for every way of storing an id."""
    explicit = [{**d, "id": f"own-{i}"} for i, d in enumerate(plain[:300])]
    content = [{k: v for k, v in d.items() if k != "build_uuid"} for d in plain[300:400]]
    for name, load in {
        "kept out": lambda s: s.add_documents(plain, batch_size=300, id_of=StableIds().of),
        "in body": lambda s: s.add_documents(stable_ids(plain), batch_size=300),
        "explicit": lambda s: s.add_documents(explicit, batch_size=300),
        "no id": lambda s: s.add_documents(_plain(32, 300), batch_size=300),
        "content": lambda s: s.add_documents(stable_ids(content), batch_size=300),
    }.items():
        with EmbeddedStore(tmp_path / f"{name}.db") as store:
            load(store)
            builds = sorted({h.source.get("build_uuid") for h in store.search(QuerySpec(), size=100_000, query=qa.MatchAll()).hits}, key=str)
            checked = 0
            for uuid in builds:
                spec = QuerySpec(filters=Filters(build_uuid=uuid)) if uuid is not None else QuerySpec()
                want = store.search(spec, size=100_000, query=qa.MatchAll())
                got = store.msearch([spec], size=100_000, queries=[qa.MatchAll()])[0]
                assert got.total == want.total, (name, uuid)
                assert sorted(h.id for h in got.hits) == sorted(h.id for h in want.hits), (name, uuid)
                checked += got.total
            assert checked, name
