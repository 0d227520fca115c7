"""One meaning per option across commands: --since forms, short build uuids, -q, ELASTIC_RECHECK_*
typos, non-voting counting in ``query``, and the linter's warnings on ``search``/``query``."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.core.search_types import Filters, QuerySpec
from elastic_recheck.core.timestamps import parse_time

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def _run(store: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--store", str(store), *args])


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("10d", NOW - timedelta(days=10)),
        ("-10d", NOW - timedelta(days=10)),
        ("12h", NOW - timedelta(hours=12)),
        ("3", NOW - timedelta(days=3)),
        ("now", NOW),
        ("2026-11-10", datetime(2026, 11, 10, tzinfo=UTC)),
        ("20261110", datetime(2026, 11, 10, tzinfo=UTC)),
        ("1763000000", datetime.fromtimestamp(1763000000, tz=UTC)),
    ],
)
def test_one_time_parser_for_every_since(text: str, want: datetime) -> None:
    from elastic_recheck.cli.collect import _since
    from elastic_recheck.cli.common import make_window

    assert parse_time(text, NOW) == want
    assert _since(text, NOW) == want  # collect --since
    assert make_window(None, text, None, now=NOW).start == want  # search --since


def test_search_since_accepts_collect_forms(sample_store: Path) -> None:
    res = _run(sample_store, "search", "--since", "10d", "-n", "1", "message:libvirt")
    assert res.exit_code == 0, res.output


def test_since_after_until_is_an_error(sample_store: Path) -> None:
    res = _run(sample_store, "search", "--since", "2026-11-19", "--until", "2026-11-18", "message:libvirt")
    assert res.exit_code == 2
    assert "--since 2026-11-19" in res.output and "is later than --until 2026-11-18" in res.output


def test_search_build_uuid_accepts_short_uuids(sample_store: Path) -> None:
    builds = json.loads((SAMPLE / "builds.json").read_text())["builds"]
    uuid = next(b["uuid"] for b in builds if b["result"] == "FAILURE")
    full = _run(sample_store, "search", "-n", "0", "--build-uuid", uuid, "--json", "message:*")
    short = _run(sample_store, "search", "-n", "0", "--build-uuid", uuid[:7], "--json", "message:*")
    assert full.exit_code == 0 and short.exit_code == 0, short.output
    ids = [json.loads(ln)["_id"] for ln in full.stdout.splitlines()]
    assert ids and ids == [json.loads(ln)["_id"] for ln in short.stdout.splitlines()]


def test_graph_has_no_q_short_option_but_quiet_is_global(sample_store: Path) -> None:
    res = CliRunner().invoke(cli, ["graph", "--help"])
    assert "--queue" in res.output and "-q," not in res.output
    res = _run(sample_store, "graph", "-q", "gate", "--queries", str(REPO / "queries"))
    assert res.exit_code == 2 and "No such option '-q'" in res.output


def test_unknown_environment_variable_is_named_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ELASTIC_RECHECK_DATA_SOURCE_BAKEND", "elasticsearch")
    monkeypatch.setenv("ELASTIC_RECHECK_STOER", "/tmp/x.db")
    monkeypatch.setenv("ELASTIC_RECHECK_TEST_ANYTHING", "1")  # the test suite's own
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.core.config"):
        res = CliRunner().invoke(cli, ["config"])
    assert res.exit_code == 0, res.output
    warned = [r.getMessage() for r in caplog.records]
    assert ("unknown environment variable ELASTIC_RECHECK_DATA_SOURCE_BAKEND (ignored); "
            "did you mean ELASTIC_RECHECK_DATA_SOURCE_BACKEND?") in warned
    assert ("unknown environment variable ELASTIC_RECHECK_STOER (ignored); "
            "did you mean ELASTIC_RECHECK_STORE?") in warned
    assert not any("TEST_ANYTHING" in w for w in warned)


def test_query_explains_non_voting_counting(sample_store: Path) -> None:
    fp = REPO / "queries" / "1893618.yaml"
    res = _run(sample_store, "query", str(fp))
    assert res.exit_code == 0, res.output
    with EmbeddedStore(sample_store) as store:
        spec = QuerySpec(queries=(yaml.safe_load(fp.read_text())["query"],))
        total = store.count_builds(spec)
        non_voting = store.count_builds(QuerySpec(queries=spec.queries, filters=Filters(voting=False)))
    assert 0 < non_voting < total
    assert f"in {total} builds" in res.output
    assert (f"(non-voting builds count here: {non_voting} of the {total}; "
            "the site's pages and graph count voting builds only)") in res.output


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ('message:"Timed out waiting" AND tags:screen-n-cpu.txt', "split-term"),
        ('mesage:"End of file while reading data"', "unknown-field"),
        ('message:"End of file" and tags:"screen-n-cpu.txt"', "lowercase-operator"),
    ],
)
def test_search_prints_the_linters_warnings(sample_store: Path, query: str, code: str) -> None:
    res = _run(sample_store, "search", "-n", "1", query)
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.stderr.splitlines() if ": warning: " in ln]
    assert any(ln.startswith("query:1:") and ln.endswith(f"[{code}]") for ln in warnings), res.stderr
    if code == "unknown-field":
        assert "did you mean `message`?" in res.stderr


def test_clean_search_and_its_help_example_have_no_warning(sample_store: Path) -> None:
    help_text = CliRunner().invoke(cli, ["search", "--help"]).output
    assert "tags:screen-n-cpu.txt" not in help_text and 'tags:"screen-n-cpu.txt"' in help_text
    res = _run(sample_store, "search", "-n", "1", 'message:"Timed out waiting" AND tags:"screen-n-cpu.txt"')
    assert res.exit_code == 0 and "warning" not in res.stderr


def test_query_prints_the_fingerprints_lint_warnings(sample_store: Path, tmp_path: Path) -> None:
    fp = tmp_path / "1234567.yaml"
    fp.write_text("query: >-\n  message:\"End of file while reading data\" AND tags:screen-n-cpu.txt\n")
    res = _run(sample_store, "query", str(fp))
    assert res.exit_code == 0, res.output
    assert f"{fp}:2:" in res.stderr and "[split-term]" in res.stderr


def test_quiet_check_queries_prints_nothing_when_clean() -> None:
    res = CliRunner().invoke(cli, ["-q", "check-queries", "--strict", str(REPO / "queries")])
    assert res.exit_code == 0 and res.output == ""
    res = CliRunner().invoke(cli, ["check-queries", "--strict", str(REPO / "queries")])
    assert res.exit_code == 0 and "0 errors, 0 warnings" in res.stderr
