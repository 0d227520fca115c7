"""The "resolved bugs that came back" section and the stale page in real headless Chromium.

A small generated store is rendered with :func:`render_site`: bug 0 has
``resolved_at`` in its YAML, bug 2 is Fix Released according to the
``bug_data`` given to the renderer (as the tracker would say), and one
fingerprint never hits. Expected rows come from the generator's ground truth.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.pages import bug_page
from elastic_recheck.report.graph import BugData
from elastic_recheck.report.site import render_site
from elastic_recheck.report.stale_fingerprints import DEFAULT_RETURNING_DAYS
from elastic_recheck.report.window import ReportWindow
from tests.browser.conftest import StaticServer, console_errors
from tests.fixtures.report_data import NOW, Dataset, bug_id, generate

WINDOW = ReportWindow(now=NOW, days=10)
RESOLVED_AT = NOW - timedelta(days=3)
QUIET_BUG = "1999001"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    ds = generate(builds=160, bugs=5, lines_per_build=5, seed=2024)
    ds.options[0] = {"resolved_at": RESOLVED_AT.strftime("%Y-%m-%d")}
    base = tmp_path_factory.mktemp("browser-returning")
    store = EmbeddedStore(base / "store.db")
    store.add_documents(ds.docs)
    queries = ds.write_queries(
        base / "queries", extra={f"{QUIET_BUG}.yaml": 'query: message:"never logged"\nresolved_at: 2026-01-01\n'}
    )
    loaded = load_fingerprints(queries)
    assert not loaded.errors
    site = base / "site"
    bug_data = {bug_id(2): BugData(name="Widget 2 explodes again", status="Fix Released")}
    render_site(store, loaded, from_mapping({}), site, window=WINDOW, bug_data=bug_data)
    store.close()
    return site, ds


def expected_counts(ds: Dataset) -> dict[str, int]:
    unknown = NOW - timedelta(days=DEFAULT_RETURNING_DAYS)
    out = {
        bug_id(0): sum(1 for b in ds.bug_builds(0, since=RESOLVED_AT).values() if b.failed),
        bug_id(2): sum(1 for b in ds.bug_builds(2, since=unknown).values() if b.failed),
    }
    assert all(out.values()), "the dataset must make both bugs come back"
    return out


def _load_clean(driver: Any, url: str) -> None:
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get(url)
    errors = console_errors(driver)
    assert not errors, f"{url}: console errors {errors}"


def test_returning_section_renders_and_links_resolve(
    chromium: Any, static_server: Any, rendered: tuple[Path, Dataset]
) -> None:
    from selenium.webdriver.common.by import By

    site, ds = rendered
    served: StaticServer = static_server(site)
    want = expected_counts(ds)
    _load_clean(chromium, served.url + "index.html")
    section = chromium.find_element(By.ID, "returning")
    assert section.is_displayed()
    assert section.find_element(By.TAG_NAME, "h2").text == "Resolved bugs that came back"
    # The bug table that follows has its own heading, below the section's table.
    buglist = chromium.find_element(By.ID, "all-bugs")
    heading = buglist.find_element(By.TAG_NAME, "h2")
    assert heading.text.startswith("All fingerprints (")
    assert heading.location["y"] > section.find_element(By.TAG_NAME, "table").location["y"]
    assert heading.location["y"] < chromium.find_element(By.ID, "bugs").location["y"]
    rows = section.find_elements(By.CSS_SELECTOR, "tbody tr")
    got = {r.get_attribute("data-bug"): r for r in rows}
    assert set(got) == set(want)
    for bug, count in want.items():
        row = got[bug]
        assert row.is_displayed()
        assert row.find_element(By.CSS_SELECTOR, "td.failed-builds").text == str(count)
    assert RESOLVED_AT.strftime("%Y-%m-%d") in got[bug_id(0)].find_element(By.CSS_SELECTOR, "td.since").text
    assert "fix date unknown" in got[bug_id(2)].find_element(By.CSS_SELECTOR, "td.since").text
    assert "Widget 2 explodes again" in got[bug_id(2)].text
    # Newest-build links point at the build's log directory (external: not followed).
    log_dirs = {b.log_url for b in ds.builds}
    hrefs = {}
    for bug, row in got.items():
        href = row.find_element(By.CSS_SELECTOR, "a.log").get_attribute("href")
        assert any(href.startswith(d) for d in log_dirs), href
        hrefs[bug] = row.find_element(By.CSS_SELECTOR, "a.bug-link").get_attribute("href")

    # Every bug link of the section opens that bug's page, with its badge.
    for bug, href in hrefs.items():
        assert urlsplit(href).path == "/" + bug_page(bug)
        _load_clean(chromium, href)
        badge = chromium.find_element(By.ID, "came-back")
        assert badge.is_displayed()
        assert f"hit {want[bug]} failed build" in " ".join(badge.text.split())
        assert chromium.find_element(By.TAG_NAME, "h1").text.startswith(f"Bug {bug}")
    # A bug that did not come back has no badge.
    _load_clean(chromium, served.url + bug_page(bug_id(1)))
    assert not chromium.find_elements(By.ID, "came-back")

    # The stale page, reached through the navigation, lists the quiet fingerprint; its links resolve.
    _load_clean(chromium, served.url + "index.html")
    chromium.find_element(By.LINK_TEXT, "Stale fingerprints").click()
    assert urlsplit(chromium.current_url).path == "/stale_fingerprints.html"
    assert not console_errors(chromium)
    row = chromium.find_element(By.CSS_SELECTOR, f'#stale-remove tr[data-bug="{QUIET_BUG}"]')
    assert "resolved_at" in row.text
    links = [
        urljoin(chromium.current_url, a.get_attribute("href") or "")
        for a in chromium.find_elements(By.CSS_SELECTOR, "main a[href]")
    ]
    assert any(urlsplit(u).path == "/" + bug_page(QUIET_BUG) for u in links)
    assert any(urlsplit(u).path == "/index.html" and urlsplit(u).fragment == "returning" for u in links)
    for url in links:
        _load_clean(chromium, url)
    assert served.requests and not served.not_found, served.not_found
