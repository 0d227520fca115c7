"""Failure signatures at classification, on a real embedded store (issue 17).

The history (``tests/fixtures/signature_history.py``) has one unknown error
recurring on three other changes in the 24 hours before the target build, a
one-off failure of the same test, a build a fingerprint explains, the
target's own earlier patchset and an older occurrence outside the window.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.signatures import SignatureIndex
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.core.error_lines import extract_lines, normalize
from elastic_recheck.core.search_types import Filters, QuerySpec
from elastic_recheck.core.signatures import SignatureService
from sample.generate import Build
from tests.fixtures.signature_history import ONEOFF, SPECS, TEST, recurring_error_text, write_history

REPO = Path(__file__).resolve().parents[2]
QUERIES = REPO / "queries"


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, dict[str, Build]]:
    path = tmp_path / "store.db"
    return path, write_history(path)


def _classify(store: Path, *uuids: str, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    args = ["--store", str(store), *extra, "classify", "--json", "--queries", str(QUERIES)]
    for u in uuids:
        args += ["--build-uuid", u]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines()]


def _n(name: str) -> int:
    return [s.name for s in SPECS].index(name) + 1


def test_classify_json_gains_a_signature_on_unexplained_failures_only(history: tuple[Path, dict[str, Build]]) -> None:
    store, b = history
    target, oneoff, known, passed = _classify(
        store, b["target"].uuid, b["oneoff"].uuid, b["known"].uuid, b["r2_recheck"].uuid
    )
    # the explained build and the successful one: exactly the old keys
    assert list(known) == ["build_uuid", "bugs", "matches"] and known["bugs"] == ["1893618"]
    assert list(passed) == ["build_uuid", "bugs", "matches"] and passed["bugs"] == []
    assert list(target)[:3] == ["build_uuid", "bugs", "matches"] and target["bugs"] == [] and target["matches"] == []

    sig = target["signature"]
    # the test line and the exception line, normalized exactly as suggest does it
    text = recurring_error_text(_n("target"))
    assert sig["lines"][1] == normalize(text)
    assert "<UUID>" in sig["lines"][1] and "<NUM>" in sig["lines"][1] and "4000" not in sig["lines"][1]
    assert sig["lines"][0].endswith(f"{TEST} [<DUR>] ... FAILED")
    assert sig["tests"] == []
    # three other changes in the 24 h before; not the own change's earlier patchset, not the 30-hour-old one
    assert sig["recurring"] == {
        "builds": 3,
        "changes": 3,
        "examples": [b["r3"].uuid, b["r2"].uuid, b["r1"].uuid],
        "flaky_changes": None,  # not checked: three other changes are enough without it
    }
    # the one-off fails the same test with an error nobody else has: no evidence
    assert oneoff["signature"]["lines"][1] == normalize(ONEOFF)
    assert oneoff["signature"]["recurring"] == {"builds": 0, "changes": 0, "examples": [], "flaky_changes": None}


def test_a_recheck_that_passed_counts_when_the_claim_depends_on_it(history: tuple[Path, dict[str, Build]], tmp_path: Path) -> None:
    """With recurring_changes = 4, three other changes are one short: r2's patchset passing later decides."""
    store, b = history
    cfg = tmp_path / "er.conf"
    cfg.write_text("[recheckwatch]\nrecurring_changes = 4\n")
    (target,) = _classify(store, b["target"].uuid, extra=("-c", str(cfg)))
    assert target["signature"]["recurring"]["flaky_changes"] == 1
    cfg.write_text("[recheckwatch]\nrecurring_changes = 5\n")
    (target,) = _classify(store, b["target"].uuid, extra=("-c", str(cfg)))
    assert target["signature"]["recurring"]["flaky_changes"] is None  # two short: it cannot matter


def test_signature_lines_are_suggests_error_lines(history: tuple[Path, dict[str, Build]]) -> None:
    """One implementation: the signature is suggest's extraction + normalization of the build's documents."""
    store_path, b = history
    store = EmbeddedStore(store_path)
    try:
        docs = store.search(QuerySpec(filters=Filters(build_uuid=b["r1"].uuid)), size=1000).hits
        expected = []
        for hit in sorted(docs, key=lambda h: str(h.source.get("@timestamp"))):
            for line in extract_lines(hit.source):
                if normalize(line.body) not in expected:
                    expected.append(normalize(line.body))
        service = SignatureService(store, SignatureIndex(store_path))
        info = store.builds(QuerySpec(filters=Filters(build_uuid=b["r1"].uuid)), limit=1)[0]
        assert list(service.signature_for(info).lines) == expected[:3] and len(expected) == 2
    finally:
        store.close()


def test_failed_test_ids_join_the_signature(history: tuple[Path, dict[str, Build]]) -> None:
    store_path, b = history
    store = EmbeddedStore(store_path)
    store.record_test_results(b["oneoff"].uuid, [(TEST, "fail"), ("tempest.api.other.test_ok", "success")])
    store.close()
    (oneoff,) = _classify(store_path, b["oneoff"].uuid)
    assert oneoff["signature"]["tests"] == [TEST]


def test_other_builds_with_the_signature_are_one_indexed_lookup(history: tuple[Path, dict[str, Build]]) -> None:
    store_path, b = history
    _classify(store_path, b["target"].uuid)
    conn = sqlite3.connect(store_path)
    try:
        key = conn.execute("SELECT sig_key FROM failure_signatures WHERE build_uuid = ?", (b["target"].uuid,)).fetchone()[0]
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT build_uuid FROM failure_signatures WHERE sig_key = ? AND ts >= ? AND ts <= ?",
                (key, 0, 1e12),
            )
        )
        peers = conn.execute("SELECT COUNT(*) FROM failure_signatures WHERE sig_key = ?", (key,)).fetchone()[0]
    finally:
        conn.close()
    assert "USING INDEX failure_signatures_key_ts" in plan or "USING COVERING INDEX failure_signatures_key_ts" in plan
    # the failed builds of the window were signed on the way (the old one is outside it)
    assert peers == 5  # r1, r2, r3, same_change, target


def test_signatures_can_live_in_a_separate_file(history: tuple[Path, dict[str, Build]], tmp_path: Path) -> None:
    store_path, b = history
    side = tmp_path / "side" / "signatures.db"
    cfg = tmp_path / "er.conf"
    cfg.write_text(f"[data_source]\nsignature_index = {side}\n")
    (target,) = _classify(store_path, b["target"].uuid, extra=("-c", str(cfg)))
    assert target["signature"]["recurring"]["changes"] == 3
    conn = sqlite3.connect(store_path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert "failure_signatures" not in tables and side.exists()


def test_generator_unknown_sources_keep_the_bundled_sample_and_cluster_by_source(tmp_path: Path) -> None:
    """``sample/generate.py --unknown-sources``: the default sample is byte-identical; with the option, every
    unexplained failure has a source, and the signatures group exactly by source."""
    import sample.generate as gen
    from elastic_recheck.ingest.jsonl import ingest_jsonl

    plain = tmp_path / "plain"
    gen.write_sample(plain, None, None, 100, gen.SEED)
    assert (plain / "logs.jsonl.gz").read_bytes() == (REPO / "sample" / "logs.jsonl.gz").read_bytes()
    assert (plain / "builds.json").read_text() == (REPO / "sample" / "builds.json").read_text()

    out = tmp_path / "sources"
    summary = gen.write_sample(out, None, None, 60, 7, unknown_sources=True)
    builds = json.loads((out / "builds.json").read_text())["builds"]
    unexplained = [b for b in builds if b["unexplained_failure"]]
    assert unexplained and all(b["unknown_source"] for b in unexplained)
    assert summary["unknown_sources"]["recurring"] > 0 and summary["unknown_sources"]["oneoff"] > 0
    store = out / "store.db"
    s = EmbeddedStore(store)
    ingest_jsonl(s, out / "logs.jsonl.gz")
    s.close()
    lines = _classify(store, *(b["uuid"] for b in unexplained))
    keys: dict[str, set[str]] = {}
    for b, line in zip(unexplained, lines, strict=True):
        sig = line["signature"]
        keys.setdefault(b["unknown_source"], set()).add(json.dumps([sig["lines"], sig["tests"]]))
    by_key = [k for ks in keys.values() for k in ks]
    assert len(by_key) == len(set(by_key))  # no signature is shared by two sources (purity)
    assert all(len(ks) == 1 for src, ks in keys.items() if src.startswith("recurring-"))  # completeness
