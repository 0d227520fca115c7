"""graph.json's ``bug_data.reviews`` and ``logstash_url``, and the bug page's "Open Reviews" and dashboard link.

Gerrit's side is the recorded ``/changes/`` answer of review.openstack.org
(``gerrit-bug-query.json``) served by the REST fake, and recorded ``gerrit
query`` output served by the SSH fake.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from elastic_recheck.cli.main import cli
from elastic_recheck.core.dashboard import rison_string
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from tests.fixtures.gerrit_server import FakeGerritRest, FakeGerritServer

REPO = Path(__file__).resolve().parents[2]
QUERIES = REPO / "queries"
NOW = ["--now", "2026-01-01T00:00:00Z"]
BUG_QUERY = "logstash/originals/samples/gerrit-bug-query.json"
SSH_QUERY = "gerrit-events/gerrit-query/simple_query_pagination_new_1"


def _conf(tmp_path: Path, **sections: dict[str, str]) -> Path:
    conf = tmp_path / "er.conf"
    conf.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items()) for s, items in sections.items()))
    conf.chmod(0o600)
    return conf


def _graph(sample_store: Path, conf: Path, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "graph.json"
    result = CliRunner().invoke(cli, ["-c", str(conf), "--store", str(sample_store), "graph", "--queries", str(QUERIES),
                                      "-o", str(out), *NOW])
    assert result.exit_code == 0, result.output
    return dict(json.loads(out.read_text()))


@pytest.fixture
def rest(shared_data: Path) -> Any:
    server = FakeGerritRest().start()
    server.search_results = json.loads((shared_data / BUG_QUERY).read_text())
    try:
        yield server
    finally:
        server.stop()


def test_reviews_from_gerrit_rest_retried_once_on_502_and_cached(
    sample_store: Path, tmp_path: Path, rest: FakeGerritRest,
) -> None:
    bugs = sorted(fp.bug for fp in load_fingerprints(QUERIES).fingerprints)  # suppress-graph ones too: the site shows them
    rest.search_failures = [502]
    conf = _conf(tmp_path, gerrit={"url": rest.url}, bugs={"cache_dir": str(tmp_path / "cache")})
    doc = _graph(sample_store, conf, tmp_path)
    for bug in doc["buglist"]:
        assert bug["bug_data"]["reviews"] == [113009]  # the recorded answer's _number
    # one search per bug, the first one twice (502, then the retry)
    assert sorted(set(rest.searches)) == sorted(f"status:open message:{b} NOT project:openstack-infra/elastic-recheck" for b in bugs)
    assert len(rest.searches) == len(bugs) + 1

    before = len(rest.searches)
    _graph(sample_store, conf, tmp_path)  # within [bugs] cache_ttl: no new search
    assert len(rest.searches) == before


def test_gerrit_failing_twice_leaves_reviews_empty(
    sample_store: Path, tmp_path: Path, rest: FakeGerritRest, caplog: pytest.LogCaptureFixture,
) -> None:
    rest.search_failures = [502, 502, 500]
    conf = _conf(tmp_path, gerrit={"url": rest.url}, bugs={"cache_dir": str(tmp_path / "cache")})
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.report.reviews"):
        doc = _graph(sample_store, conf, tmp_path)
    failed = [b for b in doc["buglist"] if b["bug_data"]["reviews"] == []]
    assert len(failed) == 2  # the first bug (502 twice) and the second (500: not retried)
    assert len([r for r in caplog.records if "open reviews of bug" in r.getMessage()]) == 2


def test_reviews_over_ssh(sample_store: Path, tmp_path: Path, shared_data: Path, gerrit_server: FakeGerritServer) -> None:
    lines = (shared_data / SSH_QUERY).read_text().splitlines()[1:]  # first line: the command
    records = [json.loads(line) for line in lines if line.strip()]
    changes = [r for r in records if r.get("type") != "stats"]
    gerrit_server.query_results = changes
    conf = _conf(
        tmp_path,
        gerrit={"host": gerrit_server.host, "port": str(gerrit_server.port), "user": gerrit_server.user,
                "key": str(gerrit_server.keys.client_key)},
        site={"open_reviews": "ssh"},
        bugs={"cache_dir": str(tmp_path / "cache")},
    )
    doc = _graph(sample_store, conf, tmp_path)
    expected = sorted(int(c["number"]) for c in changes)
    assert all(b["bug_data"]["reviews"] == expected for b in doc["buglist"])
    assert gerrit_server.queries and all(q.query.startswith("status:open message:") for q in gerrit_server.queries)


def test_no_gerrit_configured_no_search(sample_store: Path, tmp_path: Path) -> None:
    doc = _graph(sample_store, _conf(tmp_path, site={"gate_queue": "gate"}), tmp_path)
    assert all(b["bug_data"]["reviews"] == [] for b in doc["buglist"])
    assert all(b["logstash_url"] is None for b in doc["buglist"])


def test_logstash_url_in_the_original_kibana3_format(sample_store: Path, tmp_path: Path) -> None:
    conf = _conf(tmp_path, data_source={"ls_url": "http://logstash.openstack.org"})
    doc = _graph(sample_store, conf, tmp_path)
    for bug in doc["buglist"]:
        prefix = "http://logstash.openstack.org/#/dashboard/file/logstash.json?"
        assert bug["logstash_url"].startswith(prefix)
        state = json.loads(base64.urlsafe_b64decode(bug["logstash_url"][len(prefix):]))
        assert state == {"search": bug["query"], "fields": [], "offset": 0, "timeframe": "864000", "graphmode": "count"}


def test_logstash_url_in_discover_and_custom_formats(sample_store: Path, tmp_path: Path) -> None:
    base = "https://opensearch.example.org/_dashboards"
    doc = _graph(sample_store, _conf(tmp_path, data_source={"ls_url": base + "/", "ls_url_format": "discover"}), tmp_path)
    for bug in doc["buglist"]:
        url = bug["logstash_url"]
        assert url.startswith(base + "/app/discover#/?_g=(time:(from:now-10d,to:now))&_a=(query:(language:lucene,query:")
        assert " " not in url and '"' not in url  # percent-encoded
        assert unquote(url).endswith("query:" + rison_string(bug["query"]) + "))")

    custom = "{ls_url}/search?q={query}&days={days}"
    doc = _graph(sample_store, _conf(tmp_path, data_source={"ls_url": base, "ls_url_format": custom}), tmp_path)
    assert all(unquote(b["logstash_url"]) == f"{base}/search?q={b['query']}&days=10" for b in doc["buglist"])

    bad = _conf(tmp_path, data_source={"ls_url": base, "ls_url_format": "{ls_url}/{nope}"})
    result = CliRunner().invoke(cli, ["-c", str(bad), "config"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "[data_source] ls_url_format: unknown placeholder(s) {nope}" in result.output


def test_bug_page_shows_open_reviews_and_the_dashboard_link(sample_store: Path, tmp_path: Path, rest: FakeGerritRest) -> None:
    conf = _conf(tmp_path, gerrit={"url": rest.url}, bugs={"cache_dir": str(tmp_path / "cache")},
                 data_source={"ls_url": "http://logstash.openstack.org"})
    site = tmp_path / "site"
    result = CliRunner().invoke(cli, ["-c", str(conf), "--store", str(sample_store), "render", "--queries", str(QUERIES),
                                      "-o", str(site), *NOW])
    assert result.exit_code == 0, result.output
    graph = json.loads((site / "graph.json").read_text())
    for bug in graph["buglist"]:
        page = BeautifulSoup(next(site.rglob(f"{bug['number']}.html")).read_text(), "html.parser")
        heading = next(h for h in page.find_all("h2") if h.get_text() == "Open Reviews")
        links = page.select("#open-reviews a")
        assert heading and [a.get_text() for a in links] == ["113009"]
        assert links[0]["href"] == f"{rest.url}/c/113009"
        assert page.select_one("#logstash-url")["href"] == bug["logstash_url"]
