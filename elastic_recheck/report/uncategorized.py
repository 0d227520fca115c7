"""Failed gate builds that no fingerprint explains, and the classification rate.

As in the original ``elastic-recheck-uncategorized``: all failed builds are
found with a configurable query (``[site] all_fails_query``), here restricted
by structured filters to voting builds of the gate queue (``[site]
gate_queue``). Each fingerprint's failed builds in the window (suppressed
fingerprints included, as the original counted them) explain the failed
builds they contain; the rest are uncategorized. Builds are grouped into the
integrated gate (projects matching ``[site] integrated_projects_re``) and
others. As in the original, builds of jobs matching ``[site]
excluded_jobs_re`` are not counted, nor builds of projects outside the
integrated gate that do not match ``[site] included_projects_re``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elastic_recheck.core.config import Config
from elastic_recheck.core.search_types import BuildSummary, Filters, QuerySpec
from elastic_recheck.core.stats import (
    ClassificationRate,
    JobRate,
    builds_since,
    classification_rate,
    explained_by,
    newest_first,
)
from elastic_recheck.core.timestamps import to_epoch_ms
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.graph import BugStats
from elastic_recheck.report.window import ReportWindow

INTEGRATED = "integrated_gate"
OTHERS = "others"
GROUPS: tuple[str, ...] = (INTEGRATED, OTHERS)
GROUP_TITLES = {INTEGRATED: "Integrated gate", OTHERS: "Other projects"}


def all_fails_spec(config: Config, window: ReportWindow) -> QuerySpec:
    """Every failed voting build of the gate queue in the window."""
    return QuerySpec(
        queries=(config.site.all_fails_query,),
        filters=Filters(build_queue=config.site.gate_queue or None, voting=True),
        window=window.time_window,
        label="all-fails",
    )


def counted_build(build: BuildSummary, excluded_jobs_re: str, included_projects_re: str, integrated_projects_re: str) -> bool:
    """Whether a failed build counts on the uncategorized page, as the original decided.

    Its job must not match ``excluded_jobs_re``; its project must be one of
    the integrated gate or match ``included_projects_re`` (an empty regex
    excludes nothing, includes everything).
    """
    if excluded_jobs_re and re.search(excluded_jobs_re, job_name(build)):
        return False
    project = build.project or ""
    if not included_projects_re or (integrated_projects_re and re.search(integrated_projects_re, project)):
        return True
    return re.search(included_projects_re, project) is not None


def all_failed_gate_builds(backend: SearchBackend, config: Config, window: ReportWindow) -> list[BuildSummary]:
    """The failed voting gate builds in the window that count (:func:`counted_build`), newest first.

    Never truncated.
    """
    excluded = config.site.excluded_jobs_re
    included = config.site.included_projects_re
    integrated = config.site.integrated_projects_re
    builds = backend.builds(all_fails_spec(config, window))
    return newest_first([b for b in builds if counted_build(b, excluded, included, integrated)])


def job_name(build: BuildSummary) -> str:
    return build.job_name or "(unknown job)"


@dataclass(frozen=True)
class GroupReport:
    name: str
    title: str
    rate: ClassificationRate
    #: Uncategorized builds of this group, newest first.
    uncategorized: tuple[BuildSummary, ...]
    #: Every failed build of this group, newest first.
    failed: tuple[BuildSummary, ...] = ()


@dataclass(frozen=True)
class UncategorizedReport:
    window: ReportWindow
    #: All failed voting gate builds in the window, newest first.
    failed: tuple[BuildSummary, ...]
    #: build uuid -> bugs whose fingerprint hits it (empty: uncategorized).
    explained: Mapping[str, list[str]]
    overall: ClassificationRate
    groups: Mapping[str, GroupReport]
    #: Failed gate builds seen in the last 24 h.
    failed24: frozenset[str]

    @property
    def failed_uuids(self) -> frozenset[str]:
        return frozenset(b.uuid for b in self.failed)

    @property
    def uncategorized(self) -> list[BuildSummary]:
        return [b for b in self.failed if not self.explained.get(b.uuid)]


def build_uncategorized(
    failed: Sequence[BuildSummary],
    bug_hits: Mapping[str, set[str]],
    window: ReportWindow,
    integrated_projects_re: str,
) -> UncategorizedReport:
    """Which failed builds are explained, and the rates (pure)."""
    ordered = newest_first(failed)
    explained = explained_by(bug_hits, (b.uuid for b in ordered))
    explained_uuids = {u for u, bugs in explained.items() if bugs}
    pattern = re.compile(integrated_projects_re) if integrated_projects_re else None

    def group(b: BuildSummary) -> str:
        project = b.project or ""
        return INTEGRATED if pattern is not None and pattern.search(project) else OTHERS

    groups = {}
    for name in GROUPS:
        members = [b for b in ordered if group(b) == name]
        groups[name] = GroupReport(
            name=name,
            title=GROUP_TITLES[name],
            rate=classification_rate(members, explained_uuids, job_of=job_name),
            uncategorized=tuple(b for b in members if b.uuid not in explained_uuids),
            failed=tuple(members),
        )
    return UncategorizedReport(
        window=window,
        failed=tuple(ordered),
        explained=explained,
        overall=classification_rate(ordered, explained_uuids, job_of=job_name),
        groups=groups,
        failed24=frozenset(b.uuid for b in builds_since(ordered, window.day_start)),
    )


def bug_hit_sets(stats: Sequence[BugStats]) -> dict[str, set[str]]:
    """bug -> uuids of the builds its fingerprint hits (all fingerprints, suppressed too).

    Intersected with the failed gate builds by :func:`build_uncategorized`.
    """
    return {s.bug: s.uuids for s in stats}


def _ms(dt: datetime | None) -> int | None:
    return to_epoch_ms(dt) if dt is not None else None


def build_json(build: BuildSummary, group: str | None = None) -> dict[str, Any]:
    f = build.fields
    out: dict[str, Any] = {
        "uuid": build.uuid,
        "job": job_name(build),
        "project": f.get("project"),
        "change": f.get("build_change"),
        "patchset": f.get("build_patchset"),
        "branch": f.get("build_branch"),
        "queue": f.get("build_queue"),
        "node_provider": f.get("node_provider"),
        "log_url": f.get("log_url"),
        "timestamp": _ms(build.last_seen),
    }
    if group is not None:
        out["group"] = group
    return out


def _job_json(job: JobRate) -> dict[str, Any]:
    return {"name": job.name, "failed": job.failed, "explained": job.explained, "rate": job.exact_rate}


def _rate_json(rate: ClassificationRate) -> dict[str, Any]:
    return {
        "failed": rate.failed,
        "explained": rate.explained,
        "uncategorized": rate.uncategorized,
        "rate": rate.exact_rate,
        "jobs": [_job_json(j) for j in rate.jobs],
    }


def uncategorized_json(report: UncategorizedReport, config: Config) -> dict[str, Any]:
    """``uncategorized.json``: rates overall, per job and per group, and every uncategorized build."""
    w = report.window
    uncategorized: list[dict[str, Any]] = []
    for name, group in report.groups.items():
        uncategorized.extend(build_json(b, name) for b in group.uncategorized)
    uncategorized.sort(key=lambda d: (d["timestamp"] or 0, d["uuid"]), reverse=True)
    return {
        "now": to_epoch_ms(w.now),
        "window": {"start": to_epoch_ms(w.start), "end": to_epoch_ms(w.now), "days": w.days},
        "all_fails_query": config.site.all_fails_query,
        "gate_queue": config.site.gate_queue,
        "excluded_jobs_re": config.site.excluded_jobs_re,
        "included_projects_re": config.site.included_projects_re,
        # exact percentages (not rounded): the pages show them to 0.1
        "overall_rate": report.overall.exact_rate,
        "failed": report.overall.failed,
        "explained": report.overall.explained,
        "uncategorized_count": report.overall.uncategorized,
        "jobs": [_job_json(j) for j in report.overall.jobs],
        "groups": {name: _rate_json(g.rate) for name, g in report.groups.items()},
        "uncategorized": uncategorized,
        "categorized": [
            {"uuid": b.uuid, "bugs": report.explained[b.uuid]}
            for b in report.failed
            if report.explained.get(b.uuid)
        ],
    }
