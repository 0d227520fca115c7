"""The Elasticsearch/OpenSearch adapter against a fake cluster at the HTTP boundary.

The real ``elasticsearch`` 7.17 and ``opensearch-py`` clients talk over real
sockets to :class:`tests.fixtures.es_server.FakeCluster`, which records every
request. Tests assert the exact requests (query text byte-identical to the
fingerprint, structured filters, daily indices, one ``_msearch`` per batch,
credentials only in the Authorization header) and the parsing of realistic
answers (hits, aggregations, per-query errors, partial results, 4xx/5xx,
timeouts). Every test runs for both ``backend = elasticsearch`` and
``backend = opensearch``.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend, backend_from_config
from elastic_recheck.adapters.elastic.dsl import index_names, interval_string
from elastic_recheck.adapters.elastic.settings import (
    CARDINALITY_PRECISION,
    COMPOSITE_PAGE,
    MAX_DAILY_INDICES,
    ClusterSettings,
    redact_url,
)
from elastic_recheck.core.classify import BuildRef, Classifier
from elastic_recheck.core.config import from_mapping, split_credentials
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.search_types import Filters, QuerySpec, TimeWindow
from elastic_recheck.ports.search import SearchBackend
from tests.fixtures.es_server import (
    FakeCluster,
    Reply,
    Request,
    accept_writes,
    auth_error,
    bulk_item,
    bulk_response,
    hit,
    msearch_response,
    query_parse_error,
    rejected_error,
    search_response,
    shard_failure,
    unavailable_error,
)

FLAVORS = ("elasticsearch", "opensearch")

#: 2024-03-01 06:00 .. 2024-03-03 18:00 UTC: three daily indices.
WINDOW = TimeWindow(datetime(2024, 3, 1, 6, tzinfo=UTC), datetime(2024, 3, 3, 18, tzinfo=UTC))
THREE_DAYS = ["logstash-2024.03.01", "logstash-2024.03.02", "logstash-2024.03.03"]

#: A fingerprint with everything that could be mangled on the way: quotes,
#: escapes, a regex, a wildcard, grouping, unicode and a trailing space.
NASTY = 'message:"Timed out \\"waiting\\" for é" AND (tags:screen-n-cpu.txt OR filename:/job-.*\\.txt/) AND NOT loglevel:DEBUG* '

PASSWORD = "s3cr3t:p@ss/word"
USER = "reader"


@pytest.fixture(params=FLAVORS)
def cluster(request: pytest.FixtureRequest) -> Any:
    with FakeCluster(request.param) as fake:
        yield fake


def make_backend(cluster: FakeCluster, **overrides: Any) -> ElasticBackend:
    values: dict[str, Any] = {"url": cluster.url, "flavor": cluster.flavor, "timeout": 5.0, "retries": 0, "backoff": 0.01}
    values.update(overrides)
    return ElasticBackend(ClusterSettings(**values))


@pytest.fixture
def backend(cluster: FakeCluster) -> Any:
    b = make_backend(cluster)
    yield b
    b.close()


def only(cluster: FakeCluster, endpoint: str) -> Request:
    reqs = cluster.requests_to(endpoint)
    assert len(reqs) == 1, f"expected one {endpoint} request, got {[(r.method, r.path) for r in cluster.requests]}"
    return reqs[0]


def agg_name(req: Request) -> str:
    aggs = req.json()["aggs"]
    assert len(aggs) == 1
    return str(next(iter(aggs)))


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def source(ts: str, **fields: Any) -> dict[str, Any]:
    return {"@timestamp": ts, "message": "line", **fields}


# ---------------------------------------------------------------------------
# Pure helpers


def test_index_names_for_a_three_day_window() -> None:
    assert index_names("logstash-%Y.%m.%d", WINDOW) == THREE_DAYS
    # The end is exclusive: midnight of the 4th adds no index.
    exact = TimeWindow(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC))
    assert index_names("logstash-%Y.%m.%d", exact) == THREE_DAYS
    # Naive datetimes are UTC; other offsets are converted to UTC days.
    shifted = TimeWindow(
        datetime(2024, 3, 1, 1, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")),
        datetime(2024, 3, 2, 1),
    )
    assert index_names("logstash-%Y.%m.%d", shifted) == THREE_DAYS[:2]


def test_index_names_open_long_monthly_and_fixed() -> None:
    assert index_names("logstash-%Y.%m.%d", TimeWindow()) == ["logstash-*"]
    assert index_names("logstash-%Y.%m.%d", TimeWindow(start=WINDOW.start)) == ["logstash-*"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    long = TimeWindow(start, start + timedelta(days=MAX_DAILY_INDICES + 1))
    assert index_names("logstash-%Y.%m.%d", long) == ["logstash-*"]
    edge = TimeWindow(start, start + timedelta(days=MAX_DAILY_INDICES))
    assert len(index_names("logstash-%Y.%m.%d", edge)) == MAX_DAILY_INDICES
    assert index_names("logs-%Y.%m", TimeWindow(datetime(2024, 1, 30), datetime(2024, 2, 2))) == ["logs-2024.01", "logs-2024.02"]
    assert index_names("logstash", WINDOW) == ["logstash"]


def test_interval_string() -> None:
    assert interval_string(timedelta(days=1)) == "1d"
    assert interval_string(timedelta(hours=6)) == "6h"
    assert interval_string(timedelta(minutes=90)) == "90m"
    assert interval_string(timedelta(seconds=1.5)) == "1500ms"
    with pytest.raises(ValueError):
        interval_string(timedelta(0))


def test_split_credentials() -> None:
    assert split_credentials("https://bob:p%40ss@es.example.org:9200/prefix") == ("https://es.example.org:9200/prefix", "bob", "p@ss")
    assert split_credentials(" localhost:9200 ") == ("http://localhost:9200", "", "")
    assert split_credentials("http://[::1]:9200") == ("http://[::1]:9200", "", "")


def test_redact_url() -> None:
    assert redact_url("GET https://bob:pw@es.example.org:9200/x failed") == "GET https://***@es.example.org:9200/x failed"
    assert redact_url("http://es:9200/") == "http://es:9200/"


# ---------------------------------------------------------------------------
# search


def test_search_request_is_structured_and_text_is_unchanged(cluster: FakeCluster, backend: ElasticBackend) -> None:
    hostile = '1" OR *:* OR build_change:"2'
    spec = QuerySpec(
        queries=(NASTY, "build_queue:gate"),
        filters=Filters(
            build_uuid="0123abcd",
            build_short_uuid="0123abc",
            build_change=hostile,
            build_patchset="3",
            build_name="tempest-full",
            build_status="FAILURE",
            build_queue="gate",
            project="openstack/nova",
            voting=True,
            extra={"node_provider": ("rax-dfw", "ovh-bhs1"), "build_branch": "master"},
        ),
        window=WINDOW,
    )
    cluster.reply("POST", "_search", search_response())
    backend.search(spec, size=25)
    req = only(cluster, "_search")
    assert req.method == "POST"
    assert req.path == "/" + ",".join(THREE_DAYS) + "/_search"
    assert req.params["ignore_unavailable"] == "true"
    body = req.json()
    must = body["query"]["bool"]["must"]
    assert [m["query_string"]["query"] for m in must] == [NASTY, "build_queue:gate"]
    assert must[0]["query_string"]["default_field"] == "message"
    assert must[0]["query_string"]["default_operator"] == "OR"
    # The raw bytes carry the fingerprint as one JSON string, nothing else.
    assert sum(1 for m in must if m["query_string"]["query"] == NASTY) == 1
    filters = body["query"]["bool"]["filter"]
    assert {"term": {"build_uuid": "0123abcd"}} in filters
    assert {"term": {"build_short_uuid": "0123abc"}} in filters
    assert {"term": {"build_change": hostile}} in filters
    assert {"term": {"build_patchset": "3"}} in filters
    assert {"term": {"build_name": "tempest-full"}} in filters
    assert {"term": {"build_status": "FAILURE"}} in filters
    assert {"term": {"build_queue": "gate"}} in filters
    assert {"term": {"project": "openstack/nova"}} in filters
    assert {"term": {"voting": "1"}} in filters
    assert {"terms": {"node_provider": ["rax-dfw", "ovh-bhs1"]}} in filters
    assert {"term": {"build_branch": "master"}} in filters
    assert {
        "range": {
            "@timestamp": {
                "gte": "2024-03-01T06:00:00.000000Z",
                "lt": "2024-03-03T18:00:00.000000Z",
                "format": "strict_date_optional_time",
            }
        }
    } in filters
    assert len(filters) == 12
    # The untrusted value is only ever a term value, never query text.
    assert all(hostile not in m["query_string"]["query"] for m in must)
    assert body["size"] == 25
    assert body["sort"] == [{"@timestamp": {"order": "asc", "unmapped_type": "date"}}]
    assert body["track_total_hits"] is True


def test_search_parses_hits(cluster: FakeCluster, backend: ElasticBackend) -> None:
    cluster.reply(
        "POST",
        "_search",
        search_response(
            [
                hit("logstash-2024.03.01", "AX1", source("2024-03-01T10:00:00.123Z", build_uuid="u1"), flavor=cluster.flavor),
                hit("logstash-2024.03.02", "AX2", source("2024-03-02T11:30:00.000000123+00:00"), flavor=cluster.flavor),
                hit("logstash-2024.03.02", "AX3", {"message": "no timestamp"}, flavor=cluster.flavor),
            ],
            total=10000,
            relation="gte",
        ),
    )
    res = backend.search(QuerySpec(queries=("message:line",), window=WINDOW, label="bug-1"), newest_first=True)
    assert res.label == "bug-1"
    assert res.total == 10000
    assert not res.partial and res.error is None
    assert [h.id for h in res.hits] == ["AX1", "AX2", "AX3"]
    assert [h.index for h in res.hits] == ["logstash-2024.03.01", "logstash-2024.03.02", "logstash-2024.03.02"]
    assert res.hits[0].timestamp == datetime(2024, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert res.hits[1].timestamp == datetime(2024, 3, 2, 11, 30, tzinfo=UTC)
    assert res.hits[2].timestamp is None
    assert res.hits[0].get("build_uuid") == "u1"
    assert only(cluster, "_search").json()["sort"][0]["@timestamp"]["order"] == "desc"


def test_open_window_searches_the_wildcard_without_range(cluster: FakeCluster, backend: ElasticBackend) -> None:
    cluster.reply("POST", "_search", search_response())
    backend.search(QuerySpec(queries=("message:x",)))
    req = only(cluster, "_search")
    assert req.path == "/logstash-*/_search"
    assert "filter" not in req.json()["query"]["bool"]


def test_partial_search_is_flagged_and_logged(cluster: FakeCluster, backend: ElasticBackend, caplog: pytest.LogCaptureFixture) -> None:
    failure = shard_failure("logstash-2024.03.02", 1, "node_not_connected_exception", "[es-node-2][10.0.0.2:9300] Node not connected")
    cluster.reply("POST", "_search", search_response([], total=4, failures=[failure]))
    with caplog.at_level(logging.WARNING, logger="elastic_recheck"):
        res = backend.search(QuerySpec(queries=("message:x",), window=WINDOW))
    assert res.partial
    assert res.total == 4
    assert "1 of 3 shards failed" in caplog.text
    assert "Node not connected" in caplog.text


def test_query_error_on_search_is_not_retryable(cluster: FakeCluster) -> None:
    backend = make_backend(cluster, retries=3)
    bad = 'message:"unterminated'
    cluster.reply("POST", "_search", query_parse_error(bad), status=400)
    with pytest.raises(BackendError) as info:
        backend.search(QuerySpec(queries=(bad,), window=WINDOW))
    assert info.value.retryable is False
    assert "Cannot parse" in str(info.value)
    assert "HTTP 400" in str(info.value)
    assert len(cluster.requests_to("_search")) == 1  # a 4xx is never retried


# ---------------------------------------------------------------------------
# msearch


def test_msearch_is_one_request_with_per_query_errors_and_partials(
    cluster: FakeCluster, backend: ElasticBackend, caplog: pytest.LogCaptureFixture
) -> None:
    bad = 'message:"unterminated'
    specs = [
        QuerySpec(queries=(NASTY,), filters=Filters(build_uuid="u1"), window=WINDOW, label="111"),
        QuerySpec(queries=(bad,), filters=Filters(build_uuid="u1"), window=WINDOW, label="222"),
        QuerySpec(queries=("message:partial",), filters=Filters(build_uuid="u1"), label="333"),
        QuerySpec(queries=("message:none",), filters=Filters(build_uuid="u1"), window=WINDOW, label="444"),
    ]
    failure = shard_failure("logstash-2024.03.03", 0, "es_rejected_execution_exception", "rejected execution on search pool")
    cluster.reply(
        "POST",
        "_msearch",
        msearch_response(
            search_response([hit("logstash-2024.03.02", "h1", source("2024-03-02T01:02:03Z", build_uuid="u1"), flavor=cluster.flavor)], total=7),
            query_parse_error(bad),
            search_response([hit("logstash-2024.03.03", "h2", source("2024-03-03T00:00:00Z"), flavor=cluster.flavor)], total=1, failures=[failure]),
            search_response([], total=0),
        ),
    )
    with caplog.at_level(logging.WARNING, logger="elastic_recheck"):
        results = backend.msearch(specs, size=1)
    req = only(cluster, "_msearch")
    # besides GET / (the version probe, and the ES client's product check), one request
    assert [r.endpoint for r in cluster.requests if r.endpoint != "/"] == ["_msearch"]
    lines = req.ndjson()
    assert len(lines) == 8
    headers, bodies = lines[0::2], lines[1::2]
    assert headers[0] == {"index": THREE_DAYS, "ignore_unavailable": True, "allow_no_indices": True}
    assert headers[2]["index"] == ["logstash-*"]
    assert [b["query"]["bool"]["must"][0]["query_string"]["query"] for b in bodies] == [NASTY, bad, "message:partial", "message:none"]
    assert all(b["size"] == 1 for b in bodies)
    assert all({"term": {"build_uuid": "u1"}} in b["query"]["bool"]["filter"] for b in bodies)

    assert [r.label for r in results] == ["111", "222", "333", "444"]
    assert results[0].total == 7 and results[0].hits[0].id == "h1" and results[0].error is None
    assert results[1].error is not None and "Cannot parse 'message:\"unterminated'" in results[1].error
    assert results[1].hits == [] and results[1].total == 0
    assert results[2].partial and results[2].hits[0].id == "h2"
    assert not results[3].partial and results[3].total == 0 and results[3].error is None
    assert "rejected execution on search pool" in caplog.text
    assert "222" in caplog.text


def test_msearch_of_nothing_sends_nothing(cluster: FakeCluster, backend: ElasticBackend) -> None:
    assert backend.msearch([]) == []
    assert cluster.requests == []


def test_msearch_retries_rejected_items_then_gives_up(cluster: FakeCluster) -> None:
    backend = make_backend(cluster, retries=2)
    specs = [QuerySpec(queries=("message:a",), label="a"), QuerySpec(queries=("message:b",), label="b")]
    cluster.reply("POST", "_msearch", msearch_response(search_response(), rejected_error()))
    cluster.reply("POST", "_msearch", msearch_response(search_response(total=3), search_response(total=5)))
    results = backend.msearch(specs)
    assert [r.total for r in results] == [3, 5]
    assert len(cluster.requests_to("_msearch")) == 2

    cluster.clear()
    cluster.reply("POST", "_msearch", msearch_response(search_response(), rejected_error()), times=3)
    with pytest.raises(BackendError) as info:
        backend.msearch(specs)
    assert info.value.retryable
    assert "es_rejected_execution_exception" in str(info.value)
    assert len(cluster.requests_to("_msearch")) == 3


def test_classifier_sends_one_msearch_per_build(cluster: FakeCluster, backend: ElasticBackend) -> None:
    fps = [
        Fingerprint(bug="1001", query=NASTY),
        Fingerprint(bug="1002", query='message:"Connection refused"'),
        Fingerprint(bug="1003", query="message:oops", allow_nonvoting=True),
    ]
    classifier = Classifier(backend, fps, window=WINDOW)
    cluster.reply(
        "POST",
        "_msearch",
        msearch_response(
            search_response([hit("logstash-2024.03.01", "m1", source("2024-03-01T07:00:00Z", filename="job-output.txt"), flavor=cluster.flavor)]),
            search_response([]),
            search_response([]),
        ),
    )
    result = classifier.classify(BuildRef(uuid="b" * 32, voting=True), lookup=False)
    assert result.bugs == ["1001"]
    req = only(cluster, "_msearch")
    assert cluster.requests_to("_search") == []
    bodies = req.ndjson()[1::2]
    assert [b["query"]["bool"]["must"][0]["query_string"]["query"] for b in bodies] == [fp.query for fp in fps]
    assert all({"term": {"build_uuid": "b" * 32}} in b["query"]["bool"]["filter"] for b in bodies)


def test_a_looked_up_build_is_searched_in_the_indices_of_its_days(cluster: FakeCluster, backend: ElasticBackend) -> None:
    """classify (with lookup) and no window: the days around the build (12 h margin), not logstash-*."""
    first, last = datetime(2024, 3, 2, 23, 50, tzinfo=UTC), datetime(2024, 3, 3, 0, 20, tzinfo=UTC)

    def lookup(req: Request) -> Reply:
        bucket = _build_bucket(req, "b" * 32, first, last, 9, {"build_name": "tempest-full", "voting": "1"})
        return Reply(200, search_response(aggregations={agg_name(req): {"buckets": [bucket]}}))

    cluster.respond("POST", "_search", lookup)
    cluster.reply("POST", "_msearch", msearch_response(search_response([])))
    result = Classifier(backend, [Fingerprint(bug="1001", query="message:oops")]).classify(BuildRef(uuid="b" * 32))
    assert result.error is None and result.bugs == []
    assert only(cluster, "_search").path == "/logstash-*/_search"  # the lookup: any time
    header, body = only(cluster, "_msearch").ndjson()
    assert header["index"] == ["logstash-2024.03.02", "logstash-2024.03.03"]
    assert {"range": {"@timestamp": {"gte": "2024-03-02T00:00:00.000000Z", "lt": "2024-03-04T00:00:00.000000Z",
                                     "format": "strict_date_optional_time"}}} in body["query"]["bool"]["filter"]


# ---------------------------------------------------------------------------
# aggregations


def test_count_builds(cluster: FakeCluster, backend: ElasticBackend) -> None:
    cluster.respond(
        "POST",
        "_search",
        lambda req: Reply(200, search_response(total=0, aggregations={agg_name(req): {"value": 42}})),
    )
    assert backend.count_builds(QuerySpec(queries=("message:x",), filters=Filters(voting=False), window=WINDOW)) == 42
    req = only(cluster, "_search")
    body = req.json()
    assert body["size"] == 0
    assert body["aggs"][agg_name(req)] == {"cardinality": {"field": "build_uuid", "precision_threshold": CARDINALITY_PRECISION}}
    assert {"term": {"voting": "0"}} in body["query"]["bool"]["filter"]
    assert req.path == "/" + ",".join(THREE_DAYS) + "/_search"


def _histogram_answer(req: Request) -> Reply:
    name = agg_name(req)
    spec = req.json()["aggs"][name]
    sub = spec["aggs"]
    status_name = next(k for k, v in sub.items() if "terms" in v)
    builds_name = next(iter(sub[status_name]["aggs"]))
    day1, day3 = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC)

    def status_bucket(key: str, docs: int, builds: int) -> dict[str, Any]:
        return {"key": key, "doc_count": docs, builds_name: {"value": builds}}

    buckets = [
        {
            "key_as_string": "2024-03-01T00:00:00.000Z",
            "key": ms(day1),
            "doc_count": 9,
            **{k: {"value": 3} for k, v in sub.items() if "cardinality" in v},
            status_name: {
                "doc_count_error_upper_bound": 0,
                "sum_other_doc_count": 0,
                "buckets": [status_bucket("FAILURE", 7, 2), status_bucket("SUCCESS", 2, 1)],
            },
        },
        {
            "key_as_string": "2024-03-03T00:00:00.000Z",
            "key": ms(day3),
            "doc_count": 1,
            **{k: {"value": 1} for k, v in sub.items() if "cardinality" in v},
            status_name: {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [status_bucket("TIMED_OUT", 1, 1)]},
        },
        {  # documents without a build_uuid: no build to count, no bucket
            "key_as_string": "2024-03-03T12:00:00.000Z",
            "key": ms(day3) + 12 * 3600 * 1000,
            "doc_count": 2,
            **{k: {"value": 0} for k, v in sub.items() if "cardinality" in v},
            status_name: {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []},
        },
    ]
    return Reply(200, search_response(total=0, aggregations={name: {"buckets": buckets}}))


def test_build_histogram(cluster: FakeCluster, backend: ElasticBackend) -> None:
    cluster.respond("POST", "_search", _histogram_answer)
    buckets = backend.build_histogram(QuerySpec(queries=("message:x",), window=WINDOW), timedelta(days=1))
    assert [b.start for b in buckets] == [datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC)]
    assert dict(buckets[0].counts) == {"FAILURE": 2, "SUCCESS": 1}
    assert buckets[0].total == 3
    assert dict(buckets[1].counts) == {"TIMED_OUT": 1}
    req = only(cluster, "_search")
    spec = req.json()["aggs"][agg_name(req)]
    assert spec["date_histogram"]["field"] == "@timestamp"
    assert spec["date_histogram"]["fixed_interval"] == "1d"
    assert spec["date_histogram"]["min_doc_count"] == 1
    assert "offset" not in spec["date_histogram"] and "time_zone" not in spec["date_histogram"]  # epoch-aligned UTC
    terms = [v for v in spec["aggs"].values() if "terms" in v]
    assert len(terms) == 1 and terms[0]["terms"]["field"] == "build_status"
    assert list(terms[0]["aggs"].values()) == [{"cardinality": {"field": "build_uuid", "precision_threshold": CARDINALITY_PRECISION}}]
    assert req.json()["size"] == 0


def test_terms_orders_by_distinct_builds(cluster: FakeCluster, backend: ElasticBackend) -> None:
    def answer(req: Request) -> Reply:
        name = agg_name(req)
        sub = next(iter(req.json()["aggs"][name]["aggs"]))
        buckets = [
            {"key": "tempest-full", "doc_count": 3, sub: {"value": 3}},
            {"key": "grenade", "doc_count": 40, sub: {"value": 1}},
        ]
        return Reply(200, search_response(aggregations={name: {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": buckets}}))

    cluster.respond("POST", "_search", answer)
    got = backend.terms(QuerySpec(queries=("message:x",), window=WINDOW), "build_name", size=5)
    assert [(t.value, t.builds, t.docs) for t in got] == [("tempest-full", 3, 3), ("grenade", 1, 40)]
    req = only(cluster, "_search")
    spec = req.json()["aggs"][agg_name(req)]
    sub = next(iter(spec["aggs"]))
    assert spec["terms"]["field"] == "build_name"
    assert spec["terms"]["size"] == 5
    assert spec["terms"]["order"] == [{sub: "desc"}, {"_count": "desc"}, {"_key": "asc"}]
    assert spec["aggs"][sub]["cardinality"]["field"] == "build_uuid"


def test_latest_timestamp(cluster: FakeCluster, backend: ElasticBackend) -> None:
    newest = datetime(2024, 3, 3, 17, 59, 59, 999000, tzinfo=UTC)
    cluster.respond(
        "POST",
        "_search",
        lambda req: Reply(200, search_response(aggregations={agg_name(req): {"value": float(ms(newest)), "value_as_string": "2024-03-03T17:59:59.999Z"}})),
    )
    cluster.respond("POST", "_search", lambda req: Reply(200, search_response(aggregations={agg_name(req): {"value": None}})))
    assert backend.latest_timestamp() == newest
    assert backend.latest_timestamp() is None
    req = cluster.requests_to("_search")[0]
    assert req.path == "/logstash-*/_search"
    assert req.json()["aggs"][agg_name(req)] == {"max": {"field": "@timestamp"}}


def test_indexed_files_pages_through_a_composite_aggregation(cluster: FakeCluster, backend: ElasticBackend) -> None:
    names = [f"logs/file-{i:04d}.txt" for i in range(COMPOSITE_PAGE + 3)]

    def page(chunk: list[str]) -> Any:
        def answer(req: Request) -> Reply:
            name = agg_name(req)
            source_name = next(iter(req.json()["aggs"][name]["composite"]["sources"][0]))
            buckets = [{"key": {source_name: n}, "doc_count": 1} for n in chunk]
            return Reply(200, search_response(aggregations={name: {"after_key": {source_name: chunk[-1]}, "buckets": buckets}}))

        return answer

    cluster.respond("POST", "_search", page(names[:COMPOSITE_PAGE]))
    cluster.respond("POST", "_search", page(names[COMPOSITE_PAGE:]))
    assert backend.indexed_files("u-123") == set(names)
    first, second = cluster.requests_to("_search")
    comp1 = first.json()["aggs"][agg_name(first)]["composite"]
    comp2 = second.json()["aggs"][agg_name(second)]["composite"]
    assert list(comp1["sources"][0].values()) == [{"terms": {"field": "filename"}}]
    assert "after" not in comp1
    assert list(comp2["after"].values()) == [names[COMPOSITE_PAGE - 1]]
    assert first.json()["query"]["bool"]["filter"] == [{"term": {"build_uuid": "u-123"}}]
    assert first.path == "/logstash-*/_search"


def _build_bucket(req: Request, key: Any, first: datetime, last: datetime, docs: int, fields: dict[str, Any]) -> dict[str, Any]:
    name = agg_name(req)
    sub = req.json()["aggs"][name]["aggs"]
    out: dict[str, Any] = {"key": key, "doc_count": docs}
    for sub_name, sub_spec in sub.items():
        if "min" in sub_spec:
            out[sub_name] = {"value": float(ms(first)), "value_as_string": first.isoformat()}
        elif "max" in sub_spec:
            out[sub_name] = {"value": float(ms(last)), "value_as_string": last.isoformat()}
        elif "top_hits" in sub_spec:
            out[sub_name] = {
                "hits": {
                    "total": {"value": docs, "relation": "eq"},
                    "max_score": None,
                    "hits": [hit("logstash-2024.03.01", "d", fields, sort=[ms(last)])],
                }
            }
    return out


def test_builds_with_limit_and_without(cluster: FakeCluster, backend: ElasticBackend) -> None:
    t1, t2, t3 = (datetime(2024, 3, d, 12, tzinfo=UTC) for d in (1, 2, 3))

    def limited(req: Request) -> Reply:
        bucket = _build_bucket(req, "u2", t1, t3, 5, {"build_name": "tempest-full", "voting": "1", "project": "openstack/nova"})
        return Reply(200, search_response(aggregations={agg_name(req): {"buckets": [bucket]}}))

    def composite(req: Request) -> Reply:
        buckets = [
            _build_bucket(req, {"key": "u1"}, t1, t1, 2, {"build_name": "a"}),
            _build_bucket(req, {"key": "u2"}, t1, t3, 5, {"build_name": "b"}),
            _build_bucket(req, {"key": "u3"}, t2, t2, 1, {"build_name": "c"}),
        ]
        return Reply(200, search_response(aggregations={agg_name(req): {"after_key": {"key": "u3"}, "buckets": buckets}}))

    cluster.respond("POST", "_search", limited)
    cluster.respond("POST", "_search", composite)
    spec = QuerySpec(filters=Filters(build_short_uuid="abc"), window=WINDOW)
    (info,) = backend.builds(spec, limit=1)
    assert info.uuid == "u2" and info.docs == 5
    assert info.first_seen == t1 and info.last_seen == t3
    assert dict(info.fields) == {"build_name": "tempest-full", "voting": "1", "project": "openstack/nova"}
    every = backend.builds(spec)
    assert [i.uuid for i in every] == ["u2", "u3", "u1"]  # newest last_seen first
    first = cluster.requests_to("_search")[0].json()
    terms = first["aggs"][next(iter(first["aggs"]))]["terms"]
    assert terms["field"] == "build_uuid" and terms["size"] == 1
    assert backend.builds(spec, limit=0) == []


def test_builds_give_the_log_directory_like_the_embedded_store(cluster: FakeCluster, backend: ElasticBackend) -> None:
    """A document's log_url is its file's URL; a build's is the directory (found by the real-node comparison)."""
    t1 = datetime(2024, 3, 1, 12, tzinfo=UTC)
    base = "https://logs.example.org/30/935830/5/gate/tempest-full/4e29b00/"

    def limited(req: Request) -> Reply:
        fields = {"build_name": "tempest-full", "log_url": base + "controller/logs/screen-n-cpu.txt.gz",
                  "filename": "controller/logs/screen-n-cpu.txt"}
        bucket = _build_bucket(req, "u1", t1, t1, 1, fields)
        return Reply(200, search_response(aggregations={agg_name(req): {"buckets": [bucket]}}))

    cluster.respond("POST", "_search", limited)
    (info,) = backend.builds(QuerySpec(), limit=1)
    assert dict(info.fields) == {"build_name": "tempest-full", "log_url": base}
    body = only(cluster, "_search").json()
    top = body["aggs"][next(iter(body["aggs"]))]["aggs"]["doc"]["top_hits"]
    assert "filename" in top["_source"]["includes"]


# ---------------------------------------------------------------------------
# errors, retries, timeouts


def test_5xx_is_retried_with_backoff_then_retryable(cluster: FakeCluster) -> None:
    backend = make_backend(cluster, retries=2, backoff=0.05)
    cluster.reply("POST", "_search", unavailable_error(), status=503, times=3)
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        backend.search(QuerySpec(queries=("message:x",)))
    elapsed = time.monotonic() - started
    assert info.value.retryable
    assert "HTTP 503" in str(info.value) and "state not recovered" in str(info.value)
    assert len(cluster.requests_to("_search")) == 3
    assert elapsed >= 0.05 + 0.10  # two backoff sleeps, doubling

    cluster.clear()
    cluster.reply("POST", "_search", unavailable_error(), status=503)
    cluster.reply("POST", "_search", search_response(total=2))
    assert backend.search(QuerySpec(queries=("message:x",))).total == 2
    assert len(cluster.requests_to("_search")) == 2


@pytest.mark.timeout(60)
def test_timeout_is_retryable(cluster: FakeCluster) -> None:
    backend = make_backend(cluster, timeout=0.3, retries=1, backoff=0.01)
    assert backend.ping()  # the ES client's product check happens here, fast
    cluster.clear()
    cluster.delay = 2.0
    with pytest.raises(BackendError) as info:
        backend.search(QuerySpec(queries=("message:x",)))
    assert info.value.retryable
    assert "timed out" in str(info.value)
    assert len(cluster.requests_to("_search")) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_connection_refused_is_retryable_and_redacted(flavor: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://{USER}:{PASSWORD.replace('@', '%40').replace('/', '%2F')}@127.0.0.1:{_free_port()}"
    backend = ElasticBackend(ClusterSettings(url=url, flavor=flavor, timeout=1.0, retries=1, backoff=0.01))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(BackendError) as info:
            backend.msearch([QuerySpec(queries=("message:x",))])
        assert backend.ping() is False
    assert info.value.retryable
    assert "connection failed" in str(info.value)
    for text in (str(info.value), repr(backend), caplog.text):
        assert "s3cr3t" not in text and "%40ss" not in text


def test_credentials_go_in_the_header_and_never_in_logs(cluster: FakeCluster, caplog: pytest.LogCaptureFixture) -> None:
    url = cluster.url.replace("http://", f"http://{USER}:{PASSWORD.replace('@', '%40').replace('/', '%2F')}@")
    backend = make_backend(cluster, url=url)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    cluster.reply("POST", "_search", search_response())
    cluster.reply("POST", "_search", auth_error("/logstash-*/_search"), status=401)
    with caplog.at_level(logging.DEBUG):
        backend.search(QuerySpec(queries=("message:x",)))
        with pytest.raises(BackendError) as info:
            backend.search(QuerySpec(queries=("message:x",)))
    assert all(r.headers.get("authorization") == f"Basic {token}" for r in cluster.requests)
    assert info.value.retryable is False
    assert "security_exception" in str(info.value)
    for text in (caplog.text, str(info.value), repr(backend)):
        assert PASSWORD not in text and "s3cr3t" not in text and token not in text
    # username/password settings work too and win over the URL's
    other = make_backend(cluster, username="cfg-user", password="cfg-pass")
    cluster.clear()
    cluster.reply("POST", "_search", search_response())
    other.search(QuerySpec())
    expected = base64.b64encode(b"cfg-user:cfg-pass").decode()
    assert only(cluster, "_search").headers["authorization"] == f"Basic {expected}"


# ---------------------------------------------------------------------------
# product check, config, keyword suffix, bulk loading


def test_elasticsearch_client_checks_the_product(caplog: pytest.LogCaptureFixture) -> None:
    # The Apache-2.0 builds of 7.x say build_flavor "oss"; elasticsearch-py 7.17 alone refuses them.
    for version, build_flavor in (("7.10.2", "default"), ("7.10.2", "oss"), ("7.17.9", "default")):
        with FakeCluster("elasticsearch", version=version, build_flavor=build_flavor) as fake:
            backend = make_backend(fake)
            fake.reply("POST", "_search", search_response(total=1))
            assert backend.search(QuerySpec()).total == 1
            # the version probe, the 7.17 client's product check, the search
            assert [(r.method, r.path) for r in fake.requests] == [("GET", "/"), ("GET", "/"), ("POST", "/logstash-*/_search")]
            assert type(backend.client).__module__.startswith("elasticsearch.")
            assert str(backend.server) == f"Elasticsearch {version}"
    with FakeCluster("opensearch") as fake:
        # backend = elasticsearch but the server is OpenSearch: its client is used, with a warning
        backend = make_backend(fake, flavor="elasticsearch")
        fake.reply("POST", "_search", search_response(total=3))
        with caplog.at_level(logging.WARNING, logger="elastic_recheck"):
            assert backend.search(QuerySpec()).total == 3
        assert "backend = elasticsearch, but OpenSearch 2.11.0 answers" in caplog.text
        assert type(backend.client).__module__.startswith("opensearchpy")
        # backend = opensearch never asks GET /
        fake.clear()
        fake.reply("POST", "_search", search_response(total=3))
        assert make_backend(fake, flavor="opensearch").search(QuerySpec()).total == 3
        assert [r.endpoint for r in fake.requests] == ["_search"]


def test_backend_from_config() -> None:
    with FakeCluster("opensearch") as fake:
        cfg = from_mapping(
            {
                "data_source": {
                    "backend": "opensearch",
                    "es_url": fake.url,
                    "index_format": "logs-%Y%m%d",
                    "keyword_suffix": ".raw",
                    "timeout": "7.5",
                    "retries": "0",
                    "verify_certs": "false",
                }
            }
        )
        backend = backend_from_config(cfg)
        assert isinstance(backend, SearchBackend)
        assert backend.settings.flavor == "opensearch"
        assert backend.settings.timeout == 7.5 and backend.settings.retries == 0
        assert backend.settings.verify_certs is False
        assert type(backend.client).__module__.startswith("opensearchpy")
        fake.reply("POST", "_search", search_response())
        backend.search(QuerySpec(filters=Filters(build_uuid="u"), window=WINDOW))
        req = only(fake, "_search")
        assert req.path == "/logs-20240301,logs-20240302,logs-20240303/_search"
        assert {"term": {"build_uuid.raw": "u"}} in req.json()["query"]["bool"]["filter"]


def test_keyword_suffix_applies_to_filters_and_aggregations_only(cluster: FakeCluster) -> None:
    backend = make_backend(cluster, keyword_suffix=".keyword")
    cluster.respond("POST", "_search", _histogram_answer)
    backend.build_histogram(QuerySpec(queries=("build_name:x",), filters=Filters(voting=True), window=WINDOW), timedelta(hours=12))
    req = only(cluster, "_search")
    body = req.json()
    assert {"term": {"voting.keyword": "1"}} in body["query"]["bool"]["filter"]
    assert any("range" in f and "@timestamp" in f["range"] for f in body["query"]["bool"]["filter"])
    assert body["query"]["bool"]["must"][0]["query_string"] == {"query": "build_name:x", "default_field": "message", "default_operator": "OR"}
    spec = body["aggs"][agg_name(req)]
    assert spec["date_histogram"]["field"] == "@timestamp" and spec["date_histogram"]["fixed_interval"] == "12h"
    terms = next(v for v in spec["aggs"].values() if "terms" in v)
    assert terms["terms"]["field"] == "build_status.keyword"
    assert next(iter(terms["aggs"].values()))["cardinality"]["field"] == "build_uuid.keyword"


@pytest.mark.parametrize(("setting", "voting", "term"), [("1,0", True, "1"), ("1,0", False, "0"),
                                                        ("true,false", True, "true"), (" true , false ", False, "false")])
def test_voting_values_setting_picks_the_filter_terms(cluster: FakeCluster, setting: str, voting: bool, term: str) -> None:
    """A cluster whose ``voting`` is a boolean field needs ``true``/``false``: a ``1`` would be refused."""
    from elastic_recheck.adapters.elastic.backend import backend_from_config
    from elastic_recheck.core.config import from_mapping

    cfg = from_mapping({"data_source": {"backend": cluster.flavor, "es_url": cluster.url, "retries": "0",
                                        "voting_values": setting}})
    backend = backend_from_config(cfg)
    cluster.respond("POST", "_search", lambda req: Reply(200, search_response([])))
    backend.search(QuerySpec(queries=("message:x",), filters=Filters(voting=voting), window=WINDOW))
    assert {"term": {"voting": term}} in only(cluster, "_search").json()["query"]["bool"]["filter"]
    backend.close()


@pytest.mark.parametrize("bad", ["1", "1,0,2", ",0", ""])
def test_voting_values_setting_must_be_two_terms(bad: str) -> None:
    from elastic_recheck.adapters.elastic.backend import backend_from_config
    from elastic_recheck.core.config import from_mapping
    from elastic_recheck.core.errors import ConfigError

    cfg = from_mapping({"data_source": {"backend": "elasticsearch", "es_url": "http://127.0.0.1:9", "voting_values": bad}})
    with pytest.raises(ConfigError, match="voting_values"):
        backend_from_config(cfg)


def test_the_bulk_writer_loads_daily_indices(cluster: FakeCluster, backend: ElasticBackend) -> None:
    """The adapter has no writer of its own: the one bulk writer (ingest, collect, the contract suite)."""
    from elastic_recheck.adapters.elastic.bulk import BulkWriter

    assert not hasattr(backend, "add_documents")
    docs = [
        {"@timestamp": "2024-03-01T23:59:59.999Z", "message": "a", "build_uuid": "u1", "_id": "fixed-id"},
        {"@timestamp": "2024-03-02T00:00:00Z", "message": "b", "build_uuid": "u1"},
        {"@timestamp": "2024-03-02T08:00:00+00:00", "message": "c", "build_uuid": "u2"},
    ]
    accept_writes(cluster)
    stats = BulkWriter(backend, template="").add_documents(docs)
    assert stats.docs == 3 and stats.bad_lines == 0
    req = only(cluster, "_bulk")
    lines = req.ndjson()
    assert [a["index"]["_index"] for a in lines[0::2]] == ["logstash-2024.03.01", "logstash-2024.03.02", "logstash-2024.03.02"]
    assert lines[0]["index"]["_id"] == "fixed-id" and lines[2]["index"]["_id"]
    assert lines[1] == {k: v for k, v in docs[0].items() if k != "_id"}
    assert [r.method for r in cluster.requests if r.method == "PUT"] == []  # template="": none
    (refresh,) = cluster.requests_to("_refresh")
    assert refresh.path == "/logstash-2024.03.01,logstash-2024.03.02/_refresh"

    mapper_error = {"type": "mapper_parsing_exception", "reason": "failed to parse field [@timestamp] of type [date]"}
    cluster.reply("POST", "_bulk", bulk_response([bulk_item("logstash-2024.03.01", "x", status=400, error=mapper_error)]))
    stats = BulkWriter(backend, template="").add_documents(docs[:1])
    assert stats.docs == 0 and stats.bad_lines == 1
    assert "mapper_parsing_exception" in stats.bad_line_samples[0][1]
    stats = BulkWriter(backend, template="").add_documents([{"message": "no timestamp"}])
    assert stats.bad_lines == 1 and "no valid @timestamp" in stats.bad_line_samples[0][1]


def test_tls_verification(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    from tests.fixtures.es_server import self_signed_cert

    cert, key = self_signed_cert(tmp_path)
    for flavor in FLAVORS:
        with FakeCluster(flavor, tls=(cert, key)) as fake:
            assert fake.url.startswith("https://")
            fake.always("POST", "_search", search_response(total=1))
            trusted = make_backend(fake, ca_certs=str(cert))
            assert trusted.search(QuerySpec()).total == 1
            untrusted = make_backend(fake, retries=2)
            with pytest.raises(BackendError) as info:
                untrusted.search(QuerySpec())
            assert info.value.retryable is False  # retrying cannot fix a certificate
            assert "ca_certs" in str(info.value)
            with caplog.at_level(logging.WARNING, logger="elastic_recheck"):
                unverified = make_backend(fake, verify_certs=False)
            assert "not verified" in caplog.text
            assert unverified.search(QuerySpec()).total == 1
            assert len(fake.requests_to("_search")) == 2
