"""The trend and classification-rate arithmetic (pure functions)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from elastic_recheck.core import stats
from elastic_recheck.core.search_types import Bucket, BuildSummary
from elastic_recheck.core.timestamps import EPOCH, from_epoch_ms, to_epoch_ms
from elastic_recheck.report.charts import SMALL, bars_in_window, legend, trend_svg
from elastic_recheck.report.window import ReportWindow

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def build(uuid: str, status: str = "FAILURE", last: datetime | None = None, docs: int = 1, **fields: str) -> BuildSummary:
    f = {"build_status": status, **fields}
    return BuildSummary(uuid=uuid, fields=f, first_seen=last, last_seen=last, docs=docs)


def test_to_ms_is_exact_and_round_trips() -> None:
    dt = datetime(2026, 11, 20, 12, 34, 56, 789000, tzinfo=UTC)
    assert to_epoch_ms(dt) == int(dt.timestamp()) * 1000 + 789
    assert from_epoch_ms(to_epoch_ms(dt)) == dt
    assert to_epoch_ms(EPOCH) == 0


def test_floor_time_aligns_to_epoch_hours() -> None:
    dt = datetime(2026, 11, 20, 13, 59, 59, 999999, tzinfo=UTC)
    assert stats.floor_time(dt, stats.HOUR) == datetime(2026, 11, 20, 13, tzinfo=UTC)
    assert stats.floor_time(dt, stats.DAY) == datetime(2026, 11, 20, tzinfo=UTC)
    exact = datetime(2026, 11, 20, 13, tzinfo=UTC)
    assert stats.floor_time(exact, stats.HOUR) == exact


def test_bucket_starts_cover_partial_edges() -> None:
    start = datetime(2026, 11, 19, 22, 30, tzinfo=UTC)
    end = datetime(2026, 11, 20, 1, 15, tzinfo=UTC)
    starts = stats.bucket_starts(start, end)
    assert starts[0] == datetime(2026, 11, 19, 22, tzinfo=UTC)
    assert starts[-1] == datetime(2026, 11, 20, 1, tzinfo=UTC)
    assert len(starts) == 4
    # An hour-aligned end excludes the bucket starting at end.
    assert len(stats.bucket_starts(T0 - timedelta(days=10), T0)) == 240
    assert stats.bucket_starts(T0, T0) == []


def test_dense_series_fills_zeros_and_orders_labels() -> None:
    start, end = T0 - timedelta(hours=5), T0
    buckets = [
        Bucket(start=T0 - timedelta(hours=4), counts={"SUCCESS": 2, "FAILURE": 1}),
        Bucket(start=T0 - timedelta(hours=1), counts={"POST_FAILURE": 3}),
    ]
    series = stats.dense_series(buckets, start, end)
    assert [s["label"] for s in series] == ["FAILURE", "SUCCESS", "POST_FAILURE"]
    for s in series:
        assert [p[0] for p in s["data"]] == [to_epoch_ms(T0 - timedelta(hours=h)) for h in range(5, 0, -1)]
    failure = series[0]["data"]
    assert [p[1] for p in failure] == [0, 1, 0, 0, 0]
    assert [p[1] for p in series[2]["data"]] == [0, 0, 0, 0, 3]
    assert stats.dense_series([], start, end) == []


def test_builds_since_uses_last_matching_line() -> None:
    window = ReportWindow(now=T0, days=10)
    b = [
        build("a", last=T0 - timedelta(hours=1)),
        build("b", last=T0 - timedelta(hours=23, minutes=59)),
        build("c", last=T0 - timedelta(hours=24, seconds=1)),
        build("d", status="SUCCESS", last=T0 - timedelta(hours=2)),
        build("e", last=None),
    ]
    assert {x.uuid for x in stats.builds_since(b, window.day_start, status="FAILURE")} == {"a", "b"}
    assert {x.uuid for x in stats.builds_since(b, window.day_start)} == {"a", "b", "d"}
    assert stats.count_status(b, "FAILURE") == 4


def test_percent_and_failure_share() -> None:
    assert stats.percent(1, 3) == 33.3
    assert stats.percent(0, 0) is None
    assert stats.failure_share({"a", "b", "x"}, {"a", "b", "c", "d"}) == (2, 4, 50.0)
    assert stats.failure_share(set(), set()) == (0, 0, None)


def test_breakdown_counts_distinct_builds_and_lines() -> None:
    b = [
        build("1", build_name="tempest", docs=3),
        build("2", build_name="tempest", docs=1),
        build("3", build_name="grenade", docs=10),
        build("4", docs=2),
        build("5", build_name="grenade", docs=1),
        build("6", build_name="unit", docs=1),
    ]
    rows = stats.breakdown(b, "build_name")
    assert [(r.value, r.builds, r.docs) for r in rows] == [
        ("grenade", 2, 11),
        ("tempest", 2, 4),
        ("(none)", 1, 2),
        ("unit", 1, 1),
    ]
    assert sum(r.builds for r in rows) == len(b)


def test_classification_rate_overall_and_per_job() -> None:
    failed = [
        build("1", build_name="tempest"),
        build("2", build_name="tempest"),
        build("3", build_name="tempest"),
        build("4", build_name="grenade"),
        build("5", build_name="unit"),
    ]
    rate = stats.classification_rate(failed, {"1", "4", "zzz"})
    assert (rate.failed, rate.explained, rate.uncategorized, rate.rate) == (5, 2, 3, 40.0)
    jobs = {j.name: (j.failed, j.explained, j.rate) for j in rate.jobs}
    assert jobs == {"tempest": (3, 1, 33.3), "grenade": (1, 1, 100.0), "unit": (1, 0, 0.0)}
    # Worst-covered first.
    assert rate.jobs[0].name == "tempest"
    assert stats.classification_rate([], set()).rate is None


def test_explained_by_lists_every_bug() -> None:
    out = stats.explained_by({"b2": {"x", "y"}, "b1": {"x"}, "b3": {"q"}}, ["x", "y", "z"])
    assert out == {"x": ["b1", "b2"], "y": ["b2"], "z": []}


def test_newest_first_puts_unknown_times_last() -> None:
    b = [build("a", last=T0 - timedelta(hours=3)), build("b", last=None), build("c", last=T0)]
    assert [x.uuid for x in stats.newest_first(b)] == ["c", "a", "b"]


def test_sort_key_matches_original_order() -> None:
    rows = [("a", 0, 9), ("b", 2, 3), ("c", 2, 5), ("d", 1, 100)]
    ordered = sorted(rows, key=lambda r: stats.bug_sort_key(r[1], r[2]), reverse=True)
    assert [r[0] for r in ordered] == ["c", "b", "d", "a"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(42, "42 s"), (125, "2 min 5 s"), (7500, "2 h 5 min"), (3 * 86400 + 4 * 3600, "3 d 4 h"), (-60, "ahead by 1 min 0 s")],
)
def test_humanize_delta(seconds: int, text: str) -> None:
    assert stats.humanize_delta(timedelta(seconds=seconds)) == text
    assert stats.humanize_delta(None) == "unknown"


def test_window_age_filters_fit_the_window() -> None:
    assert ReportWindow(now=T0, days=10).age_filters == (24, 48, 168, 240)
    assert ReportWindow(now=T0, days=3).age_filters == (24, 48, 72)
    assert ReportWindow(now=T0, days=0.5).age_filters == (12,)
    with pytest.raises(ValueError):
        ReportWindow(now=datetime(2026, 1, 1), days=1)


def test_window_partial_days() -> None:
    assert not ReportWindow(now=T0, days=10).partial_days
    assert ReportWindow(now=T0 + timedelta(hours=3), days=10).partial_days
    assert ReportWindow(now=T0, days=0.5).partial_days


def test_day_buckets_count_each_build_once_on_its_last_day() -> None:
    start, end = T0 - timedelta(days=2, hours=6), T0 + timedelta(hours=5)
    builds = [
        build("a", "FAILURE", T0 - timedelta(days=2, hours=1)),
        build("b", "SUCCESS", T0 - timedelta(days=2, hours=2)),
        build("c", "FAILURE", T0 - timedelta(hours=1)),
        build("d", "FAILURE", T0 - timedelta(hours=2)),
        build("e", "", T0 + timedelta(hours=1)),
        build("early", "FAILURE", start - timedelta(minutes=1)),  # outside the window
        build("late", "FAILURE", end),  # the end is exclusive
        BuildSummary(uuid="never", fields={"build_status": "FAILURE"}),
    ]
    days = stats.day_buckets(builds, start, end)
    assert [d.start for d in days] == [T0 - timedelta(days=3), T0 - timedelta(days=2), T0 - timedelta(days=1), T0]
    assert [dict(d.counts) for d in days] == [
        {"FAILURE": 1, "SUCCESS": 1},  # 21:30 of the first (partial) day
        {},
        {"FAILURE": 2},
        {"unknown": 1},
    ]
    assert sum(d.total for d in days) == 5


def _days(counts: list[dict[str, int]]) -> list[Bucket]:
    first = T0 - timedelta(days=len(counts))
    return [Bucket(start=first + timedelta(days=i), counts=c) for i, c in enumerate(counts)]


def test_chart_draws_one_bar_per_day_with_data_and_a_date_per_day() -> None:
    days = _days([{"FAILURE": 2}, {}, {"FAILURE": 1, "SUCCESS": 3}, {"SUCCESS": 1}, {}])
    start, end = days[0].start, T0
    assert bars_in_window(days) == [days[0], days[2], days[3]]
    svg = str(trend_svg(days, start, end))
    assert svg.count('<g class="bar"') == 3
    assert 'data-days="5"' in svg and 'data-ymax="4"' in svg
    # One date under every day (month at the first), totals above the bars.
    assert re.findall(r'class="xlabel"[^>]*>([^<]+)<', svg) == ["Nov 15", "16", "17", "18", "19"]
    assert re.findall(r'class="count"[^>]*>(\d+)<', svg) == ["2", "4", "1"]
    # A tooltip per bar with the date and the count per result.
    titles = re.findall(r'<g class="bar"[^>]*><title>([^<]+)</title>', svg)
    assert titles[1] == "Tue 2026-11-17: 4 builds (1 failed, 3 succeeded)"
    # Failures at the bottom of a stacked bar, successes above them.
    bar = svg[svg.index('data-day="2026-11-17"'):]
    fail = re.search(r'<rect class="st-failure" x="\d+" y="([\d.]+)"', bar)
    ok = re.search(r'<rect class="st-success" x="\d+" y="([\d.]+)"', bar)
    assert fail and ok and float(ok.group(1)) < float(fail.group(1))
    # The large chart follows the page's width; the bars stretch in a viewBox.
    assert 'width="100%"' in svg and 'viewBox="0 0 500 4"' in svg
    assert "no hits" in str(trend_svg(_days([{}, {}]), start, end))


def test_sparkline_labels_the_first_and_last_day() -> None:
    days = _days([{"FAILURE": 1}] + [{}] * 8 + [{"FAILURE": 2}])
    svg = str(trend_svg(days, days[0].start, T0, size=SMALL))
    assert re.findall(r'class="xlabel"[^>]*>([^<]+)<', svg) == ["Nov 10", "Nov 19"]
    assert svg.count('<g class="bar"') == 2 and svg.count("<title>") == 3


def test_chart_marks_partial_days_in_tooltips() -> None:
    start, end = T0 - timedelta(days=1, hours=-6), T0 + timedelta(hours=9, minutes=30)
    days = stats.day_buckets([build("a", "FAILURE", start), build("b", "FAILURE", T0)], start, end)
    svg = str(trend_svg(days, start, end))
    assert "2026-11-19 (from 06:00 UTC)" in svg and "2026-11-20 (until 09:30 UTC)" in svg
    assert svg.count('class="partial"') == 2


def test_chart_escapes_status_names() -> None:
    evil = '<script>alert(1)</script>'
    svg = str(trend_svg(_days([{evil: 2}]), T0 - timedelta(days=1), T0))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'class="st-other"' in svg


def test_legend_names_every_class_in_stacking_order() -> None:
    html = str(legend({"SUCCESS", "FAILURE", "TIMED_OUT", "ABORTED"}))
    assert re.findall(r'class="key (st-[a-z-]+)"', html) == ["st-failure", "st-other", "st-timeout", "st-success"]
    assert "failed build" in html and "successful build" in html


def test_build_level_filters_match_what_the_backend_filter_keeps() -> None:
    from elastic_recheck.core.search_types import Filters
    from elastic_recheck.report.graph import build_level_match

    voting = BuildSummary(uuid="a", fields={"voting": 1, "build_queue": "gate"})
    nonvoting = BuildSummary(uuid="b", fields={"voting": "0", "build_queue": "check"})
    unknown = BuildSummary(uuid="c", fields={})
    assert [build_level_match(b, Filters(voting=True)) for b in (voting, nonvoting, unknown)] == [True, False, False]
    assert [build_level_match(b, Filters(voting=False)) for b in (voting, nonvoting, unknown)] == [False, True, False]
    assert [build_level_match(b, Filters()) for b in (voting, nonvoting, unknown)] == [True, True, True]
    assert [build_level_match(b, Filters(build_queue="gate")) for b in (voting, nonvoting, unknown)] == [True, False, False]
    assert not build_level_match(voting, Filters(voting=True, build_queue="check"))


def test_safe_url_only_allows_http() -> None:
    from elastic_recheck.report.templating import safe_url

    assert safe_url("https://logs.example.org/a/b/") == "https://logs.example.org/a/b/"
    assert safe_url("http://x.org") == "http://x.org"
    for bad in ("javascript:alert(1)", " JaVaScRiPt:alert(1)", "data:text/html,x", "//evil.org/x", "", None, 3, "http://"):
        assert safe_url(bad) is None, bad


def test_bug_page_names_are_safe_and_distinct() -> None:
    from elastic_recheck.core.pages import bug_page

    assert bug_page("1893618") == "bug/1893618.html"
    odd = [bug_page(b) for b in ("../etc/passwd", "a b", "a_b", "a?b", "x#y", ".hidden")]
    assert len(set(odd)) == len(odd)
    for page in odd:
        name = page.removeprefix("bug/")
        assert "/" not in name and not name.startswith(".")
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name


def test_build_uncategorized_groups_and_rates() -> None:
    from elastic_recheck.report.uncategorized import build_uncategorized

    w = ReportWindow(now=T0, days=10)
    failed = [
        build("n1", last=T0 - timedelta(hours=1), project="openstack/nova", build_name="tempest"),
        build("n2", last=T0 - timedelta(days=3), project="openstack/nova", build_name="tempest"),
        build("h1", last=T0 - timedelta(hours=30), project="openstack/horizon", build_name="unit"),
        build("h2", last=T0 - timedelta(hours=2), project="openstack/horizon", build_name="unit"),
    ]
    report = build_uncategorized(failed, {"b1": {"n1", "zz"}, "b2": {"h1", "n1"}}, w, r"^openstack/nova$")
    assert report.explained == {"n1": ["b1", "b2"], "n2": [], "h1": ["b2"], "h2": []}
    assert (report.overall.failed, report.overall.explained, report.overall.rate) == (4, 2, 50.0)
    integrated, others = report.groups["integrated_gate"], report.groups["others"]
    assert [b.uuid for b in integrated.uncategorized] == ["n2"]
    assert [b.uuid for b in others.uncategorized] == ["h2"]
    assert integrated.rate.rate == 50.0 and others.rate.rate == 50.0
    assert report.failed24 == {"n1", "h2"}
    assert [b.uuid for b in report.failed] == ["n1", "h2", "h1", "n2"]


def test_graph_json_order_suppression_and_series() -> None:
    from elastic_recheck.core.fingerprints import Fingerprint
    from elastic_recheck.report.graph import BugStats, fingerprint_spec, graph_json

    w = ReportWindow(now=T0, days=1)

    def make(bug: str, fails24: int, fails: int, **kw: bool) -> BugStats:
        fp = Fingerprint(bug=bug, query=f'message:"{bug}"', **kw)
        hist = [Bucket(start=T0 - timedelta(hours=2), counts={"FAILURE": fails})]
        return BugStats(fingerprint=fp, spec=fingerprint_spec(fp, w), histogram=hist, fails=fails, fails24=fails24)

    doc = graph_json(
        [make("a", 0, 9), make("b", 2, 3), make("c", 2, 5), make("s", 9, 9, suppress_graph=True),
         make("n", 1, 1, allow_nonvoting=True)],
        w,
        last_indexed=T0 - timedelta(minutes=5),
        status="up",
    )
    assert [b["number"] for b in doc["buglist"]] == ["c", "b", "n", "a"]
    assert doc["now"] == to_epoch_ms(T0) and doc["behind"] == 5 * 60 * 1000
    n = next(b for b in doc["buglist"] if b["number"] == "n")
    assert n["voting"] is False and n["bug_data"] == {"name": "", "affects": "", "reviews": []}
    series = doc["buglist"][0]["data"]
    assert len(series) == 1 and len(series[0]["data"]) == 24
    assert series[0]["data"][-2] == [to_epoch_ms(T0 - timedelta(hours=2)), 5]


def test_fingerprint_spec_keeps_filters_structured() -> None:
    from elastic_recheck.core.fingerprints import Fingerprint
    from elastic_recheck.report.graph import fingerprint_spec

    w = ReportWindow(now=T0, days=2)
    fp = Fingerprint(bug="1", query='message:"boom"')
    spec = fingerprint_spec(fp, w, queue="gate", suffix="tags:console OR tags:x")
    assert spec.queries == ('message:"boom"', "tags:console OR tags:x")
    assert spec.filters.voting is True and spec.filters.build_queue == "gate"
    assert spec.window.start == T0 - timedelta(days=2) and spec.window.end == T0
    nv = fingerprint_spec(Fingerprint(bug="2", query="x", allow_nonvoting=True), w, suffix="  ")
    assert nv.filters.voting is None and nv.queries == ("x",)
