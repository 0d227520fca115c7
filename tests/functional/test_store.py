"""The embedded store on a real SQLite file.

Query results are checked against an independent brute-force evaluator of
the query AST written here (Lucene semantics over ``analysis.analyze_values``
positions), against :class:`elastic_recheck.core.lucene.matcher.MemoryIndex`, and
against the sample's ground truth (``sample/builds.json``).
"""

from __future__ import annotations

import gzip
import json
import random
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite.compiler import ID_RANGE_SHAPES
from elastic_recheck.adapters.sqlite.layout import GAP, PRESENT, keyword_values, store_terms
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.core.errors import BackendError, StoreError
from elastic_recheck.core.lucene import ast as qa
from elastic_recheck.core.lucene.analysis import analyze_values, tokenize
from elastic_recheck.core.schema import Mapping
from elastic_recheck.core.search_types import Filters, QuerySpec, TimeWindow
from elastic_recheck.core.timestamps import parse_timestamp
from elastic_recheck.ingest.jsonl import iter_jsonl
from elastic_recheck.ports.loading import TestResult as SubunitResult

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 10, tzinfo=UTC)
TEXT = ("message", "tags")

# ---------------------------------------------------------------------------
# a reference evaluator (Lucene semantics, brute force)


def _text_positions(doc: dict[str, Any], name: str) -> list[tuple[str, int]]:
    value = doc.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    strs = [v if isinstance(v, str) else json.dumps(v) for v in values if v is not None]
    return analyze_values(strs)


def _kw(doc: dict[str, Any], name: str) -> list[str]:
    value: Any = doc
    for part in name.split("."):  # nested objects are indexed as a.b
        value = value.get(part) if isinstance(value, dict) else None
    return keyword_values(value)


def _in_range(t: str, q: qa.Range) -> bool:
    b = t.encode()
    if q.lower is not None and (b < q.lower.encode() or (b == q.lower.encode() and not q.include_lower)):
        return False
    return not (q.upper is not None and (b > q.upper.encode() or (b == q.upper.encode() and not q.include_upper)))


def _wild(pattern: str, t: str) -> bool:
    import re

    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, t, re.DOTALL) is not None


def reference(q: qa.Query, doc: dict[str, Any]) -> bool:
    if isinstance(q, qa.MatchAll):
        return True
    if isinstance(q, qa.MatchNone):
        return False
    if isinstance(q, qa.Bool):
        if any(reference(c, doc) for c in q.must_not):
            return False
        if q.must:
            return all(reference(c, doc) for c in q.must)
        return any(reference(c, doc) for c in q.should)
    name = q.field  # type: ignore[attr-defined]
    text = name in TEXT
    if isinstance(q, qa.Exists):
        if text:
            v = doc.get(name)
            return v is not None and v != [] and any(x is not None for x in (v if isinstance(v, list) else [v]))
        return bool(_kw(doc, name))
    terms = [t for t, _ in _text_positions(doc, name)] if text else _kw(doc, name)
    if isinstance(q, qa.Term):
        return q.value in terms
    if isinstance(q, qa.Phrase):
        assert text and q.slop == 0
        pos = defaultdict(set)
        for t, p in _text_positions(doc, name):
            pos[t].add(p)
        return any(all(start + rel in pos[t] for t, rel in zip(q.terms, q.positions, strict=True)) for start in pos[q.terms[0]])
    if isinstance(q, qa.Prefix):
        return any(t.startswith(q.prefix) for t in terms)
    if isinstance(q, qa.Wildcard):
        return any(_wild(q.pattern, t) for t in terms)
    if isinstance(q, qa.Range):
        return any(_in_range(t, q) for t in terms)
    raise AssertionError(q)


# ---------------------------------------------------------------------------
# generated documents and queries

WORDS = ["timed", "out", "waiting", "for", "reply", "nova.compute", "ERROR", "Deadlock", "café", "10.0.0.1", "can't", "x_y", "ssh"]
NAMES = ["tempest-full", "grenade", "unit", "Tempest-Full"]


def make_docs(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        build = rng.randrange(12)
        doc: dict[str, Any] = {
            "id": f"d{i}",
            "@timestamp": (T0 + timedelta(minutes=37 * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "message": " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 9))) + rng.choice(["", ".", ": x", " -- y"]),
            "build_uuid": f"{build:02d}" * 16,
            "build_status": "FAILURE" if build % 3 else "SUCCESS",
            "build_name": NAMES[build % len(NAMES)],
            "voting": build % 4 != 0,
            "filename": rng.choice(["job-output.txt", "logs/screen-n-cpu.txt"]),
        }
        r = rng.random()
        if r < 0.7:
            doc["tags"] = rng.sample(["console", "screen", "oslofmt", "job output", "screen-n-cpu.txt"], rng.randint(1, 3))
        elif r < 0.8:
            doc["tags"] = "console"
        elif r < 0.85:
            doc["tags"] = []
        if rng.random() < 0.3:
            doc["loglevel"] = rng.choice(["ERROR", "INFO", "WARNING"])
        if rng.random() < 0.2:
            doc["node_provider"] = rng.choice(["rax", ["ovh", "rax"], None, 7, True])
        if rng.random() < 0.1:
            del doc["message"]
        if rng.random() < 0.1:
            doc["extra"] = {"inner": rng.choice(["a", "b"])}
        docs.append(doc)
    return docs


def random_query(rng: random.Random, depth: int = 0) -> qa.Query:
    kinds = ["term", "phrase", "kw", "prefix", "wild", "range", "exists", "all", "none"]
    if depth < 3:
        kinds += ["bool"] * 4
    kind = rng.choice(kinds)
    toks = [t for w in WORDS for t in tokenize(w)]
    if kind == "bool":
        def some(k: int) -> tuple[qa.Query, ...]:
            return tuple(random_query(rng, depth + 1) for _ in range(rng.randint(0, k)))

        return qa.Bool(must=some(2), should=some(3), must_not=some(1))
    if kind == "term":
        return qa.Term(rng.choice(TEXT), rng.choice([*toks, "console", "screen", "job", "absent"]))
    if kind == "phrase":
        words = tokenize(" ".join(rng.choice(WORDS + ["job output", "screen n cpu.txt"]) for _ in range(rng.randint(2, 3))))
        return qa.Phrase(rng.choice(TEXT), tuple(words), tuple(range(len(words))))
    if kind == "kw":
        name = rng.choice(["build_status", "build_name", "voting", "node_provider", "loglevel", "filename", "extra.inner"])
        value = rng.choice(["FAILURE", "tempest-full", "true", "false", "rax", "ovh", "7", "ERROR", "job-output.txt", "a"])
        return qa.Term(name, value)
    # Multi-term values on text fields are lowercased by the parser (as Lucene normalizes them).
    if kind == "prefix":
        name = rng.choice(["message", "build_name", "filename"])
        value = rng.choice(["ti", "n", "tempest", "Te", "", "job"])
        return qa.Prefix(name, value.lower() if name in TEXT else value)
    if kind == "wild":
        return qa.Wildcard(rng.choice(["message", "build_name"]), rng.choice(["t*d", "*e*", "?ut", "tempest-*", "gr?nade"]))
    if kind == "range":
        name = rng.choice(["message", "build_status", "build_name"])
        lo = rng.choice([None, "a", "n", "FAILURE"])
        hi = rng.choice([None, "s", "zzz", "SUCCESS"])
        if name in TEXT:
            lo, hi = (lo.lower() if lo else lo), (hi.lower() if hi else hi)
        return qa.Range(name, lo, hi, rng.random() < 0.5, rng.random() < 0.5)
    if kind == "exists":
        return qa.Exists(rng.choice(["message", "tags", "loglevel", "node_provider", "extra.inner", "nothing"]))
    return qa.MatchAll() if kind == "all" else qa.MatchNone()


@pytest.fixture(scope="module")
def gen_docs() -> list[dict[str, Any]]:
    return make_docs(7, 400)


@pytest.fixture(scope="module")
def gen_store(tmp_path_factory: pytest.TempPathFactory, gen_docs: list[dict[str, Any]]) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("gen") / "store.db")
    store.add_documents(gen_docs, batch_size=97)
    yield store
    store.close()


def ids(result: Any) -> list[str]:
    return [h.id for h in result.hits]


def expected_ids(docs: list[dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [d["id"] for d in docs if pred(d)]  # generated in timestamp order


# ---------------------------------------------------------------------------
# query semantics


def test_random_queries_match_the_reference(gen_store: EmbeddedStore, gen_docs: list[dict[str, Any]]) -> None:
    rng = random.Random(11)
    nonempty = 0
    for _ in range(300):
        q = random_query(rng)
        want = expected_ids(gen_docs, lambda d, q=q: reference(q, d))
        got = gen_store.search(QuerySpec(), size=1000, query=q)
        assert got.total == len(want), q
        assert ids(got) == want, q
        nonempty += bool(want)
    assert nonempty > 60  # the generator makes queries that find things


def test_random_queries_with_filters_and_window(gen_store: EmbeddedStore, gen_docs: list[dict[str, Any]]) -> None:
    rng = random.Random(12)
    for _ in range(60):
        q = random_query(rng)
        uuid = f"{rng.randrange(12):02d}" * 16
        start = T0 + timedelta(hours=rng.randrange(0, 200))
        window = TimeWindow(start, start + timedelta(hours=rng.randrange(1, 100)))
        filters = rng.choice([Filters(build_uuid=uuid), Filters(voting=True, build_status="FAILURE"), Filters(extra={"build_name": ("grenade", "unit")})])

        def pred(d: dict[str, Any], q: qa.Query = q, f: Filters = filters, w: TimeWindow = window) -> bool:
            t = parse_timestamp(d["@timestamp"])
            assert t is not None and w.start and w.end
            if not (w.start <= t < w.end):
                return False
            for name, values in store_terms(f).items():
                if not set(_kw(d, name)) & set(values):
                    return False
            return reference(q, d)

        want = expected_ids(gen_docs, pred)
        got = gen_store.search(QuerySpec(filters=filters, window=window), size=1000, query=q)
        assert ids(got) == want, (q, filters, window)


def test_voting_filter_accepts_json_booleans(gen_store: EmbeddedStore, gen_docs: list[dict[str, Any]]) -> None:
    # voting is a JSON boolean here: it indexes as "true"/"false" (what a text query sees), and the
    # structured filter Filters(voting=...) accepts it like "1"/"0".
    want = expected_ids(gen_docs, lambda d: d["voting"] is True)
    assert want
    assert gen_store.search(QuerySpec(filters=Filters(voting=True)), size=0).total == len(want)
    assert gen_store.search(QuerySpec(), size=0, query=qa.Term("voting", "true")).total == len(want)
    assert gen_store.search(QuerySpec(), size=0, query=qa.Term("voting", "1")).total == 0


def test_phrases_never_span_two_values(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents([{"id": "a", "tags": ["alpha beta", "gamma delta"], "message": ["one two", "three"]}])
        find = lambda q: store.search(QuerySpec(), query=q).total
        assert find(qa.Phrase("tags", ("beta", "gamma"), (0, 1))) == 0
        assert find(qa.Phrase("tags", ("gamma", "delta"), (0, 1))) == 1
        assert find(qa.Phrase("message", ("two", "three"), (0, 1))) == 0
        # the sentinel tokens are invisible to queries
        assert find(qa.Term("tags", GAP)) == 0
        assert find(qa.Term("tags", PRESENT)) == 0
        assert find(qa.Prefix("tags", "")) == 1
        assert find(qa.Range("tags", None, None)) == 1
        assert find(qa.Wildcard("tags", "*|*")) == 0
        assert find(qa.Exists("tags")) == 1 and find(qa.Exists("nothing")) == 0


def test_punctuation_and_unicode_tokens(tmp_path: Path) -> None:
    messages = [
        "libvirt.libvirtError: End of file",
        "Deadlock found; try restarting",
        'quote "inside" and it\'s fine',
        "Ünïcödé ΣΊΣΥΦΟΣ 日本語 text",
        "path /opt/stack/nova/nova.py:123 x_y=1",
    ]
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents([{"id": str(i), "message": m} for i, m in enumerate(messages)])
        for i, message in enumerate(messages):
            tokens = tokenize(message)
            assert tokens
            got = store.search(QuerySpec(), query=qa.Phrase("message", tuple(tokens), tuple(range(len(tokens)))))
            assert ids(got) == [str(i)], message
            for tok in set(tokens):
                want = [str(j) for j, m in enumerate(messages) if tok in tokenize(m)]
                assert ids(store.search(QuerySpec(), query=qa.Term("message", tok))) == want, tok


def test_fuzzy_and_regexp_on_text_and_keywords(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents(
            [
                {"id": "1", "message": "connection refused", "build_name": "tempest-full"},
                {"id": "2", "message": "conection refused", "build_name": "tempest-slow"},
                {"id": "3", "message": "connectoin reset", "build_name": "grenade"},
                {"id": "4", "message": "unrelated words", "build_name": "tempest"},
            ]
        )
        fuzzy = store.search(QuerySpec(), query=qa.Fuzzy("message", "connection", 1))
        assert ids(fuzzy) == ["1", "2", "3"]  # a transposition is one edit
        assert ids(store.search(QuerySpec(), query=qa.Fuzzy("message", "connection", 0))) == ["1"]
        assert ids(store.search(QuerySpec(), query=qa.Fuzzy("message", "xonnection", 1, prefix_length=1))) == []
        assert ids(store.search(QuerySpec(), query=qa.Regexp("message", "con+ect(ion|oin)"))) == ["1", "2", "3"]
        assert ids(store.search(QuerySpec(), query=qa.Regexp("build_name", "tempest-.*"))) == ["1", "2"]
        assert ids(store.search(QuerySpec(), query=qa.Wildcard("build_name", "tempest?full"))) == ["1"]


def test_keyword_queries_are_exact_and_escape_glob(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents(
            [
                {"id": "1", "build_name": "a*b", "message": "m"},
                {"id": "2", "build_name": "axb", "message": "m"},
                {"id": "3", "build_name": "A*B", "message": "m"},
                {"id": "4", "build_name": "a[1]", "message": "m"},
            ]
        )
        assert ids(store.search(QuerySpec(), query=qa.Term("build_name", "a*b"))) == ["1"]
        assert ids(store.search(QuerySpec(), query=qa.Prefix("build_name", "a*"))) == ["1"]
        assert ids(store.search(QuerySpec(), query=qa.Prefix("build_name", "a["))) == ["4"]
        assert ids(store.search(QuerySpec(), query=qa.Wildcard("build_name", "a\\*b"))) == ["1"]
        assert ids(store.search(QuerySpec(), query=qa.Wildcard("build_name", "a?b"))) == ["1", "2"]
        assert ids(store.search(QuerySpec(), query=qa.Phrase("build_name", ("a*b",), (0,)))) == ["1"]
        assert ids(store.search(QuerySpec(filters=Filters(build_name="a*b")))) == ["1"]


def test_objects_in_nested_lists_are_indexed_as_the_matcher_indexes_them(tmp_path: Path) -> None:
    """One flattener (core.documents.flatten_fields): an object inside a list of lists is ``name.key``
    for the store as for the matcher (and Elasticsearch); the store used to drop it."""
    from elastic_recheck.core.lucene.matcher import MemoryIndex

    docs = [
        {"id": "1", "message": "m", "meta": [[{"zone": "az1"}], "plain"]},
        {"id": "2", "message": "m", "meta": [{"zone": "az2"}]},
        {"id": "3", "message": "m", "meta": "plain"},
    ]
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents(docs)
        index = MemoryIndex(docs)
        for query, want in ((qa.Term("meta.zone", "az1"), ["1"]), (qa.Term("meta.zone", "az2"), ["2"]),
                            (qa.Term("meta", "plain"), ["1", "3"])):
            assert ids(store.search(QuerySpec(), query=query)) == want
            assert sorted(docs[i]["id"] for i in index.search(query)) == want


def test_objects_in_a_text_fields_list_are_keywords_on_every_line(tmp_path: Path) -> None:
    """``tags`` lists are analyzed once per distinct list while ingesting: a list holding an object
    gives every line its ``tags.key`` keyword, and lines with the same plain list stay as searchable."""
    from elastic_recheck.core.lucene.matcher import MemoryIndex

    docs = [{"id": f"o{i}", "message": "m", "tags": ["t", {"k": "v"}]} for i in range(3)]
    docs += [{"id": f"p{i}", "message": "m", "tags": ["t", "u"]} for i in range(3)]
    docs += [{"id": "q", "message": "m", "tags": [["t"], {"k": "w"}]}]
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents(docs)
        index = MemoryIndex(docs)
        for query in (qa.Term("tags.k", "v"), qa.Term("tags.k", "w"), qa.Term("tags", "t"), qa.Term("tags", "u")):
            want = sorted(docs[i]["id"] for i in index.search(query))
            assert want
            assert sorted(ids(store.search(QuerySpec(), query=query))) == want


# ---------------------------------------------------------------------------
# documents


def test_documents_round_trip(tmp_path: Path) -> None:
    docs = [
        {"id": "x", "@timestamp": "2026-11-10T01:02:03.456Z", "message": "hello", "tags": ["a", "b"], "build_uuid": "u1", "hosts_id": ["h1", "h2"], "nested": {"k": [1, 2]}, "voting": 1},
        {"message": "no id, no timestamp", "build_uuid": "u1", "weird": None},
        {"id": 5, "message": "numeric id", "build_change": 829161},
    ]
    with EmbeddedStore(tmp_path / "s.db") as store:
        stats = store.add_documents(docs)
        assert stats.docs == 3 and store.count_documents() == 3
        res = store.search(QuerySpec(), size=10)
        by_message = {h.source["message"]: h for h in res.hits}
        assert by_message["hello"].source == docs[0]
        assert by_message["hello"].id == "x"
        assert by_message["hello"].timestamp == datetime(2026, 11, 10, 1, 2, 3, 456000, tzinfo=UTC)
        assert by_message["no id, no timestamp"].source == docs[1]
        assert by_message["no id, no timestamp"].timestamp is None
        assert by_message["numeric id"].id == "5"
        assert res.hits[-1].timestamp is None  # missing timestamps sort last
        assert store.search(QuerySpec(), query=qa.Term("hosts_id", "h2")).total == 1
        assert store.search(QuerySpec(), query=qa.Term("nested.k", "2")).total == 1
        assert store.search(QuerySpec(), query=qa.Term("build_change", "829161")).total == 1
        assert store.search(QuerySpec(), query=qa.Term("_id", "x")).total == 1
        assert store.get_build_docs("u1") == [docs[0], docs[1]]


def test_same_id_replaces(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents([{"id": "a", "message": "old words"}, {"id": "b", "message": "keep"}])
        store.add_documents([{"id": "a", "message": "new words"}, {"id": "c", "message": "x"}, {"id": "c", "message": "y"}])
        assert store.count_documents() == 3
        assert store.search(QuerySpec(), query=qa.Term("message", "old")).total == 0
        assert ids(store.search(QuerySpec(), query=qa.Term("message", "new"))) == ["a"]
        assert ids(store.search(QuerySpec(), query=qa.Term("message", "y"))) == ["c"]
        assert store.search(QuerySpec(), query=qa.Term("message", "x")).total == 0
        assert store.integrity_check() == []


def test_bad_documents_are_counted(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        stats = store.add_documents([{"message": "ok"}, "nope", 3, {"message": "ok2"}])  # type: ignore[list-item]
        assert (stats.docs, stats.bad_lines) == (2, 2)
        assert [n for n, _ in stats.bad_line_samples] == [2, 3]


def test_delete_build(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents(
            [{"message": f"m{i}", "build_uuid": "u" if i < 4 else "v", "filename": "a" if i % 2 else "b"} for i in range(6)]
        )
        assert store.delete_build("u", ["a"]) == 2
        assert store.indexed_files("u") == {"b"}
        assert store.delete_build("u") == 2
        assert store.count_documents() == 2 and store.indexed_files("u") == set()


# ---------------------------------------------------------------------------
# the sample: aggregations against ground truth


def _phrase(field: str, text: str) -> qa.Phrase:
    toks = tokenize(text)
    return qa.Phrase(field, tuple(toks), tuple(range(len(toks))))


#: The sample's fingerprints as ASTs (queries/<bug>.yaml), built without the parser.
SAMPLE_BUGS: dict[str, qa.Query] = {
    "1893618": qa.Bool(must=(_phrase("message", "End of file while reading data: Input/output error"), _phrase("tags", "screen-n-cpu.txt"))),
    "1927411": qa.Bool(must=(_phrase("message", "Failed to fetch"), _phrase("message", "Connection timed out"), qa.Term("tags", "console"))),
    "1945311": qa.Bool(must=(_phrase("message", "via SSH timed out"), _phrase("message", "Connection to the"), qa.Term("tags", "console"))),
    "1958723": qa.Bool(must=(_phrase("message", "Deadlock found when trying to get lock; try restarting transaction"), _phrase("tags", "screen-q-svc.txt"))),
    "1986104": qa.Bool(must=(_phrase("message", "Timed out waiting for a reply to message ID"), _phrase("tags", "screen-c-vol.txt"))),
    "2004555": qa.Bool(must=(_phrase("message", "Device detach failed for"), _phrase("message", "Unable to detach the device from the live config"), _phrase("tags", "screen-n-cpu.txt"))),
    "2011374": qa.Bool(must=(_phrase("message", "Out of memory: Killed process"), qa.Term("message", "mysqld"), qa.Term("tags", "syslog"))),
}


@pytest.fixture(scope="module")
def sample() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with gzip.open(REPO / "sample" / "logs.jsonl.gz") as fh:
        docs = list(iter_jsonl(fh))
    builds = json.loads((REPO / "sample" / "builds.json").read_text())
    return docs, builds


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory, sample: tuple[list[dict[str, Any]], dict[str, Any]]) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("sample") / "store.db")
    store.add_documents(sample[0])
    yield store
    store.close()


def test_sample_fingerprints_find_exactly_the_injected_builds(sample_store: EmbeddedStore, sample: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    builds = sample[1]["builds"]
    for bug, query in SAMPLE_BUGS.items():
        truth = {b["uuid"] for b in builds if bug in b["injected_bugs"]}
        assert truth, bug
        assert sample_store.count_builds(QuerySpec(), query=query) == len(truth), bug
        assert {b.uuid for b in sample_store.builds(QuerySpec(), query=query)} == truth, bug
        failed = {b["uuid"] for b in builds if bug in b["injected_bugs"] and b["result"] == "FAILURE"}
        assert sample_store.count_builds(QuerySpec(filters=Filters(build_status="FAILURE")), query=query) == len(failed)


def test_sample_histogram_and_terms(sample_store: EmbeddedStore, sample: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    docs = sample[0]
    query = SAMPLE_BUGS["1958723"]
    matching = [d for d in docs if reference(query, d)]
    assert matching
    hour = timedelta(hours=1)
    want: dict[datetime, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for d in matching:
        t = parse_timestamp(d["@timestamp"])
        assert t is not None
        start = datetime.fromtimestamp(t.timestamp() // 3600 * 3600, tz=UTC)
        want[start][d["build_status"]].add(d["build_uuid"])
    got = sample_store.build_histogram(QuerySpec(), hour, query=query)
    assert [b.start for b in got] == sorted(want)
    assert all(dict(b.counts) == {s: len(u) for s, u in want[b.start].items()} for b in got)

    per_name: dict[str, set[str]] = defaultdict(set)
    for d in matching:
        per_name[d["build_name"]].add(d["build_uuid"])
    terms = sample_store.terms(QuerySpec(), "build_name", size=100, query=query)
    assert {t.value: t.builds for t in terms} == {k: len(v) for k, v in per_name.items()}
    assert [t.builds for t in terms] == sorted((t.builds for t in terms), reverse=True)
    levels = sample_store.terms(QuerySpec(), "loglevel", size=5, query=query)
    assert [(t.value, t.docs) for t in levels] == [("ERROR", len(matching))]
    with pytest.raises(BackendError):
        sample_store.terms(QuerySpec(), "message")


def test_sample_latest_files_and_builds(sample_store: EmbeddedStore, sample: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    docs, truth = sample
    newest = max(parse_timestamp(d["@timestamp"]) for d in docs)  # type: ignore[type-var]
    assert sample_store.latest_timestamp() == newest
    some = truth["builds"][0]
    files = {d["filename"] for d in docs if d["build_uuid"] == some["uuid"]}
    assert sample_store.indexed_files(some["uuid"]) == files
    infos = sample_store.builds(QuerySpec(filters=Filters(build_uuid=some["uuid"])))
    assert len(infos) == 1
    assert infos[0].fields["build_name"] == some["job_name"]
    assert infos[0].fields["log_url"] == some["log_url"]
    assert infos[0].docs == sum(1 for d in docs if d["build_uuid"] == some["uuid"])
    every = sample_store.builds()
    assert len(every) == len(truth["builds"])
    assert [b.last_seen for b in every] == sorted((b.last_seen for b in every), reverse=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [1, 4, 60])
def test_build_filters_of_few_and_many_builds(
    sample_store: EmbeddedStore, sample: tuple[list[dict[str, Any]], dict[str, Any]], count: int
) -> None:
    """A filter naming builds finds exactly their matching lines, whether it names few shapes (the
    scan is narrowed to their lines' rowid range) or more than ``ID_RANGE_SHAPES`` (it is not)."""
    docs, truth = sample
    uuids = sorted(b["uuid"] for b in truth["builds"])[::2][:count]
    assert len(uuids) == count
    shapes = {(d["build_uuid"], d["filename"]) for d in docs if d["build_uuid"] in uuids}
    assert (len(shapes) > ID_RANGE_SHAPES) == (count == 60)
    query = qa.Bool(should=(qa.Term("message", "info"), qa.Term("tags", "console")))
    matching = [d for d in docs if d["build_uuid"] in uuids and reference(query, d)]
    assert matching
    spec = QuerySpec(filters=Filters(voting=None, extra={"build_uuid": tuple(uuids)}))
    assert sample_store.search(spec, size=1, query=query).total == len(matching)
    per_build: dict[str, int] = defaultdict(int)
    for d in matching:
        per_build[d["build_uuid"]] += 1
    assert {b.uuid: b.docs for b in sample_store.builds(spec, query=query)} == per_build
    want: dict[datetime, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for d in matching:
        t = parse_timestamp(d["@timestamp"])
        assert t is not None
        want[datetime.fromtimestamp(t.timestamp() // 3600 * 3600, tz=UTC)][d["build_status"]].add(d["build_uuid"])
    got = sample_store.build_histogram(spec, timedelta(hours=1), query=query)
    assert {b.start: dict(b.counts) for b in got} == {k: {s: len(u) for s, u in v.items()} for k, v in want.items()}


def test_percolation_equals_sql(sample_store: EmbeddedStore, sample: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    builds = [b for b in sample[1]["builds"] if b["injected_bugs"]][:5]
    rng = random.Random(3)
    extra = [random_query(rng) for _ in range(40)]
    queries = list(SAMPLE_BUGS.values()) + extra
    for b in builds:
        window = TimeWindow(datetime.fromisoformat(b["start_time"]).replace(tzinfo=UTC), None)
        specs = [QuerySpec(filters=Filters(build_uuid=b["uuid"], voting=None), window=window, label=str(i)) for i in range(len(queries))]
        fast = sample_store.msearch(specs, size=3, queries=queries)
        again = sample_store.msearch(specs, size=3, queries=queries)  # memoized clauses
        for spec, q, res, res2 in zip(specs, queries, fast, again, strict=True):
            slow = sample_store.search(spec, size=3, query=q)
            assert (res.total, ids(res), res.label) == (slow.total, ids(slow), spec.label), q
            assert (res2.total, ids(res2)) == (slow.total, ids(slow)), q


# ---------------------------------------------------------------------------
# the file: schema, errors, threads


def test_schema_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "s.db"
    with EmbeddedStore(path) as store:
        store.add_documents([{"message": "persisted"}])
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [v for (v,) in raw.execute("SELECT version FROM schema_migrations")] == [1, 2, 3, 4, 5]
    raw.close()
    with EmbeddedStore(path) as store:
        assert store.count_documents() == 1
        assert store.integrity_check() == []
        assert store.ping()


def test_mapping_and_version_mismatches_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    EmbeddedStore(path).close()
    with pytest.raises(StoreError, match="text fields"):
        EmbeddedStore(path, mapping=Mapping(text_fields=frozenset({"message"})))
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_migrations VALUES (99, 'future')")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="newer"):
        EmbeddedStore(path)


def test_custom_mapping(tmp_path: Path) -> None:
    mapping = Mapping(text_fields=frozenset({"message", "module"}))
    with EmbeddedStore(tmp_path / "s.db", mapping=mapping) as store:
        store.add_documents([{"message": "m", "module": "nova.compute.manager", "tags": "Console Log"}])
        assert store.search(QuerySpec(), query=qa.Term("module", "nova.compute.manager")).total == 1
        assert store.search(QuerySpec(), query=qa.Term("tags", "Console Log")).total == 1  # a keyword now
        assert store.search(QuerySpec(), query=qa.Term("tags", "console")).total == 0


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 200)
    with pytest.raises(StoreError, match="corrupt"):
        EmbeddedStore(path)


def test_unopenable_path(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError):
        EmbeddedStore(tmp_path / "dir.db")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="directory"):
        EmbeddedStore(tmp_path / "file" / "s.db")


def test_disk_full_is_a_store_error(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents([{"message": "small"}])
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is now "full"
        big = [{"message": " ".join(f"word{i}x{j}" for j in range(200))} for i in range(200)]
        with pytest.raises(StoreError, match="full"):
            store.add_documents(big, batch_size=50)
        assert store.count_documents() == 1  # the failed batch left nothing behind
        assert store.integrity_check() == []


def test_threads_share_a_store(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.db")
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(20):
                store.add_documents([{"message": f"thread{k} line{i}", "build_uuid": f"b{k}"}])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(40):
                store.search(QuerySpec(), size=1, query=qa.Prefix("message", "thread"))
                store.count_builds(QuerySpec(), query=qa.MatchAll())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_documents() == 80
    assert store.count_builds(QuerySpec(), query=qa.MatchAll()) == 4
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count_documents()


def test_test_results(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        assert store.failed_tests("u") is None
        store.record_test_results("u", [SubunitResult("t.a", "fail", 1.5), SubunitResult("t.b", "success"), ("t.c", "uxsuccess")])
        assert store.failed_tests("u") == {"t.a", "t.c"}
        store.record_test_results("u", [SubunitResult("t.a", "success")])
        assert store.failed_tests("u") == {"t.c"}
        assert [r.test_id for r in store.test_results("u")] == ["t.a", "t.b", "t.c"]
        store.record_test_results("v", [])
        assert store.failed_tests("v") == set()


def test_store_agrees_with_real_lucene(gen_store: EmbeddedStore) -> None:
    """600 generated queries answered by Apache Lucene (``tests/fixtures/make_store_oracle.py``)."""
    from tests.fixtures.make_store_oracle import from_json

    data = json.loads(gzip.decompress((REPO / "tests" / "fixtures" / "store_oracle.json.gz").read_bytes()))
    assert data["docs_seed"] == [7, 400]  # the gen_docs fixture
    disagreements = []
    for case in data["cases"]:
        q = from_json(case["ast"])
        got = sorted(ids(gen_store.search(QuerySpec(), size=1000, query=q)))
        if got != sorted(case["hits"]):
            disagreements.append((case["query"], len(got), len(case["hits"])))
    assert disagreements == []
    assert sum(bool(c["hits"]) for c in data["cases"]) > 200


def test_sample_fingerprint_files_through_the_parser(sample_store: EmbeddedStore, sample: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    """queries/<bug>.yaml, parsed by the Lucene layer, find exactly the builds the sample injected them into."""
    from elastic_recheck.core.fingerprint_loading import load_fingerprints

    loaded = load_fingerprints(REPO / "queries")
    assert loaded.errors == []
    assert {f.bug for f in loaded.fingerprints} == set(SAMPLE_BUGS)
    for fp in loaded.fingerprints:
        truth = {b["uuid"] for b in sample[1]["builds"] if fp.bug in b["injected_bugs"]}
        spec = QuerySpec(queries=(fp.query,))
        assert {b.uuid for b in sample_store.builds(spec)} == truth, fp.bug
        assert sample_store.search(spec, size=0).total == sample_store.search(QuerySpec(), size=0, query=SAMPLE_BUGS[fp.bug]).total


CONFORMANCE = REPO / "tests" / "conformance"


@pytest.mark.parametrize("suite", ["features", "random", "syntax", "fingerprints"])
def test_conformance_fixtures_through_the_store(tmp_path: Path, suite: str) -> None:
    """The Lucene layer's conformance fixtures (recorded with real Lucene, ES mode) replayed through SQL."""
    path = CONFORMANCE / f"{suite}.json.gz"
    assert path.exists(), f"missing conformance fixture {path}"
    data = json.loads(gzip.decompress(path.read_bytes()))
    failures = []
    with EmbeddedStore(tmp_path / "s.db", es_mode=True) as store:
        store.add_documents(data["docs"])
        for case in data["cases"]:
            want = case["es"]
            try:
                res = store.search(QuerySpec(queries=(case["q"],)), size=len(data["docs"]) + 1)
            except BackendError as exc:
                assert exc.retryable is False
                got: Any = "error"
            else:
                got = sorted(int(h.id[1:]) - 1 for h in res.hits)  # rowids follow insertion order
                assert res.total == len(got)
            if got != ("error" if isinstance(want, dict) else want):
                failures.append(f"{case['q']!r}: store {got if got == 'error' else len(got)} vs lucene {want if isinstance(want, dict) else len(want)}")
    assert not failures, f"{len(failures)}/{len(data['cases'])} differ:\n" + "\n".join(failures[:20])


def test_percolation_sees_new_documents(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents([{"message": "first line", "build_uuid": "u", "@timestamp": "2026-11-10T00:00:00Z"}])
        specs = [QuerySpec(filters=Filters(build_uuid="u"), label=w) for w in ("first", "second")]
        queries = [qa.Term("message", "first"), qa.Term("message", "second")]
        assert [r.total for r in store.msearch(specs, queries=queries)] == [1, 0]
        store.add_documents([{"message": "second line", "build_uuid": "u", "@timestamp": "2026-11-10T00:00:01Z"}])
        assert [r.total for r in store.msearch(specs, queries=queries)] == [1, 1]
        store.delete_build("u")
        assert [r.total for r in store.msearch(specs, queries=queries)] == [0, 0]
        # a syntax error in one query string is that query's result, not the batch's
        bad = [QuerySpec(queries=(q,), filters=Filters(build_uuid="u")) for q in ('message:"open', "message:line")]
        results = store.msearch(bad)
        assert results[0].error and results[0].total == 0 and results[1].error is None


@pytest.mark.parametrize(
    ("setting", "mode", "expected"),
    [
        (None, "one-shot", 256 * 1024 * 1024),
        (None, "long-running", 0),
        (None, "scan", 1 << 40),
        ("64", "long-running", 64 * 1024 * 1024),
        ("64", "scan", 64 * 1024 * 1024),
        ("0", "one-shot", 0),
    ],
)
def test_store_mmap_setting(tmp_path: Path, setting: str | None, mode: str, expected: int) -> None:
    """One-shot commands map the store for speed, the reports (a scan of the
    whole window) all of it; the long-running bot maps nothing (mapped pages
    count in its RSS once per worker connection) unless ``[data_source]
    store_mmap_mb`` says otherwise."""
    from elastic_recheck.adapters.sqlite.store import SCAN_SUMMARY_CACHE_SIZE, SUMMARY_CACHE_SIZE
    from elastic_recheck.cli.main import AppContext
    from elastic_recheck.core.config import from_mapping

    section = {"store": str(tmp_path / "s.db")}
    if setting is not None:
        section["store_mmap_mb"] = setting
    app = AppContext(config=from_mapping({"data_source": section}))
    store = app.store(create=True, long_running=mode == "long-running", scan=mode == "scan")
    try:
        assert store.mmap_size == expected
        assert store.summary_cache_size == (SCAN_SUMMARY_CACHE_SIZE if mode == "scan" else SUMMARY_CACHE_SIZE)
        conn = store._conn  # the PRAGMA really reached SQLite (capped at its build's SQLITE_MAX_MMAP_SIZE)
        pragma = conn.execute("PRAGMA mmap_size").fetchone()[0]
        assert pragma == expected or (mode == "scan" and pragma > 256 * 1024 * 1024)
    finally:
        store.close()


def test_build_summaries_do_not_depend_on_the_cache_size(sample_store: EmbeddedStore) -> None:
    """A cache smaller than the builds a report cycles through is emptied and refilled: same answers."""
    spec = QuerySpec(queries=("message:error OR message:failed",))
    with EmbeddedStore(sample_store.path) as roomy, EmbeddedStore(sample_store.path, summary_cache_size=3) as tight:
        expected = roomy.builds(spec)
        assert len(expected) > 10
        for _ in range(3):
            assert tight.builds(spec) == expected
        assert 0 < len(tight._summary_cache) <= 3


def test_voting_filter_accepts_every_spelling_of_the_flag(tmp_path: Path) -> None:
    """OpenDev's documents say ``voting: 1``, Zuul's API ``true``: documents are
    stored as given (``voting:true`` still finds the ``true`` ones) and the
    structured voting filter (trend pages, suggest, backtest) accepts all."""
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore
    from elastic_recheck.core.search_types import Filters, QuerySpec

    spellings = [1, "1", True, "true", "True", "yes", "ON", 0, False, "0", "false", "no", "Off", None]
    docs = [{"id": f"d{i}", "message": "boom here", "build_uuid": f"{i:032x}", "build_status": "FAILURE",
             "@timestamp": "2026-11-10T00:00:00Z", **({"voting": v} if v is not None else {})}
            for i, v in enumerate(spellings)]
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents(docs)
        for flag, want in ((True, {0, 1, 2, 3, 4, 5, 6}), (False, {7, 8, 9, 10, 11, 12})):
            spec = QuerySpec(queries=("message:boom",), filters=Filters(voting=flag))
            assert {int(b.uuid, 16) for b in store.builds(spec)} == want
            assert store.count_builds(spec) == len(want)
            assert store.msearch([spec])[0].total == len(want)
        # the text query sees the stored value: JSON true and "true" (as a keyword field in Elasticsearch)
        assert store.count_builds(QuerySpec(queries=("voting:true",))) == 2
        assert store.count_builds(QuerySpec(filters=Filters(voting=None))) == len(spellings)
