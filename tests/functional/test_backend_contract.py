"""The SearchBackend contract: the same semantics on every backend.

One small generated document set (six builds of three jobs over three days,
several statuses, voting and non-voting, multi-valued ``tags``) is loaded
into each backend, and the same questions are asked of all of them. The
expected answers are computed from the documents in Python, never typed in.

Backends:

* ``embedded``: :class:`elastic_recheck.adapters.sqlite.store.EmbeddedStore` on a
  real SQLite file;
* ``elasticsearch`` / ``opensearch``: a real Elasticsearch 7.10.2 /
  OpenSearch 2.19 node started by the test session
  (``tests/fixtures/cluster.py``), or the cluster named by
  ``ELASTIC_RECHECK_TEST_ES_URL`` / ``ELASTIC_RECHECK_TEST_OPENSEARCH_URL``
  (see ``docs/testing.md``). The documents go into throwaway daily indices
  (``ertest-<random>-YYYY.MM.DD``, explicit mapping) that are deleted
  afterwards. Without Java and Maven these are skipped, saying so (they
  fail under ``CI=true``).
"""

from __future__ import annotations

import os
import re
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.bulk import BulkWriter
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.schema import KNOWN_FIELDS, parse_voting
from elastic_recheck.core.search_types import Filters, QuerySpec, TimeWindow
from elastic_recheck.ports.search import SearchBackend
from tests.fixtures.cluster import ClusterNode
from tests.fixtures.es_server import (
    FakeCluster,
    Reply,
    Request,
    bulk_item,
    bulk_response,
)

DAY0 = datetime(2024, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
WINDOW = TimeWindow(DAY0, DAY0 + 3 * DAY)

CONSOLE_TAGS = ["job-output.txt", "console"]
SCREEN_TAGS = ["screen-n-cpu.txt", "screen", "oslofmt"]


@dataclass(frozen=True)
class FakeBuild:
    uuid: str
    name: str
    status: str
    change: str
    patchset: str
    queue: str
    project: str
    voting: bool
    provider: str
    start: datetime
    #: (filename, message, tags) per log line, one second apart.
    lines: tuple[tuple[str, str, tuple[str, ...]], ...]
    #: How the documents spell ``voting`` (default ``"1"``/``"0"``, OpenDev's).
    voting_spelling: Any = None


def _job(msg: str) -> tuple[str, str, tuple[str, ...]]:
    return ("job-output.txt", msg, tuple(CONSOLE_TAGS))


def _cpu(msg: str) -> tuple[str, str, tuple[str, ...]]:
    return ("logs/screen-n-cpu.txt", msg, tuple(SCREEN_TAGS))


BUILDS: tuple[FakeBuild, ...] = (
    FakeBuild(
        "a1" * 16, "tempest-full", "FAILURE", "1001", "1", "gate", "openstack/nova", True, "rax-dfw",
        DAY0 + timedelta(hours=3),
        (
            _job("Starting job tempest-full"),
            _job("Timed out waiting for a reply to message ID 1f2e"),
            _cpu("ERROR nova compute manager Instance failed to spawn"),
            _cpu("Timed out waiting for a reply to message ID 77aa"),
            _job("Job complete, result: FAILURE"),
        ),
    ),
    FakeBuild(
        "b2" * 16, "unit-tests", "POST_FAILURE", "1002", "4", "gate", "openstack/nova", True, "ovh-bhs1",
        DAY0 + DAY - timedelta(seconds=3),  # its lines end one second before midnight
        (
            _job("Starting job unit-tests"),
            ("job-output.txt", "Upload of logs failed", ("alpha beta", "gamma delta")),
            _job("Job complete, result: POST_FAILURE"),
        ),
    ),
    FakeBuild(
        "c3" * 16, "tempest-full", "FAILURE", "1003", "2", "check", "openstack/nova", True, "ovh-bhs1",
        DAY0 + DAY,  # first line exactly at midnight
        (
            _job("Starting job tempest-full"),
            _job("Timed out waiting for a reply to message ID 9c0d"),
            _job("Connection refused by console proxy"),
            _job("Job complete, result: FAILURE"),
        ),
    ),
    FakeBuild(
        "d4" * 16, "tempest-full", "SUCCESS", "1004", "1", "gate", "openstack/neutron", True, "rax-dfw",
        DAY0 + DAY + timedelta(hours=10),
        (
            _job("Starting job tempest-full"),
            _cpu("INFO nova compute manager Instance spawned"),
            _job("Job complete, result: SUCCESS"),
        ),
    ),
    FakeBuild(
        "e5" * 16, "grenade", "FAILURE", "1005", "7", "check", "openstack/neutron", False, "ovh-bhs1",
        DAY0 + 2 * DAY + timedelta(hours=5),
        (
            _job("Starting job grenade"),
            _job("Connection refused while contacting the metadata service"),
            _job("Job complete, result: FAILURE"),
        ),
    ),
    FakeBuild(
        "f6" * 16, "grenade", "TIMED_OUT", "1006", "1", "gate", "openstack/nova", True, "vexxhost-sjc1",
        DAY0 + 2 * DAY + timedelta(hours=20),
        (
            _job("Starting job grenade"),
            _cpu("Timed out waiting for a reply to message ID 5b5b"),
            _job("Job timed out"),
        ),
    ),
    FakeBuild(  # voting spelled as Zuul's API spells it: JSON true
        "07" * 16, "tempest-full", "SUCCESS", "1007", "3", "gate", "openstack/cinder", True, "rax-dfw",
        DAY0 + 2 * DAY + timedelta(hours=12),
        (
            _job("Starting job tempest-full"),
            _job("Job complete, result: SUCCESS"),
        ),
        voting_spelling=True,
    ),
)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for b in BUILDS:
        for i, (filename, message, tags) in enumerate(b.lines):
            docs.append(
                {
                    "@timestamp": iso(b.start + timedelta(seconds=i)),
                    "message": message,
                    "tags": list(tags),
                    "filename": filename,
                    "build_name": b.name,
                    "build_status": b.status,
                    "build_uuid": b.uuid,
                    "build_short_uuid": b.uuid[:7],
                    "build_change": b.change,
                    "build_patchset": b.patchset,
                    "build_queue": b.queue,
                    "build_branch": "master",
                    "project": b.project,
                    "voting": b.voting_spelling if b.voting_spelling is not None else ("1" if b.voting else "0"),
                    "node_provider": b.provider,
                    "loglevel": message.split()[0] if message.split()[0].isupper() else "INFO",
                    "log_url": f"https://logs.example.org/{b.change}/{b.uuid[:7]}/{filename}",
                }
            )
    return docs


DOCS = make_docs()


def ts(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["@timestamp"])


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def has_phrase(text: str, phrase: str) -> bool:
    """Consecutive words; the messages above use plain words, so this is what the analyzer does."""
    w, p = words(text), words(phrase)
    return any(w[i : i + len(p)] == p for i in range(len(w) - len(p) + 1))


def where(pred: Callable[[dict[str, Any]], bool], window: TimeWindow = WINDOW) -> list[dict[str, Any]]:
    out = []
    for d in DOCS:
        t = ts(d)
        if window.start is not None and t < window.start:
            continue
        if window.end is not None and t >= window.end:
            continue
        if pred(d):
            out.append(d)
    return sorted(out, key=ts)


def stamps(docs: Sequence[dict[str, Any]]) -> list[datetime]:
    return [ts(d) for d in docs]


# ---------------------------------------------------------------------------
# Backends


def _embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchBackend]:
    try:
        from elastic_recheck.adapters.sqlite.store import EmbeddedStore
    except ImportError as exc:
        pytest.skip(f"embedded store not importable yet ({exc})")
    store = EmbeddedStore(tmp_path_factory.mktemp("contract") / "store.db")
    store.add_documents([dict(d) for d in DOCS])
    yield store
    close = getattr(store, "close", None)
    if callable(close):
        close()


#: Explicit mapping of the throwaway indices: text for message/tags, exact
#: keywords for everything else (as OpenDev's OpenSearch maps them).
def cluster_mapping() -> dict[str, Any]:
    props: dict[str, Any] = {name: {"type": "keyword"} for name in KNOWN_FIELDS}
    props["@timestamp"] = {"type": "date"}
    props["message"] = {"type": "text"}
    props["tags"] = {"type": "text"}
    return {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": props},
    }


def load_cluster(flavor: str, url: str) -> Generator[ElasticBackend, None, None]:
    """Create the throwaway indices, load DOCS, yield the backend, delete the indices."""
    prefix = f"ertest-{uuidlib.uuid4().hex[:10]}"
    backend = ElasticBackend(
        ClusterSettings(
            url=url,
            flavor=flavor,
            index_format=prefix + "-%Y.%m.%d",
            verify_certs=os.environ.get("ELASTIC_RECHECK_TEST_VERIFY_CERTS", "1") != "0",
            ca_certs=os.environ.get("ELASTIC_RECHECK_TEST_CA_CERTS", ""),
            timeout=30.0,
            retries=1,
        )
    )
    indices = sorted({backend.index_for(d) for d in DOCS})
    try:
        for name in indices:
            backend.client.indices.create(index=name, body=cluster_mapping())
        # the project's writer (ingest and collect), without its index template
        stats = BulkWriter(backend, template="").add_documents(DOCS)
        assert stats.docs == len(DOCS) and not stats.bad_lines, stats.summary()
        yield backend
    finally:
        for name in indices:
            try:
                backend.client.indices.delete(index=name, ignore_unavailable=True)
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the test result
                print(f"could not delete test index {name}: {exc}")
        backend.close()


def cluster_url(flavor: str, request: pytest.FixtureRequest) -> str:
    """The cluster to test: ``$ELASTIC_RECHECK_TEST_{ES,OPENSEARCH}_URL``, else the session's own node."""
    env = CLUSTER_URL_ENV[flavor]
    url = os.environ.get(env)
    if url:
        return url
    node: ClusterNode = request.getfixturevalue(f"{flavor}_node")
    return node.url


CLUSTER_URL_ENV = {"elasticsearch": "ELASTIC_RECHECK_TEST_ES_URL", "opensearch": "ELASTIC_RECHECK_TEST_OPENSEARCH_URL"}


@pytest.fixture(scope="module", params=["embedded", "elasticsearch", "opensearch"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchBackend]:
    if request.param == "embedded":
        yield from _embedded(tmp_path_factory)
    else:
        yield from load_cluster(request.param, cluster_url(request.param, request))


# ---------------------------------------------------------------------------
# search


TIMED_OUT = 'message:"Timed out waiting for a reply"'


def test_phrase_search_counts_and_orders(backend: SearchBackend) -> None:
    expected = where(lambda d: has_phrase(d["message"], "Timed out waiting for a reply"))
    assert len(expected) == 4
    res = backend.search(QuerySpec(queries=(TIMED_OUT,), window=WINDOW), size=100)
    assert res.error is None and not res.partial
    assert res.total == len(expected)
    assert [h.timestamp for h in res.hits] == stamps(expected)  # oldest first
    assert {h.get("build_uuid") for h in res.hits} == {d["build_uuid"] for d in expected}

    newest = backend.search(QuerySpec(queries=(TIMED_OUT,), window=WINDOW), size=2, newest_first=True)
    assert newest.total == len(expected)  # the total is not cut by size
    assert [h.timestamp for h in newest.hits] == stamps(expected)[::-1][:2]


def test_unqualified_terms_search_the_message(backend: SearchBackend) -> None:
    # "console" is a tag of every job-output line, but in one message only.
    expected = where(lambda d: "console" in words(d["message"]))
    assert len(expected) == 1 and len(where(lambda d: "console" in d["tags"])) > 1
    res = backend.search(QuerySpec(queries=("console",), window=WINDOW))
    assert stamps(expected) == [h.timestamp for h in res.hits]


def test_every_query_text_must_match(backend: SearchBackend) -> None:
    spec = QuerySpec(queries=(TIMED_OUT, 'tags:"screen-n-cpu.txt"'), window=WINDOW)
    expected = where(lambda d: has_phrase(d["message"], "Timed out waiting for a reply") and "screen-n-cpu.txt" in d["tags"])
    assert len(expected) == 2
    assert [h.timestamp for h in backend.search(spec).hits] == stamps(expected)


def test_structured_filters(backend: SearchBackend) -> None:
    cases: list[tuple[Filters, Callable[[dict[str, Any]], bool]]] = [
        (Filters(build_uuid=BUILDS[0].uuid), lambda d: d["build_uuid"] == BUILDS[0].uuid),
        (Filters(build_short_uuid=BUILDS[2].uuid[:7], build_change="1003", build_patchset="2"), lambda d: d["build_uuid"] == BUILDS[2].uuid),
        (Filters(build_status="FAILURE", project="openstack/nova"), lambda d: d["build_status"] == "FAILURE" and d["project"] == "openstack/nova"),
        (Filters(voting=False), lambda d: parse_voting(d["voting"]) is False),
        (Filters(voting=True, build_queue="gate", build_name="grenade"), lambda d: parse_voting(d["voting"]) and d["build_queue"] == "gate" and d["build_name"] == "grenade"),
        # every spelling of the flag counts: "1" and JSON true alike
        (Filters(voting=True, build_name="tempest-full"), lambda d: parse_voting(d["voting"]) and d["build_name"] == "tempest-full"),
        (Filters(extra={"node_provider": ("rax-dfw", "vexxhost-sjc1")}), lambda d: d["node_provider"] in ("rax-dfw", "vexxhost-sjc1")),
        (Filters(extra={"filename": "logs/screen-n-cpu.txt"}), lambda d: d["filename"] == "logs/screen-n-cpu.txt"),
        # Filter values are exact: a value that looks like query syntax matches nothing.
        (Filters(build_change='1001" OR *:*'), lambda d: False),
        (Filters(build_name="Tempest-Full"), lambda d: False),
    ]
    for filters, pred in cases:
        expected = where(pred)
        res = backend.search(QuerySpec(filters=filters, window=WINDOW), size=100)
        assert res.total == len(expected), filters
        assert [h.timestamp for h in res.hits] == stamps(expected), filters


def test_window_is_half_open(backend: SearchBackend) -> None:
    midnight = DAY0 + DAY
    before = TimeWindow(DAY0, midnight)
    after = TimeWindow(midnight, DAY0 + 3 * DAY)
    exp_before = where(lambda d: True, before)
    exp_after = where(lambda d: True, after)
    assert exp_after and stamps(exp_after)[0] == midnight  # a document sits on the boundary
    assert backend.search(QuerySpec(window=before), size=100).total == len(exp_before)
    got_after = backend.search(QuerySpec(window=after), size=100)
    assert got_after.total == len(exp_after)
    assert got_after.hits[0].timestamp == midnight
    one_second = TimeWindow(midnight, midnight + timedelta(seconds=1))
    assert [h.timestamp for h in backend.search(QuerySpec(window=one_second)).hits] == [midnight]
    assert backend.search(QuerySpec(window=TimeWindow(DAY0 - 10 * DAY, DAY0 - 9 * DAY))).total == 0


def test_multivalued_tags(backend: SearchBackend) -> None:
    expected = where(lambda d: "gamma delta" in d["tags"])
    assert len(expected) == 1
    assert backend.search(QuerySpec(queries=('tags:"gamma delta"',), window=WINDOW)).total == 1
    assert backend.search(QuerySpec(queries=("tags:alpha AND tags:delta",), window=WINDOW)).total == 1
    # A phrase never spans two values of a multi-valued field (position gap).
    assert backend.search(QuerySpec(queries=('tags:"beta gamma"',), window=WINDOW)).total == 0


# ---------------------------------------------------------------------------
# msearch


def test_msearch_keeps_order_and_isolates_errors(backend: SearchBackend) -> None:
    queries = [TIMED_OUT, 'message:"unterminated', 'message:"no such line anywhere"', 'message:"Connection refused"']
    specs = [QuerySpec(queries=(q,), window=WINDOW, label=f"q{i}") for i, q in enumerate(queries)]
    results = backend.msearch(specs, size=1)
    assert [r.label for r in results] == ["q0", "q1", "q2", "q3"]
    assert results[1].error
    assert results[1].total == 0 and not results[1].hits
    for i in (0, 2, 3):
        phrase = queries[i].split(":", 1)[1].strip('"')
        expected = [d for d in where(lambda d: True) if has_phrase(d["message"], phrase)]
        assert results[i].error is None
        assert results[i].total == len(expected), queries[i]
        assert [h.timestamp for h in results[i].hits] == stamps(expected)[:1]
    assert backend.msearch([]) == []


def test_search_with_a_syntax_error_raises(backend: SearchBackend) -> None:
    with pytest.raises(BackendError) as info:
        backend.search(QuerySpec(queries=('message:"unterminated',), window=WINDOW))
    assert info.value.retryable is False


# ---------------------------------------------------------------------------
# aggregations


def test_count_builds_counts_distinct_builds(backend: SearchBackend) -> None:
    spec = QuerySpec(queries=('message:"Starting job" OR message:"Timed out waiting"',), window=WINDOW)
    matching = where(lambda d: has_phrase(d["message"], "Starting job") or has_phrase(d["message"], "Timed out waiting"))
    assert len(matching) > len({d["build_uuid"] for d in matching})  # several lines per build
    assert backend.count_builds(spec) == len({d["build_uuid"] for d in matching})
    assert backend.count_builds(QuerySpec(queries=(TIMED_OUT,), filters=Filters(voting=False), window=WINDOW)) == 0


@pytest.mark.parametrize("hours", [24, 6])
def test_build_histogram(backend: SearchBackend, hours: int) -> None:
    interval = timedelta(hours=hours)
    spec = QuerySpec(queries=('message:"Job complete" OR message:"Job timed out"',), window=WINDOW)
    expected: dict[datetime, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for d in where(lambda d: has_phrase(d["message"], "Job complete") or has_phrase(d["message"], "Job timed out")):
        t = ts(d)
        start = datetime.fromtimestamp(t.timestamp() // interval.total_seconds() * interval.total_seconds(), tz=UTC)
        expected[start][d["build_status"]].add(d["build_uuid"])
    got = backend.build_histogram(spec, interval)
    assert [b.start for b in got] == sorted(expected)
    for bucket in got:
        assert dict(bucket.counts) == {s: len(u) for s, u in expected[bucket.start].items()}, bucket.start
    assert sum(b.total for b in got) == len(BUILDS)


def test_terms_by_distinct_builds(backend: SearchBackend) -> None:
    spec = QuerySpec(window=WINDOW)
    builds: dict[str, set[str]] = defaultdict(set)
    docs: dict[str, int] = defaultdict(int)
    for d in where(lambda d: True):
        builds[d["build_name"]].add(d["build_uuid"])
        docs[d["build_name"]] += 1
    expected = sorted(((name, len(u), docs[name]) for name, u in builds.items()), key=lambda t: (-t[1], t[0]))
    assert len({b for _, b, _ in expected}) == len(expected)  # no ties: the order is defined
    got = backend.terms(spec, "build_name", size=10)
    assert [(t.value, t.builds, t.docs) for t in got] == expected
    top = backend.terms(spec, "build_name", size=1)
    assert [(t.value, t.builds) for t in top] == [expected[0][:2]]
    # By builds, not documents: tempest-full has the most builds, not the most lines.
    providers = backend.terms(QuerySpec(queries=(TIMED_OUT,), window=WINDOW), "node_provider")
    exp_prov: dict[str, set[str]] = defaultdict(set)
    for d in where(lambda d: has_phrase(d["message"], "Timed out waiting for a reply")):
        exp_prov[d["node_provider"]].add(d["build_uuid"])
    assert {t.value: t.builds for t in providers} == {k: len(v) for k, v in exp_prov.items()}


def test_latest_timestamp(backend: SearchBackend) -> None:
    assert backend.latest_timestamp() == max(ts(d) for d in DOCS)
    # with a bound (the health page ignores events dated in the future): the newest before it
    times = sorted({ts(d) for d in DOCS})
    assert backend.latest_timestamp(until=times[-1] + timedelta(milliseconds=1)) == times[-1]
    assert backend.latest_timestamp(until=times[-1]) == times[-2]
    assert backend.latest_timestamp(until=times[0] - timedelta(days=1)) is None


def test_indexed_files(backend: SearchBackend) -> None:
    for b in BUILDS:
        assert backend.indexed_files(b.uuid) == {f for f, _, _ in b.lines}
    assert backend.indexed_files("0" * 32) == set()


def test_builds(backend: SearchBackend) -> None:
    spec = QuerySpec(queries=(TIMED_OUT,), window=WINDOW)
    matching = where(lambda d: has_phrase(d["message"], "Timed out waiting for a reply"))
    per_build: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in matching:
        per_build[d["build_uuid"]].append(d)
    order = sorted(per_build, key=lambda u: max(ts(d) for d in per_build[u]), reverse=True)
    got = backend.builds(spec)
    assert [i.uuid for i in got] == order
    for info in got:
        lines = per_build[info.uuid]
        assert info.docs == len(lines)
        assert info.first_seen == min(ts(d) for d in lines)
        assert info.last_seen == max(ts(d) for d in lines)
        build = next(b for b in BUILDS if b.uuid == info.uuid)
        assert info.fields["build_name"] == build.name
        assert info.fields["project"] == build.project
        assert parse_voting(info.fields["voting"]) is build.voting
        # the build's log directory, whichever of its documents (files) was picked
        assert info.fields["log_url"] == f"https://logs.example.org/{build.change}/{build.uuid[:7]}/"
    assert [i.uuid for i in backend.builds(spec, limit=1)] == order[:1]


def test_failed_tests_is_unknown_or_a_set(backend: SearchBackend) -> None:
    result = backend.failed_tests(BUILDS[0].uuid)
    assert result is None or isinstance(result, set)


def test_ping(backend: SearchBackend) -> None:
    assert backend.ping() is True


# ---------------------------------------------------------------------------
# The real-cluster loader itself, request by request, against the fake cluster


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_cluster_loader_creates_loads_and_deletes_its_indices(flavor: str) -> None:
    def bulk_ok(req: Request) -> Reply:
        actions = req.ndjson()[0::2]
        return Reply(200, bulk_response(bulk_item(a["index"]["_index"], str(i)) for i, a in enumerate(actions)))

    with FakeCluster(flavor) as fake:
        fake.always("PUT", "*", {"acknowledged": True, "shards_acknowledged": True})
        fake.always("DELETE", "*", {"acknowledged": True})
        fake.always_respond("POST", "_bulk", bulk_ok)
        fake.always("POST", "_refresh", {"_shards": {"total": 1, "successful": 1, "failed": 0}})
        loader = load_cluster(flavor, fake.url)
        backend = next(loader)
        days = sorted({d["@timestamp"][:10].replace("-", ".") for d in DOCS})
        created = [r for r in fake.requests if r.method == "PUT"]
        assert [r.path.rsplit("-", 1)[1] for r in created] == days
        prefix = created[0].path.rsplit("-", 1)[0]
        assert prefix.startswith("/ertest-") and all(r.path.startswith(prefix) for r in created)
        mapping = created[0].json()["mappings"]["properties"]
        assert mapping["message"] == {"type": "text"} and mapping["build_uuid"] == {"type": "keyword"}
        (bulk,) = fake.requests_to("_bulk")
        assert len(bulk.ndjson()) == 2 * len(DOCS)
        # voting goes in as the term the adapter's filter asks for, however the document spells it
        sources = bulk.ndjson()[1::2]
        assert [src["voting"] for src in sources] == ["1" if b.voting else "0" for b in BUILDS for _ in b.lines]
        assert any(d["voting"] is True for d in DOCS)
        (refresh,) = fake.requests_to("_refresh")  # searchable before the tests run
        assert refresh.path == "/" + ",".join(r.path.lstrip("/") for r in created) + "/_refresh"
        assert isinstance(backend, ElasticBackend)
        assert not [r for r in fake.requests if r.method == "DELETE"]
        loader.close()  # the fixture's teardown
        deleted = [r.path for r in fake.requests if r.method == "DELETE"]
        assert deleted == [r.path for r in created]
