"""The index's impact table in real headless Chromium: served in impact order, and sortable by any column with sort.js."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.cli.main import cli
from elastic_recheck.ingest.jsonl import ingest_jsonl
from tests.browser.conftest import console_errors

REPO = Path(__file__).resolve().parents[2]


def test_impact_table_sorts_by_each_column(chromium: Any, static_server: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    store_path = tmp_path / "store.db"
    store = EmbeddedStore(store_path)
    ingest_jsonl(store, REPO / "sample" / "logs.jsonl.gz")
    store.close()
    runner = CliRunner()
    res = runner.invoke(cli, ["--store", str(store_path), "rechecks", "--events", str(REPO / "sample" / "events.jsonl"),
                              "--no-list"])
    assert res.exit_code == 0, res.output
    site = tmp_path / "site"
    res = runner.invoke(cli, ["--store", str(store_path), "render", "--queries", str(REPO / "queries"), "-o", str(site),
                              "--now", "2026-11-20T00:00:00Z"])
    assert res.exit_code == 0, res.output
    graph = json.loads((site / "graph.json").read_text())
    rechecks = {e["number"]: e["impact"]["window"]["rechecks"] for e in graph["buglist"]}
    served = static_server(site)
    chromium.get(served.url + "index.html")
    assert not console_errors(chromium)

    def order() -> list[str]:
        return [tr.get_attribute("data-bug") for tr in chromium.find_elements(By.CSS_SELECTOR, "#impact-table tbody tr")]

    assert order() == graph["impact"]["order"]  # as served: by impact
    chromium.find_element(By.CSS_SELECTOR, '#impact-table th[data-sort="rechecks"] button').click()
    by_rechecks = order()
    counts = [int(tr.get_attribute("data-rechecks")) for tr in chromium.find_elements(By.CSS_SELECTOR, "#impact-table tbody tr")]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0
    assert [rechecks[b] for b in by_rechecks if b in rechecks] == [c for b, c in zip(by_rechecks, counts, strict=True) if b in rechecks]
    th = chromium.find_element(By.CSS_SELECTOR, '#impact-table th[data-sort="rechecks"]')
    assert th.get_attribute("aria-sort") == "descending"
    chromium.find_element(By.CSS_SELECTOR, '#impact-table th[data-sort="bug"] button').click()
    assert order() == sorted(graph["impact"]["order"])
    chromium.find_element(By.CSS_SELECTOR, '#impact-table th[data-sort="hours"] button').click()
    assert order() == graph["impact"]["order"]
