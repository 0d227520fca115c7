"""The uncategorized page's failure clusters and daily classification rate, read in real headless Chromium.

The history of ``tests/fixtures/signature_history.py`` (one unknown error
failing six gate builds of five changes, a one-off, a build a fingerprint
explains) is rendered with :func:`render_site`; the page must group the
uncategorized builds by failure signature, biggest first, with the error
line, jobs, projects, a trend, examples and ``suggest``'s draft with its
backtest precision, and show the daily rates; nothing scrolls sideways at
400 px.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.error_lines import normalize
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import parse_fingerprint
from elastic_recheck.report.site import render_site
from elastic_recheck.report.window import ReportWindow
from sample.generate import Build
from tests.browser.conftest import console_errors
from tests.fixtures.signature_history import ONEOFF, SPECS, T, recurring_error_text, write_history

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Build]]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    base = tmp_path_factory.mktemp("cluster-site")
    builds = write_history(base / "store.db")
    queries = base / "queries"
    queries.mkdir()
    (queries / "1893618.yaml").write_text((REPO / "queries" / "1893618.yaml").read_text())
    assert parse_fingerprint((queries / "1893618.yaml").read_text(), "1893618.yaml")
    store = EmbeddedStore(base / "store.db")
    out = base / "site"
    render_site(store, load_fingerprints(queries), from_mapping({}), out,
                window=ReportWindow(now=T + timedelta(hours=1), days=3), backend_name="embedded store")
    store.close()
    return out, builds


def _width(driver: Any, width: int) -> None:
    driver.set_window_size(width, 900)
    inner = driver.execute_script("return window.innerWidth")
    driver.set_window_size(width + (width - inner), 900)


def test_clusters_biggest_first_with_line_jobs_trend_examples_and_draft(
    chromium: Any, site: tuple[Path, dict[str, Build]]
) -> None:
    from selenium.webdriver.common.by import By

    out, builds = site
    chromium.get((out / "uncategorized.html").as_uri())
    assert not console_errors(chromium)
    clusters = chromium.find_elements(By.CSS_SELECTOR, "#failure-clusters section.cluster")
    sizes = [(c.get_attribute("data-builds"), c.get_attribute("data-changes")) for c in clusters]
    # old, r1, r2, r3, same_change, target: 6 builds of 5 changes; then the one-off
    assert sizes == [("6", "5"), ("1", "1")]
    big, small = clusters
    line = normalize(recurring_error_text([s.name for s in SPECS].index("target") + 1))
    assert big.find_element(By.CSS_SELECTOR, "pre.error-line").text == line
    assert small.find_element(By.CSS_SELECTOR, "pre.error-line").text == normalize(ONEOFF)
    assert "6 builds, 5 changes, 75.0% of the gate's failures" in big.find_element(By.TAG_NAME, "h3").text  # 6 of 8 failed
    assert big.find_element(By.CSS_SELECTOR, "dd.jobs").text == "tempest-full-py3 (6)"
    assert big.find_element(By.CSS_SELECTOR, "dd.projects").text == "openstack/nova (6)"
    bars = big.find_elements(By.CSS_SELECTOR, "svg.trend g.bar")
    assert sum(int(b.get_attribute("data-n")) for b in bars) == 6
    uuids = [e.text for e in big.find_elements(By.CSS_SELECTOR, "table.examples code.uuid")]
    assert uuids == [builds[n].uuid for n in ("target", "same_change", "r3")]  # newest first
    draft = big.find_element(By.CSS_SELECTOR, "dd.draft")
    assert "backtest precision 100.0%" in draft.text
    yaml_text = draft.find_element(By.CSS_SELECTOR, "pre.draft-yaml").text
    # the draft suggest made for these builds, as a loadable queries/<bug>.yaml
    assert yaml_text.startswith("# Draft fingerprint new-") and "\nquery: " in yaml_text
    assert parse_fingerprint(yaml_text, "new.yaml").query in yaml_text
    # the one-off has no draft (suggest needs two builds)
    assert "no draft" in small.find_element(By.CSS_SELECTOR, "dd.draft").text


def test_daily_rates_and_no_sideways_scroll_at_400px(chromium: Any, site: tuple[Path, dict[str, Build]]) -> None:
    from selenium.webdriver.common.by import By

    out, builds = site
    try:
        _width(chromium, 400)
        chromium.get((out / "uncategorized.html").as_uri())
        assert chromium.execute_script("return document.documentElement.scrollWidth") <= 400
        for table in chromium.find_elements(By.CSS_SELECTOR, "#failure-clusters table, #classification-trend table"):
            assert "table-scroll" in chromium.execute_script("return arguments[0].parentElement.className", table)
        # the integrated gate (nova): per day failed / explained / recurring; recurring needs 2 other changes
        rows = {
            r.get_attribute("data-day"): [td.text for td in r.find_elements(By.TAG_NAME, "td")]
            for r in chromium.find_elements(By.CSS_SELECTOR, "#rates-integrated_gate tbody tr")
        }
        day = T.strftime("%Y-%m-%d")
        # on the target's day: r1, r2, r3, same_change, target, oneoff, known failed; known explained;
        # the five with the recurring signature are recurring, the one-off is not
        assert rows[day][:4] == [day, "7", "1", "5"]
        assert rows[day][4] == "14.3%" and rows[day][5] == "85.7%"
        dots = chromium.find_elements(By.CSS_SELECTOR, "#rate-integrated_gate circle.rate-covered")
        assert day in [d.get_attribute("data-day") for d in dots]
    finally:
        chromium.set_window_size(1400, 900)
