"""Start-up: what a fresh process has compiled or imported after ``--help``, a search, a classification.

The analyzer's general (non-ASCII) grammar is a ~240,000-character pattern;
it must be compiled only once non-ASCII text is analyzed. Checked on the
state of a fresh interpreter, not on time (speed is in benchmarks/bench_startup.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UUID = "0123456789abcdef0123456789abcdef"

SCRIPT = r"""
import json, sys
from click.testing import CliRunner
from elastic_recheck.core.lucene import analysis
from elastic_recheck.cli.main import cli

state = {}
state["after_import"] = analysis.compiled_patterns()
runner = CliRunner()
result = runner.invoke(cli, ["--help"])
state["help_exit"] = result.exit_code
state["after_help"] = analysis.compiled_patterns()
state["metadata_after_help"] = "importlib.metadata" in sys.modules
result = runner.invoke(cli, ["--version"])
state["version"] = result.output
store, queries = sys.argv[1], sys.argv[2]
result = runner.invoke(cli, ["--store", store, "ingest", "--jsonl", sys.argv[3]])
state["ingest_exit"] = result.exit_code
state["after_ascii_ingest"] = analysis.compiled_patterns()
result = runner.invoke(cli, ["--store", store, "search", 'message:"Timed out waiting"'])
state["search_output"] = result.output
state["after_search"] = analysis.compiled_patterns()
result = runner.invoke(cli, ["--store", store, "classify", "--queries", queries, "--build-uuid", sys.argv[4]])
state["classify_output"] = result.output
state["after_classify"] = analysis.compiled_patterns()
state["dateutil_after_classify"] = "dateutil" in sys.modules
state["tokens"] = analysis.tokenize("Ünïcode wörds 日本 naïve")
state["after_unicode"] = analysis.compiled_patterns()
print(json.dumps(state))
"""


def test_the_unicode_grammar_is_compiled_only_for_non_ascii_text(tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    doc = {
        "@timestamp": "2026-11-19T12:00:00.000Z",
        "message": "Timed out waiting for a reply to message ID abc",
        "tags": ["screen-n-cpu.txt"],
        "build_uuid": UUID,
        "build_status": "FAILURE",
        "build_name": "tempest-full",
        "voting": "1",
        "filename": "screen-n-cpu.txt",
    }
    docs.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "1234.yaml").write_text('query: message:"timed out waiting" AND tags:"screen-n-cpu.txt"\n', encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO), ELASTIC_RECHECK_CONFIG=str(tmp_path / "none.conf"))
    (tmp_path / "none.conf").write_text("", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "store.db"), str(queries), str(docs), UUID],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    state = json.loads(out.stdout.splitlines()[-1])
    assert state["help_exit"] == 0 and state["ingest_exit"] == 0
    assert state["metadata_after_help"] is False  # the version is looked up for --version only
    assert re.fullmatch(r"elastic-recheck, version \S+\n", state["version"])
    assert "Timed out waiting for a reply" in state["search_output"]
    assert state["classify_output"].startswith(f"{UUID}: 1234")
    for phase in ("after_import", "after_help", "after_ascii_ingest", "after_search", "after_classify"):
        assert state[phase] == 0, phase
    assert state["tokens"] == ["ünïcode", "wörds", "日", "本", "naïve"]
    assert state["after_unicode"] > 0
    # imported only to read a resolved_at written in date(1) format
    assert state["dateutil_after_classify"] is False
