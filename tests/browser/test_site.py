"""The rendered site in real headless Chromium, served by a real http.server.

A small generated store (not the benchmark size) is rendered once with
:func:`render_site`; the tests then load every page, count chart bars
against the backend's own histograms, crawl every local link, click the age
filter and check that hostile log lines stay text.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.pages import bug_page
from elastic_recheck.core.search_types import Filters
from elastic_recheck.core.stats import humanize_delta
from elastic_recheck.report.graph import fingerprint_spec
from elastic_recheck.report.site import render_site
from elastic_recheck.report.window import ReportWindow
from tests.browser.conftest import StaticServer, console_errors
from tests.fixtures.report_data import NOW, XSS_JOB, Dataset, bug_id, generate

WINDOW = ReportWindow(now=NOW, days=10)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Dataset]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    ds = generate(builds=160, bugs=6, lines_per_build=6, seed=99)
    base = tmp_path_factory.mktemp("browser-site")
    store = EmbeddedStore(base / "store.db")
    store.add_documents(ds.docs)
    loaded = load_fingerprints(ds.write_queries(base / "queries"))
    assert not loaded.errors
    site = base / "site"
    render_site(store, loaded, from_mapping({}), site, window=WINDOW, backend_name="embedded store")
    return site, store, ds


@pytest.fixture
def served(rendered: tuple[Path, Any, Dataset], static_server: Any) -> StaticServer:
    server: StaticServer = static_server(rendered[0])
    return server


def _open(driver: Any, url: str) -> None:
    driver.get(url)
    console_errors(driver)  # drain entries of the previous page


def _load_clean(driver: Any, url: str) -> None:
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get(url)
    errors = console_errors(driver)
    assert not errors, f"{url}: console errors {errors}"


def _pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))


def test_every_page_loads_without_console_errors(chromium: Any, served: StaticServer, rendered: tuple[Path, Any, Dataset]) -> None:
    from selenium.webdriver.common.by import By

    site = rendered[0]
    pages = _pages(site)
    assert "index.html" in pages and len(pages) >= 6 + 6
    for page in pages:
        _load_clean(chromium, served.url + page)
        assert chromium.find_element(By.ID, "health").is_displayed()
        assert "Generated" in chromium.find_element(By.ID, "health").text
    assert not served.not_found, served.not_found


def test_file_url_works_offline(chromium: Any, rendered: tuple[Path, Any, Dataset]) -> None:
    from selenium.webdriver.common.by import By

    site = rendered[0]
    _load_clean(chromium, (site / "index.html").as_uri())
    charts = chromium.find_elements(By.CSS_SELECTOR, "figure.chart svg.trend")
    assert len(charts) == 5  # six fingerprints, one of them suppress-graph (not graphed)
    # The stylesheet applied (nav colours come from style.css).
    header = chromium.find_element(By.CSS_SELECTOR, "header.site")
    assert header.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
    _load_clean(chromium, (site / "integrated_gate.html").as_uri())


def _expected_days(store: Any, fp: Any, kind: str) -> dict[str, int]:
    """Distinct builds per UTC day (of their last matching line) from the backend's own build list."""
    spec = fingerprint_spec(fp, WINDOW)
    if kind == "gate":
        spec = replace(spec, filters=Filters(voting=spec.filters.voting, build_queue="gate"))
    out: dict[str, int] = {}
    for b in store.builds(spec):
        if b.last_seen is not None and WINDOW.start <= b.last_seen < WINDOW.now:
            day = f"{b.last_seen:%Y-%m-%d}"
            out[day] = out.get(day, 0) + 1
    return out


def test_charts_have_one_bar_per_day_with_builds(
    chromium: Any, served: StaticServer, rendered: tuple[Path, Any, Dataset]
) -> None:
    from selenium.webdriver.common.by import By

    site, store, ds = rendered
    fps = {fp.bug: fp for fp in load_fingerprints(site.parent / "queries").fingerprints}
    graphed = [b for b, fp in fps.items() if not fp.suppress_graph]
    checked = 0
    for page in ["index.html", "gate.html"] + [bug_page(bug_id(k)) for k in range(ds.bugs)]:
        _open(chromium, served.url + page)
        figures = chromium.find_elements(By.CSS_SELECTOR, "figure.chart")
        assert figures, page
        for fig in figures:
            bug, kind = fig.get_attribute("data-bug"), fig.get_attribute("data-kind")
            bars = fig.find_elements(By.CSS_SELECTOR, "svg .bar")
            want = _expected_days(store, fps[bug], "gate" if kind == "gate" else "all")
            got = {bar.get_attribute("data-day"): int(bar.get_attribute("data-n")) for bar in bars}
            assert got == want, (page, bug, kind)
            # One date label per day of the window (ten full days here), or the first and last.
            labels = [t.text for t in fig.find_elements(By.CSS_SELECTOR, "svg text.xlabel")]
            assert labels == (["Nov 10"] + [str(d) for d in range(11, 20)] if "bug/" in page else ["Nov 10", "Nov 19"])
            for bar in bars:
                assert bar.size["height"] > 0 and bar.size["width"] > 2
                title = bar.find_element(By.TAG_NAME, "title").get_attribute("textContent")
                assert bar.get_attribute("data-day") in title and f"{bar.get_attribute('data-n')} build" in title
            checked += 1
    assert checked == 2 * len(graphed) + 2 * ds.bugs


def test_links_resolve(chromium: Any, served: StaticServer) -> None:
    from selenium.webdriver.common.by import By

    origin = urlsplit(served.url).netloc
    seen: set[str] = set()
    todo = deque([served.url + "index.html"])
    while todo:
        url = todo.popleft()
        if url in seen:
            continue
        seen.add(url)
        _open(chromium, url)
        if not url.endswith(".html"):
            continue
        for a in chromium.find_elements(By.CSS_SELECTOR, "a[href]"):
            href = urljoin(url, a.get_attribute("href") or "").split("#", 1)[0]
            if urlsplit(href).netloc == origin and href not in seen:
                todo.append(href)
        for el in chromium.find_elements(By.CSS_SELECTOR, "link[href], script[src]"):
            ref = el.get_attribute("href") or el.get_attribute("src")
            if ref and urlsplit(ref).netloc == origin:
                seen.add(ref)
    paths = {urlsplit(u).path for u in seen}
    assert {"/index.html", "/gate.html", "/uncategorized.html", "/health.html", "/graph.json"} <= paths
    assert any(p.startswith("/bug/") for p in paths)
    assert served.requests, "the server saw no request"
    assert not served.not_found, served.not_found


def test_age_filter_hides_and_shows_rows(
    chromium: Any, served: StaticServer, rendered: tuple[Path, Any, Dataset]
) -> None:
    from selenium.webdriver.common.by import By

    site = rendered[0]
    doc = json.loads((site / "uncategorized.json").read_text())
    now_ms = doc["now"]
    rows = [u for u in doc["uncategorized"] if u["group"] == "integrated_gate"]
    recent = [u for u in rows if now_ms - u["timestamp"] <= 24 * 3600 * 1000]
    assert 0 < len(recent) < len(rows), "the dataset must have old and recent uncategorized builds"

    _open(chromium, served.url + "integrated_gate.html")

    def visible() -> list[str]:
        return [
            r.get_attribute("data-uuid")
            for r in chromium.find_elements(By.CSS_SELECTOR, "#uncategorized tbody tr[data-uuid]")
            if r.is_displayed()
        ]

    assert len(visible()) == len(rows)
    chromium.find_element(By.CSS_SELECTOR, 'button[data-age-hours="24"]').click()
    assert sorted(visible()) == sorted(u["uuid"] for u in recent)
    assert chromium.find_element(By.ID, "shown-count").text == str(len(recent))
    assert chromium.find_element(By.CSS_SELECTOR, 'button[data-age-hours="24"]').get_attribute("aria-pressed") == "true"
    chromium.find_element(By.CSS_SELECTOR, 'button[data-age-hours="168"]').click()
    week = [u["uuid"] for u in rows if now_ms - u["timestamp"] <= 168 * 3600 * 1000]
    assert sorted(visible()) == sorted(week)
    chromium.find_element(By.CSS_SELECTOR, 'button[data-age-hours="240"]').click()
    assert len(visible()) == len(rows)
    # The choice survives a reload through the URL fragment.
    chromium.find_element(By.CSS_SELECTOR, 'button[data-age-hours="24"]').click()
    chromium.refresh()
    assert sorted(visible()) == sorted(u["uuid"] for u in recent)
    assert not console_errors(chromium)


def _assert_no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        alert = driver.switch_to.alert
        text = alert.text
        alert.dismiss()
    except NoAlertPresentException:
        return
    pytest.fail(f"an alert fired: {text!r}")


def test_hostile_log_lines_stay_text(chromium: Any, served: StaticServer, rendered: tuple[Path, Any, Dataset]) -> None:
    from selenium.webdriver.common.by import By

    _load_clean(chromium, served.url + bug_page(bug_id(0)))
    _assert_no_alert(chromium)
    samples = chromium.find_element(By.ID, "samples").text
    assert "<script>alert(1)</script>" in samples
    assert '"><img src=x onerror=alert(1)>' in samples
    assert not chromium.find_elements(By.CSS_SELECTOR, "img")
    assert not chromium.find_elements(By.CSS_SELECTOR, "main script")

    for page in ("integrated_gate.html", "others.html", "index.html"):
        _load_clean(chromium, served.url + page)
        _assert_no_alert(chromium)
        assert not chromium.find_elements(By.CSS_SELECTOR, "img")
        assert not chromium.find_elements(By.CSS_SELECTOR, 'a[href^="javascript:"]')
    rows = [
        r.text
        for page in ("integrated_gate.html", "others.html")
        for r in (_open(chromium, served.url + page) or chromium.find_elements(By.CSS_SELECTOR, "#uncategorized tbody tr"))
    ]
    assert any(XSS_JOB in t for t in rows)


def test_health_header_reports_lag(chromium: Any, served: StaticServer, rendered: tuple[Path, Any, Dataset]) -> None:
    from selenium.webdriver.common.by import By

    ds = rendered[2]
    newest = max(datetime.fromisoformat(d["@timestamp"]) for d in ds.docs)
    _open(chromium, served.url + "health.html")
    header = chromium.find_element(By.ID, "health").text
    assert f"{newest:%Y-%m-%d %H:%M} UTC" in header
    assert f"{humanize_delta(NOW - newest)} behind" in header
    assert chromium.find_element(By.ID, "backend-status").text == "up"
    assert "6 fingerprints loaded" in header
