"""Fixes found in Gerrit (REST and SSH fakes) on the bug pages, and ``promote`` against the fake Zuul.

Gerrit's records are shaped as Gerrit 3.x answers ``GET /changes/?q=...&o=CURRENT_REVISION&o=CURRENT_COMMIT&o=LABELS``
and ``gerrit query --current-patch-set --commit-message`` (the SSH shape of
``../shared/data/gerrit-events/gerrit-query``); Zuul's status document is
zuul-web's ``/api/tenant/<t>/status`` shape (``pipelines[].change_queues[].heads``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from elastic_recheck.cli.main import cli
from elastic_recheck.core.pages import bug_page
from tests.fixtures.gerrit_server import FakeGerritRest, FakeGerritServer
from tests.fixtures.ircd import IrcTestClient, NgircdServer
from tests.fixtures.zuul_server import FakeZuul

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"
QUERIES = REPO / "queries"
NOW = "2026-11-20T00:00:00Z"
TOKEN = "s3cret-zuul-token"
WORST = "1893618"  # the only bug of the sample's last-24-h gate failure


def rest_change(number: int, message: str, *, status: str = "NEW", approved: bool = False, ps: int = 2,
                submitted: str | None = None, project: str = "openstack/nova") -> dict[str, Any]:
    rev = f"{number:040x}"
    record: dict[str, Any] = {
        "id": f"{project.replace('/', '%2F')}~master~I{number:040x}", "project": project, "branch": "master",
        "_number": number, "status": status, "subject": message.splitlines()[0],
        "current_revision": rev, "revisions": {rev: {"_number": ps, "commit": {"message": message}}},
        "labels": {"Code-Review": {"approved": {"_account_id": 1}} if approved else {},
                   "Workflow": {"approved": {"_account_id": 1}} if approved else {}},
    }
    if submitted:
        record["submitted"] = submitted
    return record


def ssh_change(number: int, message: str, *, status: str = "NEW", approved: bool = False, ps: int = 2,
               updated: int = 0) -> dict[str, Any]:
    approvals = [{"type": "Code-Review", "value": "2"}, {"type": "Workflow", "value": "1"}] if approved else \
        [{"type": "Code-Review", "value": "1"}]
    return {"project": "openstack/nova", "branch": "master", "number": number, "status": status,
            "subject": message.splitlines()[0], "commitMessage": message, "lastUpdated": updated,
            "currentPatchSet": {"number": ps, "revision": f"{number:040x}", "approvals": approvals}}


def msg(subject: str, footer: str) -> str:
    return f"{subject}\n\nLonger text.\n\n{footer}\nChange-Id: I{abs(hash(subject)) % 10**12:040d}\n"


def first_failed(bug: str) -> list[datetime]:
    """End times of the sample's failed voting builds of ``bug`` (the generator's records)."""
    builds = json.loads((SAMPLE / "builds.json").read_text())["builds"]
    return sorted(datetime.fromisoformat(b["end_time"]).replace(tzinfo=UTC) for b in builds
                  if bug in b["injected_bugs"] and b["result"] == "FAILURE" and b["voting"])


def write_conf(tmp_path: Path, text: str) -> Path:
    conf = tmp_path / "er.conf"
    conf.touch(0o600)
    conf.write_text(text + f"[bugs]\ncache_dir = {tmp_path / 'cache'}\n")
    return conf


def render(sample_store: Path, conf: Path, out: Path) -> dict[str, Any]:
    res = CliRunner().invoke(cli, ["-c", str(conf), "--store", str(sample_store), "render", "--queries", str(QUERIES),
                                   "--now", NOW, "-o", str(out)])
    assert res.exit_code == 0, res.output
    return dict(json.loads((out / "graph.json").read_text()))


def test_fixes_over_rest_with_states_and_verdicts(sample_store: Path, tmp_path: Path) -> None:
    times = first_failed("2004555")
    quiet_after = times[-1].strftime("%Y-%m-%d %H:%M:%S") + ".000000000"  # merged after its last hit
    rest = FakeGerritRest().start()
    try:
        rest.search_results = [
            rest_change(9001, msg("Fix libvirt EOF", f"Closes-Bug: #{WORST}"), status="MERGED",
                        submitted="2026-11-15 00:00:00.000000000"),
            rest_change(9002, msg("Retry apt mirror", "Partial-Bug: 1927411"), approved=True),
            rest_change(9003, msg("Deadlock retry", "See https://bugs.launchpad.net/neutron/+bug/1958723")),
            rest_change(9004, msg("Unrelated", "Related-Bug: #19587230")),  # another bug, same digits inside
            rest_change(9005, msg("Detach fix", "Closes-Bug: #2004555"), status="MERGED", submitted=quiet_after),
            rest_change(9006, msg("Abandoned", f"Closes-Bug: #{WORST}"), status="ABANDONED"),
        ]
        conf = write_conf(tmp_path, f"[gerrit]\nurl = {rest.url}\n[site]\nopen_reviews = off\nfixes = rest\n")
        doc = render(sample_store, conf, tmp_path / "site")
    finally:
        rest.stop()
    assert all("o=CURRENT_COMMIT" in p and "o=LABELS" in p for m, p in rest.requests if m == "GET")
    assert set(rest.searches) == {f"message:{fp.stem} (status:open OR status:merged)" for fp in QUERIES.glob("*.yaml")}
    fixes = {e["number"]: e.get("fixes", []) for e in doc["buglist"]}
    assert [(f["number"], f["state"], f["kind"]) for f in fixes[WORST]] == [(9001, "merged", "closes")]
    assert [(f["number"], f["state"], f["kind"]) for f in fixes["1927411"]] == [(9002, "approved", "partial")]
    assert [(f["number"], f["state"], f["kind"]) for f in fixes["1958723"]] == [(9003, "open", "url")]
    # Before/after the merge, counted from the generator's build records.
    worst_times = first_failed(WORST)
    merged = datetime(2026, 11, 15, tzinfo=UTC)
    verdict = fixes[WORST][0]
    assert verdict["after"] == sum(1 for t in worst_times if t >= merged) > 0
    assert verdict["verdict"] == "still hitting after the fix merged"
    assert fixes["2004555"][0]["verdict"] == "fixed?" and fixes["2004555"][0]["after"] == 0
    assert fixes["2004555"][0]["before"] == sum(1 for t in times if datetime(2026, 11, 10, tzinfo=UTC) <= t)
    page = BeautifulSoup((tmp_path / "site" / bug_page(WORST)).read_text(), "html.parser")
    row = page.select_one('#fixes tr[data-change="9001"]')
    assert row is not None and row["data-state"] == "merged"
    assert "still hitting after the fix merged" in row.select_one(".verdict").get_text()
    assert row.select_one("a")["href"] == f"{rest.url}/c/9001"
    fixed = BeautifulSoup((tmp_path / "site" / bug_page("2004555")).read_text(), "html.parser")
    assert fixed.select_one("#fixes .verdict strong").get_text() == "fixed?"


@pytest.fixture
def zuul() -> Iterator[FakeZuul]:
    fake = FakeZuul(admin_token=TOKEN)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def gate_status(*ids: str) -> dict[str, Any]:
    """zuul-web's status: the gate pipeline with one shared queue holding ``ids`` (front first)."""
    items = [{"id": cid, "live": True, "active": True, "project": "openstack/nova", "item_ahead": None,
              "items_behind": [], "jobs": []} for cid in ids]
    return {"zuul_version": "9.5.0", "pipelines": [
        {"name": "check", "change_queues": [{"name": "openstack/nova", "heads": [[dict(items[0], id="7777,1")]]}]},
        {"name": "gate", "change_queues": [{"name": "integrated", "window": 20, "heads": [items]}]},
    ]}


def promote_conf(tmp_path: Path, gerrit: FakeGerritServer, zuul: FakeZuul, extra: str = "") -> Path:
    return write_conf(tmp_path, (
        f"[gerrit]\nhost = {gerrit.host}\nport = {gerrit.port}\nuser = {gerrit.user}\nkey = {gerrit.keys.client_key}\n"
        f"[site]\nfixes = ssh\nopen_reviews = off\n[zuul]\nurl = {zuul.url}\ntenant = openstack\n{extra}"))


def run_promote(sample_store: Path, conf: Path, *extra: str) -> Any:
    return CliRunner().invoke(cli, ["-c", str(conf), "--store", str(sample_store), "promote", "--queries", str(QUERIES),
                                    "--now", NOW, *extra])


def test_promote_dry_run_then_apply(sample_store: Path, tmp_path: Path, gerrit_server: FakeGerritServer, zuul: FakeZuul,
                                    ngircd: NgircdServer, irc_client: Callable[..., IrcTestClient]) -> None:
    gerrit_server.query_results = [
        ssh_change(111, msg("Already first", f"Closes-Bug: #{WORST}"), approved=True, ps=1),
        ssh_change(9002, msg("The fix", f"Closes-Bug: #{WORST}"), approved=True, ps=3),
        ssh_change(9003, msg("Not approved", f"Partial-Bug: #{WORST}"), ps=1),
        ssh_change(9004, msg("Approved, not queued", f"Related-Bug: #{WORST}"), approved=True, ps=2),
        ssh_change(9005, msg("Merged", f"Closes-Bug: #{WORST}"), status="MERGED", approved=True, updated=1794000000),
    ]
    zuul.status = gate_status("111,1", "5555,2", "9003,1", "9002,3")
    conf = promote_conf(tmp_path, gerrit_server, zuul)

    res = run_promote(sample_store, conf)
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith(f"promote 9002,3 openstack/nova (bug {WORST}, 100.0% of the failed gate builds in 24 h, 1 of 1)")
    assert {ln.split()[1]: ln.split(": ", 1)[1] for ln in lines[1:]} == {
        "111,1": "already at the front of its queue",
        "9003,1": "not approved",
        "9004,2": "approved, but not in the gate pipeline",
    }
    assert "dry run" in res.stderr
    assert zuul.promotions == []  # dry run: Zuul never asked
    assert {c.query for c in gerrit_server.queries} == {f"message:{WORST} (status:open OR status:merged)"}
    assert all({"--current-patch-set", "--commit-message"} <= set(c.options) for c in gerrit_server.queries)

    # --apply without [zuul] promote = true: refused, nothing sent.
    res = run_promote(sample_store, conf, "--apply")
    assert res.exit_code == 1 and "[zuul] promote = true" in res.output
    assert zuul.promotions == []

    qa = irc_client(ngircd, "qa-watch", "#openstack-qa")
    conf = promote_conf(tmp_path, gerrit_server, zuul,
                        f"promote = true\nauth_token = {TOKEN}\n[ircbot]\nserver = {ngircd.host}\nport = {ngircd.port}\n"
                        "nick = RecheckWatchBot\n")
    res = run_promote(sample_store, conf, "--apply")
    assert res.exit_code == 0, res.output
    assert zuul.promotions == [{"authorization": f"Bearer {TOKEN}", "content_type": "application/json",
                                "body": json.dumps({"pipeline": "gate", "changes": ["9002,3"]})}]
    notice = qa.wait_for(lambda ln: ln.command == "PRIVMSG" and ln.target == "#openstack-qa", what="the notice")[0]
    assert notice.text == (f"Promoted to the front of the gate pipeline, fixes of the worst gate bugs: "
                           f"9002,3 (bug {WORST}, 100% of gate failures in 24 h)")
    assert TOKEN not in res.output

    # Now 9002,3 is at the front (the fake applied the promote), 111,1 behind it: nothing left to do.
    res = run_promote(sample_store, conf, "--apply", "--no-irc")
    assert res.exit_code == 0, res.output
    reasons = {ln.split()[1]: ln.split(": ", 1)[1] for ln in res.stdout.strip().splitlines()}
    assert reasons["9002,3"] == "already at the front of its queue"
    assert reasons["111,1"] == "already at the front of its queue (behind other fixes)"
    assert len(zuul.promotions) == 1


def test_promote_with_a_bad_token_fails_in_one_line(sample_store: Path, tmp_path: Path, gerrit_server: FakeGerritServer,
                                                     zuul: FakeZuul) -> None:
    gerrit_server.query_results = [ssh_change(9002, msg("The fix", f"Closes-Bug: #{WORST}"), approved=True, ps=3)]
    zuul.status = gate_status("111,1", "9002,3")
    conf = promote_conf(tmp_path, gerrit_server, zuul, "promote = true\nauth_token = wrong-token\n")
    res = run_promote(sample_store, conf, "--apply")
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == \
        "Error: Zuul refused to promote (401): check [zuul] auth_token and its tenant rights"
    assert "wrong-token" not in res.output
    assert len(zuul.promotions) == 1 and zuul.promotions[0]["authorization"] == "Bearer wrong-token"
