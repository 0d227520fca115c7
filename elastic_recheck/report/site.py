"""The static trend site: one :func:`render_site` for cron and the preview server.

Output layout (all links relative, so the site works from ``file://`` too)::

    index.html              every fingerprint, its trend chart and failure share
    gate.html               the same, gate queue only
    bug/<bug>.html          one page per bug: query, charts, breakdowns, builds
    uncategorized.html      classification rate overall, per group and job
    integrated_gate.html    uncategorized failed builds of the integrated gate
    others.html             ... and of the other projects
    health.html             generation time, indexing lag, backend, load errors
    stale_fingerprints.html quiet fingerprints: removal candidates, keepers
    graph.json              the original elastic-recheck format
    uncategorized.json      rates and the uncategorized builds
    health.json
    static/                 css and the small age-filter script

The index lists the resolved bugs that came back (:func:`stale.find_returning`:
a ``resolved_at`` in the YAML, or Fix Released in the tracker, and failed
builds since), each affected bug page carries a badge, and health.json has
both lists. Bug statuses come from ``bug_data`` (the configured tracker, as
the ``render`` command passes it); without it only ``resolved_at`` counts.

Rendering happens in a temporary directory next to the target, which then
replaces the target in one step (an atomic ``renameat2(RENAME_EXCHANGE)``
where the kernel offers it, else two renames), so a reader never sees a
half-written site.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment

from elastic_recheck.core.config import Config
from elastic_recheck.core.error_line_search import fetch_error_lines
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprints import LoadResult
from elastic_recheck.core.fixes import Fix, Verdict, fix_rows
from elastic_recheck.core.pages import bug_page
from elastic_recheck.core.rechecks import Recheck
from elastic_recheck.core.safe_text import safe_url
from elastic_recheck.core.stats import (
    Share,
    breakdown,
    bug_sort_key,
    builds_since,
    day_buckets,
    failure_share,
    to_ms,
)
from elastic_recheck.ports.search import Bucket, BuildSummary, SearchBackend, TermCount
from elastic_recheck.report.charts import (
    LARGE,
    SMALL,
    bars_in_window,
    chart_statuses,
    legend,
    rate_legend,
    rate_svg,
    trend_svg,
)
from elastic_recheck.report.clusters import FailureCluster, build_clusters, daily_rates
from elastic_recheck.report.drafts import site_suggestions
from elastic_recheck.report.graph import (
    SAMPLE_LINES,
    BugData,
    BugStats,
    Progress,
    bug_data_from_fingerprint,
    collect_bug_stats,
    graph_json,
    sort_buglist,
)
from elastic_recheck.report.health import Health, describe_load_errors, probe_backend, public_warnings
from elastic_recheck.report.impact import ImpactReport, add_fixes_to_graph, add_impact_to_graph, collect_impact
from elastic_recheck.report.stale_fingerprints import (
    ACTIVE,
    CHECK,
    DEFAULT_QUIET_DAYS,
    KEEP,
    REMOVE,
    Returning,
    StaleReport,
    find_stale,
)
from elastic_recheck.report.templating import copy_static, template_env
from elastic_recheck.report.triage import BuildTriage, collect_triage, triage_rows
from elastic_recheck.report.uncategorized import (
    GROUPS,
    UncategorizedReport,
    all_failed_gate_builds,
    bug_hit_sets,
    build_uncategorized,
    job_name,
    uncategorized_json,
)
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

#: Rows shown per breakdown table and recent-build list on a bug page.
BREAKDOWN_ROWS = 20
RECENT_BUILDS = 50

BREAKDOWN_FIELDS: tuple[tuple[str, str], ...] = (
    ("build_name", "Job"),
    ("node_provider", "Node provider"),
    ("build_branch", "Branch"),
    ("project", "Project"),
)


class ExitCode(IntEnum):
    """What ``render``/``graph``/``uncategorized`` tell a cron wrapper.

    2 is left to click (bad command line).
    """

    OK = 0
    FAILED = 1
    BACKEND_DOWN = 3
    PARTIAL = 4


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 rendering or writing failed (previous output kept); "
    "2 bad command line; 3 backend down or failed mid-way (previous output kept); "
    "4 output written but some fingerprints failed to load or were rejected by the backend."
)


class BackendDown(BackendError):
    """The backend did not answer; nothing was written."""


@dataclass
class BugView:
    """One bug with everything its rows and page show."""

    stats: BugStats
    data: BugData
    page: str
    share24: Share
    share10: Share
    gate_fails: int
    gate_fails24: int

    @property
    def bug(self) -> str:
        return self.stats.bug

    @property
    def fingerprint(self) -> Any:
        return self.stats.fingerprint

    @property
    def title(self) -> str:
        return self.data.name or self.fingerprint.bug_title or ""

    def fix_rows(self, start: datetime, now: datetime) -> list[tuple[Fix, Verdict | None]]:
        """The bug's fixes, merged ones with their before/after verdict."""
        return fix_rows(self.data.fixes, self.stats.failed_builds(), start, now)


@dataclass
class SiteData:
    window: ReportWindow
    health: Health
    config: Config
    bugs: list[BugView]
    uncategorized: UncategorizedReport
    graph: dict[str, Any]
    gate_queue: str
    #: Possible fingerprints for the uncategorized page (``[site] suggestions``;
    #: an :class:`elastic_recheck.report.drafts.SuggestReport`, None when off or failed).
    suggestions: Any = None
    #: Quiet fingerprints and resolved bugs that came back (None: not computed).
    stale: StaleReport | None = None
    #: uuid -> what the uncategorized rows show of the build (first error, failed tests).
    triage: Mapping[str, BuildTriage] = field(default_factory=dict)
    #: What each bug costs (rechecks, gate resets, CI hours; None: not computed).
    impact: ImpactReport | None = None
    #: Uncategorized builds grouped by failure signature, biggest impact first.
    clusters: list[FailureCluster] = field(default_factory=list)

    @property
    def returning(self) -> tuple[Returning, ...]:
        return self.stale.returning if self.stale is not None else ()

    def gate_bugs(self) -> list[BugView]:
        by_bug = sorted(self.bugs, key=lambda v: v.bug)
        return sorted(by_bug, key=lambda v: bug_sort_key(v.gate_fails24, v.gate_fails), reverse=True)


@dataclass
class RenderResult:
    out: Path
    health: Health
    files: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    #: The impact numbers the site shows (for ``[bugs] update``).
    impact: ImpactReport | None = None

    @property
    def exit_code(self) -> ExitCode:
        if not self.health.probe.up:
            return ExitCode.BACKEND_DOWN
        return ExitCode.PARTIAL if self.health.failed_fingerprints else ExitCode.OK


def _bug_view(
    stats: BugStats,
    data: BugData,
    unc: UncategorizedReport,
    window: ReportWindow,
    gate_queue: str,
) -> BugView:
    uuids = stats.uuids
    s24 = failure_share(uuids, unc.failed24)
    s10 = failure_share(uuids, unc.failed_uuids)
    gate_failed = [
        b for b in stats.builds
        if b.status == "FAILURE" and b.queue == gate_queue
    ]
    return BugView(
        stats=stats,
        data=data,
        page=bug_page(stats.bug),
        share24=Share(*s24),
        share10=Share(*s10),
        gate_fails=len(gate_failed),
        gate_fails24=len(builds_since(gate_failed, window.day_start)),
    )


def build_health(
    probe: Any,
    window: ReportWindow,
    load_result: LoadResult,
    stats: Sequence[BugStats] = (),
    backend_name: str = "",
    generated_at: datetime | None = None,
) -> Health:
    return Health(
        generated_at=generated_at or datetime.now(UTC),
        now=window.now,
        probe=probe,
        backend_name=backend_name,
        fingerprints=len(load_result.fingerprints),
        load_errors=describe_load_errors(load_result.errors),
        query_errors=tuple((s.bug, s.error) for s in stats if s.error),
        warnings=public_warnings(load_result),
        window_start=window.start,
    )


def collect_suggestions(
    backend: SearchBackend, config: Config, window: ReportWindow, unc: UncategorizedReport
) -> Any:
    """Draft fingerprints from the uncategorized builds (None when ``[site] suggestions`` is off)."""
    if not config.site.suggestions:
        return None
    return site_suggestions(backend, unc.uncategorized, window, config)


def collect_site_triage(
    backend: SearchBackend, config: Config, window: ReportWindow, unc: UncategorizedReport, suggestions: Any
) -> tuple[dict[str, BuildTriage], list[FailureCluster]]:
    """The uncategorized rows' details and the failure clusters, from one read of the builds' error lines
    (the lines the suggestions read, when they were drafted)."""
    lines = suggestions.error_lines if suggestions is not None else None
    try:
        if lines is None and unc.uncategorized:
            lines, _ = fetch_error_lines(backend, unc.uncategorized, window.time_window)
        triage = collect_triage(backend, unc.uncategorized, window, config, lines)
    except BackendError as exc:
        if exc.retryable:
            raise
        LOG.error("uncategorized builds' error lines left out: the backend rejected a query: %s", exc)
        return {}, []
    return triage, build_clusters(unc, lines or [], triage, window, suggestions)


def collect_site_data(
    backend: SearchBackend,
    load_result: LoadResult,
    config: Config,
    window: ReportWindow,
    *,
    bug_data: Mapping[str, BugData] | None = None,
    progress: Progress | None = None,
    backend_name: str = "",
    generated_at: datetime | None = None,
    samples: int = SAMPLE_LINES,
    quiet_days: float = DEFAULT_QUIET_DAYS,
    rechecks: Sequence[Recheck] | None = None,
    zuul_seconds: Mapping[str, float] | None = None,
) -> SiteData:
    """Every number the site shows.

    ``bug_data`` (bug -> :class:`BugData`, from the tracker) also gives the
    bug statuses for the stale and returning lists (:func:`find_stale`, quiet
    meaning no hit in the ``quiet_days`` before the window's end).
    ``rechecks`` (the recorded recheck comments, None: unknown) and
    ``zuul_seconds`` (build durations from Zuul) feed the impact numbers.

    :raises BackendDown: when the backend does not answer at the start.
    :raises BackendError: when it fails (retryably) half-way.
    """
    probe = probe_backend(backend, now=window.now)
    if not probe.up:
        raise BackendDown(probe.error or "backend down")
    gate_queue = config.site.gate_queue
    stats = collect_bug_stats(
        backend,
        load_result.fingerprints,
        window,
        samples=samples,
        progress=progress,
    )
    failed = all_failed_gate_builds(backend, config, window)
    unc = build_uncategorized(
        failed, bug_hit_sets(stats), window, config.site.integrated_projects_re
    )
    health = build_health(probe, window, load_result, stats, backend_name, generated_at)
    bug_data = bug_data or {}
    views = [
        _bug_view(s, bug_data.get(s.bug) or bug_data_from_fingerprint(s.fingerprint), unc, window, gate_queue)
        for s in sort_buglist(stats)
    ]
    graph = graph_json(
        stats, window, last_indexed=probe.newest_event, status=probe.status, bug_data=bug_data
    )
    impact = collect_impact(backend, stats, window, gate_queue, rechecks=rechecks, zuul_seconds=zuul_seconds)
    add_impact_to_graph(graph, impact)
    add_fixes_to_graph(graph, views, window)
    stale = find_stale(backend, load_result.fingerprints, bug_data, window.now, days=quiet_days)
    suggestions = collect_suggestions(backend, config, window, unc)
    triage, clusters = collect_site_triage(backend, config, window, unc, suggestions)
    return SiteData(
        window=window,
        health=health,
        config=config,
        bugs=views,
        uncategorized=unc,
        graph=graph,
        gate_queue=gate_queue,
        suggestions=suggestions,
        stale=stale,
        triage=triage,
        impact=impact,
        clusters=clusters,
    )


def collect_uncategorized_data(
    backend: SearchBackend,
    load_result: LoadResult,
    config: Config,
    window: ReportWindow,
    *,
    progress: Progress | None = None,
    backend_name: str = "",
    generated_at: datetime | None = None,
) -> SiteData:
    """What the ``uncategorized`` command needs (no histograms, no bug pages).

    :raises BackendDown: when the backend does not answer at the start.
    """
    probe = probe_backend(backend, now=window.now)
    if not probe.up:
        raise BackendDown(probe.error or "backend down")
    stats = collect_bug_stats(backend, load_result.fingerprints, window, histogram=False, progress=progress)
    failed = all_failed_gate_builds(backend, config, window)
    unc = build_uncategorized(
        failed, bug_hit_sets(stats), window, config.site.integrated_projects_re
    )
    health = build_health(probe, window, load_result, stats, backend_name, generated_at)
    suggestions = collect_suggestions(backend, config, window, unc)
    triage, clusters = collect_site_triage(backend, config, window, unc, suggestions)
    return SiteData(
        window=window,
        health=health,
        config=config,
        bugs=[],
        uncategorized=unc,
        graph={},
        gate_queue=config.site.gate_queue,
        suggestions=suggestions,
        triage=triage,
        clusters=clusters,
    )


# --------------------------------------------------------------------------- writing


def site_uncategorized_json(data: SiteData) -> dict[str, Any]:
    """``uncategorized.json``, plus the failure clusters (``clusters``, biggest first)."""
    out = uncategorized_json(data.uncategorized, data.config)
    out["clusters"] = [c.as_json() for c in data.clusters]
    return out


def write_text(path: Path, text: str) -> None:
    """Write a file atomically (temp file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any, *, pretty: bool = False) -> None:
    """Compact unless ``pretty`` (indenting makes json use its slow pure-Python encoder)."""
    text = json.dumps(data, indent=2) if pretty else json.dumps(data, separators=(",", ":"))
    write_text(path, text + "\n")


@dataclass(frozen=True)
class ReturningRow:
    """A resolved bug that came back, as the index, its bug page and health.json show it."""

    returning: Returning
    page: str
    title: str

    @property
    def bug(self) -> str:
        return self.returning.bug

    @property
    def failed_builds(self) -> int:
        return len(self.returning.builds)

    @property
    def newest(self) -> BuildSummary:
        return self.returning.builds[0]

    @property
    def newest_url(self) -> str | None:
        """The newest failed build's logs (http(s) only, else None)."""
        return safe_url(self.newest.log_url)

    def as_json(self) -> dict[str, Any]:
        r = self.returning
        b = self.newest
        return {
            "bug": r.bug,
            "title": self.title,
            "url": safe_url(r.fingerprint.url),
            "page": self.page,
            "status": r.status,
            "since": r.since.isoformat(),
            "date_known": r.date_known,
            "failed_builds": self.failed_builds,
            "newest_build": {
                "uuid": b.uuid,
                "build_name": b.job_name,
                "log_url": self.newest_url,
                "last_seen": b.last_seen.isoformat() if b.last_seen else None,
            },
        }


def returning_rows(data: SiteData) -> list[ReturningRow]:
    """The resolved bugs that came back, most recently hit first (see :func:`find_returning`)."""
    titles = {v.bug: v.title for v in data.bugs}
    return [
        ReturningRow(
            returning=r,
            page=bug_page(r.bug),
            title=titles.get(r.bug) or r.fingerprint.bug_title or "",
        )
        for r in data.returning
    ]


def stale_json(report: StaleReport) -> dict[str, Any]:
    """The quiet fingerprints for health.json (file names, not server paths)."""
    return {
        "days": report.days,
        "counts": {v: len(report.by_verdict(v)) for v in (REMOVE, CHECK, KEEP, ACTIVE)},
        "fingerprints": [
            {
                "bug": e.bug,
                "file": e.fingerprint.path.name if e.fingerprint.path else None,
                "status": e.status,
                "verdict": e.verdict,
                "reason": e.reason,
                "last_hit": e.last_hit.isoformat() if e.last_hit else None,
            }
            for e in report.entries
            if e.verdict != ACTIVE
        ],
    }


def health_json(data: SiteData) -> dict[str, Any]:
    """health.json: the health header's numbers, plus the returning bugs and quiet fingerprints."""
    doc = data.health.as_json()
    if data.stale is not None:
        doc["returning"] = [r.as_json() for r in returning_rows(data)]
        doc["stale"] = stale_json(data.stale)
    return doc


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    key: str


NAV: tuple[NavItem, ...] = (
    NavItem("index.html", "All bugs", "index"),
    NavItem("gate.html", "Gate", "gate"),
    NavItem("uncategorized.html", "Uncategorized", "uncategorized"),
    NavItem("stale_fingerprints.html", "Stale fingerprints", "stale"),
    NavItem("health.html", "Health", "health"),
)


def gerrit_base(config: Config) -> str:
    url = config.gerrit.url
    if url:
        return url.rstrip("/")
    return f"https://{config.gerrit.host}"


def change_url(config: Config, build: BuildSummary) -> str | None:
    change, ps = build.change, build.patchset
    if not change:
        return None
    tail = f"/{quote(ps, safe='')}" if ps else ""
    return f"{gerrit_base(config)}/c/{quote(change, safe='')}{tail}"


class PageWriter:
    """Renders templates into a directory; counts what it writes."""

    def __init__(self, out: Path, env: Environment, data: SiteData, pages: frozenset[str]) -> None:
        self.out = out
        self.env = env
        self.data = data
        self.pages = pages
        self.files = 0
        self.returning = {r.bug: r for r in returning_rows(data)}

    def common(self, root: str, current: str) -> dict[str, Any]:
        d = self.data
        return {
            "root": root,
            "current": current,
            "nav": [n for n in NAV if n.key in self.pages],
            "health": d.health,
            "window": d.window,
            "has_health_page": "health" in self.pages,
            "now_ms": to_ms(d.window.now),
            "gate_queue": d.gate_queue,
        }

    def render(self, template: str, rel: str, **context: Any) -> None:
        root = "../" * rel.count("/")
        ctx = self.common(root, context.pop("current", ""))
        ctx.update(context)
        html = self.env.get_template(template).render(**ctx)
        write_text(self.out / rel, html)
        self.files += 1

    def build_row(self, b: BuildSummary) -> dict[str, Any]:
        return {
            "build": b,
            "job": job_name(b),
            "project": b.project or "",
            "branch": b.branch or "",
            "queue": b.queue or "",
            "status": b.status or "",
            "provider": b.node_provider or "",
            "change": b.change or "",
            "patchset": b.patchset or "",
            "change_url": change_url(self.data.config, b),
            "log_url": b.log_url,
            "time": b.last_seen,
            "bugs": self.data.uncategorized.explained.get(b.uuid, []),
        }

    # -- pages

    def day_charts(self, v: BugView) -> tuple[list[Bucket], list[Bucket]]:
        """Distinct builds per day of the bug: all queues, and the gate queue."""
        w = self.data.window
        builds = v.stats.builds
        gate = [b for b in builds if b.queue == self.data.gate_queue]
        return day_buckets(builds, w.start, w.now), day_buckets(gate, w.start, w.now)

    def bug_list(self, rel: str, kind: str, views: Sequence[BugView]) -> None:
        w = self.data.window
        rows = []
        statuses: set[str] = set()
        for v in views:
            days = self.day_charts(v)[1 if kind == "gate" else 0]
            graphed = not v.fingerprint.suppress_graph
            if graphed:
                statuses |= chart_statuses(days)
            rows.append(
                {
                    "view": v,
                    # suppress-graph fingerprints are "not graphed" here too (their pages have the charts).
                    "chart": trend_svg(days, w.start, w.now, size=SMALL, label=f"bug {v.bug}") if graphed else None,
                    "bars": len(bars_in_window(days)),
                    "fails": v.gate_fails if kind == "gate" else v.stats.fails,
                    "fails24": v.gate_fails24 if kind == "gate" else v.stats.fails24,
                }
            )
        returning = list(self.returning.values()) if kind == "index" else []
        impact = self.data.impact
        impact_rows = []
        if kind == "index" and impact is not None:
            by_bug = {v.bug: v for v in views}
            impact_rows = [(by_bug[i.bug], i) for i in impact.ordered() if i.bug in by_bug]
        self.render("bugs.html", rel, current=kind, kind=kind, rows=rows, returning=returning,
                    came_back=self.returning, legend=legend(statuses or chart_statuses()),
                    impact=impact, impact_rows=impact_rows, impact_sortable=True)

    def bug(self, v: BugView) -> None:
        w = self.data.window
        s = v.stats
        breakdowns = []
        for fld, title in BREAKDOWN_FIELDS:
            terms: list[TermCount] = breakdown(s.builds, fld)
            failed = {t.value: t.builds for t in breakdown(s.failed_builds(), fld)}
            breakdowns.append(
                {
                    "field": fld,
                    "title": title,
                    "rows": [(t, failed.get(t.value, 0)) for t in terms[:BREAKDOWN_ROWS]],
                    "hidden": max(0, len(terms) - BREAKDOWN_ROWS),
                }
            )
        failed_builds = s.failed_builds()
        days, gate_days = self.day_charts(v)
        self.render(
            "bug.html",
            v.page,
            current="bug",
            view=v,
            fp=s.fingerprint,
            chart=trend_svg(days, w.start, w.now, size=LARGE, label=f"bug {v.bug}: all queues"),
            gate_chart=trend_svg(gate_days, w.start, w.now, size=LARGE, label=f"bug {v.bug}: {self.data.gate_queue}"),
            bars=len(bars_in_window(days)),
            gate_bars=len(bars_in_window(gate_days)),
            legend=legend(chart_statuses(days, gate_days)),
            breakdowns=breakdowns,
            recent=[self.build_row(b) for b in failed_builds[:RECENT_BUILDS]],
            recent_hidden=max(0, len(failed_builds) - RECENT_BUILDS),
            failed_total=len(failed_builds),
            samples=s.samples,
            came_back=self.returning.get(v.bug),
            gerrit_base=gerrit_base(self.data.config),
            impact=self.data.impact.bugs.get(v.bug) if self.data.impact is not None else None,
            fixes=v.fix_rows(w.start, w.now),
            rechecks_known=self.data.impact.rechecks_known if self.data.impact is not None else False,
        )

    def uncategorized(self) -> None:
        unc = self.data.uncategorized
        w = self.data.window
        min_changes = self.data.config.recheckwatch.recurring_changes
        rates = daily_rates(unc, self.data.clusters, w, min_changes)
        rate_charts = {
            name: rate_svg([(d.day, d.explained_rate, d.covered_rate) for d in days], w.start, w.now)
            for name, days in rates.items()
        }
        clusters = [
            {"c": c, "chart": trend_svg(c.days, w.start, w.now, size=SMALL, label="uncategorized builds per day"),
             "rows": [self.build_row(b) for b in c.examples()]}
            for c in self.data.clusters
        ]
        self.render(
            "uncategorized.html", "uncategorized.html", current="uncategorized", unc=unc, suggestions=self.data.suggestions,
            clusters=clusters, rates=rates, rate_charts=rate_charts, rate_legend=rate_legend(), min_changes=min_changes,
        )
        for name in GROUPS:
            group = unc.groups[name]
            self.render(
                "uncategorized_group.html",
                f"{name}.html",
                current="uncategorized",
                group=group,
                rows=[dict(self.build_row(b), triage=triage_rows(self.data.triage, b.uuid)) for b in group.uncategorized],
                ages=self.data.window.age_filters,
            )

    def health_page(self) -> None:
        self.render("health.html", "health.html", current="health", data=self.data,
                    returning=list(self.returning.values()))

    def stale_page(self) -> None:
        report = self.data.stale
        groups = []
        if report is not None:
            titles = {
                REMOVE: "Removal candidates",
                CHECK: "Quiet, bug status unknown (check the bug)",
                KEEP: "Quiet, but keep",
            }
            for verdict in (REMOVE, CHECK, KEEP):
                groups.append(
                    {
                        "verdict": verdict,
                        "title": titles[verdict],
                        "entries": [(e, bug_page(e.bug)) for e in report.by_verdict(verdict)],
                    }
                )
        self.render(
            "stale.html",
            "stale_fingerprints.html",
            current="stale",
            report=report,
            groups=groups,
            active=len(report.by_verdict(ACTIVE)) if report is not None else 0,
            returning=list(self.returning.values()),
        )


def write_site(
    data: SiteData,
    out: Path,
    *,
    templates: Path | None = None,
    progress: Progress | None = None,
) -> int:
    """Write every page, JSON file and static file of the site into ``out``; returns the file count."""
    env = template_env(templates)
    pages = frozenset(n.key for n in NAV)
    w = PageWriter(out, env, data, pages)
    w.bug_list("index.html", "index", data.bugs)
    w.bug_list("gate.html", "gate", data.gate_bugs())
    total = len(data.bugs)
    for i, v in enumerate(data.bugs):
        w.bug(v)
        if progress is not None:
            progress("pages", i + 1, total)
    w.uncategorized()
    w.stale_page()
    w.health_page()
    write_json(out / "graph.json", data.graph)
    write_json(out / "uncategorized.json", site_uncategorized_json(data))
    write_json(out / "health.json", health_json(data), pretty=True)
    return w.files + 3 + len(copy_static(out, templates))


def write_uncategorized(data: SiteData, out: Path, *, templates: Path | None = None) -> int:
    """Only the uncategorized pages and JSON (the ``uncategorized`` command)."""
    env = template_env(templates)
    w = PageWriter(out, env, data, frozenset({"uncategorized"}))
    w.uncategorized()
    write_json(out / "uncategorized.json", site_uncategorized_json(data))
    return w.files + 1 + len(copy_static(out, templates))


# --------------------------------------------------------------------------- atomic swap

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2``); False when unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    LOG.debug("renameat2(RENAME_EXCHANGE) failed: %s", os.strerror(err))
    return False


def swap_into_place(new: Path, target: Path) -> None:
    """Make ``new`` (a finished directory) appear at ``target``; the old one is removed."""
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}-{int(time.time())}")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def staging_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    tmp.chmod(0o755)
    return tmp


def render_site(
    backend: SearchBackend,
    load_result: LoadResult,
    config: Config,
    out: Path,
    *,
    window: ReportWindow,
    templates: Path | None = None,
    bug_data: Mapping[str, BugData] | None = None,
    progress: Progress | None = None,
    backend_name: str = "",
    rechecks: Sequence[Recheck] | None = None,
    zuul_seconds: Mapping[str, float] | None = None,
) -> RenderResult:
    """Collect every number, render the site next to ``out``, then swap it into place.

    Used by the cron command (``render``) and the preview server (``serve``).
    On any failure ``out`` is left as it was.

    :raises BackendDown: the backend did not answer (nothing written).
    :raises BackendError: the backend failed half-way (nothing written).
    """
    t0 = time.perf_counter()
    data = collect_site_data(
        backend, load_result, config, window, bug_data=bug_data, progress=progress, backend_name=backend_name,
        rechecks=rechecks, zuul_seconds=zuul_seconds,
    )
    t1 = time.perf_counter()
    tmp = staging_dir(out)
    try:
        files = write_site(data, tmp, templates=templates, progress=progress)
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    t2 = time.perf_counter()
    LOG.info("rendered %d files into %s (%.2fs collecting, %.2fs writing)", files, out, t1 - t0, t2 - t1)
    return RenderResult(out=out, health=data.health, files=files, seconds={"collect": t1 - t0, "write": t2 - t1},
                        impact=data.impact)
