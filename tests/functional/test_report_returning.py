"""The site's "resolved bugs that came back" section and stale-fingerprint page.

``render`` runs against a real embedded store with the real offline tracker
(``[bugs] bugs_file``) for bug statuses. Expected bugs, counts, dates and
newest builds come from the generator's ground truth
(:mod:`tests.fixtures.report_data`), not from any backend.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup, Tag
from click.testing import CliRunner, Result

from elastic_recheck.cli.main import cli
from elastic_recheck.core.pages import bug_page
from elastic_recheck.report.site_data import ExitCode
from elastic_recheck.report.stale_fingerprints import DEFAULT_RETURNING_DAYS
from tests.fixtures.report_data import NOW, Build, Dataset, bug_id, generate

NOW_ISO = "2026-11-20T00:00:00Z"
#: Bug 0 is resolved in its YAML four days before NOW; bug 3 is Fix Released
#: in the tracker (no date); bug 4 is Confirmed (open: never "came back").
RESOLVED_AT = NOW - timedelta(days=4)
HOSTILE_TITLE = "<script>alert(1)</script> widget 3"
#: Fingerprints that never hit: removal candidate, kept infra issue, unknown, open bug.
QUIET = {
    "1999001": ('query: message:"never logged one"\nresolved_at: 2026-01-01\n', "remove"),
    "1999002": ('query: message:"never logged two"\nsuppress-graph: true\n', "keep"),
    "1999003": ('query: message:"never logged three"\n', "check"),
    "1999004": ('query: message:"never logged four"\n', "keep"),
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    ds = generate(builds=220, bugs=6, lines_per_build=6, seed=4321)
    ds.options[0] = {"resolved_at": RESOLVED_AT.strftime("%Y-%m-%d")}
    return ds


@pytest.fixture(scope="module")
def tree(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    base = tmp_path_factory.mktemp("returning")
    store = EmbeddedStore(base / "store.db")
    store.add_documents(dataset.docs)
    store.close()
    queries = dataset.write_queries(base / "queries", extra={f"{b}.yaml": y for b, (y, _) in QUIET.items()})
    bugs_file = base / "bugs.yaml"
    bugs_file.write_text(
        f'"{bug_id(3)}": {{title: "{HOSTILE_TITLE}", status: "Fix Released"}}\n'
        f'"{bug_id(4)}": {{status: "Confirmed"}}\n'
        '"1999004": {status: "In Progress"}\n',
        encoding="utf-8",
    )
    return base / "store.db", queries, bugs_file


def run(store: Path, *args: str, config: Path | None = None) -> Result:
    base = ["--store", str(store)]
    if config is not None:
        base = ["--config", str(config), *base]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def failed_since(ds: Dataset, bug: int, since: datetime) -> dict[str, Build]:
    return {u: b for u, b in ds.bug_builds(bug, since=since).items() if b.failed}


def newest(ds: Dataset, bug: int, builds: dict[str, Build], since: datetime) -> Build:
    """The build whose newest line of ``bug`` in ``[since, now)`` is the latest."""
    return max(builds.values(), key=lambda b: max(t for t in b.bug_lines[bug] if since <= t < ds.now))


def expected(ds: Dataset) -> dict[str, tuple[datetime, bool, dict[str, Build]]]:
    """bug -> (since, date known, failed builds since)."""
    unknown_since = ds.now - timedelta(days=DEFAULT_RETURNING_DAYS)
    out = {
        bug_id(0): (RESOLVED_AT, True, failed_since(ds, 0, RESOLVED_AT)),
        bug_id(3): (unknown_since, False, failed_since(ds, 3, unknown_since)),
    }
    assert all(builds for _, _, builds in out.values()), "the dataset must make both bugs come back"
    return out


@pytest.fixture(scope="module")
def site(tree: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, queries, bugs_file = tree
    base = tmp_path_factory.mktemp("site-parent")
    conf = base / "er.conf"
    conf.write_text(f"[bugs]\ntracker = offline\nbugs_file = {bugs_file}\n", encoding="utf-8")
    out = base / "site"
    res = run(store, "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO, config=conf)
    assert res.exit_code == ExitCode.OK, res.output
    return out


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def one(tag: Tag, selector: str) -> Tag:
    found = tag.select_one(selector)
    assert found is not None, selector
    return found


def attr(tag: Tag, name: str) -> str:
    value = tag.get(name)
    assert isinstance(value, str), (name, value)
    return value


def text(tag: Tag, selector: str) -> str:
    return " ".join(one(tag, selector).get_text(" ", strip=True).split())


def test_index_lists_the_bugs_that_came_back(site: Path, dataset: Dataset) -> None:
    want = expected(dataset)
    section = one(soup(site / "index.html"), "#returning")
    rows = {attr(tr, "data-bug"): tr for tr in section.select("tbody tr")}
    assert set(rows) == set(want)
    for bug, (since, known, builds) in want.items():
        tr = rows[bug]
        assert text(tr, "td.failed-builds") == str(len(builds)), bug
        href = attr(one(tr, "a.bug-link"), "href")
        assert href == bug_page(bug) and (site / href).is_file()
        when = text(tr, "td.since")
        if known:
            assert when.startswith(since.strftime("%Y-%m-%d")), when
        else:
            assert "Fix Released, fix date unknown" in when and f"last {DEFAULT_RETURNING_DAYS:g} days" in when
        log = attr(one(tr, "td.newest a.log"), "href")
        assert log.startswith(newest(dataset, int(bug) - 1_000_000, builds, since).log_url)
    # Most recently hit first.
    order = [attr(tr, "data-bug") for tr in section.select("tbody tr")]
    last_hit = {
        b: max(t for build in bs.values() for t in build.bug_lines[int(b) - 1_000_000] if s <= t < NOW)
        for b, (s, _, bs) in want.items()
    }
    assert order == sorted(want, key=lambda b: last_hit[b], reverse=True)


def test_title_from_tracker_is_escaped(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    assert HOSTILE_TITLE not in html
    assert HOSTILE_TITLE in text(soup(site / "index.html"), f'#returning tr[data-bug="{bug_id(3)}"]')


def test_badges_on_affected_bug_pages_only(site: Path, dataset: Dataset) -> None:
    want = expected(dataset)
    for k in range(dataset.bugs):
        page = soup(site / bug_page(bug_id(k)))
        if bug_id(k) in want:
            assert f"hit {len(want[bug_id(k)][2])} failed builds" in text(page, "#came-back")
        else:
            assert page.select_one("#came-back") is None, k
    index_badges = {
        attr(tr, "data-bug") for tr in soup(site / "index.html").select("#bugs tbody tr") if tr.select_one(".came-back")
    }
    assert index_badges == set(want)
    # The gate page shows the badges but not the section.
    gate = soup(site / "gate.html")
    assert gate.select_one("#returning") is None
    assert {attr(tr, "data-bug") for tr in gate.select("#bugs tbody tr") if tr.select_one(".came-back")} == set(want)


def test_health_json_lists_returning_and_stale(site: Path, dataset: Dataset) -> None:
    doc = json.loads((site / "health.json").read_text())
    want = expected(dataset)
    got = {r["bug"]: r for r in doc["returning"]}
    assert set(got) == set(want)
    for bug, (since, known, builds) in want.items():
        r = got[bug]
        assert (r["failed_builds"], r["date_known"]) == (len(builds), known)
        assert datetime.fromisoformat(r["since"]) == since
        assert r["newest_build"]["uuid"] == newest(dataset, int(bug) - 1_000_000, builds, since).uuid
        assert r["page"] == bug_page(bug)
    assert got[bug_id(3)]["status"] == "Fix Released" and got[bug_id(3)]["title"] == HOSTILE_TITLE
    stale = {f["bug"]: f["verdict"] for f in doc["stale"]["fingerprints"]}
    assert stale == {b: v for b, (_, v) in QUIET.items()}
    assert doc["stale"]["counts"]["active"] == dataset.bugs
    # Existing keys are unchanged.
    assert doc["status"] == "up" and doc["fingerprints"] == dataset.bugs + len(QUIET)


def test_stale_page_groups_and_links(site: Path) -> None:
    page = soup(site / "stale_fingerprints.html")
    got: dict[str, str] = {}
    for section in page.select("section.stale"):
        verdict = attr(section, "id").removeprefix("stale-")
        for tr in section.select("tbody tr[data-bug]"):
            got[attr(tr, "data-bug")] = verdict
            href = attr(one(tr, "a.bug-link"), "href")
            assert (site / href).is_file(), href
    assert got == {b: v for b, (_, v) in QUIET.items()}
    # Linked from every page's navigation, and from the health page.
    for name in ("index.html", "health.html", bug_page(bug_id(0))):
        hrefs = [attr(a, "href") for a in soup(site / name).select("header nav a")]
        assert any(h.endswith("stale_fingerprints.html") for h in hrefs), name
    health = soup(site / "health.html")
    assert text(health, "#returning-count").startswith("2")
    assert re.search(r"1 removal candidates, 1 to check, 2 kept", text(health, "#stale-counts"))


def test_without_tracker_only_resolved_at_counts(tree: tuple[Path, Path, Path], dataset: Dataset, tmp_path: Path) -> None:
    store, queries, _ = tree
    out = tmp_path / "site"
    res = run(store, "render", "-o", str(out), "--queries", str(queries), "--now", NOW_ISO)
    assert res.exit_code == ExitCode.OK, res.output
    doc = json.loads((out / "health.json").read_text())
    assert [r["bug"] for r in doc["returning"]] == [bug_id(0)]
    rows = soup(out / "index.html").select("#returning tbody tr")
    assert [attr(tr, "data-bug") for tr in rows] == [bug_id(0)]
    # Status unknown now: the open bug's quiet fingerprint needs a check.
    stale = {f["bug"]: f["verdict"] for f in doc["stale"]["fingerprints"]}
    assert stale["1999004"] == "check"


def test_no_section_when_nothing_came_back(tree: tuple[Path, Path, Path], tmp_path: Path) -> None:
    store, queries, _ = tree
    # Resolved after NOW: no build can have hit since.
    old = f"resolved_at: {RESOLVED_AT:%Y-%m-%d}"
    assert old in (queries / f"{bug_id(0)}.yaml").read_text()
    moved = tmp_path / "queries"
    moved.mkdir()
    for f in queries.glob("*.yaml"):
        (moved / f.name).write_text(f.read_text().replace(old, f"resolved_at: {NOW + timedelta(days=1):%Y-%m-%d}"))
    out = tmp_path / "site"
    res = run(store, "render", "-o", str(out), "--queries", str(moved), "--now", NOW_ISO)
    assert res.exit_code == ExitCode.OK, res.output
    assert soup(out / "index.html").select_one("#returning") is None
    assert json.loads((out / "health.json").read_text())["returning"] == []
    assert soup(out / bug_page(bug_id(0))).select_one("#came-back") is None
