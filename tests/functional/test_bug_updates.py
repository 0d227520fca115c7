"""``[bugs] update``: after render, comment on Launchpad bugs over the threshold (the Launchpad fake, real launchpadlib)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from elastic_recheck.cli.main import cli
from tests.fixtures.launchpad_server import FakeBug, LaunchpadFake

REPO = Path(__file__).resolve().parents[2]
QUERIES = REPO / "queries"
NOW = "2026-11-20T00:00:00Z"


def setup(tmp_path: Path, lp: LaunchpadFake, secret: str = "s3cret", token: str = "fake-access-token") -> Path:
    creds = tmp_path / "lp-credentials"
    creds.write_text(f"[1]\nconsumer_key = elastic-recheck\nconsumer_secret = \naccess_token = {token}\n"
                     f"access_secret = {secret}\n")
    conf = tmp_path / "er.conf"
    conf.touch(0o600)
    conf.write_text(f"[bugs]\nupdate = true\nupdate_threshold = 10\nlaunchpad_url = {lp.root}\n"
                    f"launchpad_credentials = {creds}\ncache_dir = {tmp_path / 'cache'}\n"
                    "[site]\nurl = https://status.example.org/elastic-recheck/\n")
    return conf


def render(sample_store: Path, conf: Path, out: Path) -> dict[str, object]:
    res = CliRunner().invoke(cli, ["-c", str(conf), "--store", str(sample_store), "render", "--queries", str(QUERIES),
                                   "--now", NOW, "-o", str(out)])
    assert res.exit_code == 0, res.output
    return {"output": res.output, "graph": json.loads((out / "graph.json").read_text())}


def test_comments_once_a_week_on_bugs_over_the_threshold(sample_store: Path, tmp_path: Path,
                                                         launchpad_server: LaunchpadFake) -> None:
    for bug in (1893618, 1927411, 1958723):
        launchpad_server.add_bug(FakeBug(bug, f"bug {bug}"))
    conf = setup(tmp_path, launchpad_server)
    done = render(sample_store, conf, tmp_path / "site")
    graph = done["graph"]
    assert isinstance(graph, dict)
    over = sorted(e["number"] for e in graph["buglist"] if e["fails"] >= 10)
    assert over == ["1893618", "1927411"]  # 1958723 has 9
    msgs = launchpad_server.messages
    assert sorted(str(m["bug"]) for m in msgs) == over
    first = next(m for m in msgs if m["bug"] == 1893618)
    entry = next(e for e in graph["buglist"] if e["number"] == "1893618")
    w = entry["impact"]["window"]
    assert first["subject"] == f"elastic-recheck: {entry['fails']} failed builds in 10 days"
    assert first["content"].startswith(
        f"elastic-recheck: the fingerprint of this bug matched {entry['fails']} failed CI builds in the last 10 days "
        f"({entry['fails24']} in the last 24 hours), on {w['changes']} changes.")
    assert "Fingerprint: https://status.example.org/elastic-recheck/bug/1893618.html" in first["content"]
    assert f"Query: {entry['query']}" in first["content"]
    # OAuth 1.0 PLAINTEXT, as launchpadlib signs: the token, and the secret only in the signature.
    auth = first["authorization"]
    assert 'oauth_token="fake-access-token"' in auth and 'oauth_signature_method="PLAINTEXT"' in auth
    assert 'oauth_signature="%26s3cret"' in auth
    assert "commented on Launchpad bug(s) 1893618, 1927411" in str(done["output"])

    # The next runs within a week: nothing more.
    render(sample_store, conf, tmp_path / "site")
    assert len(launchpad_server.messages) == 2
    # A week later (the ledger says so): again.
    ledger = tmp_path / "cache" / "launchpad-updates.json"
    week_ago = (datetime(2026, 11, 20, tzinfo=UTC) - timedelta(days=7)).isoformat()
    ledger.write_text(json.dumps({"1893618": week_ago, "1927411": NOW.replace("Z", "+00:00")}))
    render(sample_store, conf, tmp_path / "site")
    assert [m["bug"] for m in launchpad_server.messages[2:]] == [1893618]


def test_a_refused_token_warns_and_keeps_the_site(sample_store: Path, tmp_path: Path,
                                                   launchpad_server: LaunchpadFake, caplog: pytest.LogCaptureFixture) -> None:
    launchpad_server.add_bug(FakeBug(1893618, "bug"))
    conf = setup(tmp_path, launchpad_server, token="revoked-token")
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.report.bug_updates"):
        render(sample_store, conf, tmp_path / "site")
    assert launchpad_server.messages == []
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "elastic_recheck.report.bug_updates")
    assert warnings == ["launchpad: cannot comment on bug 1893618: Unauthorized: HTTP Error 401: Unauthorized",
                        "launchpad: cannot comment on bug 1927411: no such bug"]
    assert not (tmp_path / "cache" / "launchpad-updates.json").exists()  # tried again next time
    assert (tmp_path / "site" / "index.html").is_file()
