"""Writing to a cluster and the old configuration, at the HTTP boundary.

``ingest`` (and ``collect``) go through the one bulk writer
(:mod:`elastic_recheck.adapters.elastic.bulk`); the fake cluster
(:mod:`tests.fixtures.es_server`) records what they send, the real
``elasticsearch`` / ``opensearch-py`` clients send it. What a real node makes
of it is tested in ``test_cluster_commands.py``.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.elastic.backend import mapping_from_answer
from elastic_recheck.adapters.elastic.bulk import TEMPLATE_NAME, index_template
from elastic_recheck.cli.main import cli
from elastic_recheck.core.config import from_mapping, load_config
from elastic_recheck.core.documents import document_id
from elastic_recheck.core.schema import KNOWN_FIELDS
from tests.fixtures.es_server import (
    FakeCluster,
    Reply,
    Request,
    accept_writes,
    bulk_item,
    bulk_response,
    error_payload,
)

USER, PASSWORD = "writer", "w-s3cr3t-pw"


def docs_of(cluster: FakeCluster) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for req in cluster.requests_to("_bulk"):
        lines = req.ndjson()
        out.extend(zip(lines[0::2], lines[1::2], strict=True))
    return out


def write_jsonl(path: Path, docs: list[dict[str, Any]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")
    return path


def sample_docs() -> list[dict[str, Any]]:
    docs = []
    for day, uuid in ((1, "a" * 32), (2, "b" * 32)):
        for n in range(3):
            docs.append({
                "@timestamp": f"2024-03-0{day}T23:59:5{n}.000Z",
                "message": f"line {n} of build {uuid[:1]}",
                "tags": ["console"],
                "build_uuid": uuid,
                "filename": "job-output.txt",
                "voting": 1,
            })
    docs.append({"@timestamp": "2024-03-03T00:00:00Z", "message": "no build"})
    docs.append({"@timestamp": "2024-03-03T00:00:00Z", "message": "no build"})  # a repeated line stays two documents
    return docs


def config_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "elasticRecheck.conf"
    path.write_text(body)
    path.chmod(0o600)
    return path


def test_index_template_maps_message_and_tags_as_text_and_the_rest_as_keyword() -> None:
    body = index_template("ci-logs-%Y.%m.%d")
    assert body["index_patterns"] == ["ci-logs-*"]
    mappings = body["template"]["mappings"]
    props = mappings["properties"]
    assert props["message"] == {"type": "text"} and props["tags"] == {"type": "text"}
    assert props["@timestamp"] == {"type": "date"}
    assert {n for n, p in props.items() if p["type"] == "keyword"} == set(KNOWN_FIELDS) - {"message", "tags", "@timestamp"}
    # fields nobody knows yet, numbers and booleans too, are exact keywords; no date guessing
    kinds = {next(iter(t.values()))["match_mapping_type"]: next(iter(t.values()))["mapping"]["type"] for t in mappings["dynamic_templates"]}
    assert kinds == {"string": "keyword", "long": "keyword", "double": "keyword", "boolean": "keyword"}
    assert mappings["date_detection"] is False
    # the cluster's answer for such an index reads back as the same field mapping
    answer = {"ci-logs-2024.03.01": {"mappings": {"properties": dict(props, build_name={"type": "text", "fields": {"keyword": {"type": "keyword"}}})}}}
    mapping = mapping_from_answer(answer)
    assert mapping is not None
    assert mapping.is_text("message") and mapping.is_text("build_name") and not mapping.is_text("build_uuid")
    assert mapping.is_known("build_name.keyword") and not mapping.is_known("nonesuch")
    assert mapping_from_answer({}) is None


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_ingest_jsonl_into_the_old_configuration_cluster(flavor: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    docs = sample_docs()
    src = write_jsonl(tmp_path / "logs.jsonl.gz", docs)
    with FakeCluster(flavor) as fake:
        accept_writes(fake)
        url = fake.url.replace("http://", f"http://{USER}:{PASSWORD}@")
        # the original's configuration: es_url and no backend
        cfg = config_file(tmp_path, f"[data_source]\nes_url = {url}\nindex_format = logstash-%Y.%m.%d\n")
        store = tmp_path / "never.db"
        with caplog.at_level(logging.INFO, logger="elastic_recheck"):
            res = CliRunner().invoke(cli, ["-v", "-c", str(cfg), "--store", str(store), "ingest", "--jsonl", str(src), "--batch-size", "3"])
        assert res.exit_code == 0, res.output
        assert not store.exists()  # nothing went to the embedded store
        assert f"{len(docs)} documents stored" in res.stdout
        # one INFO line names the backend and URL, without the credentials
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("backend: ")]
        assert lines == [f"backend: cluster at http://127.0.0.1:{fake.port} (writing)"]
        assert PASSWORD not in res.output + caplog.text and USER + ":" not in res.output + caplog.text
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert all(r.headers.get("authorization") == f"Basic {token}" for r in fake.requests)
        # the template first, then bulk requests of at most 3 documents, then one refresh
        writes = [(r.method, r.endpoint) for r in fake.requests if r.endpoint != "/"]
        assert writes[0] == ("PUT", f"/_index_template/{TEMPLATE_NAME}")
        (put,) = [r for r in fake.requests if r.method == "PUT"]
        assert put.json() == index_template("logstash-%Y.%m.%d")
        assert [e for _, e in writes[1:]] == ["_bulk", "_bulk", "_bulk", "_refresh"]
        sent = docs_of(fake)
        assert [s for _, s in sent] == docs  # the documents as given (no id field added)
        for action, source in sent:
            assert action["index"]["_index"] == "logstash-" + source["@timestamp"][:10].replace("-", ".")
        ids = [a["index"]["_id"] for a, _ in sent]
        # collect's ids for documents of a build: build, file and position in the file
        assert ids[:3] == [document_id("a" * 32, "job-output.txt", n) for n in (1, 2, 3)]
        assert len(set(ids)) == len(ids)
        (refresh,) = fake.requests_to("_refresh")
        assert refresh.path == "/logstash-2024.03.01,logstash-2024.03.02,logstash-2024.03.03/_refresh"
        # loading the same file again sends the same ids (replaces, never duplicates)
        fake.clear()
        res = CliRunner().invoke(cli, ["-c", str(cfg), "ingest", "--jsonl", str(src)])
        assert res.exit_code == 0, res.output
        assert [a["index"]["_id"] for a, _ in docs_of(fake)] == ids


def test_ingest_build_dir_into_a_cluster_replaces_the_build_files(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "controller" / "logs").mkdir(parents=True)
    (build / "job-output.txt").write_text(
        "2024-03-01 10:00:00.000000 | first line\n2024-03-01 10:00:01.000000 | Job complete, result: FAILURE\n"
    )
    (build / "controller" / "logs" / "screen-n-cpu.txt").write_text(
        "2024-03-01 10:00:02.000 1234 ERROR nova.compute.manager [-] libvirtError: it broke\n"
    )
    uuid = "c" * 32
    with FakeCluster("opensearch") as fake:
        accept_writes(fake)
        fake.reply("POST", "_delete_by_query", {"took": 1, "timed_out": False, "total": 2, "deleted": 2, "failures": []})
        cfg = config_file(tmp_path, f"[data_source]\nbackend = opensearch\nes_url = {fake.url}\nindex_format = ci-%Y.%m.%d\n")
        args = ["-c", str(cfg), "ingest", "--build-dir", str(build), "--build-uuid", uuid, "--build-name", "tempest-full",
                "--build-status", "FAILURE", "--project", "openstack/nova"]
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        assert "3 documents stored" in res.stdout
        (delete,) = fake.requests_to("_delete_by_query")
        assert delete.path == "/ci-*/_delete_by_query" and delete.params["refresh"] == "true"
        assert delete.json()["query"]["bool"]["filter"] == [
            {"term": {"build_uuid": uuid}},
            {"terms": {"filename": ["controller/logs/screen-n-cpu.txt", "job-output.txt"]}},
        ]
        sent = docs_of(fake)
        by_file = Counter(s["filename"] for _, s in sent)
        assert by_file == {"job-output.txt": 2, "controller/logs/screen-n-cpu.txt": 1}
        for action, source in sent:
            assert action["index"]["_index"] == "ci-2024.03.01"
            assert source["build_uuid"] == uuid and source["build_name"] == "tempest-full" and "id" not in source
        ids = {(s["filename"], a["index"]["_id"]) for a, s in sent}
        assert ("job-output.txt", document_id(uuid, "job-output.txt", 2)) in ids
        assert ("controller/logs/screen-n-cpu.txt", document_id(uuid, "controller/logs/screen-n-cpu.txt", 1)) in ids


def test_rejected_and_refused_documents(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    docs = sample_docs()[:3] + [{"message": "no timestamp at all"}]
    src = write_jsonl(tmp_path / "logs.jsonl.gz", docs)
    calls: list[int] = []

    def flaky(req: Request) -> Reply:
        """First answer: one document refused (429), one rejected (400); the retry: the 429 one alone."""
        actions = req.ndjson()[0::2]
        calls.append(len(actions))
        items = []
        for i, a in enumerate(actions):
            index, doc_id = a["index"]["_index"], a["index"]["_id"]
            if len(calls) == 1 and i == 0:
                items.append(bulk_item(index, doc_id, 429, {"type": "es_rejected_execution_exception", "reason": "queue full"}))
            elif len(calls) == 1 and i == 1:
                items.append(bulk_item(index, doc_id, 400, {"type": "mapper_parsing_exception", "reason": "failed to parse field [voting]"}))
            else:
                items.append(bulk_item(index, doc_id))
        return Reply(200, bulk_response(items))

    with FakeCluster("opensearch") as fake:
        accept_writes(fake)
        fake.always_respond("POST", "_bulk", flaky)
        fake.always("PUT", "*", error_payload(403, "security_exception", "no permissions for [indices:admin/index_template/put]"), status=403)
        cfg = config_file(tmp_path, f"[data_source]\nbackend = opensearch\nes_url = {fake.url}\nretries = 2\n")
        with caplog.at_level(logging.WARNING, logger="elastic_recheck"):
            res = CliRunner().invoke(cli, ["-c", str(cfg), "ingest", "--jsonl", str(src)])
        assert res.exit_code == 0, res.output
        assert calls == [3, 1]  # the refused document alone was sent again
        assert "2 documents stored" in res.stdout and "2 bad" in res.stdout
        assert ":2: rejected by the cluster: logstash-2024.03.01: mapper_parsing_exception: failed to parse field [voting]" in res.stderr
        assert ":4: no valid @timestamp" in res.stderr
        # without the right to install the template: a warning, and the documents still go in
        assert any("index template elastic-recheck not installed" in m for m in caplog.messages)
        # a cluster that keeps refusing (any 5xx: the one retry policy) fails the command with one line
        fake.always("POST", "_bulk", bulk_response([bulk_item("x", "1", 507, {"type": "unavailable_shards_exception", "reason": "primary shard is not active"})]))
        res = CliRunner().invoke(cli, ["-c", str(cfg), "ingest", "--jsonl", str(write_jsonl(tmp_path / "one.jsonl.gz", docs[:1]))])
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert "still refused after 3 attempts" in res.stderr and "primary shard is not active" in res.stderr


def test_es_url_alone_selects_the_cluster_and_backend_wins(tmp_path: Path) -> None:
    assert from_mapping({}).backend == "embedded"
    assert from_mapping({"data_source": {"es_url": "http://h:9200"}}).backend == "cluster"
    assert from_mapping({"data_source": {"es_url": "http://h:9200", "backend": "embedded"}}).backend == "embedded"
    assert from_mapping({"data_source": {"es_url": "http://h:9200", "backend": "opensearch"}}).backend == "opensearch"


def test_the_originals_sample_configuration_means_its_cluster(shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sample = shared_data / "elastic-recheck-config" / "elasticRecheck.conf.sample"
    if not sample.is_file():
        pytest.skip(f"{sample} not found")
    cfg = load_config(sample)
    assert cfg.backend == "cluster"
    # the search goes to that cluster (here: unreachable), never silently to the embedded store
    conf = tmp_path / "elasticRecheck.conf"
    with FakeCluster("opensearch") as fake:
        url = fake.url
    text = sample.read_text().replace("http://logstash.openstack.org:80/elasticsearch", url)
    conf.write_text(text)
    conf.chmod(0o600)
    with caplog.at_level(logging.INFO, logger="elastic_recheck"):
        res = CliRunner().invoke(cli, ["-v", "-c", str(conf), "--store", str(tmp_path / "s.db"), "search", "message:x", "--days", "1"],
                                 env={"ELASTIC_RECHECK_DATA_SOURCE_RETRIES": "0"})
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert f"backend: cluster at {url}" in caplog.messages
    assert "connection failed" in res.stderr
    assert not (tmp_path / "s.db").exists()


def test_check_queries_checks_fields_against_the_clusters_mapping(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    qdir = tmp_path / "queries"
    qdir.mkdir()
    (qdir / "1.yaml").write_text('query: >\n  message:"boom" AND custom_field:"x"\n')
    with FakeCluster("opensearch") as fake:
        props = index_template("logstash-%Y.%m.%d")["template"]["mappings"]["properties"]
        fake.always("GET", "_mapping", {"logstash-2024.03.01": {"mappings": {"properties": dict(props, custom_field={"type": "keyword"})}}})
        cfg = config_file(tmp_path, f"[data_source]\nbackend = opensearch\nes_url = {fake.url}\n")
        res = CliRunner().invoke(cli, ["-c", str(cfg), "check-queries", str(qdir)])
        assert "unknown-field" not in res.stdout, res.output
        (req,) = fake.requests_to("_mapping")
        assert req.path == "/logstash-*/_mapping"
    # the built-in mapping does not know the field
    res = CliRunner().invoke(cli, ["check-queries", str(qdir)])
    assert "unknown-field" in res.stdout


def test_collect_and_ingest_share_the_writer_and_its_redaction(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """collect's cluster sink is the ingest writer: same retries, same redaction, same template."""
    from elastic_recheck.adapters.elastic.bulk import BulkWriter, writer_from_config
    from elastic_recheck.collect.sinks import ClusterSink

    with FakeCluster("opensearch") as fake:
        url = fake.url.replace("http://", f"http://{USER}:{PASSWORD}@")
        cfg = from_mapping({"data_source": {"backend": "opensearch", "es_url": url, "retries": "1"}})
        writer = writer_from_config(cfg)
        assert isinstance(writer, BulkWriter)
        sink = ClusterSink(writer)
        assert sink.store is writer and sink.target == "opensearch"
        assert writer.backend.settings.retries == 1
        fake.always("PUT", "*", {"acknowledged": True})
        fake.always("POST", "_bulk", error_payload(401, "security_exception", f"bad credentials for {url}"), status=401)
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(Exception) as info:
                writer.add_documents(sample_docs()[:1])
        ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("elastic_recheck"))
        assert PASSWORD not in str(info.value) and PASSWORD not in ours
        assert "HTTP 401" in str(info.value)


def test_the_documented_opensearch_config_loads_and_says_where_it_goes(caplog: pytest.LogCaptureFixture) -> None:
    """docs/examples/opensearch.conf (docs/cluster.md) is a valid configuration of OpenDev's cluster."""
    from elastic_recheck.adapters.elastic.backend import backend_from_config

    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "opensearch.conf"
    cfg = load_config(path)
    assert cfg.backend == "opensearch"
    assert cfg.data_source.index_format == "logstash-%Y.%m.%d"
    assert cfg.data_source.verify_certs is True and cfg.data_source.keyword_suffix == ""
    backend = backend_from_config(cfg)  # no request is sent
    assert backend.describe() == "opensearch at https://opensearch.logs.openstack.org:443"
    assert backend.settings.username == "openstack"
    assert type(backend.client).__module__.startswith("opensearchpy")
    # its secrets are masked in logs, the URL is not
    assert "openstack" in cfg.secret_values() and "https://opensearch.logs.openstack.org:443" not in cfg.secret_values()
