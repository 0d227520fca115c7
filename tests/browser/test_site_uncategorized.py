"""The uncategorized pages give a contributor what a fingerprint starts from.

Two uncategorized failed gate builds of a generated store get real evidence:
one logs an ERROR record, a traceback's exception and a test runner's FAILED
line; the other has recorded test results and no error line. The site is
rendered with :func:`render_site` and read in real headless Chromium.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.report.site import render_site
from elastic_recheck.report.window import ReportWindow
from tests.browser.conftest import console_errors
from tests.fixtures.report_data import NOW, Build, Dataset, _doc, generate

ERROR_LINE = "Instance failed to spawn: libvirtError: internal error: qemu unexpectedly closed the monitor"
LATER_ERROR = "ValueError: device vdb is busy"
FAILED_TEST = "tempest.api.compute.servers.test_boot.ServersTest.test_boot_volume[id-4b1f,smoke]"


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Build, Build]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    ds: Dataset = generate(builds=160, bugs=6, lines_per_build=6, seed=99)
    unc = sorted(
        (b for uuid, b in ds.failed_gate().items() if uuid not in ds.explained() and not b.job.startswith("<")),
        key=lambda b: b.end,
    )
    assert len(unc) >= 2
    old, recent = unc[0], unc[-1]
    assert NOW - old.end > timedelta(days=1) and NOW - recent.end < timedelta(days=1)
    t = old.end - timedelta(minutes=30)
    record = _doc(old, t, "controller/logs/screen-n-cpu.txt", ERROR_LINE)
    record["loglevel"] = "ERROR"
    traceback = _doc(old, t + timedelta(minutes=5), "job-output.txt", f"Traceback (most recent call last):\n  File \"x.py\", line 1\n{LATER_ERROR}")
    test_line = _doc(old, t - timedelta(minutes=1), "job-output.txt", f"{{1}} {FAILED_TEST} [12.3s] ... FAILED")
    for console in (traceback, test_line):
        del console["loglevel"]  # the job's console has no log level
    base = tmp_path_factory.mktemp("unc-site")
    store = EmbeddedStore(base / "store.db")
    store.add_documents([*ds.docs, record, traceback, test_line])
    store.record_test_results(recent.uuid, [("pkg.tests.test_a", "fail"), ("pkg.tests.test_b", "success")])
    loaded = load_fingerprints(ds.write_queries(base / "queries"))
    site = base / "site"
    render_site(store, loaded, from_mapping({}), site, window=ReportWindow(now=NOW, days=10), backend_name="embedded store")
    store.close()
    return site, old, recent


def _page_of(site: Path, build: Build) -> Path:
    for name in ("integrated_gate.html", "others.html"):
        if f'id="build-{build.uuid}"' in (site / name).read_text():
            return site / name
    raise AssertionError(f"build {build.uuid} is on no uncategorized page")


def test_rows_show_uuid_first_error_failed_tests_and_a_starting_query(
    chromium: Any, evidence: tuple[Path, Build, Build]
) -> None:
    from selenium.webdriver.common.by import By

    site, old, recent = evidence
    chromium.get(_page_of(site, old).as_uri())
    assert not console_errors(chromium)
    body = chromium.find_element(By.ID, f"build-{old.uuid}")
    assert chromium.find_element(By.CSS_SELECTOR, f"#build-{old.uuid} code.uuid").text == old.uuid
    first = body.find_element(By.CSS_SELECTOR, ".first-error")
    # The earliest error line; the FAILED line is listed as a failed test, the later exception counted.
    assert first.find_element(By.TAG_NAME, "pre").text == ERROR_LINE
    assert "screen-n-cpu.txt" in first.text and "2 more error lines" in first.text
    tests = body.find_element(By.CSS_SELECTOR, ".failed-tests").text
    assert FAILED_TEST in tests and "from the logs" in tests
    query = body.find_element(By.CSS_SELECTOR, "pre.draft").text
    assert query.startswith('message:"Instance failed to spawn') and 'tags:"screen-n-cpu.txt"' in query

    chromium.get(_page_of(site, recent).as_uri())
    body = chromium.find_element(By.ID, f"build-{recent.uuid}")
    tests = body.find_element(By.CSS_SELECTOR, ".failed-tests").text
    assert "pkg.tests.test_a" in tests and "pkg.tests.test_b" not in tests and "from the test results" in tests
    assert "no error line found" in body.find_element(By.CSS_SELECTOR, ".first-error").text
    assert not body.find_elements(By.CSS_SELECTOR, "pre.draft")


def test_age_filter_hides_a_build_with_its_details(chromium: Any, evidence: tuple[Path, Build, Build]) -> None:
    from selenium.webdriver.common.by import By

    site, old, _ = evidence
    chromium.get(_page_of(site, old).as_uri())
    details = chromium.find_element(By.CSS_SELECTOR, f"#build-{old.uuid} .first-error")
    assert details.is_displayed()
    chromium.find_element(By.CSS_SELECTOR, 'button[data-age-hours="24"]').click()
    assert not details.is_displayed()
    shown = [r for r in chromium.find_elements(By.CSS_SELECTOR, "#uncategorized tbody.build") if r.is_displayed()]
    assert chromium.find_element(By.ID, "shown-count").text == str(len(shown))
    assert not console_errors(chromium)


def test_details_stay_in_view_at_400_px(chromium: Any, evidence: tuple[Path, Build, Build]) -> None:
    site, old, _ = evidence
    try:
        chromium.set_window_size(400, 900)
        inner = chromium.execute_script("return window.innerWidth")
        chromium.set_window_size(400 + (400 - inner), 900)
        chromium.get(_page_of(site, old).as_uri())
        got = chromium.execute_script(
            "const dl = document.querySelector('#build-" + old.uuid + " dl.triage');"
            "return [dl.getBoundingClientRect().left, dl.getBoundingClientRect().right, window.innerWidth,"
            " document.documentElement.scrollWidth];"
        )
        left, right, width, scroll_width = got
        assert width == 400 and scroll_width <= 400
        assert left >= 0 and right <= width
    finally:
        chromium.set_window_size(1280, 1000)
