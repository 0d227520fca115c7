"""The original's console scripts and ``query`` sections, on the original's recorded logstash answers."""

from __future__ import annotations

import configparser
import gzip
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli import legacy
from elastic_recheck.cli.main import cli
from elastic_recheck.core.fingerprints import load_file
from elastic_recheck.core.search_types import Filters, QuerySpec

REPO = Path(__file__).resolve().parents[2]
ANSWER = "logstash/originals/logstash/1284371.json.gz"
ANALYSIS = "logstash/originals/logstash/1284371.analysis"
QUERIES = "logstash/originals/test-queries/queries"
#: The recorded answer is from November 2014: a window reaching back to it.
DAYS_SINCE_2014 = "5000"


@pytest.fixture
def store_1284371(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The 353 hits logstash.openstack.org answered for the original's fingerprint 1284371."""
    answer = json.loads(gzip.open(shared_data / ANSWER).read())
    path = tmp_path / "store.db"
    store = EmbeddedStore(path)
    store.add_documents(h["_source"] for h in answer["hits"]["hits"])
    store.close()
    monkeypatch.setenv("ELASTIC_RECHECK_STORE", str(path))
    return path


def test_old_query_script_prints_the_original_analysis(shared_data: Path, store_1284371: Path) -> None:
    result = CliRunner().invoke(legacy.query, ["-d", DAYS_SINCE_2014, str(shared_data / QUERIES / "1284371.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stdout == (shared_data / ANALYSIS).read_text()


def _sections(text: str) -> list[str]:
    return [line for line in text.splitlines()[3:] if line and not line.startswith(" ") and not line.startswith("(")]


def test_query_prints_the_original_sections_in_its_order(shared_data: Path, store_1284371: Path) -> None:
    original = _sections("\n".join(["", "", ""] + (shared_data / ANALYSIS).read_text().splitlines()[1:]))
    fingerprint = str(shared_data / QUERIES / "1284371.yaml")
    result = CliRunner().invoke(cli, ["query", fingerprint])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2] == "total hits: 353 log lines in 353 builds"
    assert _sections(result.stdout)[: len(original)] == original
    assert "build_uuid" not in _sections(result.stdout)

    verbose = CliRunner().invoke(cli, ["query", "--verbose", fingerprint])
    assert verbose.exit_code == 0, verbose.output  # was: "terms: tags is a text field"
    shown = _sections(verbose.stdout)
    assert shown == sorted(shown) and {"tags", "build_uuid", "error_pr", "host"} <= set(shown)
    assert "  100.0% console.html console (353 builds)" in verbose.stdout


def test_console_scripts_are_declared(tmp_path: Path) -> None:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    scripts = dict(
        line.split(" = ") for line in parser.get("options.entry_points", "console_scripts").strip().splitlines()
    )
    for name in ("elastic-recheck-graph", "elastic-recheck-uncategorized", "elastic-recheck-query", "elastic-recheck-success"):
        module, attr = scripts[name].split(":")
        assert callable(getattr(importlib.import_module(module), attr)), name


def test_old_graph_script_writes_graph_json(shared_data: Path, store_1284371: Path, tmp_path: Path) -> None:
    out = tmp_path / "graph.json"
    result = CliRunner().invoke(legacy.graph, ["-o", str(out), "-q", "check", str(shared_data / QUERIES)])
    assert result.exit_code in (0, 4), result.output  # 4: some of the 2013 test queries do not load
    data: dict[str, Any] = json.loads(out.read_text())
    assert {"now", "last_indexed", "behind", "buglist"} <= set(data)
    assert "1284371" in {b["number"] for b in data["buglist"]}


def test_old_uncategorized_script_writes_both_pages(shared_data: Path, store_1284371: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    result = CliRunner().invoke(legacy.uncategorized, ["-d", str(shared_data / QUERIES), "-o", str(out)])
    assert result.exit_code in (0, 4), result.output
    assert (out / "integrated_gate.html").is_file() and (out / "others.html").is_file()


def test_success_lists_the_fingerprints_that_hit_successful_builds(shared_data: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The original's 2013 labelled hits: some of its own fingerprints also hit builds that passed."""
    path = tmp_path / "store.db"
    store = EmbeddedStore(path)
    docs = []
    for line in (shared_data / "logstash" / "elastic-recheck-docs.jsonl").read_text().splitlines():
        doc = json.loads(line)
        doc.pop("_er")
        doc["voting"] = "1"  # 2013 documents predate the voting field; the trend counting rules need it
        docs.append(doc)
    store.add_documents(docs)
    monkeypatch.setenv("ELASTIC_RECHECK_STORE", str(path))
    queries = shared_data / QUERIES
    expected: dict[str, tuple[int, int]] = {}
    for fp in sorted(queries.glob("*.yaml")):
        query = load_file(fp).query
        by_status = {
            status: len(store.builds(QuerySpec(queries=(query,), filters=Filters(build_status=status))))
            for status in ("SUCCESS", "FAILURE")
        }
        if by_status["SUCCESS"]:
            expected[fp.stem] = (by_status["SUCCESS"], by_status["FAILURE"])
    store.close()
    assert expected  # the recorded data does hold such fingerprints

    result = CliRunner().invoke(cli, ["success", "--queries", str(queries), "--now", "2015-01-01", "--days", "800",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    got = {r["bug"]: (r["successful_builds"], r["failed_builds"]) for r in json.loads(result.stdout)}
    assert got == expected

    old = CliRunner().invoke(legacy.success, ["-d", str(queries)])
    assert old.exit_code == 0, old.output
    assert old.stdout.startswith("0 of 19 fingerprints hit successful builds")  # the last 10 days: nothing
