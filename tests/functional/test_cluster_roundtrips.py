"""One round trip per build, counted on the wire in front of a real node.

``classify`` runs every fingerprint of ``queries/`` against a build in a
single ``_msearch``: the claim is checked at the HTTP layer, with a counting
proxy (:mod:`tests.fixtures.counting_proxy`) between the real client and a
real OpenSearch 2.19 / Elasticsearch 7.10.2 node
(:mod:`tests.fixtures.cluster`). Three builds of the sample history are
loaded with the project's writer (``ingest --jsonl``); the same builds are
classified by the embedded store for comparison.
"""

from __future__ import annotations

import gzip
import json
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.cli.main import cli
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from tests.fixtures.cluster import ClusterNode, cluster_config
from tests.fixtures.counting_proxy import CountingProxy

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"
QUERIES = REPO / "queries"

pytestmark = pytest.mark.timeout(600)


def pick_builds() -> list[dict[str, Any]]:
    """A build with an injected bug, an unexplained failure and a success, all voting.

    (A non-voting build skips the fingerprints without ``allow-nonvoting``:
    with none left, no ``_msearch`` is sent at all.)
    """
    builds = json.loads((SAMPLE / "builds.json").read_text())["builds"]
    with_bug = next(b for b in builds if b["injected_bugs"] and b["voting"])
    unexplained = next(b for b in builds if b["unexplained_failure"])
    success = next(b for b in builds if b["result"] == "SUCCESS" and not b["injected_bugs"] and b["voting"])
    return [with_bug, unexplained, success]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    builds = pick_builds()
    wanted = {b["uuid"] for b in builds}
    path = tmp_path_factory.mktemp("roundtrips") / "three-builds.jsonl.gz"
    with gzip.open(SAMPLE / "logs.jsonl.gz", "rt", encoding="utf-8") as src, gzip.open(path, "wt", encoding="utf-8") as out:
        for line in src:
            if json.loads(line).get("build_uuid") in wanted:
                out.write(line)
    return path, builds


@pytest.fixture(scope="module", params=["opensearch", "elasticsearch"])
def loaded(
    request: pytest.FixtureRequest, history: tuple[Path, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ClusterNode, str]]:
    """(engine, node, index prefix) with the three builds ingested; the indices are deleted afterwards."""
    engine: str = request.param
    node: ClusterNode = request.getfixturevalue(f"{engine}_node")
    prefix = f"errt-{uuidlib.uuid4().hex[:10]}"
    conf = cluster_config(tmp_path_factory.mktemp("rt-conf") / "direct.conf", engine, node.url, prefix)
    result = CliRunner().invoke(cli, ["-c", str(conf), "ingest", "--jsonl", str(history[0])])
    assert result.exit_code == 0, result.output
    yield engine, node, prefix
    node.drop(prefix)


def fingerprint_queries() -> list[str]:
    return [fp.query for fp in load_fingerprints(QUERIES).fingerprints]


def classify_text(args: list[str]) -> str:
    result = CliRunner().invoke(cli, [*args, "classify", "--queries", str(QUERIES), "--json", *history_uuid_args()])
    assert result.exit_code == 0, result.output
    return result.output


def history_uuid_args() -> list[str]:
    out: list[str] = []
    for b in pick_builds():
        out += ["--build-uuid", b["uuid"]]
    return out


def test_classify_sends_one_msearch_per_build(
    loaded: tuple[str, ClusterNode, str], history: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    engine, node, prefix = loaded
    builds = history[1]
    n_fingerprints = len(fingerprint_queries())
    with CountingProxy(node.url) as proxy:
        conf = cluster_config(tmp_path / "proxied.conf", engine, proxy.url, prefix)
        out = classify_text(["-c", str(conf)])
        requests = list(proxy.requests)
        paths = proxy.paths()
        bodies = list(proxy.bodies)
        bodies_per_msearch = list(proxy.msearch_sizes)

    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["build_uuid"] for r in lines] == [b["uuid"] for b in builds]
    assert lines[0]["bugs"] == sorted(builds[0]["injected_bugs"])  # the real node found the bug
    assert lines[1]["bugs"] == [] and lines[2]["bugs"] == []

    endpoints = [p.rsplit("/", 1)[-1] for p in paths]
    # Per build, one _msearch holding every fingerprint. The other requests
    # (the build's lookup: its job and voting flag; the failure signature of
    # an unexplained build) carry no fingerprint. A node too busy to answer
    # (a timeout, a 429 item: the shared CI machine) gets the same request
    # again, as it should: a repeat of the request just before is not another search.
    msearches = [body for p, body in zip(paths, bodies, strict=True) if p.endswith("/_msearch")]
    retries = sum(1 for a, b in zip(msearches, msearches[1:], strict=False) if a == b)
    assert endpoints.count("_msearch") - retries == len(builds), requests
    assert [n for i, n in enumerate(bodies_per_msearch) if i == 0 or msearches[i] != msearches[i - 1]] == [n_fingerprints] * len(builds)
    assert set(endpoints) <= {"", "_search", "_msearch"}, requests
    fingerprint_texts = [json.dumps(q)[1:-1] for q in fingerprint_queries()]
    for (_, path), body in zip(requests, bodies, strict=True):
        if not path.split("?")[0].endswith("/_msearch"):
            assert not any(t in body.decode() for t in fingerprint_texts), (path, body[:300])

    # and the answers are the embedded store's
    store = tmp_path / "store.db"
    assert CliRunner().invoke(cli, ["--store", str(store), "ingest", "--jsonl", str(history[0])]).exit_code == 0
    assert classify_text(["--store", str(store)]) == out
