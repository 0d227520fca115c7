"""Writing the trend site's pages and JSON files from a :class:`SiteData`."""


from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment

from elastic_recheck.core.config import Config
from elastic_recheck.core.pages import bug_page
from elastic_recheck.core.safe_text import safe_url
from elastic_recheck.core.search_types import Bucket, BuildSummary, TermCount
from elastic_recheck.core.stats import (
    breakdown,
    day_buckets,
)
from elastic_recheck.core.timestamps import to_epoch_ms
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
from elastic_recheck.report.clusters import daily_rates
from elastic_recheck.report.graph import (
    Progress,
)
from elastic_recheck.report.site_data import BugView, SiteData
from elastic_recheck.report.stale_fingerprints import (
    ACTIVE,
    CHECK,
    KEEP,
    REMOVE,
    Returning,
    StaleReport,
)
from elastic_recheck.report.templating import copy_static, template_env
from elastic_recheck.report.triage import triage_rows
from elastic_recheck.report.uncategorized import (
    GROUPS,
    job_name,
    uncategorized_json,
)

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
            "now_ms": to_epoch_ms(d.window.now),
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

