"""Every command against a real OpenSearch node, configured the old way (``es_url`` alone).

The bundled sample history is written into the node by ``ingest`` (the one
bulk writer: template, daily indices, stable ids) under indices of its own
(``er-cmd-<random>-YYYY.MM.DD``, deleted afterwards), and into an embedded
store by the same command. Then each command runs against both, and what it
prints must be the same: search, query, classify, bot (replay, dry run),
graph, uncategorized, render, check-queries (its field check reads the
node's mapping), backtest, stale and suggest. ``collect`` and
``ingest --build-dir`` write into the node through the fake Zuul and are read
back.

The node is the session's (``tests/fixtures/cluster.py``); without Java or
Maven these tests skip, saying so (under CI they fail).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from elastic_recheck.cli.main import cli
from tests.fixtures.cluster import ClusterNode

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"
QUERIES = REPO / "queries"
NOW = "2026-11-20T00:00:00Z"
DAYS = "14"

pytestmark = pytest.mark.timeout(600)


@dataclass
class Pair:
    """The same history in a real node and in an embedded store."""

    node: ClusterNode
    prefix: str
    config: Path
    store: Path
    work: Path

    def cluster(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["-c", str(self.config), "--store", str(self.work / "unused.db"), *args])

    def embedded(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--store", str(self.store), *args])

    def both(self, *args: str) -> tuple[Result, Result]:
        c, e = self.cluster(*args), self.embedded(*args)
        assert c.exit_code == 0, f"cluster: {args}: {c.output}"
        assert e.exit_code == 0, f"embedded: {args}: {e.output}"
        return c, e


def _http(node: ClusterNode, method: str, path: str) -> Any:
    req = urllib.request.Request(node.url + path, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - 127.0.0.1 only
        return json.loads(resp.read() or b"null")


@pytest.fixture(scope="module")
def pair(opensearch_node: ClusterNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    work = tmp_path_factory.mktemp("cluster-commands")
    prefix = f"er-cmd-{uuidlib.uuid4().hex[:8]}"
    config = work / "elasticRecheck.conf"
    # the original's keys: es_url (no backend) and index_format
    config.write_text(
        f"[data_source]\nes_url = {opensearch_node.url}\nindex_format = {prefix}-%Y.%m.%d\n"
        f"index_template = {prefix}\n[bot]\nqueries = {QUERIES}\n"
    )
    config.chmod(0o600)
    p = Pair(opensearch_node, prefix, config, work / "store.db", work)
    logs = str(SAMPLE / "logs.jsonl.gz")
    c = p.cluster("ingest", "--jsonl", logs)
    assert c.exit_code == 0, c.output
    e = p.embedded("ingest", "--jsonl", logs)
    assert e.exit_code == 0, e.output
    try:
        yield p
    finally:
        _http(opensearch_node, "DELETE", f"/{prefix}-*")
        _http(opensearch_node, "DELETE", f"/_index_template/{prefix}")


def _without_ids(text: str) -> list[str]:
    """``search`` output lines without their second column (the document id)."""
    return [re.sub(r"^(\S+) \S+ ", r"\1 ", line) for line in text.splitlines()]


def test_ingest_wrote_the_sample_with_the_logstash_mapping(pair: Pair) -> None:
    summary = json.loads((SAMPLE / "builds.json").read_text())["summary"]
    count = _http(pair.node, "GET", f"/{pair.prefix}-*/_count")
    assert count["count"] == summary["documents"]
    indices = sorted(_http(pair.node, "GET", f"/{pair.prefix}-*/_mapping"))
    assert indices[0] == f"{pair.prefix}-2026.11.10" and len(indices) >= 10  # one per day of the sample
    props = _http(pair.node, "GET", f"/{indices[0]}/_mapping")[indices[0]]["mappings"]["properties"]
    assert props["message"]["type"] == "text" and props["tags"]["type"] == "text"
    assert props["@timestamp"]["type"] == "date"
    assert {props[f]["type"] for f in ("build_uuid", "build_name", "voting", "build_change", "filename")} == {"keyword"}
    # ingesting the same file again replaces documents (stable ids)
    again = pair.cluster("ingest", "--jsonl", str(SAMPLE / "logs.jsonl.gz"))
    assert again.exit_code == 0, again.output
    assert _http(pair.node, "GET", f"/{pair.prefix}-*/_count")["count"] == summary["documents"]


def test_search_and_query(pair: Pair) -> None:
    text = 'message:"End of file while reading data" AND tags:"screen-n-cpu.txt"'
    c, e = pair.both("search", "-n", "0", text)
    # the same lines; the id column differs (the embedded store numbers documents that come
    # without an id, the cluster gets the writer's stable ids) and so may the order of equal timestamps
    assert sorted(_without_ids(c.stdout)) == sorted(_without_ids(e.stdout))
    assert "54 matching documents" in c.stdout + c.stderr
    c, e = pair.both("query", str(QUERIES / "1893618.yaml"))
    assert c.stdout == e.stdout and "in 27 builds" in c.stdout


def test_classify(pair: Pair) -> None:
    builds = json.loads((SAMPLE / "builds.json").read_text())["builds"]
    failed = [b["uuid"] for b in builds if b["result"] == "FAILURE"][:25]
    args = ["classify", "--json", "--queries", str(QUERIES)]
    for uuid in failed:
        args += ["--build-uuid", uuid]
    c, e = pair.both(*args)
    assert c.stdout == e.stdout
    lines = [json.loads(line) for line in c.stdout.splitlines()]
    assert len(lines) == 25 and any(line["bugs"] for line in lines)
    # failure signatures (issue 17): the node's answers sign the unexplained failures exactly as the store's
    signed = [line for line in lines if "signature" in line]
    assert signed and {line["build_uuid"] for line in signed} == {line["build_uuid"] for line in lines if not line["bugs"]}
    assert all(line["signature"]["lines"] for line in signed)
    assert any(line["signature"]["recurring"]["builds"] for line in signed)
    assert (pair.work / "signatures.db").exists()  # the cluster's local signature cache


def test_bot_replay_dry_run(pair: Pair) -> None:
    out = {}
    for name, run in (("cluster", pair.cluster), ("embedded", pair.embedded)):
        actions = pair.work / f"actions-{name}.jsonl"
        res = run("bot", "--queries", str(QUERIES), "--replay", str(SAMPLE / "events.jsonl"), "--dry-run", "--no-irc",
                  "--readiness-timeout", "0", "--actions-out", str(actions))
        assert res.exit_code == 0, res.output
        out[name] = (res.stdout, [json.loads(line) for line in actions.read_text().splitlines()])
    # the comments it would post (the workers finish events in any order)
    assert sorted(_comments(out["cluster"][0])) == sorted(_comments(out["embedded"][0]))
    assert "would comment on" in out["cluster"][0]

    def stable(action: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in action.items() if "time" not in k and "elapsed" not in k and k not in ("seconds", "at")}

    def key(action: dict[str, Any]) -> str:
        return json.dumps(stable(action), sort_keys=True)

    assert sorted(map(key, out["cluster"][1])) == sorted(map(key, out["embedded"][1]))


def _comments(text: str) -> list[str]:
    return ["=== would comment on " + block for block in text.split("=== would comment on ")[1:]]


def test_graph_uncategorized_render(pair: Pair) -> None:
    for name in ("cluster", "embedded"):
        run = pair.cluster if name == "cluster" else pair.embedded
        res = run("graph", "--queries", str(QUERIES), "--now", NOW, "--days", DAYS, "-o", str(pair.work / f"graph-{name}.json"))
        assert res.exit_code == 0, res.output
        res = run("uncategorized", "--queries", str(QUERIES), "--now", NOW, "--days", DAYS, "-o", str(pair.work / f"unc-{name}"))
        assert res.exit_code == 0, res.output
        res = run("render", "--queries", str(QUERIES), "--now", NOW, "--days", DAYS, "-o", str(pair.work / f"site-{name}"))
        assert res.exit_code == 0, res.output

    def graph(name: str) -> Any:
        data = json.loads((pair.work / f"graph-{name}.json").read_text())
        return _drop_timing(data)

    assert graph("cluster") == graph("embedded")
    assert graph("cluster")  # not empty
    unc = {n: sorted(p.name for p in (pair.work / f"unc-{n}").iterdir()) for n in ("cluster", "embedded")}
    assert unc["cluster"] == unc["embedded"] and unc["cluster"]
    for name in sorted(unc["cluster"]):
        if name.endswith(".json"):
            a = _drop_timing(json.loads((pair.work / "unc-cluster" / name).read_text()))
            b = _drop_timing(json.loads((pair.work / "unc-embedded" / name).read_text()))
            assert a == b, name
    assert (pair.work / "site-cluster" / "index.html").is_file()
    pages = sorted(p.name for p in (pair.work / "site-cluster").iterdir())
    assert pages == sorted(p.name for p in (pair.work / "site-embedded").iterdir())


def _drop_timing(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_timing(v) for k, v in data.items()
                if not any(w in k for w in ("elapsed", "generated", "took", "seconds", "now_utc", "backend"))}
    if isinstance(data, list):
        return [_drop_timing(v) for v in data]
    return data


def test_check_queries_reads_the_nodes_mapping(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="elastic_recheck"):
        res = pair.cluster("-v", "check-queries", str(QUERIES))
    assert res.exit_code == 0, res.output
    assert any("fields checked against the cluster's mapping" in m for m in caplog.messages), caplog.messages
    # a field the node does not have is flagged
    bad = pair.work / "bad.yaml"
    bad.write_text('query: >\n  message:"boom" AND nonesuch_field:"x"\n')
    res = pair.cluster("check-queries", str(bad))
    assert "unknown-field" in res.stdout


def test_backtest_stale_suggest(pair: Pair) -> None:
    c, e = pair.both("backtest", "--queries", str(QUERIES), "--now", NOW, "--days", DAYS, "--format", "json",
                     str(QUERIES / "1893618.yaml"))
    assert _drop_timing(json.loads(c.stdout)) == _drop_timing(json.loads(e.stdout))
    c, e = pair.both("stale", "--queries", str(QUERIES), "--now", NOW, "--days", DAYS, "--format", "json", "--all")
    assert _drop_timing(json.loads(c.stdout)) == _drop_timing(json.loads(e.stdout))
    c, e = pair.both("suggest", "--queries", str(QUERIES), "--now", NOW, "--days", DAYS, "--format", "json")
    assert _drop_timing(json.loads(c.stdout)) == _drop_timing(json.loads(e.stdout))


def test_collect_and_ingest_build_dir_write_into_the_node(pair: Pair, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.fixtures.zuul_server import FakeZuul, build_record, devstack_log_tree

    start = datetime.now(UTC) - timedelta(hours=2)
    uuid = uuidlib.uuid4().hex
    with FakeZuul() as zuul:
        rec = build_record(uuid, result="FAILURE", start=start, log_url=zuul.log_url(uuid))
        zuul.add_build(rec, devstack_log_tree(start, result="FAILURE"))
        cfg = tmp_path / "collect.conf"
        cfg.write_text(pair.config.read_text() + f"[zuul]\nurl = {zuul.url}\ntenant = {zuul.tenant}\n")
        cfg.chmod(0o600)
        res = CliRunner().invoke(cli, ["-c", str(cfg), "--store", str(tmp_path / "state.db"), "collect", "--uuid", uuid])
        assert res.exit_code == 0, res.output
        assert f"collected {uuid[:7]}" in res.stderr, res.stderr
    search = ["search", "--json", "-n", "0", "--days", "1", f'build_uuid:"{uuid}"']
    res = pair.cluster(*search)
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert hits and {h.get("build_uuid", h.get("_source", {}).get("build_uuid")) for h in hits} == {uuid}
    n = len(hits)
    # the same build's files through ingest --build-dir: the same ids, so nothing is duplicated
    logs = tmp_path / "logs"
    for rel, data in devstack_log_tree(start, result="FAILURE").items():
        if rel.endswith(("/", ".json")):
            continue
        path = logs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    res = pair.cluster("ingest", "--build-dir", str(logs), "--build-uuid", uuid, "--build-name", "tempest-full")
    assert res.exit_code == 0, res.output
    res = pair.cluster(*search)
    assert len([line for line in res.stdout.splitlines() if line.startswith("{")]) <= n


def test_bot_fetches_a_builds_logs_into_the_node_and_comments(opensearch_node: ClusterNode, tmp_path: Path) -> None:
    """The bot with a cluster and [zuul] url: the on-demand fetch writes through the bulk writer into the node."""
    import subprocess
    import sys

    from tests.fixtures.zuul_server import FakeZuul
    from tests.functional.test_bot_collect import UUID, _report_event, add_failed_gate_build

    prefix = f"er-bot-{uuidlib.uuid4().hex[:8]}"
    try:
        with FakeZuul() as zuul:
            record, host = add_failed_gate_build(zuul)
            cfg = tmp_path / "er.conf"
            cfg.write_text(f"[data_source]\nes_url = {opensearch_node.url}\nindex_format = {prefix}-%Y.%m.%d\n"
                           f"index_template = {prefix}\n[zuul]\nurl = {zuul.url}\ntenant = openstack\nlog_hosts = {host}\n")
            cfg.chmod(0o600)
            events = tmp_path / "events.jsonl"
            events.write_text(json.dumps(_report_event(zuul, record)) + "\n")
            actions = tmp_path / "actions.jsonl"
            proc = subprocess.run(
                [sys.executable, "-m", "elastic_recheck", "-c", str(cfg), "--store", str(tmp_path / "state.db"),
                 "bot", "--queries", str(QUERIES), "--replay", str(events), "--dry-run", "--no-irc",
                 "--readiness-timeout", "60", "--actions-out", str(actions)],
                capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
            )
            assert proc.returncode == 0, proc.stderr
            assert any(p.endswith("controller/logs/screen-n-cpu.txt") for p in zuul.log_requests(UUID))
        line = json.loads(actions.read_text())
        assert line["jobs"] == {"tempest-full-py3": ["1893618"]}, line
        assert "would comment on 900001,3" in proc.stdout
        # the documents are in the node, under the configured indices
        count = _http(opensearch_node, "GET", f"/{prefix}-*/_count")["count"]
        assert count > 0
    finally:
        _http(opensearch_node, "DELETE", f"/{prefix}-*")
        _http(opensearch_node, "DELETE", f"/_index_template/{prefix}")
