"""The command contracts: search --batch --ids, classify --json, query, config."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"

DOCS = [
    {"id": "d1", "message": "Timed out waiting for thing", "tags": ["screen-n-cpu.txt", "screen"], "build_uuid": "a" * 32,
     "build_status": "FAILURE", "voting": 1, "filename": "controller/logs/screen-n-cpu.txt", "@timestamp": "2026-11-10T10:00:00Z"},
    {"id": "d2", "message": "timed OUT waiting for THING!", "tags": ["job-output.txt"], "build_uuid": "b" * 32,
     "build_status": "SUCCESS", "voting": 1, "filename": "job-output.txt", "@timestamp": "2026-11-11T10:00:00Z"},
    {"id": "d3", "message": "waiting for thing timed out", "tags": ["screen-n-cpu.txt"], "build_uuid": "c" * 32,
     "build_status": "FAILURE", "voting": 0, "filename": "controller/logs/screen-n-cpu.txt", "@timestamp": "2026-11-12T10:00:00Z"},
    {"id": "d4", "message": "nova.compute.manager put_object failed", "build_uuid": "c" * 32, "build_status": "FAILURE",
     "voting": 0, "project": "openstack/nova", "@timestamp": "2026-11-12T11:00:00Z"},
]


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    src = tmp_path / "docs.jsonl.gz"
    with gzip.open(src, "wt") as fh:
        for d in DOCS:
            fh.write(json.dumps(d) + "\n")
    result = CliRunner().invoke(cli, ["--store", str(path), "ingest", "--jsonl", str(src)])
    assert result.exit_code == 0, result.output
    return path


def test_search_batch_ids_contract(small_store: Path, tmp_path: Path) -> None:
    batch = tmp_path / "q.jsonl"
    queries = [
        {"qid": 1, "query": 'message:"timed out waiting for thing"'},
        {"qid": "two", "query": 'message:"timed out waiting" AND tags:"screen-n-cpu.txt"'},
        {"qid": 3, "query": "project:openstack/cinder"},  # Lucene: '/' starts a regex -> syntax error
        {"qid": 4, "query": 'message:thing NOT build_status:SUCCESS'},
        {"qid": 5, "query": "message:(nova.compute.manager OR put_object)"},
        {"qid": 6, "query": "message:\"unbalanced"},
    ]
    batch.write_text("".join(json.dumps(q) + "\n" for q in queries))
    result = CliRunner().invoke(cli, ["--store", str(small_store), "search", "--batch", str(batch), "--ids"])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.splitlines()]
    by_qid = {o["qid"]: o for o in out}
    assert [o["qid"] for o in out] == [1, "two", 3, 4, 5, 6]
    assert by_qid[1] == {"qid": 1, "ok": True, "hits": ["d1", "d2"]}
    assert by_qid["two"] == {"qid": "two", "ok": True, "hits": ["d1"]}
    assert by_qid[3]["ok"] is False and by_qid[3]["error"]
    assert by_qid[4] == {"qid": 4, "ok": True, "hits": ["d1", "d3"]}
    assert by_qid[5] == {"qid": 5, "ok": True, "hits": ["d4"]}
    assert by_qid[6]["ok"] is False


def test_search_window_and_json(small_store: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--store", str(small_store), "search", "--json", "--since", "2026-11-11T00:00:00Z",
                                 "--until", "2026-11-12T00:00:00Z", "message:thing"])
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [d["_id"] for d in docs] == ["d2"]


def test_search_rejects_a_bad_query_with_position(small_store: Path) -> None:
    result = CliRunner().invoke(cli, ["--store", str(small_store), "search", 'message:"oops'])
    assert result.exit_code == 1
    assert "invalid query" in result.output


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--store", str(tmp_path / "nope.db"), "search", "foo"])
    assert result.exit_code == 1
    assert "no embedded store" in result.output



def test_classify_json_matches_the_ground_truth(sample_store: Path, tmp_path: Path) -> None:
    builds = json.loads((SAMPLE / "builds.json").read_text())["builds"]
    failed = [b for b in builds if b["result"] == "FAILURE"]
    listing = tmp_path / "builds.txt"
    listing.write_text("".join(b["uuid"] + "\n" for b in failed) + "0" * 32 + "\n")
    result = CliRunner().invoke(cli, ["--store", str(sample_store), "classify", "--queries", str(REPO / "queries"),
                                      "--builds", str(listing), "--json"])
    assert result.exit_code == 1  # the unknown build at the end
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines[-1]["build_uuid"] == "0" * 32 and "unknown build" in lines[-1]["error"]
    got = {x["build_uuid"]: x for x in lines[:-1]}
    for b in failed:
        # Fingerprints without allow-nonvoting do not count on non-voting jobs (as the original).
        want = sorted(b["injected_bugs"], key=int) if b["voting"] else []
        assert got[b["uuid"]]["bugs"] == want, b["uuid"]
        for m in got[b["uuid"]]["matches"]:
            assert m["line"] and m["file"] and m["log_url"].startswith("https://")


def test_classify_accepts_short_uuids(sample_store: Path) -> None:
    builds = json.loads((SAMPLE / "builds.json").read_text())["builds"]
    b = next(x for x in builds if x["voting"] and "1893618" in x["injected_bugs"])
    result = CliRunner().invoke(cli, ["--store", str(sample_store), "classify", "--queries", str(REPO / "queries"),
                                      "--build-uuid", b["uuid"][:7]])
    assert result.exit_code == 0, result.output
    assert "1893618" in result.output


def test_classify_skips_a_broken_fingerprint_and_names_it(
    sample_store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One bad file among the queries: logged with file:line:col, the others still classify."""
    builds = json.loads((SAMPLE / "builds.json").read_text())["builds"]
    b = next(x for x in builds if x["voting"] and "1893618" in x["injected_bugs"])
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "1893618.yaml").write_bytes((REPO / "queries" / "1893618.yaml").read_bytes())
    (queries / "9999999.yaml").write_text('query: >-\n  message:"never closed AND tags:"console"\n')
    with caplog.at_level(logging.ERROR, logger="elastic_recheck.core.fingerprint_loading"):
        result = CliRunner().invoke(cli, ["--store", str(sample_store), "classify", "--queries", str(queries),
                                          "--build-uuid", b["uuid"], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bugs"] == ["1893618"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "9999999.yaml:2:" in errors[0], errors


def test_query_command_shows_attribute_percentages(sample_store: Path) -> None:
    result = CliRunner().invoke(cli, ["--store", str(sample_store), "query", str(REPO / "queries" / "1893618.yaml")])
    assert result.exit_code == 0, result.output
    assert "total hits:" in result.output
    assert "build_status" in result.output and "%" in result.output


def test_old_elastic_recheck_conf_is_accepted(tmp_path: Path) -> None:
    conf = tmp_path / "elasticRecheck.conf"
    conf.write_text(
        "[ircbot]\nnick=RecheckWatchBot\npass=nickserv-secret\nserver=irc.example.org\nport=6667\n"
        "channel_config=recheckwatchbot.yaml\n"
        "[recheckwatch]\njobs_re=dsvm\nci_username=jenkins\n"
        "[gerrit]\nuser=bot\nhost=review.example.org\nquery_file=/srv/queries\nkey=/home/bot/.ssh/id_rsa\n"
        "[data_source]\nes_url=http://logstash.example.org:80/elasticsearch\nls_url=http://logstash.example.org\n"
        "db_uri=mysql+pymysql://query:query@logstash.example.org/subunit2sql\nindex_format=logstash-%Y.%m.%d\n"
    )
    conf.chmod(0o600)
    result = CliRunner().invoke(cli, ["-c", str(conf), "config"])
    assert result.exit_code == 0, result.output
    assert "nickserv-secret" not in result.output and "query:query" not in result.output
    assert "review.example.org" in result.output
