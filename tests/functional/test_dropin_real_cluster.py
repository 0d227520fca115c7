"""On a real OpenSearch node: the cluster's own mapping gives the known fields, old logstash hits come back flat."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.elastic.backend import backend_from_config
from elastic_recheck.cli.main import cli
from elastic_recheck.core.config import load_config
from elastic_recheck.core.documents import normalize_document
from elastic_recheck.core.search_types import QuerySpec
from tests.fixtures.cluster import ClusterNode, cluster_config

pytestmark = pytest.mark.slow

DOCS = "logstash/elastic-recheck-docs.jsonl"
TEST_QUERIES = "logstash/originals/test-queries/queries"
OLD_ANSWER = "logstash/originals/samples/bug-1225664.json"


def _unknown(stdout: str) -> set[str]:
    findings = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {str(f["file"]).rsplit("/", 1)[-1] for f in findings if f["code"] == "unknown-field"}


def test_check_queries_reads_the_real_clusters_mapping(shared_data: Path, tmp_path: Path, opensearch_node: ClusterNode) -> None:
    prefix = "dropin-fields"
    opensearch_node.drop(prefix)
    conf = tmp_path / "er.conf"  # no index template: the mapping is what the documents made it
    conf.write_text(f"[data_source]\nbackend = opensearch\nes_url = {opensearch_node.url}\n"
                    f"index_format = {prefix}-%Y.%m.%d\nindex_template =\ntimeout = 60\n")
    docs = tmp_path / "docs.jsonl"
    # the recorded hits without syslog_program first: the original's 1225664 and 1240256 query it
    lines = [json.loads(x) for x in (shared_data / DOCS).read_text().splitlines()]
    docs.write_text("".join(json.dumps({k: v for k, v in d.items() if k not in ("_er", "syslog_program")}) + "\n" for d in lines))
    result = CliRunner().invoke(cli, ["-c", str(conf), "ingest", "--jsonl", str(docs)])
    assert result.exit_code == 0, result.output
    queries = shared_data / TEST_QUERIES
    result = CliRunner().invoke(cli, ["-c", str(conf), "check-queries", "--format", "json", str(queries)])
    assert _unknown(result.stdout) == {"1225664.yaml", "1240256.yaml"}

    docs.write_text("".join(json.dumps({k: v for k, v in d.items() if k != "_er"}) + "\n" for d in lines))
    result = CliRunner().invoke(cli, ["-c", str(conf), "ingest", "--jsonl", str(docs)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["-c", str(conf), "check-queries", "--format", "json", str(queries)])
    assert _unknown(result.stdout) == set()


def test_old_layout_hits_of_a_real_cluster_are_flattened(shared_data: Path, tmp_path: Path, opensearch_node: ClusterNode) -> None:
    """Documents indexed as logstash 1.1 wrote them (``@message``, ``@fields``), read back through the adapter."""
    prefix = "dropin-old"
    opensearch_node.drop(prefix)
    raw = json.loads((shared_data / OLD_ANSWER).read_text())["hits"]["hits"]
    for n, h in enumerate(raw):
        index = f"{prefix}-" + h["_source"]["@timestamp"][:10].replace("-", ".")
        req = urllib.request.Request(f"{opensearch_node.url}/{index}/_doc/{n}?refresh=true", method="PUT",
                                     data=json.dumps(h["_source"]).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60):  # noqa: S310 - 127.0.0.1 only
            pass
    conf = cluster_config(tmp_path / "er.conf", "opensearch", opensearch_node.url, prefix)
    backend = backend_from_config(load_config(conf))
    result = backend.search(QuerySpec(queries=('@message:"Exception during message handling"',)), size=10)
    assert result.total == len(raw) >= 1
    assert sorted((h.source for h in result.hits), key=lambda s: s["@timestamp"]) == sorted(
        (normalize_document({"_source": h["_source"]}) for h in raw), key=lambda s: s["@timestamp"])
    assert all("@fields" not in h.source and h.source["build_name"] == "gate-tempest-devstack-vm-postgres-full"
               for h in result.hits)
