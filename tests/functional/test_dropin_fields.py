"""Known fields come from the configured mapping (or the cluster's own); old logstash hits are flattened."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from elastic_recheck.adapters.elastic.backend import backend_from_config
from elastic_recheck.cli.main import cli
from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.documents import normalize_document
from elastic_recheck.core.search_types import QuerySpec
from tests.fixtures.es_server import FakeCluster

SHIPPED = "elastic-recheck-queries"
TEST_QUERIES = "logstash/originals/test-queries/queries"
DOCS = "logstash/elastic-recheck-docs.jsonl"


def _unknown_fields(result_stdout: str) -> list[dict[str, object]]:
    findings = [json.loads(line) for line in result_stdout.splitlines() if line.startswith("{")]
    return [f for f in findings if f["code"] == "unknown-field"]


def _recorded_mapping(shared_data: Path, drop: str = "") -> dict[str, object]:
    """The fields of the hits logstash.openstack.org answered, as an index mapping (message and tags text)."""
    names: set[str] = set()
    for line in (shared_data / DOCS).read_text().splitlines():
        names.update(k for k in json.loads(line) if not k.startswith("_") and k != drop)
    props = {n: {"type": "text" if n in ("message", "tags") else "keyword"} for n in sorted(names)}
    return {"logstash-2013.10.18": {"mappings": {"properties": props}}}


def test_every_original_fingerprint_uses_known_fields(shared_data: Path) -> None:
    for directory in (SHIPPED, TEST_QUERIES):
        result = CliRunner().invoke(cli, ["check-queries", "--format", "json", str(shared_data / directory)])
        assert _unknown_fields(result.stdout) == [], directory
    assert "syslog_program" in (shared_data / TEST_QUERIES / "1225664.yaml").read_text()


def test_fields_come_from_the_configured_mapping(shared_data: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(_recorded_mapping(shared_data, drop="syslog_program")))
    conf = tmp_path / "er.conf"
    conf.write_text(f"[data_source]\nmapping = {mapping}\n")
    result = CliRunner().invoke(cli, ["-c", str(conf), "check-queries", "--format", "json", str(shared_data / TEST_QUERIES)])
    flagged = _unknown_fields(result.stdout)
    assert flagged and {str(f["file"]).rsplit("/", 1)[-1] for f in flagged} == {"1225664.yaml", "1240256.yaml"}
    assert all("syslog_program" in str(f["message"]) for f in flagged)

    mapping.write_text(json.dumps({"template": _recorded_mapping(shared_data)["logstash-2013.10.18"]}))  # a template
    result = CliRunner().invoke(cli, ["-c", str(conf), "check-queries", "--format", "json", str(shared_data / TEST_QUERIES)])
    assert _unknown_fields(result.stdout) == []

    mapping.write_text("{}")
    result = CliRunner().invoke(cli, ["-c", str(conf), "check-queries", str(shared_data / TEST_QUERIES)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"[data_source] mapping: {mapping}: no field found" in result.output


def test_fields_come_from_the_clusters_mapping(shared_data: Path, tmp_path: Path) -> None:
    """The cluster's own mapping wins; with no index yet, the configured mapping is used."""
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(_recorded_mapping(shared_data)))
    with FakeCluster("elasticsearch") as fake:
        fake.reply("GET", "_mapping", _recorded_mapping(shared_data, drop="syslog_program"))
        conf = tmp_path / "er.conf"
        conf.write_text(f"[data_source]\nes_url = {fake.url}\nmapping = {mapping}\n")
        result = CliRunner().invoke(cli, ["-c", str(conf), "check-queries", "--format", "json", str(shared_data / TEST_QUERIES)])
        assert {str(f["file"]).rsplit("/", 1)[-1] for f in _unknown_fields(result.stdout)} == {"1225664.yaml", "1240256.yaml"}

        fake.reply("GET", "_mapping", {})  # no index of the pattern yet
        result = CliRunner().invoke(cli, ["-c", str(conf), "check-queries", "--format", "json", str(shared_data / TEST_QUERIES)])
        assert _unknown_fields(result.stdout) == []
        assert "fields checked against [data_source] mapping" in result.stderr


def test_cluster_hits_in_the_logstash_11_layout_are_flattened_like_ingest(shared_data: Path) -> None:
    """logstash.openstack.org's 2013 answer (``@message``, ``@fields`` of one-element lists), served by a cluster."""
    answer = json.loads((shared_data / "logstash/originals/samples/bug-1225664.json").read_text())
    raw = answer["hits"]["hits"]
    assert raw and all("@fields" in h["_source"] for h in raw)
    with FakeCluster("elasticsearch") as fake:
        fake.reply("POST", "_search", answer)
        backend = backend_from_config(from_mapping({"data_source": {"es_url": fake.url}}))
        result = backend.search(QuerySpec(queries=('message:"Exception during message handling"',)), size=10)
    assert [h.source for h in result.hits] == [normalize_document({"_source": h["_source"]}) for h in raw]
    first = result.hits[0].source
    assert "@fields" not in first and "@message" not in first
    assert first["build_name"] == "gate-tempest-devstack-vm-postgres-full"  # was ["..."] under @fields
    assert first["message"].startswith("[req-e3bbc5dc")
    assert first["tags"] == ["logs/screen-c-vol.txt", "screen", "oslofmt", "multiline"]
