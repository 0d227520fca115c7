"""Impact per bug (rechecks, gate resets, CI hours, per-job rates) and the rechecks nobody explained.

The expected numbers are computed here from ``sample/builds.json`` (the
generator's own records: Zuul-like start/end times, the injected bugs) and
from the recheck events, independently of the backend and of
:mod:`elastic_recheck.core.impact`.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.rechecks import RecheckLog
from elastic_recheck.cli.main import cli
from elastic_recheck.core.pages import bug_page
from elastic_recheck.core.rechecks import rechecks_from_events

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"
QUERIES = REPO / "queries"
NOW = "2026-11-20T00:00:00Z"
START = datetime(2026, 11, 10, tzinfo=UTC)


def _builds() -> list[dict[str, Any]]:
    return list(json.loads((SAMPLE / "builds.json").read_text())["builds"])


def _end(b: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(b["end_time"]).replace(tzinfo=UTC)


def _recheck_event(change: int, patchset: str, at: datetime, who: str = "bob") -> dict[str, Any]:
    return {
        "type": "comment-added",
        "change": {"number": change, "project": "openstack/nova"},
        "patchSet": {"number": int(patchset)},
        "author": {"name": who.title(), "username": who},
        "comment": f"Patch Set {patchset}:\n\nrecheck random failure",
        "eventCreatedOn": int(at.timestamp()),
    }


def _unexplained_failures() -> list[dict[str, Any]]:
    """Failed voting builds in the window with no injected bug, one per patch set, that no other failure shares."""
    builds = _builds()
    failed_ps: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for b in builds:
        if b["result"] == "FAILURE":
            failed_ps[(b["change"], b["patchset"])].append(b)
    out = []
    for b in builds:
        if b["result"] == "FAILURE" and b["unexplained_failure"] and b["voting"] and _end(b) > START:
            if all(o["unexplained_failure"] for o in failed_ps[(b["change"], b["patchset"])]):
                out.append(b)
    return out


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's events plus rechecks left on two failures no bug explains (and one human non-recheck)."""
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    extra = []
    for b in _unexplained_failures()[:2]:
        extra.append(_recheck_event(b["change"], b["patchset"], _end(b) + timedelta(minutes=30)))
    not_recheck = _recheck_event(1, "1", datetime(2026, 11, 15, tzinfo=UTC))
    not_recheck["comment"] = "Patch Set 1:\n\n> recheck\n\nplease do not recheck this blindly"
    extra.append(not_recheck)
    path.write_text((SAMPLE / "events.jsonl").read_text() + "".join(json.dumps(e) + "\n" for e in extra))
    return path


@pytest.fixture(scope="module")
def store(sample_store: Path, tmp_path_factory: pytest.TempPathFactory, events: Path) -> Path:
    path = tmp_path_factory.mktemp("impact-store") / "store.db"
    shutil.copyfile(sample_store, path)
    res = CliRunner().invoke(cli, ["--store", str(path), "rechecks", "--events", str(events), "--no-list"])
    assert res.exit_code == 0, res.output
    return path


@pytest.fixture(scope="module")
def site(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("impact-site") / "site"
    res = CliRunner().invoke(cli, ["--store", str(store), "render", "--queries", str(QUERIES), "--now", NOW, "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


def _expected_rechecks(events: Path) -> dict[str, int]:
    """bug -> rechecks whose patch set had a failed voting build of that bug ending before the recheck."""
    rechecks = rechecks_from_events(events.read_text().splitlines())
    builds = _builds()
    out: dict[str, int] = defaultdict(int)
    for r in rechecks:
        bugs: set[str] = set()
        for b in builds:
            if (str(b["change"]), b["patchset"]) == (r.change, r.patchset) and b["result"] == "FAILURE" \
                    and b["voting"] and _end(b) <= r.at:
                bugs.update(b["injected_bugs"])
        for bug in bugs:
            out[bug] += 1
    return dict(out)


def test_rechecks_are_read_from_events_not_from_quotes(events: Path) -> None:
    found = rechecks_from_events(events.read_text().splitlines())
    assert len(found) == 7 + 2  # the sample's 7, plus the two added; the quoted "> recheck" is not one
    assert {r.author for r in found} == {"ada", "bob"}


def test_graph_json_gets_impact_under_new_keys_only(store: Path, site: Path, tmp_path: Path, events: Path) -> None:
    doc = json.loads((site / "graph.json").read_text())
    out = tmp_path / "graph.json"
    res = CliRunner().invoke(cli, ["--store", str(store), "graph", "--queries", str(QUERIES), "--now", NOW, "-o", str(out)])
    assert res.exit_code == 0, res.output
    plain = json.loads(out.read_text())
    # Strip the new keys: what is left is exactly what the graph command writes.
    stripped = {k: v for k, v in doc.items() if k != "impact"}
    stripped["buglist"] = [{k: v for k, v in e.items() if k != "impact"} for e in doc["buglist"]]
    assert stripped == plain

    expected = _expected_rechecks(events)
    assert sum(expected.values()) >= 5  # the sample's rechecks hit known bugs
    for entry in doc["buglist"]:
        imp = entry["impact"]
        assert imp["window"]["failed_builds"] == entry["fails"]
        assert imp["last_24h"]["failed_builds"] == entry["fails24"]
        assert imp["window"]["rechecks"] == expected.get(entry["number"], 0), entry["number"]
        assert imp["window"]["changes"] <= imp["window"]["failed_builds"]
        for job in imp["jobs"]:
            assert 0 < job["failed"] <= job["runs"]
    assert doc["impact"]["rechecks"] == 9
    assert doc["impact"]["rechecks_known"] is True


def test_gate_resets_hours_and_job_rates_match_the_build_records(site: Path) -> None:
    doc = json.loads((site / "graph.json").read_text())
    builds = _builds()
    runs: dict[str, int] = defaultdict(int)
    for b in builds:
        if _end(b) > START:
            runs[b["job_name"]] += 1
    for entry in doc["buglist"]:
        bug = entry["number"]
        mine = [b for b in builds if bug in b["injected_bugs"] and b["result"] == "FAILURE" and b["voting"] and _end(b) > START]
        imp = entry["impact"]
        assert imp["window"]["failed_builds"] == len(mine), bug
        gate_sets = {b["buildset"]["uuid"] for b in mine if b["pipeline"] == "gate"}
        assert imp["window"]["gate_resets"] == len(gate_sets), bug
        # Hours from the first to the last log line: never more than Zuul's run time, and close to it.
        zuul_hours = sum(b["duration"] for b in mine) / 3600
        assert 0.7 * zuul_hours <= imp["window"]["ci_hours"] <= zuul_hours + 0.01, bug
        assert imp["hours_from"]["zuul"] == 0
        for job in imp["jobs"]:
            assert job["runs"] == runs[job["job"]], (bug, job)
            assert job["failed"] == sum(1 for b in mine if b["job_name"] == job["job"])


def test_index_lists_bugs_by_impact_and_bug_pages_show_it(site: Path) -> None:
    doc = json.loads((site / "graph.json").read_text())
    index = BeautifulSoup((site / "index.html").read_text(), "html.parser")
    rows = index.select("#impact-table tbody tr")
    hours = [float(r["data-hours"]) for r in rows]
    assert [r["data-bug"] for r in rows] == doc["impact"]["order"]
    assert hours == sorted(hours, reverse=True) and hours[0] > 0
    assert index.select_one('script[src="static/sort.js"]') is not None
    assert (site / "static" / "sort.js").is_file()
    for entry in doc["buglist"]:
        page = BeautifulSoup((site / bug_page(entry["number"])).read_text(), "html.parser")
        imp = entry["impact"]
        assert page.select_one("#impact .rechecks .window").get_text() == str(imp["window"]["rechecks"])
        assert page.select_one("#impact .gate-resets .window").get_text() == str(imp["window"]["gate_resets"])
        assert page.select_one("#impact .ci-hours .window").get_text() == f"{imp['window']['ci_hours']:.1f}"
        assert len(page.select("#impact-jobs tbody tr")) == len(imp["jobs"])
        assert len(page.select("#rechecks li")) == imp["window"]["rechecks"]


def test_unexplained_rechecks_listed(store: Path, site: Path) -> None:
    wanted = {(str(b["change"]), b["patchset"]) for b in _unexplained_failures()[:2]}
    doc = json.loads((site / "graph.json").read_text())
    listed = {(r["change"], r["patchset"]) for r in doc["impact"]["unexplained_rechecks"]}
    assert listed == wanted
    res = CliRunner().invoke(cli, ["-q", "--store", str(store), "rechecks", "--queries", str(QUERIES), "--now", NOW])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert {tuple(line.split()[1].split(",")) for line in lines} == wanted
    for line in lines:
        assert "https://logs.ci.example.org/" in line


def test_bot_records_rechecks_from_its_stream(sample_store: Path, tmp_path: Path, events: Path) -> None:
    state = tmp_path / "state.db"
    res = CliRunner().invoke(cli, ["--store", str(sample_store), "bot", "--queries", str(QUERIES), "--replay", str(events),
                                   "--dry-run", "--no-irc", "--state", str(state)])
    assert res.exit_code == 0, res.output
    log = RecheckLog(state)
    try:
        recorded = log.between(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    finally:
        log.close()
    assert recorded == rechecks_from_events(events.read_text().splitlines())


def test_backfill_reads_gerrit_query_comments_over_ssh(gerrit_server: Any, tmp_path: Path) -> None:
    """``rechecks --backfill``: ``gerrit query --comments`` pages from the SSH fake, recorded once each."""
    from tests.fixtures.gerrit_server import QueryCall

    t0 = int(datetime(2026, 11, 19, 12, tzinfo=UTC).timestamp())
    changes = [
        {"project": "openstack/nova", "number": 1000 + i, "status": "NEW",
         "comments": [
             {"timestamp": t0 + i, "reviewer": {"name": "Zuul", "username": "zuul"},
              "message": "Patch Set 2:\n\nBuild failed (check pipeline).\n\nrecheck"},
             {"timestamp": t0 + 60 + i, "reviewer": {"name": "Bob", "username": "bob"}, "message": "Patch Set 2:\n\nrecheck"},
             {"timestamp": t0 + 120 + i, "reviewer": {"name": "Bob", "username": "bob"}, "message": "Patch Set 3: Code-Review+1"},
         ]}
        for i in range(3)
    ]
    gerrit_server.query_results = changes
    gerrit_server.query_page_size = 2
    conf = tmp_path / "er.conf"
    conf.touch(0o600)
    conf.write_text(f"[gerrit]\nhost = {gerrit_server.host}\nport = {gerrit_server.port}\nuser = {gerrit_server.user}\n"
                    f"key = {gerrit_server.keys.client_key}\n")
    state = tmp_path / "state.db"
    args = ["-c", str(conf), "rechecks", "--backfill", "--state", str(state), "--no-list", "--days", "2", "--now", NOW]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "recorded 3 new recheck(s) of 3" in res.output
    calls: list[QueryCall] = gerrit_server.queries
    assert [c.start for c in calls] == [0, 2, 3]
    assert all("--comments" in c.options and c.query == "since:2026-11-18" for c in calls)
    log = RecheckLog(state)
    try:
        got = log.between(datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))
    finally:
        log.close()
    assert [(r.change, r.patchset, r.author, r.source) for r in got] == [(str(1000 + i), "2", "bob", "query") for i in range(3)]
    res = CliRunner().invoke(cli, args)  # again: nothing new
    assert "recorded 0 new recheck(s) of 3" in res.output
