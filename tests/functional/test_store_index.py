"""The embedded store's per-build in-memory index (percolation) built from stored parts.

:func:`elastic_recheck.core.lucene.build_index.build_index` indexes a build's shapes
once and its per-line fields line by line; the result must be the very index
:class:`elastic_recheck.core.lucene.matcher.MemoryIndex` builds from the assembled
documents (same postings, values, field presence), and percolation must find
what the SQL path finds.
"""

from __future__ import annotations

import gc
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite.layout import build_rows
from elastic_recheck.adapters.sqlite.percolate import collector_paused, query_needs
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.analysis import tokenize
from elastic_recheck.core.lucene.build_index import build_index
from elastic_recheck.core.lucene.matcher import MemoryIndex
from elastic_recheck.core.schema import Mapping
from elastic_recheck.core.search_types import Filters, QuerySpec, TimeWindow
from tests.functional.test_store import T0, make_docs, random_query
from tests.functional.test_store_builds import downgrade_to_schema_4

UUIDS = [f"{b:02d}" * 16 for b in range(12)]


def _structures(index: MemoryIndex) -> tuple[Any, ...]:
    return (index.postings, index.values, index.present, index.size, index.all_docs)


def _assert_same_index(store: EmbeddedStore, uuid: str) -> MemoryIndex:
    entry = store.percolator.build_entry(("build_uuid", uuid))
    docs = store.get_build_docs(uuid)
    assert [entry.doc(i) for i in range(len(entry))] == docs
    reference = MemoryIndex(docs, mapping=store.mapping)
    assert _structures(entry.index) == _structures(reference)
    return reference


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    docs = make_docs(11, 600)
    rng = random.Random(5)
    for doc in docs[::7]:  # lines with odd per-line fields
        doc["module"] = rng.choice(["nova.compute", ["a", "b"], 7, 1.5, True, None, {"inner": "x"}, [], ["x", 3]])
    for doc in docs[::11]:
        doc["tags"] = rng.choice([["screen", None, "n-cpu"], [["nested", "list"], "tail"], 42, ["x" * 40000], [""]])
    for doc in docs[::13]:
        doc["loglevel"] = "E" * 33000  # longer than Lucene keeps: not indexed
    s = EmbeddedStore(tmp_path_factory.mktemp("index") / "store.db")
    s.add_documents(docs, batch_size=101)
    yield s
    s.close()


def test_index_from_parts_equals_memory_index(store: EmbeddedStore) -> None:
    for uuid in UUIDS:
        _assert_same_index(store, uuid)


def test_percolation_equals_memory_index_and_sql(store: EmbeddedStore) -> None:
    rng = random.Random(17)
    queries = [random_query(rng) for _ in range(150)]
    for uuid in UUIDS[:6]:
        reference = _assert_same_index(store, uuid)
        specs = [QuerySpec(filters=Filters(build_uuid=uuid, voting=None), label=str(i)) for i in range(len(queries))]
        results = store.msearch(specs, size=1000, queries=queries)
        docs = store.get_build_docs(uuid)
        for q, spec, res in zip(queries, specs, results, strict=True):
            want = reference.search(q)
            assert res.total == len(want), q
            assert [h.source for h in res.hits] == [docs[i] for i in want], q
            slow = store.search(spec, size=1000, query=q)
            assert [h.id for h in res.hits] == [h.id for h in slow.hits], q


def test_percolation_applies_filters_and_window(store: EmbeddedStore) -> None:
    uuid = UUIDS[1]
    docs = store.get_build_docs(uuid)
    middle = sorted(d["@timestamp"] for d in docs)[len(docs) // 2]
    start = T0.fromisoformat(middle.replace("Z", "+00:00"))
    queries = [qa.MatchAll(), qa.Term("message", "timed"), qa.Term("loglevel", "ERROR")]
    for filters in (Filters(build_uuid=uuid), Filters(build_uuid=uuid, voting=True), Filters(build_uuid=uuid, build_name="nope")):
        for window in (TimeWindow(), TimeWindow(start, None), TimeWindow(None, start)):
            specs = [QuerySpec(filters=filters, window=window, label=str(i)) for i in range(len(queries))]
            fast = store.msearch(specs, size=5, queries=queries)
            for spec, q, res in zip(specs, queries, fast, strict=True):
                slow = store.search(spec, size=5, query=q)
                assert (res.total, [h.id for h in res.hits]) == (slow.total, [h.id for h in slow.hits]), (filters, window, q)


def test_colliding_field_names_fall_back_to_the_assembled_documents(tmp_path: Path) -> None:
    # "module" is a per-line field, "module.x" (a literal dotted key) a shape field: both are field module.x.
    docs = [
        {"build_uuid": "u", "message": "one", "module": {"x": "a"}, "module.x": "b", "@timestamp": "2026-11-10T00:00:00Z"},
        {"build_uuid": "u", "message": "two", "module": {"x": "c"}, "module.x": "b", "@timestamp": "2026-11-10T00:00:01Z"},
    ]
    with EmbeddedStore(tmp_path / "s.db") as s:
        s.add_documents(docs)
        ids, ts, raw_rows, shapes, _ = build_rows(s._conn, "build_uuid", "u")
        rows = [(sid, json.loads(body)) for sid, body in raw_rows]
        assert build_index(shapes, rows, s.mapping, tokenize) is None
        reference = _assert_same_index(s, "u")
        assert reference.search(qa.Term("module.x", "b")) == [0, 1]
        specs = [QuerySpec(filters=Filters(build_uuid="u"), label=v) for v in "abc"]
        got = s.msearch(specs, queries=[qa.Term("module.x", v) for v in "abc"])
        assert [r.total for r in got] == [1, 2, 1]


def test_text_fields_in_the_shape(tmp_path: Path) -> None:
    """A dotted text field lives in the shape: its tokens are indexed for every line of the shape."""
    mapping = Mapping(text_fields=frozenset({"message", "tags", "extra.note"}))
    docs = [
        {"build_uuid": "u", "message": f"line {i}", "extra": {"note": "Disk Full on node-1"}, "filename": f"f{i % 2}"}
        for i in range(6)
    ]
    with EmbeddedStore(tmp_path / "s.db", mapping=mapping) as s:
        s.add_documents(docs)
        reference = _assert_same_index(s, "u")
        assert reference.search(qa.Phrase("extra.note", ("full", "on"), (0, 1))) == list(range(6))


def test_postings_restricted_to_wanted_tokens(store: EmbeddedStore) -> None:
    uuid = UUIDS[2]
    ids, ts, raw_rows, shapes, _ = build_rows(store._conn, "build_uuid", uuid)
    rows = [(sid, json.loads(body)) for sid, body in raw_rows]
    full = MemoryIndex(store.get_build_docs(uuid), mapping=store.mapping)
    wanted: dict[str, frozenset[str] | None] = {"message": frozenset({"timed", "out", "nosuch"})}
    index = build_index(shapes, rows, store.mapping, tokenize, wanted)
    assert index.postings["message"] == {t: p for t, p in full.postings["message"].items() if t in {"timed", "out"}}
    assert index.postings.get("tags", {}) == {}  # no token of tags wanted
    assert (index.values, index.present, index.size) == (full.values, full.present, full.size)
    wanted = {"message": frozenset({"timed"}), "tags": None}
    index = build_index(shapes, rows, store.mapping, tokenize, wanted)
    assert index.postings["tags"] == full.postings["tags"]
    # keyword fields no query looks up: no values (presence still recorded)
    index = build_index(shapes, rows, store.mapping, tokenize, wanted, keyword_fields={"loglevel", "build_name"})
    assert index.values["loglevel"] == full.values["loglevel"]
    assert index.values["build_name"] == full.values["build_name"]
    assert full.values["@timestamp"] and not index.values["@timestamp"]
    assert full.values["build_status"] and not index.values["build_status"]
    assert index.present == full.present
    # presence recorded only for the fields asked
    index = build_index(shapes, rows, store.mapping, tokenize, wanted, set(), present_fields={"loglevel", "message"})
    assert index.present == {k: v for k, v in full.present.items() if k in {"loglevel", "message"}}
    assert index.postings["message"] == {t: p for t, p in full.postings["message"].items() if t == "timed"}


def test_deferred_postings_only_on_the_selected_lines(store: EmbeddedStore) -> None:
    uuid = UUIDS[2]
    ids, ts, raw_rows, shapes, _ = build_rows(store._conn, "build_uuid", uuid)
    rows = [(sid, json.loads(body)) for sid, body in raw_rows]
    full = MemoryIndex(store.get_build_docs(uuid), mapping=store.mapping)
    keep = frozenset({"timed", "out", "for"})
    seen: list[MemoryIndex] = []

    def select(index: MemoryIndex) -> set[int]:
        seen.append(index)
        assert index.postings["message"] == {}  # (the deferred field's per-line postings come after)
        return set(range(0, len(rows), 3))

    wanted: dict[str, frozenset[str] | None] = {"message": keep, "tags": None}
    index = build_index(shapes, rows, store.mapping, tokenize, wanted, defer={"message"}, select=select)
    assert index is not None and seen == [index]
    on_lines = {t: {k for k in p if (k >> 32) % 3 == 0} for t, p in full.postings["message"].items() if t in keep}
    assert index.postings["message"] == {t: p for t, p in on_lines.items() if p}
    assert (index.postings["tags"], index.values, index.present) == (full.postings["tags"], full.values, full.present)
    # without select (or for a field whose every token is wanted), nothing is deferred
    assert build_index(shapes, rows, store.mapping, tokenize, wanted, defer={"message"}).postings["message"] == {
        t: p for t, p in full.postings["message"].items() if t in keep
    }


def test_percolation_indexes_messages_only_on_lines_a_fingerprint_can_match(store: EmbeddedStore) -> None:
    """Fingerprints that all require something of another field (tags, loglevel, filename): the message
    postings of the lines none of them can match are left out, and every answer stays exact; queries
    that can match any line later get the build indexed again."""
    rng = random.Random(23)
    anchors: list[qa.Query] = [
        qa.Term("tags", "console"),
        qa.Term("loglevel", "ERROR"),
        qa.Term("filename", "job-output.txt"),
        qa.Phrase("tags", ("screen", "n", "cpu.txt"), (0, 1, 2)),
    ]
    inner: list[qa.Query] = []
    while len(inner) < 120:  # (terms and phrases only: a multi-term message query needs every line's tokens)
        q = random_query(rng)
        if not query_needs(q, store.mapping).full:
            inner.append(q)
    uuid = UUIDS[4]
    key = ("build_uuid", uuid)
    docs = store.get_build_docs(uuid)
    reference = MemoryIndex(docs, mapping=store.mapping)
    rounds: list[list[qa.Query]] = [
        [qa.Bool(must=(q, rng.choice(anchors))) for q in inner],
        [qa.Bool(must=(q, rng.choice(anchors))) for q in inner[:40]] + [qa.MatchAll(), qa.Term("message", "timed")],
    ]
    store.percolator.builds.clear()
    for n, queries in enumerate(rounds):
        specs = [QuerySpec(filters=Filters(build_uuid=uuid), label=str(i)) for i in range(len(queries))]
        for _ in range(2):  # and again, with the results kept
            results = store.msearch(specs, size=1000, queries=queries)
            for q, res in zip(queries, results, strict=True):
                assert [h.source for h in res.hits] == [docs[i] for i in reference.search(q)], q
        entry = store.percolator.builds[key]
        indexed = {k >> 32 for p in entry.index.postings["message"].values() for k in p}
        if n == 0:
            assert entry.defer == {"message"} and entry.lines is not None
            assert indexed and len(indexed) < len([d for d in docs if d.get("message")])
        else:
            assert entry.lines is None


def test_percolation_widens_the_index_as_queries_need(store: EmbeddedStore) -> None:
    """A build indexed for some fingerprints answers later, different ones exactly (more tokens, whole vocabularies)."""
    uuid = UUIDS[3]
    store.percolator.builds.clear()
    docs = store.get_build_docs(uuid)
    reference = MemoryIndex(docs, mapping=store.mapping)
    rounds: list[list[qa.Query]] = [
        [qa.Term("message", "timed"), qa.Term("loglevel", "ERROR")],
        [qa.Phrase("message", ("waiting", "for"), (0, 1)), qa.Term("message", "timed"), qa.Term("tags", "console")],
        [qa.Prefix("message", "re"), qa.Bool(must=(qa.Wildcard("tags", "scr*"),), must_not=(qa.Term("message", "ssh"),))],
        [qa.Exists("message"), qa.Term("message", "deadlock")],
        [qa.Range("@timestamp", "2026-11-10T05", None, True, False), qa.Exists("loglevel")],
        [qa.Exists("extra.inner"), qa.Bool(must=(qa.Exists("node_*"),), must_not=(qa.Exists("tags"),))],
    ]
    for queries in rounds:
        specs = [QuerySpec(filters=Filters(build_uuid=uuid), label=str(i)) for i in range(len(queries))]
        results = store.msearch(specs, size=1000, queries=queries)
        for q, res in zip(queries, results, strict=True):
            assert [h.source for h in res.hits] == [docs[i] for i in reference.search(q)], q
    entry = store.percolator.builds[("build_uuid", uuid)]
    assert entry.wanted is not None and entry.wanted["message"] is None and entry.wanted["tags"] is None
    assert entry.keyword_fields is not None and "@timestamp" in entry.keyword_fields
    assert entry.present_fields is None  # a pattern (node_*) needs every field's presence


def test_stores_from_before_the_tokens_column_still_percolate(tmp_path: Path) -> None:
    """A schema-1 store (no ``docs.tokens``) is migrated on open; its old lines are analyzed when indexed."""
    docs = make_docs(3, 300)
    path = tmp_path / "old.db"
    with EmbeddedStore(path) as s:
        s.add_documents(docs[:200])
    downgrade_to_schema_4(path)
    raw = sqlite3.connect(path)
    raw.execute("ALTER TABLE docs DROP COLUMN tokens")  # what migration 1 alone created
    raw.execute("DELETE FROM schema_migrations WHERE version >= 2")
    raw.execute("DROP TABLE codec")  # (migration 3's; 200 lines: too few to compress)
    raw.execute("DROP TABLE schema_ledger")  # as written before the shared ledger
    raw.commit()
    raw.close()
    with EmbeddedStore(path) as s:
        assert s._conn.execute("SELECT COUNT(*) FROM docs WHERE tokens IS NULL").fetchone()[0] == 200
        s.add_documents(docs[200:])  # new lines get their tokens
        assert s._conn.execute("SELECT COUNT(*) FROM docs WHERE tokens IS NOT NULL").fetchone()[0] > 0
        for uuid in UUIDS[:4]:
            _assert_same_index(s, uuid)
        rng = random.Random(2)
        queries = [random_query(rng) for _ in range(60)]
        for uuid in UUIDS[:4]:
            specs = [QuerySpec(filters=Filters(build_uuid=uuid), label=str(i)) for i in range(len(queries))]
            for q, spec, res in zip(queries, specs, s.msearch(specs, size=50, queries=queries), strict=True):
                slow = s.search(spec, size=50, query=q)
                assert (res.total, [h.id for h in res.hits]) == (slow.total, [h.id for h in slow.hits]), q


def test_the_collector_pause_nests_and_keeps_a_disabled_collector_disabled() -> None:
    was = gc.isenabled()
    try:
        gc.enable()
        with collector_paused():
            assert not gc.isenabled()
            with collector_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the outer pause still runs
        assert gc.isenabled()
        gc.disable()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        (gc.enable if was else gc.disable)()
