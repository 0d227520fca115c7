"""A bug page in real headless Chromium: "Open Reviews" from Gerrit and the dashboard link (graph.json's logstash_url)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.ingest.jsonl import ingest_jsonl
from tests.browser.conftest import console_errors
from tests.fixtures.gerrit_server import FakeGerritRest

REPO = Path(__file__).resolve().parents[2]
BUG_QUERY = "logstash/originals/samples/gerrit-bug-query.json"


def test_bug_page_lists_open_reviews_and_links_the_dashboard(
    chromium: Any, static_server: Any, shared_data: Path, tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    store = EmbeddedStore(tmp_path / "store.db")
    ingest_jsonl(store, REPO / "sample" / "logs.jsonl.gz")
    store.close()
    rest = FakeGerritRest().start()
    try:
        rest.search_results = json.loads((shared_data / BUG_QUERY).read_text())  # review.openstack.org's answer
        conf = tmp_path / "er.conf"
        conf.write_text(f"[gerrit]\nurl = {rest.url}\n[bugs]\ncache_dir = {tmp_path / 'cache'}\n"
                        "[data_source]\nls_url = https://dashboards.example.org\nls_url_format = discover\n")
        site = tmp_path / "site"
        result = CliRunner().invoke(cli, ["-c", str(conf), "--store", str(tmp_path / "store.db"), "render",
                                          "--queries", str(REPO / "queries"), "-o", str(site),
                                          "--now", "2026-11-20T00:00:00Z"])
        assert result.exit_code == 0, result.output
    finally:
        rest.stop()
    graph = json.loads((site / "graph.json").read_text())
    bug = graph["buglist"][0]
    served = static_server(site)
    chromium.get(served.url + f"bug/{bug['number']}.html")
    assert not console_errors(chromium)
    headings = [h.text for h in chromium.find_elements(By.CSS_SELECTOR, "h2")]
    assert "Open Reviews" in headings
    links = chromium.find_elements(By.CSS_SELECTOR, "#open-reviews a")
    assert [a.text for a in links] == ["113009"] and links[0].is_displayed()
    assert links[0].get_attribute("href") == f"{rest.url}/c/113009"
    dashboard = chromium.find_element(By.ID, "logstash-url")
    assert dashboard.is_displayed() and dashboard.get_attribute("href") == bug["logstash_url"]
    assert bug["logstash_url"].startswith("https://dashboards.example.org/app/discover#/?_g=")
