"""Elasticsearch 8 for real: the contract suite, the client choice and the CLI against an 8.15 node.

The node (``elasticsearch8_node``, :mod:`tests.fixtures.cluster`) is the
server jar and the netty4 module of Elasticsearch 8.15.0 from Maven Central,
started by ``cluster_node/es8/NodeLauncher8.java``. Maven Central does not
have the rest-root module, so the node's ``GET /`` is answered by a small
plugin of the launcher from the node's own build information (the rest --
``_search``, ``_msearch``, ``_bulk``, aggregations, index templates, REST
compatibility headers, the ``X-Elastic-Product`` header -- is the real
server). Nor does it have the reindex module: ``_delete_by_query`` (``ingest
--build-dir``) is not checked here.

What runs: every test of the contract suite (``test_backend_contract.py``)
on the 8.15 node through the client the adapter chooses (``elasticsearch9``
with ``compatible-with=8``, from the ``test`` extra); the 7.17 client with
``compatible-with=7`` headers (the choice without the extras); ``ingest`` and
``search`` from the command line with ``es_url`` alone. Elasticsearch 9 has
no server artifacts on Maven Central and is checked at the HTTP boundary only
(``test_cluster_versions.py``).
"""

from __future__ import annotations

import gzip
import json
import uuid as uuidlib
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.bulk import BulkWriter
from elastic_recheck.adapters.elastic.clients import LEGACY, ClientChoice, make_client, perform
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.cli.main import cli
from elastic_recheck.core.search_types import QuerySpec
from elastic_recheck.ports.search import SearchBackend
from tests.fixtures.cluster import ClusterNode

# The contract suite, collected again here with the Elasticsearch 8 backend below.
from tests.functional.test_backend_contract import *  # noqa: F403
from tests.functional.test_backend_contract import DOCS, TIMED_OUT, WINDOW, cluster_mapping


def load_es8(url: str) -> Generator[ElasticBackend, None, None]:
    """Throwaway indices with the contract documents, through the adapter's own requests."""
    prefix = f"ertest8-{uuidlib.uuid4().hex[:10]}"
    backend = ElasticBackend(ClusterSettings(url=url, flavor="cluster", index_format=prefix + "-%Y.%m.%d", timeout=30, retries=1))
    indices = sorted({backend.index_for(d) for d in DOCS})
    try:
        for name in indices:
            backend._call("create", lambda n=name: backend._request("PUT", f"/{n}", cluster_mapping()))
        stats = BulkWriter(backend, template="").add_documents(DOCS)  # the project's writer, as in the contract suite
        assert stats.docs == len(DOCS) and not stats.bad_lines, stats.summary()
        yield backend
    finally:
        for name in indices:
            try:
                backend._call("delete", lambda n=name: backend._request("DELETE", f"/{n}"), retries=0)
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the test result
                print(f"could not delete test index {name}: {exc}")
        backend.close()


@pytest.fixture(scope="module", params=["elasticsearch8"])
def backend(request: pytest.FixtureRequest, elasticsearch8_node: ClusterNode) -> Iterator[SearchBackend]:  # noqa: F811
    yield from load_es8(elasticsearch8_node.url)


def test_the_adapter_chose_the_modern_client_with_version_8_headers(backend: SearchBackend) -> None:
    assert isinstance(backend, ElasticBackend)
    backend.search(QuerySpec(queries=(TIMED_OUT,), window=WINDOW))
    assert backend.server is not None and backend.server.version == "8.15.0"
    choice = backend.client_choice
    assert (choice.module, choice.compat) == ("elasticsearch9", 8)


def test_the_717_client_with_compatibility_headers_reads_the_same(backend: SearchBackend) -> None:
    """Without the es8/es9 extras, an 8.x node is spoken to by elasticsearch 7.17 (compatible-with=7)."""
    assert isinstance(backend, ElasticBackend)
    legacy = ClientChoice("elasticsearch", LEGACY, 7)
    client = make_client(legacy, [backend.settings.url], {"timeout": 30, "max_retries": 0})
    try:
        pattern = backend.settings.index_format.split("%", 1)[0] + "*"
        body = backend.search_body(QuerySpec(queries=(TIMED_OUT,), window=WINDOW), size=100)
        old = perform(client, legacy, "POST", f"/{pattern}/_search", body)
        new = backend.search(QuerySpec(queries=(TIMED_OUT,), window=WINDOW), size=100)
        assert old["hits"]["total"]["value"] == new.total == 4
        assert [h["_id"] for h in old["hits"]["hits"]] == [h.id for h in new.hits]
        lines = backend.msearch_lines([QuerySpec(queries=(TIMED_OUT,), window=WINDOW)], size=1)
        from elastic_recheck.adapters.elastic.dsl import ndjson

        answer = perform(client, legacy, "POST", "/_msearch", ndjson(lines))
        assert answer["responses"][0]["hits"]["total"]["value"] == 4
    finally:
        client.close()


def test_ingest_and_search_from_the_command_line(elasticsearch8_node: ClusterNode, tmp_path: Path) -> None:
    prefix = f"ercli8-{uuidlib.uuid4().hex[:8]}"
    src = tmp_path / "docs.jsonl.gz"
    with gzip.open(src, "wt") as fh:
        for d in DOCS:
            fh.write(json.dumps(d) + "\n")
    cfg = tmp_path / "er.conf"
    cfg.write_text(f"[data_source]\nes_url = {elasticsearch8_node.url}\nindex_format = {prefix}-%Y.%m.%d\nindex_template = {prefix}\n")
    cfg.chmod(0o600)
    store = tmp_path / "store.db"
    try:
        res = CliRunner().invoke(cli, ["-c", str(cfg), "ingest", "--jsonl", str(src)])
        assert res.exit_code == 0, res.output
        assert f"{len(DOCS)} documents stored" in res.stdout
        res = CliRunner().invoke(cli, ["--store", str(store), "ingest", "--jsonl", str(src)])
        assert res.exit_code == 0, res.output
        args = ["search", "-n", "0", "--json", TIMED_OUT]
        on_node = CliRunner().invoke(cli, ["-c", str(cfg), *args])
        embedded = CliRunner().invoke(cli, ["--store", str(store), *args])
        assert on_node.exit_code == 0 and embedded.exit_code == 0, on_node.output + embedded.output

        def messages(text: str) -> list[str]:
            return sorted(json.loads(line)["message"] for line in text.splitlines() if line.startswith("{"))

        assert messages(on_node.stdout) == messages(embedded.stdout) and len(messages(on_node.stdout)) == 4
    finally:
        backend = ElasticBackend(ClusterSettings(url=elasticsearch8_node.url, flavor="cluster", retries=0))
        # Elasticsearch 8 refuses wildcards in DELETE (action.destructive_requires_name): by name
        names = backend._request("GET", f"/_cat/indices/{prefix}-*", params={"format": "json", "h": "index"})
        if names:
            backend._request("DELETE", "/" + ",".join(sorted(i["index"] for i in names)))
        backend._request("DELETE", f"/_index_template/{prefix}")
        backend.close()
