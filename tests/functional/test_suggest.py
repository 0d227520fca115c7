"""``suggest`` against a real embedded store holding the sample CI history.

Some known-bug fingerprints are removed from a copy of ``queries/``; the
drafts must find those bugs again. Every expectation comes from the sample's
ground truth (``sample/builds.json``: ``injected_bugs`` per build), never
typed in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.contrib.backtest import run_backtest
from elastic_recheck.contrib.suggest import run_suggest, suggest_drafts
from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.error_clusters import contains_phrase
from elastic_recheck.core.fingerprint_loading import LoadResult, load_fingerprints
from elastic_recheck.core.fingerprints import Fingerprint, parse_fingerprint
from elastic_recheck.core.lucene.analysis import tokenize
from elastic_recheck.core.search_types import Filters, QuerySpec
from elastic_recheck.ingest.jsonl import ingest_jsonl
from elastic_recheck.report.drafts import SuggestReport, draft_from_builds, draft_yaml
from elastic_recheck.report.graph import fingerprint_spec
from elastic_recheck.report.site_data import collect_uncategorized_data
from elastic_recheck.report.site_pages import write_uncategorized
from elastic_recheck.report.window import ReportWindow

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, tzinfo=UTC)
WINDOW = ReportWindow(now=NOW, days=10.0)
#: Bugs whose fingerprints are taken away (they only show up in failed builds).
REMOVED = ("1893618", "1927411", "1945311", "1986104", "2004555")
#: A bug that also shows up in successful builds (low precision).
NOISY = "1958723"
QUEUES = ("gate", "check")


@pytest.fixture(scope="module")
def truth() -> list[dict[str, Any]]:
    builds: list[dict[str, Any]] = json.loads((REPO / "sample" / "builds.json").read_text())["builds"]
    return builds


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("suggest") / "store.db"
    store = EmbeddedStore(path)
    try:
        ingest_jsonl(store, REPO / "sample" / "logs.jsonl.gz")
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def store(store_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(store_path)
    yield s
    s.close()


def _queries_without(tmp: Path, removed: tuple[str, ...]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    for p in sorted((REPO / "queries").glob("*.yaml")):
        if p.stem not in removed:
            shutil.copy(p, tmp / p.name)
    return tmp


@pytest.fixture(scope="module")
def queries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _queries_without(tmp_path_factory.mktemp("queries"), REMOVED)


@pytest.fixture(scope="module")
def kept(queries: Path) -> list[Fingerprint]:
    result = load_fingerprints(queries)
    assert not result.errors
    return result.fingerprints


@pytest.fixture(scope="module")
def report(store: EmbeddedStore, kept: list[Fingerprint]) -> SuggestReport:
    return run_suggest(store, kept, WINDOW, from_mapping({}), queues=QUEUES)


def _with_bug(truth: list[dict[str, Any]], bug: str) -> set[str]:
    return {b["uuid"] for b in truth if bug in b["injected_bugs"]}


def _uncategorized_truth(truth: list[dict[str, Any]], kept_bugs: set[str], queues: tuple[str, ...]) -> set[str]:
    return {
        b["uuid"]
        for b in truth
        if b["result"] == "FAILURE" and b["voting"] and b["pipeline"] in queues and not set(b["injected_bugs"]) & kept_bugs
    }


def test_uncategorized_builds_are_the_ground_truth(report: SuggestReport, truth: list[dict[str, Any]], kept: list[Fingerprint]) -> None:
    expected = _uncategorized_truth(truth, {fp.bug for fp in kept}, QUEUES)
    assert {b.uuid for b in report.uncategorized} == expected
    assert report.failed_builds == sum(1 for b in truth if b["result"] == "FAILURE" and b["voting"] and b["pipeline"] in QUEUES)
    assert report.lines > 0 and report.cluster_count > 0
    assert not report.truncated and not report.errors


def test_drafts_recover_the_removed_bugs(report: SuggestReport, truth: list[dict[str, Any]]) -> None:
    uncategorized = {b.uuid for b in report.uncategorized}
    assert report.drafts
    recovered = {}
    for d in report.drafts:
        hits = {b.uuid for b in d.hits}
        assert d.precision is not None and d.precision >= 0.9, d.query
        assert d.cluster.builds <= uncategorized
        # The query re-matches the lines it was drafted from: it hits every build of its cluster.
        assert d.cluster.builds <= d.failed_uuids, d.query
        assert d.builds_affected >= 2
        # Every draft names one real cause: all the builds it hits truly had
        # that bug (or, for drafts on generic test failures, no known bug).
        causes = [bug for bug in REMOVED if hits <= _with_bug(truth, bug)]
        unexplained = {b["uuid"] for b in truth if b["unexplained_failure"]}
        assert causes or hits <= unexplained, (d.query, hits)
        for bug in causes:
            share = len(d.cluster.builds) / len(_with_bug(truth, bug) & uncategorized)
            if share >= 0.8:
                recovered[bug] = d.query
    assert len(recovered) >= len(REMOVED) - 1, f"recovered {sorted(recovered)} of {REMOVED}"
    assert [d.name for d in report.drafts] == [f"new-{i}" for i in range(1, len(report.drafts) + 1)]
    keys = [d.sort_key() for d in report.drafts]
    assert keys == sorted(keys)


def test_draft_queries_match_their_own_lines(report: SuggestReport, store: EmbeddedStore) -> None:
    for d in report.drafts:
        phrase_tokens = [tokenize(p) for p in d.candidate.phrases]
        for line in d.cluster.lines:
            assert all(contains_phrase(tokenize(line.body), t) for t in phrase_tokens), (d.query, line.body)
            res = store.search(QuerySpec(queries=(d.query,), filters=Filters(build_uuid=line.build_uuid)), size=10_000)
            assert line.doc_id in {h.id for h in res.hits}, (d.query, line.body)


def test_yaml_drafts_load_and_backtest_the_same(
    report: SuggestReport, store: EmbeddedStore, kept: list[Fingerprint]
) -> None:
    builds = report.builds_by_uuid()
    for d in report.drafts:
        text = draft_yaml(d, WINDOW, builds)
        fp = parse_fingerprint(text, f"queries/{d.name}.yaml")
        assert fp.bug == d.name and fp.query == d.query and not fp.warnings
        header = [line for line in text.splitlines() if line.startswith("#")]
        assert any(f"{d.failed} failed and {d.successful} successful" in line for line in header)
        assert sum(1 for uuid in d.cluster.builds if any(uuid in line for line in header)) == d.builds_affected
        assert {b.uuid for b in store.builds(fingerprint_spec(fp, WINDOW))} == {b.uuid for b in d.hits}
    # helper-8's backtest agrees with the drafts' own numbers.
    fps = [parse_fingerprint(draft_yaml(d, WINDOW), f"{d.name}.yaml") for d in report.drafts]
    bt = run_backtest(store, fps, kept, WINDOW, from_mapping({}))
    for d, r in zip(report.drafts, bt.results, strict=True):
        assert (r.failed, r.successful) == (d.failed, d.successful)
        assert r.precision is not None and d.precision is not None
        assert r.precision == pytest.approx(100 * d.precision)


def test_low_precision_drafts_only_with_all(store: EmbeddedStore, truth: list[dict[str, Any]], tmp_path: Path) -> None:
    queries = _queries_without(tmp_path / "q", (*REMOVED, NOISY))
    fps = load_fingerprints(queries).fingerprints
    with_bug = _with_bug(truth, NOISY)
    voting = [b for b in truth if b["uuid"] in with_bug and b["voting"]]
    failed = sum(1 for b in voting if b["result"] == "FAILURE")
    passed = sum(1 for b in voting if b["result"] == "SUCCESS")
    assert passed and failed / (failed + passed) < 0.9

    def noisy(drafts: list[Any]) -> list[Any]:
        return [d for d in drafts if {b.uuid for b in d.hits} & with_bug and {b.uuid for b in d.hits} <= with_bug]

    default = run_suggest(store, fps, WINDOW, from_mapping({}))
    assert noisy(default.drafts) == []
    assert default.dropped_low_precision >= 1
    everything = suggest_drafts(store, fps, WINDOW, from_mapping({}), include_all=True)
    (d,) = noisy(everything)
    assert (d.failed, d.successful) == (failed, passed)
    assert d.precision == pytest.approx(failed / (failed + passed))


def test_min_builds_and_queues(store: EmbeddedStore, kept: list[Fingerprint], truth: list[dict[str, Any]], report: SuggestReport) -> None:
    big = run_suggest(store, kept, WINDOW, from_mapping({}), min_builds=6)
    assert big.drafts and all(d.builds_affected >= 6 for d in big.drafts)
    assert len(big.drafts) < len(report.drafts)
    gate = run_suggest(store, kept, WINDOW, from_mapping({}), queues=("gate",))
    assert {b.uuid for b in gate.uncategorized} == _uncategorized_truth(truth, {fp.bug for fp in kept}, ("gate",))
    assert all(d.cluster.builds <= {b.uuid for b in gate.uncategorized} for d in gate.drafts)


def test_quoted_phrases_are_escaped(tmp_path: Path) -> None:
    line = 'ERROR: cannot open "C:\\temp\\disk.img" for writing (denied by policy "strict")'
    docs = []
    for i, status in enumerate(("FAILURE", "FAILURE", "SUCCESS")):
        base = {
            "build_uuid": f"u{i}", "build_name": "win-job", "build_status": status, "build_queue": "gate", "voting": 1,
            "filename": "job-output.txt", "tags": ["job-output.txt", "console"], "project": "openstack/nova",
        }  # fmt: skip
        docs.append({**base, "@timestamp": f"2026-11-19T0{i}:00:00Z", "message": line if status == "FAILURE" else "all good"})
        docs.append({**base, "@timestamp": f"2026-11-19T0{i}:05:00Z", "message": f"Job complete, result: {status}"})
    with EmbeddedStore(tmp_path / "s.db") as store:
        store.add_documents(docs)
        drafts = suggest_drafts(store, [], WINDOW, from_mapping({}))
        (d,) = drafts
        assert '\\"' in d.query and "\\\\" in d.query
        assert {b.uuid for b in d.hits} == {"u0", "u1"} and d.precision == 1.0
        fp = parse_fingerprint(draft_yaml(d, WINDOW), "new-1.yaml")
        assert fp.query == d.query
        assert {b.uuid for b in store.builds(fingerprint_spec(fp, WINDOW))} == {"u0", "u1"}


# ---------------------------------------------------------------------------
# Command line


def _run(store_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--store", str(store_path), "suggest", "--now", NOW.isoformat(), *args])


def test_cli_json_and_text(store_path: Path, queries: Path, report: SuggestReport) -> None:
    result = _run(store_path, "--queries", str(queries), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(d["name"], d["query"]) for d in data["drafts"]] == [(d.name, d.query) for d in report.drafts]
    assert data["uncategorized_builds"] == len(report.uncategorized)
    first = data["drafts"][0]
    assert first["builds_affected"] == report.drafts[0].builds_affected
    assert sorted(first["uncategorized_builds"]) == sorted(report.drafts[0].cluster.builds)
    text = _run(store_path, "--queries", str(queries))
    assert text.exit_code == 0, text.output
    for d in report.drafts:
        assert f"{d.name}.yaml: {d.builds_affected} uncategorized build(s)" in text.stdout
        assert f"  query: {d.query}" in text.stdout


def test_cli_yaml_and_output_dir(store_path: Path, queries: Path, report: SuggestReport, tmp_path: Path) -> None:
    result = _run(store_path, "--queries", str(queries), "--format", "yaml")
    assert result.exit_code == 0, result.output
    docs = result.stdout.split("---\n")
    assert len(docs) == len(report.drafts)
    for doc, d in zip(docs, report.drafts, strict=True):
        assert parse_fingerprint(doc, f"{d.name}.yaml").query == d.query

    out = tmp_path / "drafts"
    out.mkdir()
    (out / "new-1.yaml").write_text("query: message:\"mine\"\n", encoding="utf-8")
    result = _run(store_path, "--queries", str(queries), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "new-1.yaml").read_text(encoding="utf-8") == "query: message:\"mine\"\n"
    written = sorted(out.glob("new-*.yaml"), key=lambda p: int(p.stem.split("-")[1]))
    assert [p.stem for p in written] == ["new-1"] + [f"new-{i}" for i in range(2, len(report.drafts) + 2)]
    loaded = load_fingerprints(out)
    assert not loaded.errors
    assert sorted(fp.query for fp in loaded.fingerprints if fp.bug != "new-1") == sorted(d.query for d in report.drafts)
    assert f"wrote {out / 'new-2.yaml'}" in result.stdout


def test_cli_errors(store_path: Path, queries: Path, tmp_path: Path) -> None:
    assert _run(store_path, "--queries", str(queries), "--now", "not a time").exit_code == 2
    missing = _run(store_path, "--queries", str(tmp_path / "nope"))
    assert missing.exit_code == 1 and "not found" in missing.output
    no_store = CliRunner().invoke(cli, ["--store", str(tmp_path / "none.db"), "suggest", "--queries", str(queries)])
    assert no_store.exit_code == 1 and "no embedded store" in no_store.output


# ---------------------------------------------------------------------------
# The uncategorized page


def test_uncategorized_page_lists_possible_fingerprints(store: EmbeddedStore, kept: list[Fingerprint], tmp_path: Path) -> None:
    config = from_mapping({})
    data = collect_uncategorized_data(store, LoadResult(kept, []), config, WINDOW)
    assert data.suggestions is not None
    gate_unc = {b.uuid for b in data.uncategorized.uncategorized}
    expected = draft_from_builds(store, data.uncategorized.uncategorized, WINDOW, config)
    assert [d.query for d in data.suggestions.drafts] == [d.query for d in expected.drafts]
    assert data.suggestions.drafts, "the gate has uncategorized builds with shared errors"
    assert all(d.cluster.builds <= gate_unc for d in data.suggestions.drafts)
    write_uncategorized(data, tmp_path / "site")
    soup = BeautifulSoup((tmp_path / "site" / "uncategorized.html").read_text(encoding="utf-8"), "html.parser")
    section = soup.find(id="possible-fingerprints")
    assert section is not None
    rows = section.select("tbody tr[id^=draft-]")
    queries = [r.select_one("pre.query") for r in rows]
    assert [q.get_text() if q is not None else None for q in queries] == [d.query for d in expected.drafts]
    first = rows[0].find_all("td")
    assert first[1].get_text() == str(expected.drafts[0].builds_affected)

    off = from_mapping({"site": {"suggestions": "false"}})
    data_off = collect_uncategorized_data(store, LoadResult(kept, []), off, WINDOW)
    assert data_off.suggestions is None
    write_uncategorized(data_off, tmp_path / "site-off")
    html = (tmp_path / "site-off" / "uncategorized.html").read_text(encoding="utf-8")
    assert "possible-fingerprints" not in html
