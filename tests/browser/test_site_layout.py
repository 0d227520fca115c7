"""The site as a reader sees it, at 400 px (a phone) and at 1,400 px (a laptop).

Real headless Chromium loads every page of a site rendered by
:func:`render_site` from a real embedded store, at both widths, and checks
what the eye would: the page never scrolls sideways (the navigation wraps,
wide tables scroll inside their own containers), the bug-page charts use the
width they get, failures and successes differ without colour, and a site
rendered for a window the data does not reach says so on every page.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.pages import bug_page
from elastic_recheck.report.site import render_site
from elastic_recheck.report.window import ReportWindow
from tests.browser.conftest import StaticServer, console_errors
from tests.fixtures.report_data import NOW, Dataset, bug_id, generate

WIDTHS = (400, 1400)


def _render(base: Path, ds: Dataset, window: ReportWindow, name: str) -> Path:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    store_path = base / "store.db"
    store = EmbeddedStore(store_path)
    if not store.latest_timestamp():
        store.add_documents(ds.docs)
    loaded = load_fingerprints(base / "queries")
    site = base / name
    render_site(store, loaded, from_mapping({}), site, window=window, backend_name="embedded store")
    store.close()
    return site


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(builds=160, bugs=6, lines_per_build=6, seed=99)


@pytest.fixture(scope="module")
def sites(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``current``: the window holds the data; ``later``: the window starts after the newest event."""
    base = tmp_path_factory.mktemp("layout-site")
    dataset.write_queries(base / "queries")
    return {
        "current": _render(base, dataset, ReportWindow(now=NOW, days=10), "current"),
        "later": _render(base, dataset, ReportWindow(now=NOW + timedelta(days=30), days=10), "later"),
    }


def _pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))


def _set_width(driver: Any, width: int) -> None:
    """Make the page's viewport (window.innerWidth) exactly ``width`` CSS pixels."""
    driver.set_window_size(width, 900)
    inner = driver.execute_script("return window.innerWidth")
    driver.set_window_size(width + (width - inner), 900)
    assert driver.execute_script("return window.innerWidth") == width


@pytest.fixture
def narrow_and_wide(chromium: Any) -> Any:
    yield chromium
    chromium.set_window_size(1280, 1000)


LAYOUT_JS = """
const vw = window.innerWidth;
const rect = el => el.getBoundingClientRect();
return {
  vw: vw,
  scrollWidth: document.documentElement.scrollWidth,
  nav: [...document.querySelectorAll('header.site nav a, header.site nav .brand')].map(a => {
    const r = rect(a); return {text: a.textContent.trim(), left: r.left, right: r.right, top: r.top};
  }),
  tables: [...document.querySelectorAll('main table')].map(t => {
    const box = t.parentElement;
    const r = rect(box);
    return {id: t.id || t.className, wrapped: box.classList.contains('table-scroll'),
            overflow: getComputedStyle(box).overflowX, left: r.left, right: r.right,
            scrolls: box.scrollWidth > box.clientWidth + 1};
  }),
};
"""


def test_no_page_scrolls_sideways_and_the_navigation_wraps(
    narrow_and_wide: Any, sites: dict[str, Path], static_server: Any
) -> None:
    driver = narrow_and_wide
    site = sites["current"]
    served: StaticServer = static_server(site)
    pages = _pages(site)
    assert len(pages) >= 12
    scrolling: dict[int, set[str]] = {w: set() for w in WIDTHS}
    for width in WIDTHS:
        _set_width(driver, width)
        for page in pages:
            driver.get(served.url + page)
            assert not console_errors(driver), page
            got = driver.execute_script(LAYOUT_JS)
            assert got["scrollWidth"] <= width, (width, page, got["scrollWidth"])
            assert len(got["nav"]) == 6
            for item in got["nav"]:
                assert 0 <= item["left"] and item["right"] <= width, (width, page, item)
            if width == 400:
                # Six items do not fit on one 400 px line: the navigation wraps.
                assert len({round(i["top"]) for i in got["nav"]}) > 1, page
            for t in got["tables"]:
                assert t["wrapped"] and t["overflow"] in ("auto", "scroll"), (width, page, t)
                assert t["left"] >= 0 and t["right"] <= width + 0.5, (width, page, t)
                if t["scrolls"]:
                    scrolling[width].add(f"{page}#{t['id']}")
    # At 400 px the wide tables scroll inside their containers; at 1,400 px the bug list does not need to.
    assert "index.html#bugs" in scrolling[400] and "bug/" + bug_id(0) + ".html#recent" in scrolling[400]
    assert "index.html#bugs" not in scrolling[1400]

    _set_width(driver, 400)
    driver.get(served.url + "index.html")
    moved = driver.execute_script(
        "const box = document.getElementById('bugs').parentElement; box.scrollLeft = 150;"
        "return [box.scrollLeft, window.scrollX, document.documentElement.scrollWidth];"
    )
    assert moved[0] > 0 and moved[1] == 0 and moved[2] <= 400


CHART_JS = """
const fig = document.querySelector('figure.chart[data-kind="all"]');
const svg = fig.querySelector('svg.trend');
const label = svg.querySelector('text.xlabel');
const box = getComputedStyle(fig.parentElement);
const content = fig.parentElement.clientWidth - parseFloat(box.paddingLeft) - parseFloat(box.paddingRight);
return {figure: fig.getBoundingClientRect().width, main: content,
        svg: svg.getBoundingClientRect().width, font: parseFloat(getComputedStyle(label).fontSize)};
"""

BARS_JS = """
const lum = c => {
  const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => {
    v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const out = [];
for (const bar of document.querySelectorAll('svg .bar')) {
  const f = bar.querySelector('rect.st-failure'), s = bar.querySelector('rect.st-success');
  if (!f || !s) continue;
  const fs = getComputedStyle(f), ss = getComputedStyle(s);
  out.push({failTop: f.getBoundingClientRect().top, okBottom: s.getBoundingClientRect().bottom,
            failLum: lum(fs.fill), okLum: lum(ss.fill), failStroke: fs.stroke, okStroke: ss.stroke,
            okStrokeLum: ss.stroke === 'none' ? null : lum(ss.stroke)});
}
return out;
"""


def test_bug_charts_use_the_width_and_differ_without_colour(
    narrow_and_wide: Any, sites: dict[str, Path], static_server: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver = narrow_and_wide
    served: StaticServer = static_server(sites["current"])
    mixed = 0
    for width in WIDTHS:
        _set_width(driver, width)
        for k in range(6):
            driver.get(served.url + bug_page(bug_id(k)))
            got = driver.execute_script(CHART_JS)
            # As wide as the content column (not a fixed 480 px), with labels that stay readable.
            assert abs(got["svg"] - got["main"]) <= 2 and got["svg"] > width * 0.85, (width, got)
            assert got["font"] >= 10
            legend = driver.find_element(By.CSS_SELECTOR, "figure.chart .legend").text
            assert "failed build" in legend and "successful build" in legend
            for bar in driver.execute_script(BARS_JS):
                mixed += 1
                # Position: failures at the bottom of the stack, successes above.
                assert bar["okBottom"] <= bar["failTop"] + 0.5, bar
                # Shape and lightness: solid dark failures, pale outlined successes.
                assert bar["failLum"] < 0.35 and bar["okLum"] > 0.6, bar
                assert bar["okStroke"] != "none" and bar["okStrokeLum"] < 0.35, bar
    assert mixed, "the dataset must have a day with failed and successful builds of one bug"


def test_no_data_banner_on_every_page_when_the_window_is_past_the_data(
    chromium: Any, sites: dict[str, Path], dataset: Dataset
) -> None:
    from selenium.webdriver.common.by import By

    newest = max(d["@timestamp"] for d in dataset.docs)
    later = sites["later"]
    for page in _pages(later):
        chromium.get((later / page).as_uri())
        banner = chromium.find_element(By.ID, "no-data-banner")
        assert banner.is_displayed(), page
        text = banner.text
        assert "No data in this window" in text and "every count on this page is zero" in text
        assert f"{newest[:10]} " in text, text  # the newest event's date
        assert "--now 2026-11-20T00:00:00Z" in text
        # It stands out: a coloured box above the content, not the header's small text.
        assert float(banner.value_of_css_property("font-size").removesuffix("px")) >= 14
        assert banner.location["y"] < chromium.find_element(By.TAG_NAME, "main").location["y"]
    current = sites["current"]
    for page in _pages(current):
        chromium.get((current / page).as_uri())
        assert not chromium.find_elements(By.ID, "no-data-banner"), page
