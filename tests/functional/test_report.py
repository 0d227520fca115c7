"""graph, uncategorized, render and serve against a real embedded store on disk.

Every expected number comes from the generator's ground truth
(:mod:`tests.fixtures.report_data`), computed from the generated lines and
not by any backend, and is compared with what the commands write.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from elastic_recheck.cli.main import cli
from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.pages import bug_page
from elastic_recheck.core.stats import HOUR
from elastic_recheck.core.timestamps import to_epoch_ms
from elastic_recheck.report.site_data import ExitCode
from tests.fixtures.report_data import NOW, XSS_LINE, Dataset, bug_id, generate, marker

NOW_ISO = "2026-11-20T00:00:00Z"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(builds=260, bugs=8, lines_per_build=8)


@pytest.fixture(scope="module")
def store(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    path = tmp_path_factory.mktemp("store") / "store.db"
    st = EmbeddedStore(path)
    st.add_documents(dataset.docs)
    st.close()
    return path


@pytest.fixture(scope="module")
def queries(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dataset.write_queries(tmp_path_factory.mktemp("queries"))


@pytest.fixture(scope="module")
def bad_queries(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same fingerprints plus one that fails to load."""
    return dataset.write_queries(
        tmp_path_factory.mktemp("bad-queries"),
        extra={"9999999.yaml": 'query: message:"unbalanced\n'},
    )


def run(store: Path, *args: str, config: Path | None = None) -> Result:
    base = ["--store", str(store)]
    if config is not None:
        base = ["--config", str(config), *base]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def graph_doc(store: Path, queries: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("graph") / "graph.json"
    res = run(store, "graph", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO)
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


def test_graph_header(graph_doc: dict[str, Any], dataset: Dataset) -> None:
    newest = max(d["@timestamp"] for d in dataset.docs)
    assert graph_doc["now"] == to_epoch_ms(NOW)
    assert graph_doc["status"] == "up"
    last = graph_doc["last_indexed"]
    assert time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(last / 1000)) == newest[:19]
    assert graph_doc["behind"] == graph_doc["now"] - last


def test_graph_counts_match_ground_truth(graph_doc: dict[str, Any], dataset: Dataset) -> None:
    day_ago = NOW - timedelta(days=1)
    bugs = {e["number"]: e for e in graph_doc["buglist"]}
    # suppress-graph fingerprints are left out; all others are there.
    assert set(bugs) == {bug_id(k) for k in range(dataset.bugs) if k != 1}
    for k in range(dataset.bugs):
        if k == 1:
            continue
        entry = bugs[bug_id(k)]
        hit = dataset.bug_builds(k)
        hit24 = dataset.bug_builds(k, since=day_ago)
        assert entry["fails"] == sum(1 for b in hit.values() if b.failed), k
        assert entry["fails24"] == sum(1 for b in hit24.values() if b.failed), k
        assert entry["voting"] is (k != 2)
        assert entry["query"] == f'message:"{marker(k)}"'
        assert entry["bug_data"]["name"] == f"Widget {k} explodes"
    # The non-voting-only job's hits count for bug 2 only.
    assert any(not b.voting for b in dataset.bug_builds(2).values()), "dataset lacks a non-voting hit of bug 2"


def test_graph_hourly_series(graph_doc: dict[str, Any], dataset: Dataset) -> None:
    start = NOW - timedelta(days=10)
    expected_points = [to_epoch_ms(start + HOUR * i) for i in range(240)]
    for entry in graph_doc["buglist"]:
        k = int(entry["number"]) - 1_000_000
        truth = dataset.hourly(k)
        statuses = {s for per in truth.values() for s in per}
        assert {s["label"] for s in entry["data"]} == statuses
        for series in entry["data"]:
            assert [p[0] for p in series["data"]] == expected_points
            got = {p[0]: p[1] for p in series["data"] if p[1]}
            want = {to_epoch_ms(h): len(per[series["label"]]) for h, per in truth.items() if series["label"] in per}
            assert got == want, (k, series["label"])


def test_graph_sort_order(graph_doc: dict[str, Any]) -> None:
    keys = [(e["fails24"], e["fails"]) for e in graph_doc["buglist"]]
    assert keys == sorted(keys, reverse=True)


def test_graph_queue_and_suffix(store: Path, queries: Path, dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "gate.json"
    res = run(store, "graph", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO, "--queue", "gate")
    assert res.exit_code == 0, res.output
    bugs = {e["number"]: e for e in json.loads(out.read_text())["buglist"]}
    for k in (0, 3):
        want = sum(1 for b in dataset.bug_builds(k, queue="gate").values() if b.failed)
        assert bugs[bug_id(k)]["fails"] == want

    # The suffix is a second query every matching line must also match:
    # "bug0 AND (a OR b)", never the pasted "bug0 AND a OR b".
    def fails_with_suffix(suffix: str) -> dict[str, int]:
        out2 = tmp_path / "suffix.json"
        res = run(
            store, "graph", "-o", str(out2), "--queries", str(queries), "--now", NOW_ISO, "--es-query-suffix", suffix
        )
        assert res.exit_code == 0, res.output
        return {e["number"]: e["fails"] for e in json.loads(out2.read_text())["buglist"]}

    bug0_fails = sum(1 for b in dataset.bug_builds(0).values() if b.failed)
    bug4_fails = sum(1 for b in dataset.bug_builds(4).values() if b.failed)
    assert bug0_fails and bug4_fails
    # No line carries two bug markers: pasted, this would count bug 4's builds.
    assert fails_with_suffix(f'message:"{marker(3)}" OR message:"{marker(4)}"')[bug_id(0)] == 0
    # Bug lines are in screen-n-cpu.txt: pasted, this would count nearly every build.
    both_files = 'filename:"job-output.txt" OR filename:"controller/logs/screen-n-cpu.txt"'
    assert fails_with_suffix(both_files)[bug_id(0)] == bug0_fails
    assert fails_with_suffix('filename:"job-output.txt"')[bug_id(0)] == 0


def test_graph_now_accepts_epoch(store: Path, queries: Path, graph_doc: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    res = run(store, "graph", "-o", str(out), "--queries", str(queries), "--now", str(to_epoch_ms(NOW) // 1000), "--days", "10")
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["buglist"] == graph_doc["buglist"]


def test_graph_to_stdout_and_bad_fingerprint_exit_code(store: Path, bad_queries: Path) -> None:
    res = run(store, "graph", "--queries", str(bad_queries), "--now", NOW_ISO)
    assert res.exit_code == ExitCode.PARTIAL
    assert "9999999.yaml" in res.stderr
    doc = json.loads(res.stdout)
    assert len(doc["buglist"]) == 7


@pytest.fixture(scope="module")
def unc_dir(store: Path, queries: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unc")
    res = run(store, "uncategorized", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO)
    assert res.exit_code == 0, res.output
    return out


def test_uncategorized_rates_match_ground_truth(unc_dir: Path, dataset: Dataset) -> None:
    doc = json.loads((unc_dir / "uncategorized.json").read_text())
    failed = dataset.failed_gate()
    explained = dataset.explained()
    assert doc["failed"] == len(failed)
    assert doc["explained"] == len(explained)
    assert doc["overall_rate"] == 100.0 * len(explained) / len(failed)  # exact, not rounded
    assert 0 < len(explained) < len(failed)
    jobs = {j["name"]: j for j in doc["jobs"]}
    for name in {b.job for b in failed.values()}:
        members = [u for u, b in failed.items() if b.job == name]
        ok = [u for u in members if u in explained]
        assert (jobs[name]["failed"], jobs[name]["explained"]) == (len(members), len(ok))
        assert jobs[name]["rate"] == 100.0 * len(ok) / len(members)
    uncat = {u["uuid"] for u in doc["uncategorized"]}
    assert uncat == set(failed) - explained
    times = [u["timestamp"] for u in doc["uncategorized"]]
    assert times == sorted(times, reverse=True)


def test_uncategorized_groups(unc_dir: Path, dataset: Dataset) -> None:
    doc = json.loads((unc_dir / "uncategorized.json").read_text())
    integrated_re = re.compile(from_mapping({}).site.integrated_projects_re)
    failed = dataset.failed_gate()
    integrated = {u for u, b in failed.items() if integrated_re.search(b.project)}
    assert doc["groups"]["integrated_gate"]["failed"] == len(integrated)
    assert doc["groups"]["others"]["failed"] == len(failed) - len(integrated)
    for u in doc["uncategorized"]:
        assert u["group"] == ("integrated_gate" if u["uuid"] in integrated else "others")
    for page in ("uncategorized.html", "integrated_gate.html", "others.html", "static/filter.js"):
        assert (unc_dir / page).is_file(), page


@pytest.fixture(scope="module")
def site(store: Path, queries: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site-parent") / "site"
    res = run(store, "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO)
    assert res.exit_code == 0, res.output
    return out


def test_render_writes_every_page(site: Path, dataset: Dataset) -> None:
    for name in ("index.html", "gate.html", "uncategorized.html", "integrated_gate.html", "others.html",
                 "health.html", "graph.json", "uncategorized.json", "health.json", "static/style.css"):
        assert (site / name).is_file(), name
    for k in range(dataset.bugs):
        assert (site / bug_page(bug_id(k))).is_file()
    index = (site / "index.html").read_text()
    # Every fingerprint is listed, suppressed ones too; those are "not graphed"
    # (the badge stands where the chart would be), the others have a chart.
    for k in range(dataset.bugs):
        assert f'data-bug="{bug_id(k)}"' in index
    suppressed = [bug_id(k) for k in range(dataset.bugs) if dataset.options.get(k, {}).get("suppress-graph")]
    assert suppressed
    assert index.count('<svg class="trend"') == dataset.bugs - len(suppressed)
    assert index.count("not graphed</span>") == len(suppressed)
    for bug in suppressed:
        row = index.split(f'<tr id="bug-{bug}"', 1)[1].split("</tr>", 1)[0]
        assert "not graphed" in row and "<svg" not in row
    # The bug page of a suppressed fingerprint still draws its charts.
    assert (site / bug_page(suppressed[0])).read_text().count('<svg class="trend"') == 2
    # No leftovers of the atomic swap.
    assert [p.name for p in site.parent.iterdir()] == ["site"]


def test_render_escapes_hostile_content(site: Path) -> None:
    page = (site / bug_page(bug_id(0))).read_text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    others = (site / "integrated_gate.html").read_text() + (site / "others.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;-job" in others
    assert 'href="javascript:' not in others
    assert XSS_LINE not in page


def test_render_shares_and_breakdowns(site: Path, dataset: Dataset) -> None:
    failed = dataset.failed_gate()
    failed24 = dataset.failed_gate(since=NOW - timedelta(days=1))
    page = (site / bug_page(bug_id(0))).read_text()
    hits = set(dataset.bug_builds(0)) & set(failed)
    hits24 = set(dataset.bug_builds(0)) & set(failed24)
    assert f"({len(hits24)} of {len(failed24)})" in page
    assert f"({len(hits)} of {len(failed)})" in page
    # Breakdown by job: distinct builds per job.
    jobs: dict[str, int] = {}
    for b in dataset.bug_builds(0).values():
        jobs[b.job] = jobs.get(b.job, 0) + 1
    table = page.split('data-field="build_name"', 1)[1].split("</table>", 1)[0]
    for job, n in jobs.items():
        assert re.search(rf"<td>{re.escape(job)}</td><td class=\"num\">{n}</td>", table), job


def test_render_health_lists_load_errors(store: Path, bad_queries: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    res = run(store, "render", "-o", str(out), "--queries", str(bad_queries), "--now", NOW_ISO)
    assert res.exit_code == ExitCode.PARTIAL, res.output
    health = json.loads((out / "health.json").read_text())
    assert len(health["load_errors"]) == 1 and "9999999.yaml" in health["load_errors"][0]
    assert "1 failed" in (out / "index.html").read_text()
    assert "9999999.yaml" in (out / "health.html").read_text()
    # Published pages name files, never the server's directories (nor the store's path).
    for page in out.rglob("*.html"):
        text = page.read_text()
        assert str(bad_queries) not in text and str(store) not in text, page
        assert str(store.parent) not in text and str(Path.home()) not in text, page
    assert health["load_errors"][0].startswith("9999999.yaml:")
    assert health["backend"] == "embedded store"


def test_render_health_warnings_name_files_not_paths(store: Path, dataset: Dataset, tmp_path: Path) -> None:
    queries = dataset.write_queries(
        tmp_path / "queries", extra={"8888888.yaml": 'query: message:"widget0 exploded"\nsupress-graph: true\n'}
    )
    out = tmp_path / "site"
    res = run(store, "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO)
    assert res.exit_code == 0, res.output
    health = (out / "health.html").read_text()
    assert "8888888.yaml: unknown key &#39;supress-graph&#39;" in health
    assert str(tmp_path) not in health and str(tmp_path) not in (out / "health.json").read_text()


def test_render_without_a_usable_test_results_database(store: Path, queries: Path, tmp_path: Path) -> None:
    """An unreadable [data_source] db_uri leaves the failed tests out of the rows; the site is still written."""
    for uri in (f"sqlite:///{tmp_path / 'missing' / 'subunit.db'}", "mysql+pymysql://u:p@127.0.0.1:1/db"):
        conf = tmp_path / "er.conf"
        conf.write_text(f"[data_source]\ndb_uri = {uri}\n")
        out = tmp_path / "site"
        res = run(store, "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO, config=conf)
        assert res.exit_code == 0, res.output
        page = (out / "integrated_gate.html").read_text() + (out / "others.html").read_text()
        assert 'class="uuid"' in page and "Failed tests" in page


def test_render_replaces_previous_site_atomically(store: Path, queries: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "stale.html").write_text("old")
    res = run(store, "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO, "--days", "3")
    assert res.exit_code == 0, res.output
    assert not (out / "stale.html").exists()
    assert json.loads((out / "graph.json").read_text())["days"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backend_down_keeps_previous_site(queries: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("previous")
    conf = tmp_path / "er.conf"
    conf.write_text(
        f"[data_source]\nbackend = elasticsearch\nes_url = http://127.0.0.1:{_free_port()}\ntimeout = 2\nretries = 0\n"
    )
    res = run(tmp_path / "unused.db", "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO, config=conf)
    assert res.exit_code == ExitCode.BACKEND_DOWN, res.output
    assert (out / "index.html").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["er.conf", "site"]


def test_render_failure_keeps_previous_site(store: Path, queries: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("previous")
    broken = tmp_path / "tpl"
    broken.mkdir()
    (broken / "bug.html").write_text("{% extends 'base.html' %}{% block content %}{{ no_such_variable }}{% endblock %}")
    res = run(store, "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO, "--templates", str(broken))
    assert res.exit_code == ExitCode.FAILED, res.output
    assert (out / "index.html").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "tpl"]


def test_template_override(store: Path, queries: Path, tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    (tpl / "static").mkdir(parents=True)
    (tpl / "health.html").write_text(
        "{% extends 'base.html' %}{% block content %}<p id='custom'>custom health {{ health.status }}</p>{% endblock %}"
    )
    (tpl / "static" / "extra.css").write_text("body{}")
    out = tmp_path / "site"
    res = run(store, "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO, "--templates", str(tpl))
    assert res.exit_code == 0, res.output
    assert "custom health up" in (out / "health.html").read_text()
    assert (out / "static" / "extra.css").is_file()
    assert (out / "static" / "style.css").is_file()
    assert "Known bugs" in (out / "index.html").read_text()


def test_help_documents_exit_codes() -> None:
    res = CliRunner().invoke(cli, ["render", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for code in ("0 ok", "1 rendering", "3 backend down", "4 output written"):
        assert code in text


@pytest.fixture
def serve_proc(site: Path, store: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "elastic_recheck", "--store", str(store), "serve", "--no-render", "-o", str(site), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        yield proc, f"http://127.0.0.1:{m.group(1)}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_existing_site(serve_proc: tuple[subprocess.Popen[str], str], dataset: Dataset) -> None:
    _, url = serve_proc
    with urllib.request.urlopen(url + "index.html", timeout=10) as resp:
        assert resp.status == 200
        assert "Known bugs" in resp.read().decode()
    with urllib.request.urlopen(url + bug_page(bug_id(3)), timeout=10) as resp:
        assert bug_id(3) in resp.read().decode()

