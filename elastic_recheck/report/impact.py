"""The impact section of the site and graph.json: collected once per render.

Asks the backend for every build in the window (one ``builds()`` call: each
build's first and last log line, for the hours burnt and the runs per job),
reads the recheck comments the bot recorded (:class:`~elastic_recheck.adapters.sqlite.rechecks.RecheckLog`
in the bot's state file) and the build durations the Zuul collector recorded
(``collected_builds`` in the store file), and computes
:mod:`elastic_recheck.core.impact` for every fingerprint.

graph.json gets new keys only: ``impact`` in each ``buglist`` entry, and a
top-level ``impact`` block (sources, unexplained rechecks). Everything the
original wrote stays byte-identical.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elastic_recheck.adapters.sqlite.rechecks import RecheckLog
from elastic_recheck.core.errors import StoreError
from elastic_recheck.core.fixes import fixes_json
from elastic_recheck.core.impact import (
    BugImpact,
    RecheckCause,
    attribute_rechecks,
    bug_impact,
    impact_order,
    runs_by_job,
    unexplained_rechecks,
)
from elastic_recheck.core.rechecks import Recheck
from elastic_recheck.core.search_types import BuildSummary, QuerySpec
from elastic_recheck.core.stats import explained_by
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.graph import BugStats
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

#: Unexplained rechecks listed in graph.json and on the uncategorized page (newest first).
UNEXPLAINED_ROWS = 100


@dataclass
class ImpactReport:
    bugs: dict[str, BugImpact] = field(default_factory=dict)
    causes: list[RecheckCause] = field(default_factory=list)
    #: Whether recheck comments were available at all (a recheck log was found).
    rechecks_known: bool = False
    #: Builds whose duration came from Zuul's records.
    zuul_durations: int = 0

    @property
    def unexplained(self) -> list[RecheckCause]:
        return unexplained_rechecks(self.causes)

    @property
    def without_builds(self) -> int:
        """Rechecks whose failed builds are not in the store (not indexed, or before the window)."""
        return sum(1 for c in self.causes if not c.failed)

    def ordered(self) -> list[BugImpact]:
        return impact_order(self.bugs.values())

    def summary_json(self) -> dict[str, Any]:
        unexplained = self.unexplained
        return {
            "rechecks_known": self.rechecks_known,
            "rechecks": len(self.causes),
            "rechecks_explained": sum(1 for c in self.causes if c.bugs),
            "rechecks_unexplained": len(unexplained),
            "rechecks_without_builds": self.without_builds,
            "durations_from_zuul": self.zuul_durations,
            "order": [i.bug for i in self.ordered()],
            "unexplained_rechecks": [c.as_json() for c in unexplained[:UNEXPLAINED_ROWS]],
        }


def load_rechecks(path: Path | None, window: ReportWindow) -> list[Recheck] | None:
    """The recorded rechecks of the window (None: no recheck log at ``path``)."""
    if path is None or not path.is_file():
        return None
    try:
        log = RecheckLog(path, create=False)
    except StoreError as exc:
        LOG.warning("rechecks left out: %s", exc)
        return None
    try:
        return log.between(window.start, window.now)
    except StoreError as exc:
        LOG.warning("rechecks left out: %s", exc)
        return None
    finally:
        log.close()


def load_zuul_durations(path: Path | None) -> dict[str, float]:
    """uuid -> seconds of the builds the Zuul collector recorded in ``path`` (empty without one)."""
    if path is None or not path.is_file():
        return {}
    from elastic_recheck.adapters.sqlite.collector_state import CollectorState

    try:
        state = CollectorState(path)
    except StoreError as exc:
        LOG.warning("Zuul build durations left out: %s", exc)
        return {}
    try:
        return state.durations()
    finally:
        state.close()


def all_builds(backend: SearchBackend, window: ReportWindow) -> list[BuildSummary]:
    """Every build with a log line in the window (first and last line of each)."""
    return backend.builds(QuerySpec(window=window.time_window, label="all-builds"))


def collect_impact(
    backend: SearchBackend,
    stats: Sequence[BugStats],
    window: ReportWindow,
    gate_queue: str,
    *,
    rechecks: Sequence[Recheck] | None = None,
    zuul_seconds: Mapping[str, float] | None = None,
) -> ImpactReport:
    """Impact of every fingerprint (see :mod:`elastic_recheck.core.impact`)."""
    builds = all_builds(backend, window)
    whole = {b.uuid: b for b in builds}
    failed_by_bug = {s.bug: s.failed_builds() for s in stats if not s.error}
    explained = explained_by({bug: {b.uuid for b in failed} for bug, failed in failed_by_bug.items()},
                             [b.uuid for b in builds if b.status == "FAILURE"])
    causes = attribute_rechecks(rechecks or (), builds, explained)
    seconds = dict(zuul_seconds or {})
    runs = runs_by_job(builds)
    bugs = {
        bug: bug_impact(bug, failed, whole=whole, runs_per_job=runs, causes=causes, gate_queue=gate_queue,
                        day_start=window.day_start, zuul_seconds=seconds)
        for bug, failed in failed_by_bug.items()
    }
    return ImpactReport(bugs=bugs, causes=causes, rechecks_known=rechecks is not None,
                        zuul_durations=sum(1 for u in whole if u in seconds))


def add_fixes_to_graph(graph: dict[str, Any], views: Sequence[Any], window: ReportWindow) -> None:
    """graph.json's new ``fixes`` key of each buglist entry (when Gerrit was asked: ``[site] fixes``)."""
    rows = {v.bug: v.fix_rows(window.start, window.now) for v in views}
    for entry in graph.get("buglist", ()):
        found = rows.get(str(entry.get("number")))
        if found:
            entry["fixes"] = fixes_json(found)


def add_impact_to_graph(graph: dict[str, Any], report: ImpactReport) -> None:
    """graph.json's new keys: ``impact`` per buglist entry and at the top level."""
    for entry in graph.get("buglist", ()):
        found = report.bugs.get(str(entry.get("number")))
        if found is not None:
            entry["impact"] = found.as_json()
    graph["impact"] = report.summary_json()
