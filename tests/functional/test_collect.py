"""Collecting build logs from a fake Zuul into the embedded store or a fake cluster.

The Zuul API and the log server are a local HTTP fake (tests/fixtures/zuul_server.py);
the ingest pipeline, the SQLite store and the elasticsearch/opensearch clients are real.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.elastic.backend import ElasticBackend
from elastic_recheck.adapters.elastic.bulk import BulkWriter
from elastic_recheck.adapters.elastic.settings import ClusterSettings
from elastic_recheck.adapters.sqlite.collector_state import COLLECTED, FAILED, MISSING, NO_LOGS, REFUSED, CollectorState
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.adapters.zuul.api import ZuulClient
from elastic_recheck.cli.main import cli
from elastic_recheck.collect.fetch import LogFetcher, LogHostRefused
from elastic_recheck.collect.files import (
    DEFAULT_FILE_RULES,
    FileRule,
    glob_match,
    manifest_files,
    parse_file_rules,
    safe_relpath,
)
from elastic_recheck.collect.runner import ALREADY, CollectOptions, Collector, CollectResult, sample_keep
from elastic_recheck.collect.sinks import ClusterSink, EmbeddedSink
from elastic_recheck.core.errors import ConfigError, LogFetchError
from elastic_recheck.core.search_types import Filters, QuerySpec
from elastic_recheck.core.zuul_build import ZuulBuild
from tests.fixtures.es_server import (
    FakeCluster,
    Reply,
    Request,
    accept_writes,
    bulk_item,
    bulk_response,
)
from tests.fixtures.zuul_server import (
    FAILED_TEST,
    FakeZuul,
    build_record,
    devstack_log_tree,
    manifest_for,
    oslo_service_log,
)

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 6, 10, 0, 0, tzinfo=UTC)
MAX_BYTES = 200_000


def uuid_n(n: int) -> str:
    return f"{n:04x}" + "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"[:28]


@pytest.fixture
def zuul() -> Iterator[FakeZuul]:
    with FakeZuul() as fake:
        yield fake


def add_devstack_build(
    zuul: FakeZuul,
    n: int,
    *,
    result: str = "FAILURE",
    shape: str = "flat",
    start: datetime | None = None,
    manifest: bool = True,
    big: bool = False,
    pipeline: str = "check",
    voting: bool = True,
    encoded: tuple[str, ...] = ("controller/logs/screen-q-svc.txt",),
    files: dict[str, bytes] | None = None,
) -> ZuulBuild:
    uuid = uuid_n(n)
    start = start or T0 + timedelta(minutes=n)
    log_url = zuul.log_url(uuid, pipeline=pipeline)
    rec = build_record(uuid, result=result, shape=shape, start=start, log_url=log_url, manifest=manifest, pipeline=pipeline, voting=voting)
    if files is None:
        files = devstack_log_tree(start, result=result, big_bytes=MAX_BYTES + 50_000 if big else 0, with_manifest=manifest)
    zuul.add_build(rec, files, gzip_encoded=encoded)
    return ZuulBuild.from_api(rec)


def fetcher(zuul: FakeZuul, **kw: Any) -> LogFetcher:
    kw.setdefault("max_bytes", MAX_BYTES)
    kw.setdefault("backoff", 0.01)
    kw.setdefault("zuul_host", "127.0.0.1")
    return LogFetcher(**kw)


def make_collector(zuul: FakeZuul, state_path: Path, sink: Any, **kw: Any) -> Collector:
    return Collector(
        ZuulClient(zuul.url, zuul.tenant, backoff=0.01),
        fetcher(zuul, **kw),
        CollectorState(state_path),
        sink,
    )


def bulk_ok(req: Request) -> Reply:
    actions = req.ndjson()[0::2]
    return Reply(200, bulk_response([bulk_item(a["index"]["_index"], a["index"]["_id"]) for a in actions]))


def bulk_docs(cluster: FakeCluster) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for req in cluster.requests_to("_bulk"):
        lines = req.ndjson()
        out.extend(zip(lines[0::2], lines[1::2], strict=True))
    return out


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster("opensearch") as fake:
        accept_writes(fake)
        yield fake


def cluster_sink(cluster: FakeCluster) -> ClusterSink:
    return ClusterSink(BulkWriter(ElasticBackend(ClusterSettings(url=cluster.url, flavor="opensearch", timeout=5))))


# -- pure parts ----------------------------------------------------------------------


def test_glob_match_segments() -> None:
    assert glob_match("*/logs/screen-*.txt", "controller/logs/screen-n-cpu.txt")
    assert glob_match("*/logs/screen-*.txt", "compute1/logs/screen-q-agt.txt")
    assert not glob_match("*/logs/screen-*.txt", "controller/logs/sub/screen-x.txt")
    assert not glob_match("*/logs/screen-*.txt", "logs/screen-n-cpu.txt")
    assert glob_match("**/*.subunit", "testrepository.subunit")
    assert glob_match("**/*.subunit", "controller/logs/tempest/x.subunit")
    assert glob_match("controller/logs/devstack@*.service.log.txt", "controller/logs/devstack@n-cpu.service.log.txt")
    assert not glob_match("job-output.txt", "job-output.json")


def test_safe_relpath_and_manifest_walk() -> None:
    assert safe_relpath("controller/logs/./x.txt") == "controller/logs/x.txt"
    assert safe_relpath("a/../b.txt") == "b.txt"
    for bad in ("../x", "a/../../x", "/etc/passwd", "", ".", "a\\..\\b", "x\x00y"):
        assert safe_relpath(bad) is None, bad
    manifest = {
        "tree": [
            {"name": "job-output.txt", "mimetype": "text/plain", "encoding": None, "last_modified": 1, "size": 10},
            {"name": "..", "mimetype": "application/directory", "encoding": None, "children": [
                {"name": "evil.txt", "mimetype": "text/plain", "size": 5},
            ]},
            {"name": "controller", "mimetype": "application/directory", "encoding": None, "children": [
                {"name": "logs", "mimetype": "application/directory", "encoding": None, "children": [
                    {"name": "screen-n-cpu.txt", "mimetype": "text/plain", "encoding": None, "last_modified": 1, "size": 99},
                    {"name": "../../../../etc/cron.d/x", "mimetype": "text/plain", "size": 1},
                    {"name": "syslog.txt.gz", "mimetype": "text/plain", "encoding": "gzip", "size": 7},
                ]},
            ]},
        ],
        "index_links": False,
    }
    assert manifest_files(manifest) == {
        "job-output.txt": 10,
        "controller/logs/screen-n-cpu.txt": 99,
        "controller/logs/syslog.txt.gz": 7,
    }


def test_select_prefers_plain_over_gz_and_job_output_first() -> None:
    f = LogFetcher(rules=[FileRule(".*", ("job-output.txt", "*/logs/*.txt")), FileRule("^tempest", ("testrepository.subunit",))])
    avail = ["controller/logs/a.txt.gz", "controller/logs/a.txt", "controller/logs/b.txt.gz", "job-output.txt", "testrepository.subunit", "x.txt"]
    assert f.select("tempest-full", avail) == ["job-output.txt", "controller/logs/a.txt", "controller/logs/b.txt.gz", "testrepository.subunit"]
    assert "testrepository.subunit" not in f.select("openstack-tox-py311", avail)


def test_parse_file_rules() -> None:
    rules = parse_file_rules("# comment\n^tempest-=controller/logs/tempest.log, */logs/screen-n-*.txt\n.*=zuul-info/host-info.*.yaml")
    assert rules == [
        FileRule("^tempest-", ("controller/logs/tempest.log", "*/logs/screen-n-*.txt")),
        FileRule(".*", ("zuul-info/host-info.*.yaml",)),
    ]
    with pytest.raises(ConfigError):
        parse_file_rules("no equals sign")
    with pytest.raises(ConfigError):
        parse_file_rules("(unclosed=x")


def test_success_sample_is_deterministic_and_near_the_rate() -> None:
    uuids = [f"{n:032x}" for n in range(4000)]
    picked = [u for u in uuids if sample_keep(u, 0.2)]
    assert picked == [u for u in uuids if sample_keep(u, 0.2)]
    assert 0.17 < len(picked) / len(uuids) < 0.23
    assert set(picked) <= {u for u in uuids if sample_keep(u, 0.5)}  # a higher rate keeps a superset
    assert all(sample_keep(u, 1.0) for u in uuids[:10]) and not any(sample_keep(u, 0.0) for u in uuids[:10])


# -- the fetcher -------------------------------------------------------------------------


def test_fetch_with_manifest(zuul: FakeZuul, tmp_path: Path) -> None:
    build = add_devstack_build(zuul, 1, big=True)
    start = build.start_time
    assert start is not None
    res = fetcher(zuul).fetch(build, tmp_path / "b")
    got = sorted(f.path for f in res.files)
    assert got == sorted(
        [
            "job-output.txt",
            "testrepository.subunit",
            "controller/logs/screen-n-cpu.txt",
            "controller/logs/screen-q-svc.txt",
            "controller/logs/screen-c-vol.txt",
            "controller/logs/syslog.txt",
        ]
    )
    assert res.used_manifest
    assert [(s.path, s.reason.split(" (")[0]) for s in res.skipped] == [("controller/logs/screen-n-api.txt", "over max_bytes")]
    tree = devstack_log_tree(start, big_bytes=MAX_BYTES + 50_000)
    # .gz file stored un-gzipped under its plain name; Content-Encoding undone
    assert (res.build_dir / "controller/logs/screen-c-vol.txt").read_bytes() == gzip.decompress(tree["controller/logs/screen-c-vol.txt.gz"])
    assert (res.build_dir / "controller/logs/screen-q-svc.txt").read_bytes() == tree["controller/logs/screen-q-svc.txt"]
    assert not (res.build_dir / "controller/logs/screen-c-vol.txt.gz").exists()
    # node info from the inventory
    assert res.build.node_provider == "rax-dfw" and res.build.zuul_executor == "ze07.opendev.org"
    # the oversized file and the unwanted ones were never requested
    paths = zuul.log_requests(build.uuid)
    for never in ("screen-n-api.txt", "nova.conf.txt", "zuul-info.controller.txt", "job-output.json", "devstacklog.txt.summary"):
        assert not any(p.endswith(never) for p in paths), never
    assert len(paths) == 8  # manifest + inventory + 6 files
    assert not list(res.build_dir.rglob("*.part"))


def test_fetch_without_manifest_tries_known_paths(zuul: FakeZuul, tmp_path: Path) -> None:
    start = T0
    files = devstack_log_tree(start, big_bytes=MAX_BYTES + 50_000, with_manifest=False)
    files["compute1/logs/screen-n-cpu.txt"] = b"2024-05-06 10:00:00.000 1 INFO nova.compute [-] not in the inventory\n"
    build = add_devstack_build(zuul, 2, manifest=False, files=files, encoded=("controller/logs/screen-q-svc.txt", "controller/logs/syslog.txt"))
    res = fetcher(zuul).fetch(build, tmp_path / "b")
    assert not res.used_manifest
    got = {f.path for f in res.files}
    # screen-c-vol exists only as .gz: .gz names are not guessed for Zuul v3+ builds
    assert {"job-output.txt", "testrepository.subunit", "controller/logs/screen-n-cpu.txt", "controller/logs/screen-q-svc.txt",
            "controller/logs/syslog.txt"} == got
    # found by Content-Length, removed, never half-written
    assert [s.path for s in res.skipped] == ["controller/logs/screen-n-api.txt"]
    assert not (res.build_dir / "controller/logs/screen-n-api.txt").exists()
    # the inventory names only "controller": compute1 paths are not guessed, nor v2 ones
    tried = zuul.log_requests(build.uuid)
    rels = [p.split(f"/{build.short_uuid}/", 1)[1] for p in tried]
    assert "controller/logs/screen-n-cpu.txt" in rels
    assert not any(r.startswith(("compute1/", "logs/")) for r in rels)
    assert not any(p.endswith(".gz") for p in tried)
    assert res.build.node_provider == "rax-dfw"


def test_fetch_zuul_v2_layout_without_manifest(zuul: FakeZuul, tmp_path: Path) -> None:
    files = {
        "console.html": b"<pre>Started by user anonymous</pre>\n",
        "logs/screen-n-cpu.txt.gz": gzip.compress(oslo_service_log(T0, "nova", traceback="trace")),
        # two gzip members (logrotate output concatenated): both are read
        "logs/syslog.txt.gz": gzip.compress(b"Jun  9 10:00:00 devstack-precise kernel: [ 1.0] boot\n")
        + gzip.compress(b"Jun  9 10:00:01 devstack-precise kernel: [ 2.0] second member\n"),
    }
    build = add_devstack_build(zuul, 14, manifest=False, files=files, encoded=())
    res = fetcher(zuul).fetch(build, tmp_path / "b")
    assert sorted(f.path for f in res.files) == ["logs/screen-n-cpu.txt", "logs/syslog.txt"]
    assert (res.build_dir / "logs/screen-n-cpu.txt").read_bytes() == gzip.decompress(files["logs/screen-n-cpu.txt.gz"])
    assert (res.build_dir / "logs/syslog.txt").read_text().splitlines()[1].endswith("second member")
    assert [s.path for s in res.skipped] == ["job-output.txt"]
    assert res.build.node_provider is None


def test_oversized_gzip_encoded_file_is_cut_off_while_streaming(zuul: FakeZuul, tmp_path: Path) -> None:
    files = devstack_log_tree(T0, big_bytes=MAX_BYTES * 3, with_manifest=False)
    build = add_devstack_build(zuul, 3, manifest=False, files=files, encoded=("controller/logs/screen-n-api.txt",))
    res = fetcher(zuul).fetch(build, tmp_path / "b")
    skipped = {s.path: s.reason for s in res.skipped}
    assert "controller/logs/screen-n-api.txt" in skipped and "over max_bytes" in skipped["controller/logs/screen-n-api.txt"]
    assert not list((tmp_path / "b").rglob("screen-n-api*"))


def test_missing_logs_and_no_log_url(zuul: FakeZuul, tmp_path: Path) -> None:
    build = add_devstack_build(zuul, 4, files={})
    with pytest.raises(LogFetchError) as err:
        fetcher(zuul).fetch(build, tmp_path / "b")
    assert err.value.status == 404 and not err.value.retryable
    nolog = ZuulBuild.from_api(build_record(uuid_n(5), result="NODE_FAILURE", log_url=None))
    with pytest.raises(LogFetchError, match="no log_url"):
        fetcher(zuul).fetch(nolog, tmp_path / "c")


def test_disallowed_log_host_is_refused_before_any_request(zuul: FakeZuul, tmp_path: Path) -> None:
    build = add_devstack_build(zuul, 6)
    f = fetcher(zuul, allowed_hosts=["logs.opendev.org", "*.rackcdn.com"])
    with pytest.raises(LogHostRefused, match=r"127\.0\.0\.1 is not in \[zuul\] log_hosts"):
        f.fetch(build, tmp_path / "b")
    assert zuul.log_requests() == []
    # allowed by glob
    fetcher(zuul, allowed_hosts=["127.0.0.*"]).fetch(build, tmp_path / "c")
    with pytest.raises(LogHostRefused, match="not an http"):
        f.check_url("file:///etc/passwd")


def test_redirects_and_artifacts_to_other_hosts_are_refused(zuul: FakeZuul, tmp_path: Path) -> None:
    build = add_devstack_build(zuul, 7)
    prefix = build.log_url.split(zuul.url, 1)[1]  # type: ignore[union-attr]
    port = zuul.url.rsplit(":", 1)[1]
    # localhost is the same server, but not the build's log host
    zuul.redirect(prefix + "controller/logs/syslog.txt", f"http://localhost:{port}{prefix}controller/logs/syslog.txt")
    rec = dict(zuul.builds[0])
    rec["artifacts"] = [{"name": "Zuul Manifest", "url": f"http://localhost:{port}{prefix}zuul-manifest.json", "metadata": {"type": "zuul_manifest"}}]
    b = ZuulBuild.from_api(rec)
    res = fetcher(zuul).fetch(b, tmp_path / "b")
    assert res.used_manifest  # fell back to <log_url>/zuul-manifest.json
    skipped = {s.path: s.reason for s in res.skipped}
    assert "neither the Zuul host nor the build's log host" in skipped["controller/logs/syslog.txt"]
    assert "controller/logs/screen-n-cpu.txt" in {f.path for f in res.files}


def test_manifest_paths_cannot_escape_the_download_dir(zuul: FakeZuul, tmp_path: Path) -> None:
    files = devstack_log_tree(T0, with_manifest=False)
    manifest = json.loads(manifest_for(files))
    manifest["tree"].append({"name": "../../escaped.txt", "mimetype": "text/plain", "size": 3})
    manifest["tree"].append({"name": "..", "mimetype": "application/directory", "children": [{"name": "job-output.txt", "size": 3}]})
    files["zuul-manifest.json"] = json.dumps(manifest).encode()
    build = add_devstack_build(zuul, 8, files=files)
    f = fetcher(zuul, rules=[FileRule(".*", ("*", "*/*", "job-output.txt"))])
    res = f.fetch(build, tmp_path / "deep" / "b")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "deep" / "job-output.txt").exists()
    for p in (tmp_path / "deep").rglob("*"):
        assert p == tmp_path / "deep" / "b" or (tmp_path / "deep" / "b") in p.parents
    assert "job-output.txt" in {x.path for x in res.files}


def test_log_server_5xx_is_retried_and_corrupt_gzip_skipped(zuul: FakeZuul, tmp_path: Path) -> None:
    files = devstack_log_tree(T0)
    files["controller/logs/screen-c-vol.txt.gz"] = files["controller/logs/screen-c-vol.txt.gz"][:60]  # truncated
    files["zuul-manifest.json"] = manifest_for({k: v for k, v in files.items() if k != "zuul-manifest.json"})
    build = add_devstack_build(zuul, 9, files=files)
    prefix = build.log_url.split(zuul.url, 1)[1]  # type: ignore[union-attr]
    zuul.fail(prefix + "job-output.txt", 503, 500)
    res = fetcher(zuul).fetch(build, tmp_path / "b")
    assert "job-output.txt" in {f.path for f in res.files}
    assert len(zuul.hits(prefix + "job-output.txt")) == 3
    reasons = {s.path: s.reason for s in res.skipped}
    assert "gzip" in reasons["controller/logs/screen-c-vol.txt.gz"]
    zuul.fail(prefix + "job-output.txt", 503, 503, 503, 503)
    with pytest.raises(LogFetchError) as err:
        fetcher(zuul, retries=2).fetch(build, tmp_path / "c")
    assert err.value.retryable


# -- collecting into a cluster ----------------------------------------------------------------


def test_collect_into_cluster_with_ci_log_processing_fields(zuul: FakeZuul, cluster: FakeCluster, tmp_path: Path) -> None:
    b1 = add_devstack_build(zuul, 10, shape="flat")
    b2 = add_devstack_build(zuul, 11, shape="nested", pipeline="gate")
    add_devstack_build(zuul, 12, pipeline="post")  # not a wanted pipeline
    add_devstack_build(zuul, 13, voting=False)  # non-voting
    col = make_collector(zuul, tmp_path / "state.db", cluster_sink(cluster))
    summary = col.run_once(CollectOptions(success_sample=1.0, concurrency=2))
    assert summary.statuses == {COLLECTED: 2}
    docs = bulk_docs(cluster)
    assert {d["build_uuid"] for _, d in docs} == {b1.uuid, b2.uuid}
    assert summary.documents == len(docs)
    for action, doc in docs:
        ts = datetime.fromisoformat(doc["@timestamp"])
        assert action["index"]["_index"] == ts.strftime("logstash-%Y.%m.%d")
        assert doc["loglevel"] != "DEBUG" if "loglevel" in doc else True
        assert doc["voting"] == 1 and doc["node_provider"] == "rax-dfw" and doc["zuul_executor"] == "ze07.opendev.org"
        assert doc["build_short_uuid"] == doc["build_uuid"][:7] and doc["build_node"] == "zuul-executor"
        assert "id" not in doc
    by_file: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _, d in docs:
        by_file.setdefault((d["build_uuid"], d["filename"]), []).append(d)
    gate = by_file[(b2.uuid, "controller/logs/screen-n-cpu.txt")]
    assert {d["build_queue"] for d in gate} == {"gate"} and gate[0]["build_change"] in ("900001", 900001)
    assert "screen-n-cpu.txt" in gate[0]["tags"] and "oslofmt" in gate[0]["tags"]
    # prefixed traceback lines are records of their own
    assert sum("Traceback (most recent call last)" in d["message"] for d in gate) == 1
    assert {d["loglevel"] for d in gate if "libvirtError" in d["message"]} == {"ERROR"}
    # old-style TRACE lines are folded into the ERROR record they continue
    qsvc = by_file[(b2.uuid, "controller/logs/screen-q-svc.txt")]
    traced = [d for d in qsvc if "Traceback (most recent call last)" in d["message"]]
    assert len(traced) == 1 and "multiline" in traced[0]["tags"] and traced[0]["loglevel"] == "ERROR"
    assert traced[0]["message"].count("\n") == 6 and "libvirt.libvirtError" in traced[0]["message"]
    assert gate[0]["log_url"] == f"{b2.log_url}controller/logs/screen-n-cpu.txt"
    console = by_file[(b1.uuid, "job-output.txt")]
    assert any(d["message"] == "Job complete, result: FAILURE" for d in console)
    # ids are stable: the same build twice maps onto the same documents
    ids = [a["index"]["_id"] for a, _ in docs]
    assert len(set(ids)) == len(ids)
    # a second pass fetches nothing
    zuul.clear()
    n_bulk = len(cluster.requests_to("_bulk"))
    again = col.run_once(CollectOptions(success_sample=1.0))
    assert again.processed == 0 and again.known == 2
    assert zuul.log_requests() == [] and len(cluster.requests_to("_bulk")) == n_bulk


def test_statuses_missing_no_logs_refused_failed(zuul: FakeZuul, cluster: FakeCluster, tmp_path: Path) -> None:
    missing = add_devstack_build(zuul, 20, files={})
    rec = build_record(uuid_n(21), result="FAILURE", log_url=None, start=T0 + timedelta(minutes=21))
    zuul.add_build(rec)
    elsewhere = build_record(uuid_n(22), result="FAILURE", log_url="https://logs.elsewhere.example/22/", start=T0 + timedelta(minutes=22))
    zuul.add_build(elsewhere)
    flaky = add_devstack_build(zuul, 23)
    prefix = flaky.log_url.split(zuul.url, 1)[1]  # type: ignore[union-attr]
    zuul.fail(prefix + "zuul-manifest.json", 500, 500)  # both attempts of the first pass
    col = make_collector(zuul, tmp_path / "state.db", cluster_sink(cluster), allowed_hosts=["127.0.0.1"], retries=1)
    results: dict[str, CollectResult] = {}
    col.run_once(CollectOptions(concurrency=1), progress=lambda r: results.__setitem__(r.uuid, r))
    assert {u: r.status for u, r in results.items()} == {
        missing.uuid: MISSING,
        uuid_n(21): NO_LOGS,
        uuid_n(22): REFUSED,
        flaky.uuid: FAILED,
    }
    assert "logs.elsewhere.example" in (results[uuid_n(22)].error or "")
    state = col.state
    assert state.get(flaky.uuid).attempts == 1  # type: ignore[union-attr]
    # the next pass retries only the retryable failure, which now works
    again: dict[str, str] = {}
    col.run_once(CollectOptions(concurrency=1), progress=lambda r: again.__setitem__(r.uuid, r.status))
    assert again == {flaky.uuid: COLLECTED}
    assert state.counts() == {MISSING: 1, NO_LOGS: 1, REFUSED: 1, COLLECTED: 1}


def test_success_sampling_and_limit(zuul: FakeZuul, cluster: FakeCluster, tmp_path: Path) -> None:
    small = {"job-output.txt": b"2024-05-06 10:00:00.000000 | Job complete, result: SUCCESS\n"}
    for n in range(40):
        add_devstack_build(zuul, 100 + n, result="SUCCESS", manifest=False, files=small)
    for n in range(3):
        add_devstack_build(zuul, 200 + n, result="FAILURE", manifest=False, files=small)
    col = make_collector(zuul, tmp_path / "state.db", cluster_sink(cluster))
    dry: list[str] = []
    s = col.run_once(CollectOptions(success_sample=0.25, dry_run=True), progress=lambda r: dry.append(r.uuid))
    expected = {uuid_n(200 + n) for n in range(3)} | {uuid_n(100 + n) for n in range(40) if sample_keep(uuid_n(100 + n), 0.25)}
    assert set(dry) == expected and s.sampled_out == 43 - len(expected)
    assert zuul.log_requests() == [] and col.state.counts() == {}
    done: list[str] = []
    col.run_once(CollectOptions(success_sample=0.25, limit=4, concurrency=2), progress=lambda r: done.append(r.uuid))
    assert len(done) == 4 and set(done) <= expected
    col.run_once(CollectOptions(success_sample=0.25), progress=lambda r: done.append(r.uuid))
    assert sorted(done) == sorted(expected)


# -- the embedded store, on demand, concurrency --------------------------------------------------


def test_collect_into_embedded_store_and_search(zuul: FakeZuul, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.db")
    b = add_devstack_build(zuul, 30, shape="nested")
    col = make_collector(zuul, tmp_path / "store.db", EmbeddedSink(store))
    res = col.collect_build(b.uuid)
    assert res.status == COLLECTED and res.documents > 0 and res.test_results == 3
    spec = QuerySpec(
        queries=('message:"qemu unexpectedly closed the monitor" AND tags:"screen-n-cpu.txt"',),
        filters=Filters(build_uuid=b.uuid, build_status="FAILURE", voting=True),
    )
    hits = store.search(spec).hits
    assert len(hits) == 2  # the ERROR line and the traceback record
    assert hits[0].get("node_provider") == "rax-dfw" and hits[0].get("project") == "openstack/nova"
    assert store.failed_tests(b.uuid) == {FAILED_TEST}
    assert store.indexed_files(b.uuid) >= {"job-output.txt", "controller/logs/screen-n-cpu.txt", "controller/logs/syslog.txt"}
    assert store.count_documents() == res.documents
    # on-demand again: nothing fetched, nothing stored twice
    zuul.clear()
    again = col.collect_build(b.uuid)
    assert again.status == ALREADY and again.documents == res.documents
    assert zuul.hits("/") == []
    assert store.count_documents() == res.documents
    # the state table lives in the store's file
    with closing(sqlite3.connect(tmp_path / "store.db")) as conn:  # `with connect()` alone does not close
        assert conn.execute("SELECT status, documents FROM collected_builds").fetchall() == [("collected", res.documents)]


def test_loading_a_build_twice_replaces_its_documents(zuul: FakeZuul, tmp_path: Path) -> None:
    """A crash between the store write and the state update must not duplicate documents."""
    store = EmbeddedStore(tmp_path / "store.db")
    b = add_devstack_build(zuul, 35)
    col = make_collector(zuul, tmp_path / "store.db", EmbeddedSink(store))
    first = col.collect_build(b.uuid)
    docs = store.get_build_docs(b.uuid)
    assert first.status == COLLECTED and len(docs) == first.documents == store.count_documents()
    assert all(d["build_node"] == "zuul-executor" and d["hosts_id"] for d in docs)
    again = col.fetcher.fetch(col.zuul.build(b.uuid), tmp_path / "again")
    assert col.sink is not None and col.sink.write(again) == (first.documents, 3)
    assert store.count_documents() == first.documents
    assert sorted(d["id"] for d in store.get_build_docs(b.uuid)) == sorted(d["id"] for d in docs)


def test_on_demand_and_loop_fetch_a_build_once(zuul: FakeZuul, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.db")
    builds = [add_devstack_build(zuul, 40 + n) for n in range(6)]
    zuul.delay = 0.05  # keep fetches in flight long enough to overlap
    col = make_collector(zuul, tmp_path / "store.db", EmbeddedSink(store))
    outcomes: list[str] = []
    lock = threading.Lock()

    def on_demand(uuid: str) -> None:
        r = col.collect_build(uuid, wait_timeout=30)
        with lock:
            outcomes.append(r.status)

    threads = [threading.Thread(target=on_demand, args=(b.uuid,)) for b in builds[:3] for _ in range(2)]
    for t in threads:
        t.start()
    loop = col.run_once(CollectOptions(success_sample=1.0, concurrency=4))
    for t in threads:
        t.join()
    for b in builds:
        assert zuul.log_requests(b.uuid).count(b.log_url.split(zuul.url, 1)[1] + "job-output.txt") == 1  # type: ignore[union-attr]
    assert loop.statuses.get(COLLECTED, 0) + outcomes.count(COLLECTED) == 6
    assert set(outcomes) <= {COLLECTED, ALREADY}
    assert len({d["build_uuid"] for d in store.get_build_docs(builds[0].uuid)}) == 1


def test_stale_claim_of_a_dead_process_is_taken_over(zuul: FakeZuul, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.db")
    b = add_devstack_build(zuul, 50)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = CollectorState(tmp_path / "store.db")
    state.owner = f"{os.uname().nodename}:{dead.pid}"
    assert state.claim(b, "embedded")
    other = CollectorState(tmp_path / "store.db")
    assert not other.is_done(b.uuid)  # the claim's owner is gone
    col = make_collector(zuul, tmp_path / "store.db", EmbeddedSink(store))
    assert col.collect_build(b.uuid).status == COLLECTED
    # a live claim (our own pid) is respected
    b2 = add_devstack_build(zuul, 51)
    assert other.claim(b2, "embedded")
    assert not col.state.claim(b2, "embedded")
    assert col.collect(b2).status == "busy"


def test_real_logs_from_shared_data(shared_data: Path, zuul: FakeZuul, tmp_path: Path) -> None:
    """Real devstack logs: a Zuul v2 layout without manifest (.gz files) and a systemd-era one."""
    src = shared_data / "logs" / "os-loganalyze"
    v2 = {
        "logs/screen-c-api.txt.gz": (src / "screen-c-api.txt.gz").read_bytes(),
        "logs/screen-neutron-l3.txt.gz": (src / "screen-neutron-l3.txt.gz").read_bytes(),
    }
    b_v2 = add_devstack_build(zuul, 60, manifest=False, files=v2, encoded=())
    v3 = {
        "controller/logs/devstack@c-api.service.log.txt": (src / "devstack@c-api.service.log.txt").read_bytes(),
        "controller/logs/devstack@c-vol.service.log.txt": (src / "devstack@c-vol.service.log.txt").read_bytes(),
        "testrepository.subunit": (shared_data / "logs" / "ci-log-processing" / "testrepository.subunit").read_bytes(),
    }
    v3["zuul-manifest.json"] = manifest_for(v3)
    b_v3 = add_devstack_build(zuul, 61, files=v3, encoded=())
    store = EmbeddedStore(tmp_path / "store.db")
    # no manifest: literal file names of a rule are tried as they are (and as .gz)
    col = make_collector(
        zuul,
        tmp_path / "store.db",
        EmbeddedSink(store),
        max_bytes=50_000_000,
        rules=[*DEFAULT_FILE_RULES, FileRule("^tempest", ("logs/screen-neutron-l3.txt",))],
    )
    r2 = col.collect_build(b_v2.uuid)
    assert r2.status == COLLECTED and r2.files == 2 and r2.documents > 1000
    assert [s.path for s in r2.skipped] == ["job-output.txt"]  # not found, reported
    r3 = col.collect_build(b_v3.uuid)
    assert r3.status == COLLECTED and r3.test_results > 0
    files = store.indexed_files(b_v3.uuid)
    assert files == {"controller/logs/devstack@c-api.service.log.txt", "controller/logs/devstack@c-vol.service.log.txt"}
    # fingerprints written for the screen names keep matching systemd-era files
    hits = store.search(QuerySpec(queries=('tags:"screen-c-api.txt"',), filters=Filters(build_uuid=b_v3.uuid))).hits
    assert hits
    trace = store.search(QuerySpec(queries=("message:Traceback",), filters=Filters(build_uuid=b_v2.uuid)), size=5)
    assert trace.total > 0


# -- the command -------------------------------------------------------------------------


def write_config(tmp_path: Path, zuul: FakeZuul, extra: str = "") -> Path:
    cfg = tmp_path / "er.conf"
    cfg.write_text(f"[zuul]\nurl = {zuul.url}\ntenant = {zuul.tenant}\nlog_hosts = 127.0.0.1\nmax_bytes = {MAX_BYTES}\n{extra}")
    cfg.chmod(0o600)
    return cfg


def test_cli_dry_run_and_collect(zuul: FakeZuul, tmp_path: Path) -> None:
    for n in range(3):
        add_devstack_build(zuul, 70 + n, start=datetime.now(UTC) - timedelta(hours=n + 1))
    add_devstack_build(zuul, 79, start=datetime.now(UTC) - timedelta(days=3))  # outside --since 2d
    cfg = write_config(tmp_path, zuul)
    store = tmp_path / "store.db"
    runner = CliRunner()
    res = runner.invoke(cli, ["-c", str(cfg), "--store", str(store), "collect", "--since", "2d", "--dry-run"])
    assert res.exit_code == 0, res.output
    listed = [line.split("\t")[0] for line in res.stdout.splitlines()]
    assert listed == [uuid_n(70), uuid_n(71), uuid_n(72)]
    assert zuul.log_requests() == []
    res = runner.invoke(cli, ["-c", str(cfg), "--store", str(store), "collect", "--since", "2d", "--concurrency", "2"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("collected ") == 3 and "3 collected" in res.stderr
    assert EmbeddedStore(store).count_documents() > 0
    res = runner.invoke(cli, ["-c", str(cfg), "--store", str(store), "collect", "--since", "2d"])
    assert "3 already known" in res.stderr and "collected " not in res.stderr
    res = runner.invoke(cli, ["-c", str(cfg), "--store", str(store), "collect", "--zuul", "ftp://x", "--dry-run"])
    assert res.exit_code != 0 and "http(s)" in res.output


@pytest.mark.parametrize("flavor", ["opensearch", "elasticsearch"])
def test_cli_to_cluster(flavor: str, zuul: FakeZuul, tmp_path: Path) -> None:
    b = add_devstack_build(zuul, 80, start=datetime.now(UTC) - timedelta(hours=1))
    with FakeCluster(flavor) as cluster:
        accept_writes(cluster)
        cfg = write_config(tmp_path, zuul, f"[data_source]\nbackend = {flavor}\nes_url = {cluster.url}\nindex_format = ci-logs-%Y.%m.%d\n")
        args = ["-c", str(cfg), "--store", str(tmp_path / "state.db"), "collect", "--uuid", b.uuid]
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        docs = bulk_docs(cluster)
        assert docs and all(a["index"]["_index"].startswith("ci-logs-") for a, _ in docs)
        assert {d["build_uuid"] for _, d in docs} == {b.uuid}
        assert "collected " in res.stderr
        # asked again: answered from the state, nothing sent
        n = len(cluster.requests_to("_bulk"))
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0 and "already" in res.stderr and len(cluster.requests_to("_bulk")) == n
        # a cluster that rejects documents fails the build (retryable), not the command
        b2 = add_devstack_build(zuul, 81, start=datetime.now(UTC) - timedelta(hours=1))
        cluster.always("POST", "_bulk", {"error": {"type": "cluster_block_exception", "reason": "index read-only"}, "status": 403}, status=403)
        res = CliRunner().invoke(cli, ["-c", str(cfg), "--store", str(tmp_path / "state.db"), "collect", "--uuid", b2.uuid])
        assert res.exit_code == 0 and f"failed {b2.short_uuid}" in res.stderr, res.stderr


def _wait_for(pred: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _collected(db: Path) -> set[str]:
    if not db.exists():
        return set()
    try:
        with closing(sqlite3.connect(db)) as conn:  # polled: `with connect()` alone would keep each one open
            return {u for (u,) in conn.execute("SELECT uuid FROM collected_builds WHERE status = 'collected'")}
    except sqlite3.OperationalError:
        return set()


def test_follow_restart_continues_without_refetching(zuul: FakeZuul, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    first = [add_devstack_build(zuul, 90 + n, start=now - timedelta(minutes=30 - n)) for n in range(3)]
    cfg = write_config(tmp_path, zuul)
    store = tmp_path / "store.db"
    cmd = [sys.executable, "-m", "elastic_recheck.cli.main", "-c", str(cfg), "--store", str(store),
           "collect", "--follow", "--interval", "0.2", "--since", "1d"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _collected(store) == {b.uuid for b in first})
        # a new build arrives while the first session runs, and is picked up by a later poll
        second = add_devstack_build(zuul, 95, start=now - timedelta(minutes=5))
        _wait_for(lambda: second.uuid in _collected(store))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err1 = proc.communicate(timeout=20)
    assert proc.returncode == 0, err1
    assert "stopping after the builds in flight" in err1
    # while stopped, two more builds finish; the restart fetches only those
    later = [add_devstack_build(zuul, 96 + n, start=now - timedelta(minutes=2 - n)) for n in range(2)]
    before = {b.uuid: len(zuul.log_requests(b.uuid)) for b in [*first, second]}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: {b.uuid for b in later} <= _collected(store))
        time.sleep(0.5)  # a few more polls
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err2 = proc.communicate(timeout=20)
    assert proc.returncode == 0, err2
    assert {b.uuid: len(zuul.log_requests(b.uuid)) for b in [*first, second]} == before
    for b in [*first, second, *later]:
        assert zuul.log_requests(b.uuid).count(b.log_url.split(zuul.url, 1)[1] + "job-output.txt") == 1  # type: ignore[union-attr]
    assert err2.count("collected ") == 2 and "4 already known" in err2
    assert _collected(store) == {b.uuid for b in [*first, second, *later]}
