"""Which client talks to which server, read from ``GET /`` (Elasticsearch 7, 8, 9, OpenSearch).

The choice table is pure; the rest runs the real clients (``elasticsearch``
7.17, ``elasticsearch9`` from the ``test`` extra, ``opensearch-py``) against
the fake cluster of :mod:`tests.fixtures.es_server`, which answers ``GET /``
as Elasticsearch 8.15 / 9.1 do and, like them, refuses REST compatibility
headers of a version it cannot serve. What was run against real nodes is in
``test_cluster_commands.py`` and ``docs/testing.md``.
"""

from __future__ import annotations

import importlib.util
import socket
from typing import Any

import pytest

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.bulk import BulkWriter
from elastic_recheck.adapters.elastic.clients import (
    LEGACY,
    MODERN,
    ClientChoice,
    choose_client,
    make_client,
    perform,
    server_info,
)
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.search_types import Filters, QuerySpec
from tests.fixtures.es_server import (
    FakeCluster,
    accept_writes,
    info_payload,
    msearch_response,
    query_parse_error,
    search_response,
    unavailable_error,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


HAVE_ES9 = importlib.util.find_spec("elasticsearch9") is not None


def test_server_info_of_each_product() -> None:
    assert str(server_info(info_payload("opensearch", "2.19.1"))) == "OpenSearch 2.19.1"
    es7 = server_info(info_payload("elasticsearch", "7.10.2"))
    assert (es7.flavor, es7.major) == ("elasticsearch", 7)
    assert server_info(info_payload("elasticsearch", "9.1.0")).major == 9
    with pytest.raises(BackendError) as info:
        server_info({"status": "ok"})
    assert not info.value.retryable and "not Elasticsearch's or OpenSearch's" in str(info.value)


@pytest.mark.parametrize(
    ("product", "version", "available", "module", "compat"),
    [
        ("opensearch", "2.19.1", frozenset(), "opensearchpy", None),
        ("opensearch", "3.0.0", frozenset({"elasticsearch9"}), "opensearchpy", None),
        ("elasticsearch", "6.8.23", frozenset({"elasticsearch9"}), "elasticsearch", None),
        ("elasticsearch", "7.10.2", frozenset({"elasticsearch8"}), "elasticsearch", None),
        ("elasticsearch", "8.15.0", frozenset({"elasticsearch8"}), "elasticsearch8", 8),
        ("elasticsearch", "8.15.0", frozenset({"elasticsearch9"}), "elasticsearch9", 8),
        ("elasticsearch", "8.15.0", frozenset(), "elasticsearch", 7),
        ("elasticsearch", "9.1.0", frozenset({"elasticsearch9"}), "elasticsearch9", 9),
        ("elasticsearch", "9.1.0", frozenset({"elasticsearch8"}), "elasticsearch8", 8),
    ],
)
def test_client_choice(product: str, version: str, available: frozenset[str], module: str, compat: int | None) -> None:
    choice = choose_client(server_info(info_payload(product, version)), available)
    assert (choice.module, choice.compat) == (module, compat)
    assert choice.api == (MODERN if module.startswith("elasticsearch") and module != "elasticsearch" else LEGACY)


def test_elasticsearch_9_without_a_client_for_it_is_one_clear_error() -> None:
    with pytest.raises(BackendError) as info:
        choose_client(server_info(info_payload("elasticsearch", "9.1.0")), frozenset())
    assert not info.value.retryable
    assert "Elasticsearch 9.1.0 needs a newer Python client" in str(info.value)
    assert "pip install 'elastic-recheck[es9]'" in str(info.value)


def test_compatibility_headers() -> None:
    assert ClientChoice("elasticsearch", LEGACY).headers() == {"content-type": "application/json"}
    assert ClientChoice("elasticsearch", LEGACY).headers(ndjson=True) == {"content-type": "application/x-ndjson"}
    assert ClientChoice("elasticsearch9", MODERN, 8).headers(ndjson=True) == {
        "accept": "application/vnd.elasticsearch+json; compatible-with=8",
        "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
    }


def _exercise(fake: FakeCluster, backend: ElasticBackend) -> None:
    """search, msearch and a bulk load through ``backend``."""
    fake.reply("POST", "_search", search_response(total=2))
    assert backend.search(QuerySpec(queries=("message:boom",))).total == 2
    fake.reply("POST", "_msearch", msearch_response(search_response(total=1), search_response(total=0)))
    specs = [QuerySpec(queries=("message:a",), filters=Filters(build_uuid="u"), label=str(n)) for n in (1, 2)]
    assert [r.total for r in backend.msearch(specs)] == [1, 0]
    accept_writes(fake)
    stats = BulkWriter(backend).add_documents([{"@timestamp": "2024-03-01T00:00:00Z", "message": "x", "build_uuid": "u"}])
    assert stats.docs == 1 and stats.bad_lines == 0


@pytest.mark.skipif(not HAVE_ES9, reason="the elasticsearch9 client (test extra) is not installed")
@pytest.mark.parametrize(("version", "compat"), [("8.15.0", "8"), ("9.1.0", "9")])
def test_elasticsearch_8_and_9_get_the_modern_client_with_headers_they_accept(version: str, compat: str) -> None:
    with FakeCluster("elasticsearch", version=version) as fake:
        backend = ElasticBackend(ClusterSettings(url=fake.url, flavor="cluster", timeout=5, retries=0))
        _exercise(fake, backend)
        assert str(backend.server) == f"Elasticsearch {version}"
        assert type(backend.client).__module__.startswith("elasticsearch9")
        for req in fake.requests[1:]:  # after the probe: every request speaks the server's version
            assert req.headers["accept"] == f"application/vnd.elasticsearch+json; compatible-with={compat}", req.path
        (msearch,) = fake.requests_to("_msearch")
        assert msearch.headers["content-type"] == f"application/vnd.elasticsearch+x-ndjson; compatible-with={compat}"
        assert len(msearch.ndjson()) == 4
        (bulk,) = fake.requests_to("_bulk")
        assert bulk.headers["content-type"].startswith("application/vnd.elasticsearch+x-ndjson")
        (put,) = [r for r in fake.requests if r.method == "PUT"]
        assert put.headers["content-type"] == f"application/vnd.elasticsearch+json; compatible-with={compat}"
        # the modern client's errors map like the others: a bad query is final, a 503 retryable
        fake.reply("POST", "_search", query_parse_error('message:"open'), status=400)
        with pytest.raises(BackendError) as info:
            backend.search(QuerySpec(queries=('message:"open',)))
        assert not info.value.retryable and "HTTP 400" in str(info.value) and "Cannot parse" in str(info.value)
        fake.reply("POST", "_search", unavailable_error(), status=503)
        with pytest.raises(BackendError) as info:
            backend.search(QuerySpec())
        assert info.value.retryable and "cluster_block_exception" in str(info.value)
    # a node that is gone (after the version was read): retryable, "connection failed"
    backend.settings = ClusterSettings(url=f"http://127.0.0.1:{_free_port()}", flavor="cluster", timeout=5, retries=0)
    backend._client = make_client(backend.client_choice, [backend.settings.url], {"timeout": 5, "max_retries": 0})
    with pytest.raises(BackendError) as info:
        backend.search(QuerySpec())
    assert info.value.retryable and "connection failed" in str(info.value)


@pytest.mark.skipif(not HAVE_ES9, reason="the elasticsearch9 client (test extra) is not installed")
def test_the_fake_refuses_headers_a_real_node_refuses() -> None:
    """The check above could fail: ES 8 refuses a 9 client's own headers."""
    with FakeCluster("elasticsearch", version="8.15.0") as fake:
        own = ClientChoice("elasticsearch9", MODERN, 9)  # the client's own headers
        client = make_client(own, [fake.url], {"timeout": 5, "max_retries": 0})
        with pytest.raises(Exception) as info:
            perform(client, own, "POST", "/logstash-*/_search", {"query": {"match_all": {}}})
        assert "media_type_header_exception" in str(info.value) or "found 9" in str(info.value)
        client.close()


def test_elasticsearch_8_through_the_717_client_with_compatibility_headers() -> None:
    """Without the es8/es9 extras, an 8.x server is spoken to by elasticsearch 7.17 (compatible-with=7)."""
    with FakeCluster("elasticsearch", version="8.15.0") as fake:
        choice = choose_client(server_info(info_payload("elasticsearch", "8.15.0")), frozenset())
        client: Any = make_client(choice, [fake.url], {"timeout": 5, "max_retries": 0})
        fake.reply("POST", "_search", search_response(total=4))
        answer = perform(client, choice, "POST", "/logstash-*/_search", {"query": {"match_all": {}}})
        assert answer["hits"]["total"]["value"] == 4
        fake.reply("POST", "_msearch", msearch_response(search_response(total=1)))
        answer = perform(client, choice, "POST", "/_msearch", '{"index":["logstash-*"]}\n{"size":0}\n')
        assert answer["responses"][0]["hits"]["total"]["value"] == 1
        searches = [r for r in fake.requests if r.endpoint in ("_search", "_msearch")]
        assert [r.headers["accept"] for r in searches] == ["application/vnd.elasticsearch+json; compatible-with=7"] * 2
        assert searches[1].headers["content-type"] == "application/vnd.elasticsearch+x-ndjson; compatible-with=7"
        client.close()


def test_elasticsearch_7_and_opensearch_keep_plain_json() -> None:
    for flavor, version in (("elasticsearch", "7.10.2"), ("opensearch", "2.19.1")):
        with FakeCluster(flavor, version=version) as fake:
            backend = ElasticBackend(ClusterSettings(url=fake.url, flavor="cluster", timeout=5, retries=0))
            _exercise(fake, backend)
            assert backend.server is not None and backend.server.version == version
            assert not any("compatible-with" in r.headers.get("accept", "") for r in fake.requests)
            (msearch,) = fake.requests_to("_msearch")
            assert msearch.headers["content-type"] == "application/x-ndjson"
