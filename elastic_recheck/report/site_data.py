"""What the trend site shows: the data collected for it from the backend.

:func:`collect_site_data` gathers, for every fingerprint, its hits, trend
and breakdowns, the uncategorized failures, triage, suggestions, failure
clusters and the backend's health into one :class:`SiteData`, which
:mod:`elastic_recheck.report.site_pages` writes out.
"""


from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

from elastic_recheck.core.config import Config
from elastic_recheck.core.error_line_search import fetch_error_lines
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprint_loading import LoadResult
from elastic_recheck.core.fixes import Fix, Verdict, fix_rows
from elastic_recheck.core.pages import bug_page
from elastic_recheck.core.rechecks import Recheck
from elastic_recheck.core.stats import (
    Share,
    bug_sort_key,
    builds_since,
    failure_share,
)
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.clusters import FailureCluster, build_clusters
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
    DEFAULT_QUIET_DAYS,
    Returning,
    StaleReport,
    find_stale,
)
from elastic_recheck.report.triage import BuildTriage, collect_triage
from elastic_recheck.report.uncategorized import (
    UncategorizedReport,
    all_failed_gate_builds,
    bug_hit_sets,
    build_uncategorized,
)
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

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

